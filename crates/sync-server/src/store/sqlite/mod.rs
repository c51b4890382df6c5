//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through one connection owned by one thread (SQLite has one
//! writer anyway), in `BEGIN IMMEDIATE` transactions with `synchronous=FULL`
//! by default, so a push is acknowledged only once it is on disk. Concurrent
//! pushes share commits (group commit, `writer.rs`) (`--sqlite-synchronous
//! normal` trades the last commits after a power loss for lower latency;
//! see [`Synchronous`]). Reads use a small pool of their own
//! connections and never wait for a writer. All database work runs on the
//! blocking thread pool or the writer thread, never on the async runtime.
//!
//! This file is the `Store` impl (one short method per contract item); the
//! work is in `writer.rs` (the writer thread, group commit), `members.rs`
//! (workspaces, members, the access check each transaction starts with),
//! `positions.rs` (device positions), `push.rs`, `read.rs`, `gc.rs` and `schema.rs`.

mod checkpoint;
mod gc;
mod members;
mod positions;
mod push;
mod read;
mod schema;
mod workspace;
mod writer;

use members::{require, role_in};
use read::{read_changes, read_log_since, read_snapshot, record_from_row, RECORD_COLUMNS};
pub use schema::migrate;
use schema::open_connection;

use super::{
    Access, ChangesBatch, ChangesQuery, DevicePosition, PushOutcome, SnapshotBatch, SnapshotQuery,
    Store, StoreError,
};
use super::{GcReport, LoggedChange};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sync_core::retention::RetentionPolicy;
use sync_core::wire::{ChangesArray, MemberInfo, RecordVersion, WorkspaceInfo};
use sync_core::{Role, ServerVersion, TableConfig, ValidOp, WorkspaceId};
use writer::Writer;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// When a commit reaches the disk (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is fsynced before the push is acknowledged: acknowledged
    /// writes survive a crash of the process, of the OS and a power loss.
    #[default]
    Full,
    /// Commits reach the OS (the WAL file) before the push is acknowledged and
    /// the disk at the next checkpoint: acknowledged writes survive a crash of
    /// the process (kill -9), but the last ones may roll back after an OS
    /// crash or a power loss. The database is never corrupted either way.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending
    /// migrations; every commit is fsynced ([`Synchronous::Full`]).
    pub fn open(path: &Path, tables: TableConfig) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, tables, Synchronous::Full)
    }

    /// [`SqliteStore::open`] with the given commit durability.
    pub fn open_with(
        path: &Path,
        tables: TableConfig,
        synchronous: Synchronous,
    ) -> Result<SqliteStore, StoreError> {
        let mut writer = open_connection(path, Some(synchronous))?;
        migrate(&mut writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Writer::start(writer, path, tables)?,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// How many group commits of pushes have run since the store opened, and
    /// how many pushes they held (the mean group size is their ratio; the
    /// same figures are in the metrics as `or3_sqlite_group_pushes`).
    pub fn group_commits(&self) -> (u64, u64) {
        self.inner.writer.groups()
    }

    /// How many WAL checkpoints have run since the store opened (`checkpoint.rs`).
    pub fn wal_checkpoints(&self) -> u64 {
        self.inner.writer.checkpoints()
    }

    /// Runs `work` on the writer connection (on the writer thread, between
    /// group commits).
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &TableConfig) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.writer.run(work).await
    }

    /// Runs `work` on a pooled reader connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path, None)?,
            };
            let result = work(&mut conn);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < 16 {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A workspace's head and oldest retained version (`UnknownWorkspace` when
/// there is no such workspace, as on Postgres).
fn workspace_positions(
    conn: &Connection,
    ws: &str,
) -> Result<(ServerVersion, ServerVersion), StoreError> {
    conn.prepare_cached("SELECT head, oldest_retained_version FROM workspaces WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([ws], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::UnknownWorkspace,
            other => internal(other),
        })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_workspace(
        &self,
        id: &WorkspaceId,
        name: &str,
        owner: &str,
        now_ms: u64,
    ) -> Result<WorkspaceInfo, StoreError> {
        let (id, name, owner) = (id.clone(), name.to_owned(), owner.to_owned());
        self.write(move |conn, _| members::create_workspace(conn, &id, name, &owner, now_ms))
            .await
    }

    async fn ensure_workspace(&self, id: &WorkspaceId, now_ms: u64) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn, _| members::ensure_workspace(conn, &id, now_ms))
            .await
    }

    async fn list_workspaces(&self, user_id: &str) -> Result<Vec<WorkspaceInfo>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| members::list_workspaces(conn, &user_id))
            .await
    }

    async fn set_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
        role: Role,
    ) -> Result<(), StoreError> {
        let (ws, access, user_id) = (ws.clone(), access.clone(), user_id.to_owned());
        self.write(move |conn, _| members::change_member(conn, &ws, &access, &user_id, Some(role)))
            .await
    }

    async fn remove_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let (ws, access, user_id) = (ws.clone(), access.clone(), user_id.to_owned());
        self.write(move |conn, _| members::change_member(conn, &ws, &access, &user_id, None))
            .await
    }

    async fn workspace(
        &self,
        ws: &WorkspaceId,
        access: &Access,
    ) -> Result<WorkspaceInfo, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        self.read(move |conn| workspace::read_workspace(conn, &ws, &access, Role::Viewer))
            .await
    }

    async fn rename_workspace(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        name: &str,
    ) -> Result<WorkspaceInfo, StoreError> {
        let (ws, access, name) = (ws.clone(), access.clone(), name.to_owned());
        self.write(move |conn, _| workspace::rename_workspace(conn, &ws, &access, &name))
            .await
    }

    async fn delete_workspace(&self, ws: &WorkspaceId, access: &Access) -> Result<(), StoreError> {
        let (id, access) = (ws.clone(), access.clone());
        self.write(move |conn, _| workspace::remove_workspace(conn, &id, &access))
            .await?;
        loop {
            let id = ws.clone();
            if self
                .write(move |conn, _| workspace::purge_batch(conn, &id))
                .await?
                == 0
            {
                return Ok(());
            }
        }
    }

    async fn members(
        &self,
        ws: &WorkspaceId,
        access: &Access,
    ) -> Result<Vec<MemberInfo>, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        self.read(move |conn| members::list_members(conn, &ws, &access))
            .await
    }

    async fn role_of(&self, ws: &WorkspaceId, access: &Access) -> Result<Role, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        self.read(move |conn| role_in(conn, &ws, &access)).await
    }

    async fn push(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        ops: Vec<ValidOp>,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        self.inner
            .writer
            .push(ws.clone(), access.clone(), ops, now_ms)
            .await
    }

    async fn changes(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<ChangesBatch, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        self.read(move |conn| read_changes(conn, &ws, &access, &query))
            .await
    }

    async fn changes_json(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<ChangesBatch<ChangesArray>, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        self.read(move |conn| read_changes(conn, &ws, &access, &query))
            .await
    }

    async fn snapshot(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: SnapshotQuery,
    ) -> Result<SnapshotBatch, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        self.read(move |conn| read_snapshot(conn, &ws, &access, &query))
            .await
    }

    async fn record(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        table_name: &str,
        pk: &str,
    ) -> Result<RecordVersion, StoreError> {
        let (ws, access) = (ws.clone(), access.clone());
        let (table_name, pk) = (table_name.to_owned(), pk.to_owned());
        self.read(move |conn| {
            let tx = conn.transaction().map_err(internal)?;
            require(&tx, &ws, &access, Role::Viewer)?;
            let found = tx
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM records r
                     WHERE r.workspace_id = ?1 AND r.table_name = ?2 AND r.pk = ?3"
                ))
                .and_then(|mut s| {
                    s.query_row(params![ws.as_str(), table_name, pk], record_from_row)
                        .optional()
                })
                .map_err(internal)?;
            found.ok_or(StoreError::RecordNotFound)
        })
        .await
    }

    async fn record_positions(&self, positions: Vec<DevicePosition>) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        self.write(move |conn, _| positions::record_positions(conn, &positions))
            .await
    }

    async fn report_position(
        &self,
        access: &Access,
        position: DevicePosition,
    ) -> Result<(), StoreError> {
        let access = access.clone();
        self.write(move |conn, _| positions::report_position(conn, &access, &position))
            .await
    }

    async fn log_since(
        &self,
        ws: &WorkspaceId,
        after: ServerVersion,
        limit: usize,
    ) -> Result<(Vec<LoggedChange>, ServerVersion), StoreError> {
        let ws = ws.clone();
        self.read(move |conn| read_log_since(conn, ws.as_str(), after, limit))
            .await
    }

    async fn workspace_ids(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM workspaces ORDER BY id")
                .map_err(internal)?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(internal)?
                .filter_map(|id| id.ok().and_then(|id| WorkspaceId::parse(&id)))
                .collect();
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
        let ws = ws.clone();
        self.read(move |conn| workspace_positions(conn, ws.as_str()).map(|(head, _)| head))
            .await
    }
}
