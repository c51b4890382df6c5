//! Cross-node fanout over Postgres `LISTEN/NOTIFY` ([`PgBus`]).
//!
//! After a push commits, its node announces `(workspace, new head)` on a
//! channel of the store's database and schema, never the data. Every node
//! keeps one dedicated listen connection; when it hears another node's
//! announcement, its hub reads the new entries from the store once and fans
//! them out to its own subscribers ([`Hub::catch_up`]).
//!
//! Announcements are sent by a background task, so a push never waits for
//! one: announcements made while it is busy are coalesced to the newest head
//! per workspace and sent in one statement.
//!
//! An announcement can be lost: the announcing node crashed between commit
//! and announce, the listen connection dropped, or the hub's read failed.
//! Four things repair it: the next commit of that workspace (its catch-up
//! reads everything the hub has not published yet); a listen connection that
//! comes back catches up every workspace with subscribers on this node
//! before it waits again; a node that starts (a crashed one restarting, a new
//! one joining) announces `<node> started`, on which every other node does
//! the same at once, so a crash between commit and announce costs the
//! others' subscribers the restart, not a sweep; and every `sweep_every` the
//! listener does the same (one query for the heads of those workspaces).

use super::bus::Bus;
use super::hub::Hub;
use crate::store::postgres::{column_error, pg_error, PgTls, PostgresStore};
use crate::store::StoreError;
use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use sync_core::{ServerVersion, WorkspaceId};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// First wait before reconnecting a lost listen connection; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a listener catches up every workspace, as a safety net.
pub const DEFAULT_SWEEP: Duration = Duration::from_secs(5);

/// Commit announcements between the gateway nodes of one Postgres store.
/// Dropping it stops its tasks.
pub struct PgBus {
    shared: Arc<Shared>,
    sweep_every: Duration,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    store: PostgresStore,
    /// This node's id in announcements, so it ignores its own.
    node: String,
    channel: String,
    /// Heads announced but not sent yet, newest per workspace.
    pending: Mutex<HashMap<WorkspaceId, ServerVersion>>,
    wake: Notify,
}

impl PgBus {
    /// A bus over `store`'s database; starts the task that sends
    /// announcements. Call [`PgBus::listen`] once the hub exists.
    pub fn new(store: &PostgresStore) -> PgBus {
        let shared = Arc::new(Shared {
            store: store.clone(),
            node: uuid::Uuid::new_v4().simple().to_string(),
            channel: channel_name(store.url().schema.as_deref()),
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        });
        let sender = tokio::spawn(send_announcements(shared.clone()));
        PgBus {
            shared,
            sweep_every: DEFAULT_SWEEP,
            tasks: Mutex::new(vec![sender]),
        }
    }

    /// Sets how often the listener catches up every workspace (default
    /// [`DEFAULT_SWEEP`]).
    pub fn sweep_every(mut self, interval: Duration) -> PgBus {
        self.sweep_every = interval.max(Duration::from_millis(10));
        self
    }

    /// The `LISTEN` channel (derived from the store's schema, so stores in
    /// different schemas of one database do not hear each other).
    pub fn channel(&self) -> &str {
        &self.shared.channel
    }

    /// Starts the listen connection: other nodes' commits are fanned out
    /// through `hub`. The task ends when the hub is dropped. The connection's
    /// `application_name` is the store's with `-listen` appended.
    pub fn listen(&self, hub: Weak<Hub>) {
        let task = tokio::spawn(listen_forever(self.shared.clone(), hub, self.sweep_every));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }
}

impl Drop for PgBus {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

#[async_trait]
impl Bus for PgBus {
    async fn announce(&self, ws: &WorkspaceId, version: ServerVersion) {
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let head = pending.entry(ws.clone()).or_insert(version);
            *head = (*head).max(version);
        }
        self.shared.wake.notify_one();
    }
}

/// `or3_sync`, or `or3_sync_<schema>`, within Postgres' 63-byte identifiers.
fn channel_name(schema: Option<&str>) -> String {
    let mut name = match schema {
        Some(schema) => format!("or3_sync_{schema}"),
        None => "or3_sync".to_owned(),
    };
    name.truncate(63);
    name
}

/// `<node> <head> <workspace>`: all three are free of spaces.
fn announcement(node: &str, ws: &WorkspaceId, head: ServerVersion) -> String {
    format!("{node} {head} {ws}")
}

/// A node's first announcement: it may have crashed before announcing its
/// last commits (`<node> started`).
fn started(node: &str) -> String {
    format!("{node} {STARTED}")
}

const STARTED: &str = "started";

/// The node of a `started` announcement.
fn parse_started(payload: &str) -> Option<&str> {
    payload.strip_suffix(STARTED)?.strip_suffix(' ')
}

fn parse_announcement(payload: &str) -> Option<(&str, ServerVersion, WorkspaceId)> {
    let mut parts = payload.splitn(3, ' ');
    let node = parts.next()?;
    let head = parts.next()?.parse().ok()?;
    let ws = WorkspaceId::parse(parts.next()?)?;
    Some((node, head, ws))
}

/// Says this node started, then sends pending announcements, all of them in
/// one `pg_notify` statement.
async fn send_announcements(shared: Arc<Shared>) {
    let mut batch = vec![started(&shared.node)];
    loop {
        if !batch.is_empty() {
            let sent = shared
                .store
                .with_client(async |client| {
                    client
                        .execute(
                            "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                            &[&shared.channel, &batch],
                        )
                        .await
                        .map_err(pg_error)
                })
                .await;
            if let Err(e) = sent {
                // The next commit of each workspace (and the sweep) repairs a lost announcement.
                tracing::warn!(error = %e, "could not announce commits to other nodes");
            }
        }
        shared.wake.notified().await;
        batch = {
            let mut pending = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending
                .drain()
                .map(|(ws, head)| announcement(&shared.node, &ws, head))
                .collect()
        };
    }
}

/// Keeps a listen connection open, reconnecting with backoff, until the hub
/// is gone.
async fn listen_forever(shared: Arc<Shared>, hub: Weak<Hub>, sweep_every: Duration) {
    let mut backoff = FIRST_BACKOFF;
    while hub.strong_count() > 0 {
        match listen_once(&shared, &hub, sweep_every, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, channel = %shared.channel, "listen connection lost; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Drives a listen connection, handing each notification's payload to `notifications`.
fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notifications: mpsc::UnboundedSender<String>,
) -> JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                if notifications.send(n.payload().to_owned()).is_err() {
                    break;
                }
            }
        }
    })
}

/// One listen connection's life: `LISTEN`, catch up on everything that may
/// have been missed while not listening, then fan out announcements (and
/// sweep now and then) until the connection fails (`Err`) or the hub is
/// dropped (`Ok`).
async fn listen_once(
    shared: &Shared,
    hub: &Weak<Hub>,
    sweep_every: Duration,
    backoff: &mut Duration,
) -> Result<(), StoreError> {
    let mut config = shared.store.connection_config();
    let name = format!(
        "{}-listen",
        config.get_application_name().unwrap_or("or3-sync")
    );
    config.application_name(name);
    let (notifications, mut heard) = mpsc::unbounded_channel();
    let (client, driver) = match &shared.store.url().tls {
        PgTls::None => {
            let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
            (client, drive(connection, notifications))
        }
        PgTls::Rustls(tls) => {
            let (client, connection) = config.connect(tls.clone()).await.map_err(pg_error)?;
            (client, drive(connection, notifications))
        }
    };
    let _stop_driver = AbortOnDrop(driver);
    // Every statement on this connection is bounded like a store call: a
    // connection that stops answering is replaced, not waited on.
    let limit = shared.store.options().call_timeout();
    bounded(
        limit,
        client.batch_execute(&format!("LISTEN \"{}\"", shared.channel)),
    )
    .await?;
    // Listening from here on; the first sweep (now) reads what came before.
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connected = false;
    loop {
        tokio::select! {
            payload = heard.recv() => {
                let Some(payload) = payload else {
                    return Err(StoreError::Unavailable("the listen connection closed".to_owned()));
                };
                if let Some(node) = parse_started(&payload) {
                    if node != shared.node && !catch_up_subscribed(&client, hub, limit).await? {
                        return Ok(());
                    }
                    continue;
                }
                let Some(hub) = hub.upgrade() else {
                    return Ok(());
                };
                match parse_announcement(&payload) {
                    Some((node, _, _)) if node == shared.node => {}
                    Some((_, head, ws)) => {
                        tokio::spawn(async move { hub.catch_up(&ws, head).await });
                    }
                    None => tracing::warn!(%payload, "unreadable commit announcement"),
                }
            }
            _ = sweep.tick() => {
                if !catch_up_subscribed(&client, hub, limit).await? {
                    return Ok(());
                }
                if !connected {
                    connected = true;
                    *backoff = FIRST_BACKOFF;
                }
            }
        }
    }
}

/// Lets the hub catch up every workspace it has subscribers for to its
/// head; `false` once the hub is gone.
async fn catch_up_subscribed(
    client: &tokio_postgres::Client,
    hub: &Weak<Hub>,
    limit: Duration,
) -> Result<bool, StoreError> {
    let Some(subscribed) = hub.upgrade().map(|h| h.subscribed_workspaces()) else {
        return Ok(false);
    };
    if subscribed.is_empty() {
        return Ok(true);
    }
    let ids: Vec<&str> = subscribed.iter().map(WorkspaceId::as_str).collect();
    let rows = bounded(
        limit,
        client.query(
            "SELECT id, head FROM workspaces WHERE id = ANY($1::text[])",
            &[&ids],
        ),
    )
    .await?;
    for row in &rows {
        let Some(hub) = hub.upgrade() else {
            return Ok(false);
        };
        let id: String = row.try_get(0).map_err(column_error)?;
        let head: i64 = row.try_get(1).map_err(column_error)?;
        if let Some(ws) = WorkspaceId::parse(&id) {
            hub.catch_up(&ws, head.max(0) as u64).await;
        }
    }
    Ok(true)
}

/// A statement on the listen connection, within `limit`.
async fn bounded<T>(
    limit: Duration,
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, statement).await {
        Ok(result) => result.map_err(pg_error),
        Err(_) => Err(StoreError::Unavailable(
            "the listen connection stopped answering".to_owned(),
        )),
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip() {
        let ws = WorkspaceId::parse("w-1_a").unwrap();
        let text = announcement("n1", &ws, 42);
        assert_eq!(parse_announcement(&text), Some(("n1", 42, ws)));
        assert_eq!(parse_announcement("n1 x w"), None);
        assert_eq!(parse_started(&started("n1")), Some("n1"));
        assert_eq!(parse_started(&text), None);
    }

    #[test]
    fn channel_names_fit_postgres_identifiers() {
        assert_eq!(channel_name(None), "or3_sync");
        assert_eq!(channel_name(Some("t1")), "or3_sync_t1");
        assert_eq!(channel_name(Some(&"s".repeat(63))).len(), 63);
    }
}
