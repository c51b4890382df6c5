//! Several gateway nodes over one Postgres, through the HTTP API: a
//! subscriber on one node receives pushes made through another, in order;
//! pushes through both nodes leave one gap-free log; a node whose listen
//! connection drops catches up; a node that starts makes the others catch up
//! on what a crashed node committed but never announced; a blocked database answers 503 with
//! `Retry-After`, not a hang, and the node recovers; a node whose store
//! connects over TLS hears the others through its TLS listen connection.

mod common;
mod pg_support;
mod tls_proxy;

use common::{authenticator, hlc, now_ms, put, token, DEVICE_B};
use futures_util::{SinkExt, StreamExt};
use pg_support::TestSchema;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_core::TableConfig;
use sync_server::clock::SystemClock;
use sync_server::config::ServerConfig;
use sync_server::fanout::pg_bus::PgBus;
use sync_server::state::AppState;
use sync_server::store::postgres::{PgOptions, PostgresStore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(10);

/// One gateway node: its own store (pool), bus and port.
struct Node {
    base: String,
    http: reqwest::Client,
    _bus: Arc<PgBus>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_node(
    schema: &TestSchema,
    application_name: &str,
    options: PgOptions,
    sweep: Duration,
) -> Node {
    start_node_at(&schema.url_as(application_name), options, sweep).await
}

async fn start_node_at(url: &str, options: PgOptions, sweep: Duration) -> Node {
    let store = PostgresStore::connect(url, TableConfig::or3_chat(), options)
        .await
        .unwrap_or_else(|e| panic!("cannot open the Postgres store: {e}"));
    let bus = Arc::new(PgBus::new(&store).sweep_every(sweep));
    let state = AppState::new(
        Arc::new(store),
        bus.clone(),
        authenticator(),
        Arc::new(SystemClock),
        ServerConfig::default(),
    );
    bus.listen(Arc::downgrade(&state.hub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sync_server::serve::run(listener, state, async move {
        let _ = stopped.await;
    }));
    Node {
        base,
        http: reqwest::Client::new(),
        _bus: bus,
        _stop: stop,
    }
}

async fn two_nodes(schema: &TestSchema) -> (Node, Node) {
    let a = start_node(
        schema,
        &format!("{}_a", schema.name),
        PgOptions::default(),
        Duration::from_secs(60),
    )
    .await;
    let b = start_node(
        schema,
        &format!("{}_b", schema.name),
        PgOptions::default(),
        Duration::from_secs(60),
    )
    .await;
    (a, b)
}

impl Node {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token("alice"))
            .header("x-device-id", DEVICE_B)
            .json(&body)
            .send()
            .await
            .expect("the node answers")
    }

    async fn workspace(&self) -> String {
        let res = self.post("/v1/workspaces", json!({"name": "t"})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        body["workspace_id"].as_str().unwrap().to_owned()
    }

    /// Pushes and expects 200; returns `op_id -> server_version` of the applied ops.
    async fn push_ok(&self, ws: &str, ops: Vec<Value>) -> HashMap<String, u64> {
        let res = self
            .post(&format!("/v1/workspaces/{ws}/push"), json!({ "ops": ops }))
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["status"], "applied", "{r}");
                (
                    r["op_id"].as_str().unwrap().to_owned(),
                    r["server_version"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    async fn subscribe(&self, ws: &str, cursor: u64) -> Socket {
        let url = format!(
            "{}/v1/workspaces/{ws}/subscribe",
            self.base.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            format!("or3-sync.v1, bearer.{}", token("alice"))
                .parse()
                .unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let hello =
            json!({"type": "hello", "cursor": cursor, "device_id": DEVICE_B, "project_id": null});
        socket
            .send(Message::Text(hello.to_string().into()))
            .await
            .unwrap();
        socket
    }
}

/// Reads `changes` frames until version `target`; checks that they chain and
/// returns `(server_version, op_id)` of every change.
async fn receive_until(socket: &mut Socket, mut position: u64, target: u64) -> Vec<(u64, String)> {
    let mut changes = Vec::new();
    while position < target {
        let frame = match tokio::time::timeout(DEADLINE, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text).unwrap(),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("the stream ended at {position}: {other:?}"),
            Err(_) => {
                panic!("no frame within {DEADLINE:?}; stuck at version {position} of {target}")
            }
        };
        assert_eq!(frame["type"], "changes", "{frame}");
        assert_eq!(frame["from"], position, "frames chain");
        for c in frame["changes"].as_array().unwrap() {
            changes.push((
                c["server_version"].as_u64().unwrap(),
                c["op_id"].as_str().unwrap().to_owned(),
            ));
        }
        position = frame["to"].as_u64().unwrap();
    }
    changes
}

fn message(i: u64, t: u64) -> Value {
    put(
        "messages",
        &format!("m{i}"),
        1,
        &hlc(t, i as u32, DEVICE_B),
        json!({ "n": i }),
    )
}

/// Node B reaches Postgres over TLS only (its pool and its LISTEN
/// connection): with the sweep an hour away, its subscriber hears node A's
/// pushes through B's TLS listen connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_store_uses_tls_hears_the_others_through_its_tls_listen_connection() {
    let schema = TestSchema::new().await;
    let certs = tls_proxy::make_certs();
    let dir = tempfile::tempdir().unwrap();
    let ca = tls_proxy::write_pem(&dir, "ca.pem", &certs.ca_pem);
    let (_, upstream) = pg_support::with_host(&schema.url(), "127.0.0.1:1");
    let (proxy, handshakes) = tls_proxy::tls_proxy(&certs, upstream).await;
    let (tls_url, _) = pg_support::with_host(
        &schema.url_as(&format!("{}_b", schema.name)),
        &proxy.to_string(),
    );
    let a = start_node(
        &schema,
        &format!("{}_a", schema.name),
        PgOptions::default(),
        Duration::from_secs(3600),
    )
    .await;
    let b = start_node_at(
        &format!("{tls_url}&sslmode=require&sslrootcert={ca}"),
        PgOptions::default(),
        Duration::from_secs(3600),
    )
    .await;
    let ws = a.workspace().await;
    let mut socket = b.subscribe(&ws, 0).await;
    let t = now_ms();
    let mut acked = HashMap::new();
    for i in 0..5 {
        acked.extend(a.push_ok(&ws, vec![message(i, t)]).await);
    }
    let received = receive_until(&mut socket, 0, 5).await;
    assert_eq!(received.len(), 5);
    for (version, op_id) in &received {
        assert_eq!(acked.get(op_id), Some(version));
    }
    // The pool's connections and the listen connection all went through TLS.
    assert!(
        handshakes.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "{handshakes:?}"
    );
}

#[tokio::test]
async fn a_subscriber_on_node_b_receives_pushes_made_through_node_a_in_order() {
    let schema = TestSchema::new().await;
    let (a, b) = two_nodes(&schema).await;
    let ws = a.workspace().await;
    let mut socket = b.subscribe(&ws, 0).await;
    let t = now_ms();
    let mut acked = HashMap::new();
    for i in 0..60 {
        acked.extend(a.push_ok(&ws, vec![message(i, t)]).await);
    }
    let received = receive_until(&mut socket, 0, 60).await;
    let versions: Vec<u64> = received.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (1..=60).collect::<Vec<_>>(),
        "in order, once each"
    );
    for (version, op_id) in &received {
        assert_eq!(acked.get(op_id), Some(version));
    }
}

#[tokio::test]
async fn pushes_through_both_nodes_leave_one_gap_free_log_both_subscribers_see() {
    let schema = TestSchema::new().await;
    let (a, b) = two_nodes(&schema).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let ws = a.workspace().await;
    let mut on_a = a.subscribe(&ws, 0).await;
    let mut on_b = b.subscribe(&ws, 0).await;
    let t = now_ms();
    let mut pushers = Vec::new();
    for p in 0..4u64 {
        let node = if p % 2 == 0 { a.clone() } else { b.clone() };
        let ws = ws.clone();
        pushers.push(tokio::spawn(async move {
            let mut acked = HashMap::new();
            for batch in 0..10u64 {
                let ops = (0..10u64)
                    .map(|i| message(p * 1000 + batch * 10 + i, t))
                    .collect();
                acked.extend(node.push_ok(&ws, ops).await);
            }
            acked
        }));
    }
    let mut acked = HashMap::new();
    for pusher in pushers {
        acked.extend(pusher.await.unwrap());
    }
    assert_eq!(acked.len(), 400);
    let mut versions: Vec<u64> = acked.values().copied().collect();
    versions.sort();
    assert_eq!(
        versions,
        (1..=400).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    for socket in [&mut on_a, &mut on_b] {
        let received = receive_until(socket, 0, 400).await;
        assert_eq!(received.len(), 400);
        for (version, op_id) in &received {
            assert_eq!(
                acked.get(op_id),
                Some(version),
                "every acknowledged op, once"
            );
        }
    }
}

#[tokio::test]
async fn a_node_whose_listen_connection_drops_catches_up() {
    let schema = TestSchema::new().await;
    let (a, b) = two_nodes(&schema).await;
    let ws = a.workspace().await;
    let mut socket = b.subscribe(&ws, 0).await;
    let t = now_ms();
    a.push_ok(&ws, vec![message(0, t)]).await;
    receive_until(&mut socket, 0, 1).await;

    // B's listen connection goes down, again and again, while A commits:
    // the announcement finds nobody listening on B.
    let admin = pg_support::admin().await;
    let listener = format!("{}_b-listen", schema.name);
    let mut kills = pg_support::terminate_exactly(&admin, &listener).await;
    a.push_ok(&ws, vec![message(1, t)]).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(300) {
        kills += pg_support::terminate_exactly(&admin, &listener).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(kills > 0, "the listen connection was killed");
    // The sweep is a minute away: only the reconnect's catch-up delivers.
    let received = receive_until(&mut socket, 1, 2).await;
    assert_eq!(received[0].0, 2);
}

#[tokio::test]
async fn a_blocked_database_answers_503_with_retry_after_then_recovers() {
    let schema = TestSchema::new().await;
    let node = start_node(
        &schema,
        &schema.name,
        PgOptions {
            pool_size: 2,
            statement_timeout: Duration::from_millis(300),
        },
        Duration::from_secs(60),
    )
    .await;
    let ws = node.workspace().await;
    let mut blocker = pg_support::admin().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "SELECT 1 FROM \"{}\".workspaces WHERE id = '{ws}' FOR UPDATE",
        schema.name
    ))
    .await
    .unwrap();
    let t = now_ms();
    let started = Instant::now();
    let res = node
        .post(
            &format!("/v1/workspaces/{ws}/push"),
            json!({ "ops": [message(1, t)] }),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(3), "no hang");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");
    tx.rollback().await.unwrap();
    node.push_ok(&ws, vec![message(2, t)]).await;
}

#[tokio::test]
async fn a_commit_nobody_announced_reaches_subscribers_by_the_sweep() {
    let schema = TestSchema::new().await;
    let node = start_node(
        &schema,
        &schema.name,
        PgOptions::default(),
        Duration::from_millis(200),
    )
    .await;
    let ws = node.workspace().await;
    let mut socket = node.subscribe(&ws, 0).await;
    // A node that crashed between its commit and its announcement: the
    // commit is in the store, and nobody said so.
    commit_without_announcing(&schema, &ws, 1).await;
    let received = receive_until(&mut socket, 0, 1).await;
    assert_eq!(received[0].0, 1);
}

/// GC purged entries a node's hub never published (a node crashed before announcing
/// them, and a GC ran before anyone caught up): a subscriber behind that hole is told
/// `cursor_expired` and rescans, never handed a frame that moves its cursor over
/// changes it did not get (the fault harness's seed 29604: a device that never saw a
/// delete while its cursor said it had).
#[tokio::test]
async fn a_subscriber_behind_a_hole_gc_left_is_told_its_cursor_expired() {
    let schema = TestSchema::new().await;
    // Sweeps a minute away: only node B's announcement makes node A read the log.
    let (node, b) = two_nodes(&schema).await;
    let ws = node.workspace().await;
    let mut socket = node.subscribe(&ws, 0).await;
    node.push_ok(&ws, vec![message(1, now_ms())]).await;
    assert_eq!(receive_until(&mut socket, 0, 1).await.len(), 1);
    commit_without_announcing(&schema, &ws, 2).await;
    commit_without_announcing(&schema, &ws, 3).await;
    // GC as if 400 days had passed: no device holds the log back any more.
    let ws_id = sync_core::WorkspaceId::parse(&ws).unwrap();
    let report = sync_server::store::Store::collect_garbage(
        &other_store(&schema).await,
        &ws_id,
        &sync_core::retention::RetentionPolicy::default(),
        now_ms() + 400 * 24 * 3600 * 1000,
        false,
    )
    .await
    .unwrap();
    assert!(report.oldest_retained_version > 2, "{report:?}");
    b.push_ok(&ws, vec![message(4, now_ms())]).await;
    let frame = loop {
        match tokio::time::timeout(DEADLINE, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                break serde_json::from_str::<Value>(&text).unwrap()
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame after the push: {other:?}"),
        }
    };
    assert_eq!(frame["type"], "error", "not a frame over the hole: {frame}");
    assert_eq!(frame["code"], "cursor_expired", "{frame}");
    assert!(
        frame["oldest_retained_version"].as_u64().unwrap() > 2,
        "{frame}"
    );
}

#[tokio::test]
async fn a_node_that_starts_makes_the_others_catch_up_at_once() {
    let schema = TestSchema::new().await;
    let node = start_node(
        &schema,
        &format!("{}_a", schema.name),
        PgOptions::default(),
        Duration::from_secs(60),
    )
    .await;
    let ws = node.workspace().await;
    let mut socket = node.subscribe(&ws, 0).await;
    // A node killed between its commit and its announcement: the commit is
    // in the store, nobody said so, and the sweep is a minute away.
    commit_without_announcing(&schema, &ws, 1).await;
    // It restarts: its first announcement makes the other node catch up.
    let started = Instant::now();
    let _restarted = start_node(
        &schema,
        &format!("{}_b", schema.name),
        PgOptions::default(),
        Duration::from_secs(60),
    )
    .await;
    let received = receive_until(&mut socket, 0, 1).await;
    assert_eq!(received[0].0, 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// What the proxy in front of Postgres does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    /// Forwards.
    Up,
    /// Closes every connection and refuses new ones (Postgres stopped).
    Cut,
    /// The connections open now stop answering for good, though they stay
    /// open (a stuck backend, a half-dead link); new ones work.
    Stuck,
}

/// A TCP proxy in front of Postgres that a test can cut, or whose
/// connections it can make stuck: outages without stopping the server other
/// tests use.
struct Outage {
    port: u16,
    /// The link, and how many times it changed.
    link: tokio::sync::watch::Sender<(Link, u64)>,
}

impl Outage {
    async fn start(upstream: String) -> Outage {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, watch) = tokio::sync::watch::channel((Link::Up, 0));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut watch = watch.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let (link, opened) = *watch.borrow_and_update();
                    if link == Link::Cut {
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    // Forward until the link is cut or made stuck after this
                    // connection opened.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.wait_for(|(link, n)| *n != opened && *link != Link::Up) => {}
                    }
                    // Stuck: keep both sockets, move nothing, until cut.
                    if watch.borrow().0 == Link::Stuck {
                        let _ = watch.wait_for(|(link, _)| *link == Link::Cut).await;
                    }
                });
            }
        });
        Outage { port, link }
    }

    fn set(&self, link: Link) {
        self.link.send_modify(|(now, changes)| {
            *now = link;
            *changes += 1;
        });
    }
}

impl Node {
    /// Pushes one op and returns the status, checking that a refusal is a
    /// 503 `store_unavailable` with `Retry-After`.
    async fn try_push(&self, ws: &str, op: Value) -> StatusCode {
        let res = self
            .post(&format!("/v1/workspaces/{ws}/push"), json!({ "ops": [op] }))
            .await;
        let status = res.status();
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(res.headers().contains_key("retry-after"));
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "store_unavailable");
        }
        status
    }

    /// Pushes until it is accepted again.
    async fn push_until_recovered(&self, ws: &str, op: Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.try_push(ws, op.clone()).await != StatusCode::OK {
            assert!(Instant::now() < deadline, "the node recovers by itself");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_postgres_outage_answers_503_without_hanging_and_the_node_recovers() {
    let schema = TestSchema::new().await;
    let base: tokio_postgres::Config = pg_support::base_url().parse().unwrap();
    let host = match &base.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the test server must be reached over TCP, not {other:?}"),
    };
    let outage = Outage::start(format!("{host}:{}", base.get_ports()[0])).await;
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{}?schema={}&application_name={}",
        base.get_user().unwrap_or("postgres"),
        outage.port,
        base.get_dbname().unwrap_or("test"),
        schema.name,
        schema.name
    );
    let statement_timeout = Duration::from_millis(1000);
    let store = PostgresStore::connect(
        &url,
        TableConfig::or3_chat(),
        // One connection: the push after the link gets stuck meets the
        // connection that was working a moment before.
        PgOptions {
            pool_size: 1,
            statement_timeout,
        },
    )
    .await
    .unwrap();
    let bus = Arc::new(PgBus::new(&store));
    let state = AppState::new(
        Arc::new(store),
        bus.clone(),
        authenticator(),
        Arc::new(SystemClock),
        ServerConfig::default(),
    );
    bus.listen(Arc::downgrade(&state.hub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = Node {
        base: format!("http://{}", listener.local_addr().unwrap()),
        http: reqwest::Client::new(),
        _bus: bus,
        _stop: tokio::sync::oneshot::channel().0,
    };
    tokio::spawn(sync_server::serve::run(
        listener,
        state,
        std::future::pending(),
    ));
    let ws = node.workspace().await;
    let t = now_ms();
    node.push_ok(&ws, vec![message(0, t)]).await;
    let mut socket = node.subscribe(&ws, 0).await;
    receive_until(&mut socket, 0, 1).await;

    // Postgres goes away: refused at once.
    outage.set(Link::Cut);
    for i in 1..3 {
        let started = Instant::now();
        assert_eq!(
            node.try_push(&ws, message(i, t)).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(started.elapsed() < Duration::from_secs(3), "no hang");
    }
    outage.set(Link::Up);
    node.push_until_recovered(&ws, message(3, t)).await;

    // The open connections stop answering: a request on one is refused
    // once its deadline passes (a pool wait and a few statements), never
    // later, and the stuck connection is closed, not reused: the node
    // recovers on new connections while the old ones stay stuck.
    outage.set(Link::Stuck);
    let started = Instant::now();
    let status = node.try_push(&ws, message(4, t)).await;
    assert!(
        started.elapsed() < statement_timeout * 4 + Duration::from_secs(3),
        "no hang: {status} after {:?}",
        started.elapsed()
    );
    node.push_until_recovered(&ws, message(5, t)).await;

    // Nothing refused was logged, and the subscriber, whose node lost its
    // listen connection twice, got every commit in order.
    let received = receive_until(&mut socket, 1, 3).await;
    let versions: Vec<u64> = received.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, [2, 3]);
    outage.set(Link::Cut);
}

/// A store of its own on the test's schema, as another node (or the `gc` command) has.
async fn other_store(schema: &TestSchema) -> PostgresStore {
    PostgresStore::connect(&schema.url(), TableConfig::or3_chat(), PgOptions::default())
        .await
        .unwrap()
}

/// Commits message `i` to `ws` straight through a store of its own, as a node
/// that crashed between its commit and its announcement would leave it: in
/// the store, and announced to nobody.
async fn commit_without_announcing(schema: &TestSchema, ws: &str, i: u64) {
    let store = other_store(schema).await;
    let op = sync_core::validate::validate_op(
        &message(i, now_ms()),
        &TableConfig::or3_chat(),
        &sync_core::ValidationLimits::default(),
        now_ms(),
    )
    .unwrap();
    let ws_id = sync_core::WorkspaceId::parse(ws).unwrap();
    let access = sync_server::store::Access::Member {
        user_id: "alice".into(),
    };
    sync_server::store::Store::push(&store, &ws_id, &access, vec![op], now_ms())
        .await
        .unwrap();
}
