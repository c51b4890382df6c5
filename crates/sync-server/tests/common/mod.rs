//! A gateway on an ephemeral port with a fresh SQLite file, plus a small
//! HTTP client that speaks the protocol. Shared by the integration tests.
#![allow(dead_code)]

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use sync_core::TableConfig;
use sync_server::auth::{Authenticator, VerifyingKeys};
use sync_server::clock::{Clock, SystemClock};
use sync_server::config::ServerConfig;
use sync_server::fanout::bus::LocalBus;
use sync_server::state::AppState;
use sync_server::store::sqlite::SqliteStore;
use sync_server::store::Store;

pub const ISSUER: &str = "https://clerk.test.example";
pub const DEVICE_A: &str = "aaaaaaaaaaaaaaaa";
pub const DEVICE_B: &str = "bbbbbbbbbbbbbbbb";

pub const ALLOWED_ORIGIN: &str = "https://app.example";

/// An RSA key pair made for the test run: the signing key and its public PEM.
pub struct TestKey {
    pub encoding: EncodingKey,
    pub public_pem: String,
}

impl TestKey {
    pub fn generate() -> TestKey {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
        TestKey {
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
            public_pem: private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    }

    /// Signs any claims with RS256 and the given `kid`.
    pub fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The key the test servers trust (made once per test binary).
pub fn key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::generate)
}

/// The verifier of the test servers: [`key`], [`ISSUER`], [`ALLOWED_ORIGIN`].
pub fn authenticator() -> Authenticator {
    let decoding = DecodingKey::from_rsa_pem(key().public_pem.as_bytes()).unwrap();
    Authenticator::new(
        VerifyingKeys::Single(decoding),
        Some(ISSUER),
        vec![ALLOWED_ORIGIN.to_owned()],
    )
}

pub fn now_secs() -> u64 {
    SystemClock.now_ms() / 1000
}

/// Clerk-like session claims for `user`, valid for an hour.
pub fn claims(user: &str) -> Value {
    let now = now_secs();
    json!({"sub": user, "iss": ISSUER, "azp": ALLOWED_ORIGIN, "iat": now, "nbf": now, "exp": now + 3600, "sid": "sess_1"})
}

/// A valid token for `user`.
pub fn token(user: &str) -> String {
    key().sign(&claims(user), Some("test"))
}

pub struct TestServer {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn start() -> TestServer {
    start_with(ServerConfig::default(), Arc::new(SystemClock)).await
}

/// The default configuration with `f` applied.
pub fn config_with(f: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig::default();
    f(&mut config);
    config
}

/// A server on the system clock whose push rate limit takes `per_minute` pushes a minute.
pub async fn start_with_push_limit(per_minute: u32) -> TestServer {
    let limits = sync_server::config::RateLimitConfig {
        push_per_minute: per_minute,
        ..Default::default()
    };
    start_with(
        config_with(|c| c.rate_limits = limits),
        Arc::new(SystemClock),
    )
    .await
}

pub async fn start_with(config: ServerConfig, clock: Arc<dyn Clock>) -> TestServer {
    start_in(Arc::new(tempfile::tempdir().unwrap()), config, clock).await
}

/// Starts a server on the database in `dir` (reused across restarts).
pub async fn start_in(
    dir: Arc<tempfile::TempDir>,
    config: ServerConfig,
    clock: Arc<dyn Clock>,
) -> TestServer {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db"), config.tables.clone()).unwrap());
    let state = AppState::new(
        store.clone(),
        Arc::new(LocalBus),
        authenticator(),
        clock,
        config,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sync_server::serve::run(
        listener,
        state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    TestServer {
        base,
        store,
        http: reqwest::Client::new(),
        dir,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestServer {
    /// Graceful shutdown, as on SIGTERM; waits until the server has stopped.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
    }

    /// The WebSocket URL of a workspace's subscription.
    pub fn ws_url(&self, ws: &str) -> String {
        format!(
            "{}/v1/workspaces/{ws}/subscribe",
            self.base.replace("http://", "ws://")
        )
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-device-id", DEVICE_A);
        if let Some(user) = user {
            req = req.bearer_auth(token(user));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, user: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(user), None)
            .await
    }

    pub async fn post(&self, path: &str, user: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(user), Some(body))
            .await
    }

    /// Creates a workspace owned by `owner` and returns its id.
    pub async fn workspace(&self, owner: &str) -> String {
        let (status, body) = self
            .post("/v1/workspaces", owner, json!({"name": "test"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["workspace_id"].as_str().unwrap().to_owned()
    }

    pub async fn add_member(&self, ws: &str, owner: &str, user: &str, role: &str) {
        let (status, body) = self
            .request(
                reqwest::Method::PUT,
                &format!("/v1/workspaces/{ws}/members/{user}"),
                Some(owner),
                Some(json!({ "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn push(&self, ws: &str, user: &str, ops: Vec<Value>) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/workspaces/{ws}/push"),
            user,
            json!({ "ops": ops }),
        )
        .await
    }

    /// Pushes and expects 200; returns the results array.
    pub async fn push_ok(&self, ws: &str, user: &str, ops: Vec<Value>) -> Vec<Value> {
        let (status, body) = self.push(ws, user, ops).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["results"].as_array().unwrap().clone()
    }

    pub async fn pull(&self, ws: &str, user: &str, cursor: u64, limit: usize) -> Value {
        let (status, body) = self
            .get(
                &format!("/v1/workspaces/{ws}/changes?cursor={cursor}&limit={limit}"),
                user,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Pulls every change after `cursor`, page by page.
    pub async fn pull_all(
        &self,
        ws: &str,
        user: &str,
        mut cursor: u64,
        limit: usize,
    ) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let page = self.pull(ws, user, cursor, limit).await;
            all.extend(page["changes"].as_array().unwrap().iter().cloned());
            cursor = page["cursor"].as_u64().unwrap();
            if !page["has_more"].as_bool().unwrap() {
                return all;
            }
        }
    }
}

static OP_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh op id.
pub fn op_id() -> String {
    let n = OP_COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// An hlc at `ms` with `counter` from `device`.
pub fn hlc(ms: u64, counter: u32, device: &str) -> String {
    format!("{ms:013}-{counter:06}-{device}")
}

/// A recent wall-clock ms, so ops pass the clock-skew check.
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// A put op for a message.
pub fn put(table: &str, pk: &str, clock: u64, hlc_text: &str, data: Value) -> Value {
    let device = hlc_text.rsplit('-').next().unwrap().to_owned();
    let mut payload = json!({ "id": pk });
    if let (Some(p), Some(d)) = (payload.as_object_mut(), data.as_object()) {
        for (k, v) in d {
            p.insert(k.clone(), v.clone());
        }
    }
    json!({
        "op_id": op_id(), "table_name": table, "operation": "put", "pk": pk,
        "payload": payload, "clock": clock, "hlc": hlc_text, "device_id": device,
    })
}

/// First puts of `rows` (table, pk, fields) by [`DEVICE_A`] at clock 1,
/// stamped at `t` with counters 0, 1, 2… in order: a batch that sets a scene.
pub fn puts(t: u64, rows: Vec<(&str, &str, Value)>) -> Vec<Value> {
    rows.into_iter()
        .enumerate()
        .map(|(i, (table, pk, data))| put(table, pk, 1, &hlc(t, i as u32, DEVICE_A), data))
        .collect()
}

/// A delete op without payload.
pub fn delete(table: &str, pk: &str, clock: u64, hlc_text: &str) -> Value {
    let device = hlc_text.rsplit('-').next().unwrap().to_owned();
    json!({
        "op_id": op_id(), "table_name": table, "operation": "delete", "pk": pk,
        "clock": clock, "hlc": hlc_text, "device_id": device,
    })
}

pub fn tables() -> TableConfig {
    TableConfig::or3_chat()
}
