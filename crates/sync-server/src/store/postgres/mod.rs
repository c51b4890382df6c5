//! The shared store: Postgres, for several gateway nodes over one database.
//!
//! Same rules as the SQLite store, different concurrency: every node writes,
//! so a push locks its workspace's counter row (`workspaces.head`) for the
//! whole transaction; pushes to one workspace commit one after another with
//! gap-free versions, pushes to different workspaces run in parallel. Reads
//! run in `REPEATABLE READ READ ONLY` transactions, so an access check, the
//! head and the rows they return come from one snapshot. A push costs four
//! round trips whatever its size (see `push.rs`), and the pushes of one
//! workspace queued behind a commit share the next one (`group.rs`).
//!
//! Every wait is bounded (pool checkout, connect, statement timeout, and a
//! guard around each call), and connection failures map to
//! [`StoreError::Unavailable`] (503 with `Retry-After`); the pool replaces
//! broken connections by itself, so the store recovers when Postgres does.
//!
//! This file is the `Store` impl (one short method per contract item) and the
//! connection plumbing; the work is in `members.rs` (workspaces, members,
//! the access check), `push.rs`, `read.rs` and `gc.rs`, as in the SQLite
//! store.

mod connect;
mod gc;
mod group;
mod members;
mod migrations;
mod push;
mod read;
mod text;

use read::{read_changes, read_log_since, read_snapshot, record_from_row, RECORD_COLUMNS};

pub(crate) use connect::{column_error, pg_error};
pub use connect::{is_schema_name, DatabaseUrl, PgOptions, PgTls};

use super::{
    Access, ChangesBatch, ChangesQuery, DevicePosition, GcReport, LoggedChange, PushOutcome,
    SnapshotBatch, SnapshotQuery, Store, StoreError,
};
use async_trait::async_trait;
use connect::{build_pool, connection_config, pool_error, timed_out, StepBudget};
use deadpool_postgres::{Client, GenericClient, Pool, Transaction};
use members::{require, Lock};
use std::collections::HashMap;
use std::sync::Arc;
use sync_core::retention::RetentionPolicy;
use sync_core::wire::{ChangesArray, RecordVersion, WorkspaceInfo};
use sync_core::{Role, ServerVersion, TableConfig, ValidOp, WorkspaceId};
use tokio_postgres::{IsolationLevel, Row};

/// The Postgres store. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    url: DatabaseUrl,
    options: PgOptions,
    tables: TableConfig,
    groups: group::Groups,
}

impl PostgresStore {
    /// Connects to `url` (see [`DatabaseUrl::parse`]) and runs pending
    /// migrations. Fails with `Unavailable` when Postgres cannot be reached.
    pub async fn connect(
        url: &str,
        tables: TableConfig,
        options: PgOptions,
    ) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore::pool_only(url, tables, options)?;
        store.migrate().await?;
        Ok(store)
    }

    /// [`PostgresStore::connect`] for a command that works on an existing
    /// store (a workspace's members, a log to collect): `None`, with nothing
    /// created, when the URL's schema holds no or3-sync store yet.
    pub async fn connect_existing(
        url: &str,
        tables: TableConfig,
        options: PgOptions,
    ) -> Result<Option<PostgresStore>, StoreError> {
        let store = PostgresStore::pool_only(url, tables, options)?;
        if !migrations::installed(&store.client().await?).await? {
            return Ok(None);
        }
        store.migrate().await?;
        Ok(Some(store))
    }

    fn pool_only(
        url: &str,
        tables: TableConfig,
        options: PgOptions,
    ) -> Result<PostgresStore, StoreError> {
        let url = DatabaseUrl::parse(url)?;
        let pool = build_pool(connection_config(&url, &options), &url.tls, &options)?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                url,
                options,
                tables,
                groups: Default::default(),
            }),
        })
    }

    /// Applies every pending migration; returns how many ran.
    /// Index builds on a large table may take long: no overall deadline here
    /// (the pool and connect waits still apply).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        migrations::migrate(&mut client, &self.inner.url).await
    }

    /// The parsed URL the store connects with.
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    /// The driver settings of the store's connections (schema, timeouts), for
    /// a dedicated connection beside the pool.
    pub fn connection_config(&self) -> tokio_postgres::Config {
        connection_config(&self.inner.url, &self.inner.options)
    }

    /// How many push groups (per-workspace shared transactions, `group.rs`)
    /// have run since the store connected, and how many pushes they held.
    pub fn group_commits(&self) -> (u64, u64) {
        self.inner.groups.counts()
    }

    /// The pool's limits.
    pub fn options(&self) -> PgOptions {
        self.inner.options
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// Runs one store call on a pooled connection, with an overall deadline
    /// (pool wait included), so a peer that stops answering without closing
    /// the socket cannot hang a request. A connection whose call ran out of
    /// time may be stuck mid-statement: it is closed, never reused.
    pub(crate) async fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.options.call_timeout();
        let deadline = tokio::time::Instant::now() + limit;
        let mut client = tokio::time::timeout_at(deadline, self.client())
            .await
            .map_err(|_| timed_out(limit))??;
        match tokio::time::timeout_at(deadline, work(&mut client)).await {
            Ok(result) => result,
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(timed_out(limit))
            }
        }
    }

    /// [`PostgresStore::with_client`] for a call made of steps, each bounded
    /// by the whole limit of its own ([`StepBudget`]), as is the pool wait.
    pub(crate) async fn with_client_in_steps<T>(
        &self,
        work: impl AsyncFnOnce(&mut Client, &StepBudget) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let budget = StepBudget::new(self.inner.options.call_timeout());
        let mut client = budget.run(self.client()).await?;
        let result = work(&mut client, &budget).await;
        if budget.ran_out() {
            drop(deadpool_postgres::Object::take(client));
        }
        result
    }
}

fn u64_at(row: &Row, index: usize) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(index).map_err(column_error)?;
    u64::try_from(value).map_err(|_| StoreError::Internal(format!("negative value {value}")))
}

/// A read-only transaction on one snapshot.
async fn read_tx(client: &mut Client) -> Result<Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_error)
}

async fn workspace_head(
    client: &impl GenericClient,
    ws: &WorkspaceId,
) -> Result<ServerVersion, StoreError> {
    let stmt = client
        .prepare_cached("SELECT head FROM workspaces WHERE id = $1")
        .await
        .map_err(pg_error)?;
    let row = client
        .query_opt(&stmt, &[&ws.as_str()])
        .await
        .map_err(pg_error)?
        .ok_or(StoreError::UnknownWorkspace)?;
    u64_at(&row, 0)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_workspace(
        &self,
        id: &WorkspaceId,
        name: &str,
        owner: &str,
        now_ms: u64,
    ) -> Result<WorkspaceInfo, StoreError> {
        self.with_client(async |client| {
            members::create_workspace(client, id, name, owner, now_ms).await
        })
        .await
    }

    async fn ensure_workspace(&self, id: &WorkspaceId, now_ms: u64) -> Result<(), StoreError> {
        self.with_client(async |client| members::ensure_workspace(client, id, now_ms).await)
            .await
    }

    async fn list_workspaces(&self, user_id: &str) -> Result<Vec<WorkspaceInfo>, StoreError> {
        self.with_client(async |client| members::list_workspaces(client, user_id).await)
            .await
    }

    async fn set_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        self.with_client(async |client| {
            members::change_member(client, ws, access, user_id, Some(role)).await
        })
        .await
    }

    async fn remove_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
    ) -> Result<(), StoreError> {
        self.with_client(async |client| {
            members::change_member(client, ws, access, user_id, None).await
        })
        .await
    }

    async fn role_of(&self, ws: &WorkspaceId, access: &Access) -> Result<Role, StoreError> {
        self.with_client(async |client| {
            let tx = read_tx(client).await?;
            Ok(require(&tx, ws, access, Role::Viewer, Lock::None)
                .await?
                .role)
        })
        .await
    }

    async fn push(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        ops: Vec<ValidOp>,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        group::push_in_group(self, ws, access, ops, now_ms).await
    }

    async fn changes(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<ChangesBatch, StoreError> {
        self.with_client(async |client| read_changes(client, ws, access, &query).await)
            .await
    }

    async fn changes_json(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<ChangesBatch<ChangesArray>, StoreError> {
        self.with_client(async |client| read_changes(client, ws, access, &query).await)
            .await
    }

    async fn snapshot(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: SnapshotQuery,
    ) -> Result<SnapshotBatch, StoreError> {
        self.with_client(async |client| read_snapshot(client, ws, access, &query).await)
            .await
    }

    async fn record(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        table_name: &str,
        pk: &str,
    ) -> Result<RecordVersion, StoreError> {
        self.with_client(async |client| {
            let tx = read_tx(client).await?;
            require(&tx, ws, access, Role::Viewer, Lock::None).await?;
            let stmt = tx
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM records r
                     WHERE r.workspace_id = $1 AND r.table_name = $2 AND r.pk = $3"
                ))
                .await
                .map_err(pg_error)?;
            let row = tx
                .query_opt(&stmt, &[&ws.as_str(), &table_name, &pk])
                .await
                .map_err(pg_error)?
                .ok_or(StoreError::RecordNotFound)?;
            record_from_row(&row)
        })
        .await
    }

    async fn record_positions(&self, positions: Vec<DevicePosition>) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        // One upsert may touch a row once: fold repeats of a device the way
        // applying them in order would (last cursor, latest time).
        let mut folded: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
        for p in &positions {
            let key = (p.workspace_id.as_str(), p.device_id.as_str());
            let (cursor, seen) = (p.cursor as i64, p.seen_at_ms as i64);
            folded
                .entry(key)
                .and_modify(|e| *e = (cursor, e.1.max(seen)))
                .or_insert((cursor, seen));
        }
        // In key order, so two nodes flushing overlapping devices lock the
        // rows in the same order and never deadlock.
        let mut folded: Vec<_> = folded.into_iter().collect();
        folded.sort_unstable();
        let (mut workspaces, mut devices, mut cursors, mut seen) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((ws, device), (cursor, at)) in folded {
            workspaces.push(ws);
            devices.push(device);
            cursors.push(cursor);
            seen.push(at);
        }
        self.with_client(async |client| {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO device_positions (workspace_id, device_id, cursor, seen_at)
                     SELECT p.workspace_id, p.device_id, p.cursor, p.seen_at
                     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                         AS p(workspace_id, device_id, cursor, seen_at)
                     WHERE EXISTS (SELECT 1 FROM workspaces w WHERE w.id = p.workspace_id)
                     ON CONFLICT (workspace_id, device_id) DO UPDATE SET
                         cursor = excluded.cursor,
                         seen_at = greatest(device_positions.seen_at, excluded.seen_at)",
                )
                .await
                .map_err(pg_error)?;
            client
                .execute(&stmt, &[&workspaces, &devices, &cursors, &seen])
                .await
                .map_err(pg_error)?;
            Ok(())
        })
        .await
    }

    async fn log_since(
        &self,
        ws: &WorkspaceId,
        after: ServerVersion,
        limit: usize,
    ) -> Result<(Vec<LoggedChange>, ServerVersion), StoreError> {
        self.with_client(async |client| read_log_since(client, ws, after, limit).await)
            .await
    }

    async fn workspace_ids(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        self.with_client(async |client| {
            let rows = client
                .query("SELECT id FROM workspaces ORDER BY id", &[])
                .await
                .map_err(pg_error)?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get(0).map_err(column_error)?;
                ids.extend(WorkspaceId::parse(&id));
            }
            Ok(ids)
        })
        .await
    }

    async fn collect_garbage(
        &self,
        ws: &WorkspaceId,
        policy: &RetentionPolicy,
        now_ms: u64,
        dry_run: bool,
    ) -> Result<GcReport, StoreError> {
        crate::store::gc::collect_garbage(self, ws, policy, now_ms, dry_run).await
    }

    async fn head(&self, ws: &WorkspaceId) -> Result<ServerVersion, StoreError> {
        self.with_client(async |client| workspace_head(&*client, ws).await)
            .await
    }
}
