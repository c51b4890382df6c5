//! The servers under test run as child processes: the real `or3-sync`
//! binary (dev auth, its own SQLite file, periodic GC off), or the bench's
//! own fanout-floor server. Each logs the address it listens on; we read it
//! from the child's output, and keep draining that output so the child never
//! blocks on a full pipe.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The user every benchmark acts as (owner of its workspaces).
pub const BENCH_USER: &str = "bench";

/// One bench user does what thousands of users would: its rate limits and
/// subscription cap are raised out of the way (the limiter still runs on
/// every request, so its cost is measured).
pub const LIMITS_FOR_ONE_BENCH_USER: &[&str] = &[
    "--rate-push-per-minute",
    "1000000000",
    "--rate-pull-per-minute",
    "1000000000",
    "--rate-subscribe-per-minute",
    "1000000000",
    "--rate-anonymous-per-minute",
    "1000000000",
    "--max-subscriptions-per-user",
    "1000000",
    "--max-connections-per-ip",
    "0",
];

/// A running child server, killed when dropped.
pub struct ChildServer {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    recent_output: Arc<Mutex<VecDeque<String>>>,
}

impl ChildServer {
    /// Spawns `command` and waits (up to a minute) for an output line that
    /// contains `marker` followed by the address.
    pub fn spawn(mut command: Command, marker: &'static str) -> Result<ChildServer> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {:?}", command.get_program()))?;
        let recent_output = Arc::new(Mutex::new(VecDeque::new()));
        let (found, address) = std::sync::mpsc::channel();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let (found, recent) = (found.clone(), recent_output.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(at) = line.find(marker) {
                        let addr = line[at + marker.len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        let _ = found.send(addr);
                    }
                    let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
                    if recent.len() == 20 {
                        recent.pop_front();
                    }
                    recent.push_back(line);
                }
            });
        }
        let mut server = ChildServer {
            child,
            addr: String::new(),
            recent_output,
        };
        match address.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => server.addr = addr,
            Err(_) => bail!(
                "the server did not report its address within 60 s; its last output:\n{}",
                server.recent_output()
            ),
        }
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the child printed, for error messages.
    pub fn recent_output(&self) -> String {
        let recent = self.recent_output.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `or3-sync serve` with a dev token for [`BENCH_USER`].
pub struct SyncServer {
    /// The child process.
    pub process: ChildServer,
    /// `http://host:port`.
    pub base: String,
    /// A bearer token for [`BENCH_USER`].
    pub token: String,
    /// Its SQLite file (for a Postgres server: its working folder).
    pub database: PathBuf,
    /// An HTTP client (keep-alive, no Nagle).
    pub http: reqwest::Client,
}

/// Where to find the server binary, and the dev key shared by every server
/// of a run (making an RSA key at each start would cost seconds in debug).
pub struct ServerLauncher {
    /// The `or3-sync` binary.
    pub binary: PathBuf,
    dev_key: Mutex<Option<PathBuf>>,
}

impl ServerLauncher {
    /// A launcher for `binary`.
    pub fn new(binary: PathBuf) -> ServerLauncher {
        ServerLauncher {
            binary,
            dev_key: Mutex::new(None),
        }
    }

    /// Runs an operator command of the binary (`migrate`, `workspace create`).
    pub fn run_command(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.binary)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        if !out.status.success() {
            bail!(
                "`or3-sync {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `or3-sync serve` on the SQLite file `database` and gets a token.
    pub async fn start(&self, database: &Path) -> Result<SyncServer> {
        self.start_with(database, &[]).await
    }

    /// [`Launcher::start`] with more `serve` flags.
    pub async fn start_with(&self, database: &Path, flags: &[&str]) -> Result<SyncServer> {
        self.launch(
            format!("sqlite://{}", database.display()),
            database.with_extension("devkey.pem"),
            None,
            database,
            flags,
        )
        .await
    }

    /// Starts `or3-sync serve` on a Postgres URL and gets a token. The server
    /// runs in `dir`, where dev auth keeps its key for Postgres.
    pub async fn start_postgres(&self, url: &str, dir: &Path) -> Result<SyncServer> {
        self.launch(
            url.to_owned(),
            dir.join("or3-sync.devkey.pem"),
            Some(dir),
            dir,
            &[],
        )
        .await
    }

    async fn launch(
        &self,
        database_arg: String,
        key_path: PathBuf,
        working_dir: Option<&Path>,
        database: &Path,
        flags: &[&str],
    ) -> Result<SyncServer> {
        let shared = self
            .dev_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(shared) = shared {
            if shared != key_path && !key_path.exists() {
                std::fs::copy(&shared, &key_path).context("cannot copy the dev key")?;
            }
        }
        let mut command = Command::new(&self.binary);
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--gc-interval-secs",
                "0",
            ])
            .args(LIMITS_FOR_ONE_BENCH_USER)
            .args(flags)
            .arg("--database")
            .arg(database_arg)
            .env("RUST_LOG", "warn,or3_sync=info");
        if let Some(dir) = working_dir {
            command.current_dir(dir);
        }
        let binary = self.binary.clone();
        let process =
            tokio::task::spawn_blocking(move || ChildServer::spawn(command, "listening on "))
                .await?
                .with_context(|| format!("starting {}", binary.display()))?;
        let base = process.addr.clone();
        if !base.starts_with("http://") {
            bail!("unexpected listening line: {base}");
        }
        if key_path.exists() {
            self.dev_key
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(key_path);
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()?;
        let response = http
            .post(format!("{base}/v1/dev/token"))
            .json(&json!({ "user_id": BENCH_USER }))
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        let token = body["token"]
            .as_str()
            .ok_or_else(|| anyhow!("no dev token ({status}): {body}"))?
            .to_owned();
        Ok(SyncServer {
            process,
            base,
            token,
            database: database.to_owned(),
            http,
        })
    }
}

impl SyncServer {
    /// Creates a workspace owned by [`BENCH_USER`] and returns its id.
    pub async fn create_workspace(&self, name: &str) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/v1/workspaces", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "name": name }))
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        body["workspace_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("cannot create a workspace ({status}): {body}"))
    }

    /// The address it listens on.
    pub fn socket_addr(&self) -> Result<std::net::SocketAddr> {
        let host_port = self.base.trim_start_matches("http://");
        host_port
            .parse()
            .with_context(|| format!("the server's address {host_port} is not host:port"))
    }

    /// `ws://host:port/v1/workspaces/{ws}/subscribe`.
    pub fn subscribe_url(&self, ws: &str) -> String {
        format!(
            "{}/v1/workspaces/{ws}/subscribe",
            self.base.replacen("http://", "ws://", 1)
        )
    }

    /// Pushes a prepared body and checks that every op was applied.
    /// Returns the number of ops applied.
    pub async fn push(&self, ws: &str, body: String) -> Result<usize> {
        let response = self
            .http
            .post(format!("{}/v1/workspaces/{ws}/push", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "push answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
            );
        }
        let answer: PushAnswer<'_> = serde_json::from_slice(&bytes)?;
        if let Some(other) = answer.results.iter().find(|r| r.status != "applied") {
            bail!("an op was {} instead of applied", other.status);
        }
        Ok(answer.results.len())
    }
}

#[derive(serde::Deserialize)]
struct PushAnswer<'a> {
    #[serde(borrow)]
    results: Vec<OpAnswer<'a>>,
}

#[derive(serde::Deserialize)]
struct OpAnswer<'a> {
    status: &'a str,
}
