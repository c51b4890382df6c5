//! The real `or3-sync` binary on Postgres: operator commands with
//! `--database postgres://...`, and two `serve` processes on different ports
//! sharing one database, where a subscriber of one receives what is pushed
//! through the other and a killed node loses nothing it acknowledged.

#[path = "../../sync-server/tests/pg_support/mod.rs"]
mod pg_support;
mod support;

use pg_support::{with_host, TestSchema};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{
    check_commands_refuse_a_missing_store, check_operator_commands, now_ms, run, Server, BIN,
};

/// [`support::post`] that must succeed; the body.
async fn post(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let (status, body) = support::post(http, url, token, body).await;
    assert!((200..300).contains(&status), "{status}: {body}");
    body
}

#[tokio::test]
async fn operator_commands_work_on_postgres() {
    let schema = TestSchema::new().await;
    let db = schema.url();
    check_operator_commands(&db);
    let (ok, out) = run(&[
        "migrate",
        "--database",
        "postgres://postgres@127.0.0.1:1/test",
        "--pg-connect-wait-secs",
        "0",
    ]);
    assert!(!ok && out.contains("store unavailable"), "{out}");
}

/// A command that names a workspace on a schema holding no store (a typo in
/// `?schema=`) must say so and create nothing, as on a missing SQLite file.
#[tokio::test]
async fn commands_on_a_missing_postgres_schema_fail_and_create_nothing() {
    let schema = TestSchema::new().await;
    let db = schema.url();
    check_commands_refuse_a_missing_store(
        &db,
        &format!("no or3-sync database in schema {}", schema.name),
    );
    let exists = pg_support::admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(exists, 0, "a command created schema {}", schema.name);
    // Once migrated, the same commands work there.
    let (ok, out) = run(&["migrate", "--database", &db]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["gc", "--database", &db, "--dry-run"]);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn a_subscriber_of_one_node_receives_pushes_through_another_and_kill_9_loses_nothing() {
    let schema = TestSchema::new().await;
    let dir = tempfile::tempdir().unwrap();
    let db = schema.url();
    let node_flags = ["--pg-pool-size", "4", "--pg-statement-timeout-ms", "3000"];
    let a = Server::start_on(&db, Some(dir.path()), &node_flags);
    let b = Server::start_on(&db, Some(dir.path()), &node_flags);
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

/// A Postgres that comes up after the gateway: `serve` waits for it (up to
/// `--pg-connect-wait-secs`), retrying and saying so, then serves.
// Multi-threaded: the test blocks on log lines while the forwarder runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_a_postgres_that_comes_up_late() {
    let schema = TestSchema::new().await;
    // A port nothing listens on yet; a forwarder to the real Postgres opens on it later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (late_url, real) = with_host(&schema.url(), &format!("127.0.0.1:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &late_url])
        .args(["--pg-connect-wait-secs", "30"])
        .current_dir(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next_line = |what: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line saying {what}"));
        if line.contains(what) {
            return line;
        }
    };
    next_line("Postgres cannot be reached yet (attempt 1)");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let real = real.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(real).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let line = next_line("listening on http://");
    let base = line[line.find("http://").unwrap()..].trim().to_owned();
    let health = reqwest::get(format!("{base}/v1/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let _ = child.kill();
    let _ = child.wait();
    forwarder.abort();
}

/// With nothing to wait for, `serve` gives up after the wait and says why.
#[test]
fn serve_gives_up_on_an_unreachable_postgres_after_the_wait() {
    let (url, _) = with_host(&pg_support::base_url(), "127.0.0.1:1");
    let started = std::time::Instant::now();
    let (ok, out) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &url,
        "--pg-connect-wait-secs",
        "2",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Postgres cannot be reached yet (attempt 1)"),
        "{out}"
    );
    assert!(out.contains("cannot open the Postgres database"), "{out}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
