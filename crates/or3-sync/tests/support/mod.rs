//! What the tests of the real binary share: a server started on a free port,
//! and small HTTP helpers.
#![allow(dead_code)] // each test file uses its own share of the helpers

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_or3-sync");

/// A `serve` process; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    /// The log lines up to the listening line.
    pub startup: Vec<String>,
}

impl Server {
    /// Starts `or3-sync serve` on a free port and waits for its listening line.
    pub fn start(db: &Path) -> Server {
        Server::start_with(db, &[])
    }

    /// [`Server::start`] with more flags.
    pub fn start_with(db: &Path, flags: &[&str]) -> Server {
        Server::start_on(&format!("sqlite://{}", db.display()), None, flags)
    }

    /// `or3-sync serve --database <database>` with `flags`, run in `dir`
    /// (where dev auth keeps its key, so servers started in one directory
    /// accept each other's tokens) or in this process's directory.
    pub fn start_on(database: &str, dir: Option<&Path>, flags: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().expect("spawn or3-sync");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut startup = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let base = line[at + "listening on ".len()..].trim().to_owned();
                    let _ = tx.send((base, std::mem::take(&mut startup)));
                } else {
                    startup.push(line);
                }
            }
        });
        let (base, startup) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        Server {
            child,
            base,
            startup,
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown path runs.
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an operator command; whether it succeeded, and its stdout then stderr.
pub fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The commands that work on an existing store only (`member set`, `member
/// remove`, `gc` of one workspace and of all), run on `db`, which holds
/// none: each must fail saying `expected`. The caller then checks that
/// nothing was created.
pub fn check_commands_refuse_a_missing_store(db: &str, expected: &str) {
    for args in [
        vec!["member", "set", "--database", db, "team-1", "bob", "editor"],
        vec!["member", "remove", "--database", db, "team-1", "bob"],
        vec!["gc", "--database", db, "--workspace", "team-1"],
        vec!["gc", "--database", db],
    ] {
        let (ok, out) = run(&args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
}

/// The operator commands on `db` (any backend): migrate, create a
/// workspace, add, demote and remove members under the last-owner rule,
/// refuse an unknown role, and a dry-run GC that reports the workspace.
pub fn check_operator_commands(db: &str) {
    let (ok, out) = run(&["migrate", "--database", db]);
    assert!(ok, "{out}");
    let create = [
        "workspace",
        "create",
        "--database",
        db,
        "--name",
        "Team",
        "--owner",
        "alice",
        "--id",
        "team-1",
    ];
    let (ok, out) = run(&create);
    assert!(ok && out.contains("\"workspace_id\":\"team-1\""), "{out}");
    let member = |rest: &[&'static str]| {
        let mut args = vec!["member", rest[0], "--database", db, "team-1"];
        args.extend_from_slice(&rest[1..]);
        run(&args)
    };
    let (ok, out) = member(&["set", "bob", "editor"]);
    assert!(ok, "{out}");
    let (ok, out) = member(&["set", "alice", "viewer"]);
    assert!(!ok, "the last owner cannot be demoted: {out}");
    let (ok, out) = member(&["remove", "bob"]);
    assert!(ok, "{out}");
    let (ok, out) = member(&["set", "bob", "boss"]);
    assert!(!ok && out.contains("role must be"), "{out}");
    let (ok, out) = run(&["gc", "--database", db, "--dry-run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("\"workspace_id\":\"team-1\"") && out.contains("log_entries_purged"),
        "{out}"
    );
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

pub async fn dev_token(http: &reqwest::Client, base: &str, user: &str) -> String {
    let (status, body) = post(
        http,
        format!("{base}/v1/dev/token"),
        None,
        json!({"user_id": user}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}
