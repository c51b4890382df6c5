//! What the tests of the real binary share: a server started on a free port,
//! and small HTTP helpers.
#![allow(dead_code)] // each test file uses its own share of the helpers

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_or3-sync"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(format!("sqlite://{}", db.display()))
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn or3-sync");
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
