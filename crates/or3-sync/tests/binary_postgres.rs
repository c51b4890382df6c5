//! The real `or3-sync` binary on Postgres: operator commands with
//! `--database postgres://...`, and two `serve` processes on different ports
//! sharing one database, where a subscriber of one receives what is pushed
//! through the other and a killed node loses nothing it acknowledged.

#[path = "../../sync-server/tests/pg_support/mod.rs"]
mod pg_support;

use pg_support::TestSchema;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_or3-sync");

/// A `serve` process; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    /// Starts `or3-sync serve` on a free port in `dir` (where dev auth keeps
    /// its key, so nodes started in one directory accept each other's tokens).
    fn start(dir: &Path, database: &str) -> Node {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(["--pg-pool-size", "4", "--pg-statement-timeout-ms", "3000"])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn or3-sync");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = tx.send(line[at + "listening on ".len()..].trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        Node { child, base }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::test]
async fn operator_commands_work_on_postgres() {
    let schema = TestSchema::new().await;
    let db = schema.url();
    let (ok, out) = run(&["migrate", "--database", &db]);
    assert!(ok, "{out}");
    let (ok, out) = run(&[
        "workspace",
        "create",
        "--database",
        &db,
        "--name",
        "Team",
        "--owner",
        "alice",
        "--id",
        "team-1",
    ]);
    assert!(ok && out.contains("\"workspace_id\":\"team-1\""), "{out}");
    assert!(
        run(&[
            "member",
            "set",
            "--database",
            &db,
            "team-1",
            "bob",
            "editor"
        ])
        .0
    );
    let (ok, out) = run(&[
        "member",
        "set",
        "--database",
        &db,
        "team-1",
        "alice",
        "viewer",
    ]);
    assert!(!ok, "the last owner cannot be demoted: {out}");
    assert!(run(&["member", "remove", "--database", &db, "team-1", "bob"]).0);
    let (ok, out) = run(&["gc", "--database", &db, "--dry-run"]);
    assert!(ok && out.contains("team-1"), "{out}");
    let (ok, out) = run(&[
        "migrate",
        "--database",
        "postgres://postgres@127.0.0.1:1/test",
    ]);
    assert!(!ok && out.contains("store unavailable"), "{out}");
}

#[tokio::test]
async fn a_subscriber_of_one_node_receives_pushes_through_another_and_kill_9_loses_nothing() {
    let schema = TestSchema::new().await;
    let dir = tempfile::tempdir().unwrap();
    let db = schema.url();
    let a = Node::start(dir.path(), &db);
    let b = Node::start(dir.path(), &db);
    let http = reqwest::Client::new();
    let token = post(
        &http,
        format!("{}/v1/dev/token", a.base),
        None,
        json!({"user_id": "alice"}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ws = post(
        &http,
        format!("{}/v1/workspaces", a.base),
        Some(&token),
        json!({"name": "w"}),
    )
    .await["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut events = http
        .get(format!("{}/v1/workspaces/{ws}/events?cursor=0", b.base))
        .bearer_auth(&token)
        .header("x-device-id", "bbbbbbbbbbbbbbbb")
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.status().as_u16(),
        200,
        "node B accepts node A's token"
    );

    let device = "0123456789abcdef";
    let mut acknowledged = Vec::new();
    for b in 0..10u32 {
        let t = now_ms();
        let ops: Vec<Value> = (0..10u32)
            .map(|i| {
                let n = b * 10 + i;
                json!({"op_id": uuid::Uuid::new_v4().to_string(), "table_name": "messages",
                       "operation": "put", "pk": format!("m{n}"), "payload": {"id": format!("m{n}")},
                       "clock": 1, "hlc": format!("{t:013}-{i:06}-{device}"), "device_id": device})
            })
            .collect();
        let body = post(
            &http,
            format!("{}/v1/workspaces/{ws}/push", a.base),
            Some(&token),
            json!({"ops": ops}),
        )
        .await;
        for r in body["results"].as_array().unwrap() {
            assert_eq!(r["status"], "applied");
            acknowledged.push(r["op_id"].as_str().unwrap().to_owned());
        }
    }
    drop(a); // SIGKILL: no shutdown path runs.

    // Read B's event stream until all 100 changes arrived.
    let mut buffer = String::new();
    let mut seen = Vec::new();
    let mut position = 0;
    while seen.len() < acknowledged.len() {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for data in event.lines().filter_map(|l| l.strip_prefix("data:")) {
                let frame: Value = serde_json::from_str(data.trim()).unwrap();
                if frame["type"] != "changes" {
                    continue;
                }
                assert_eq!(frame["from"], position, "frames chain");
                position = frame["to"].as_u64().unwrap();
                for c in frame["changes"].as_array().unwrap() {
                    seen.push(c["op_id"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    assert_eq!(seen, acknowledged, "every acknowledged op, once, in order");
}
