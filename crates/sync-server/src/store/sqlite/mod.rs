//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through one connection (SQLite has one writer anyway), in
//! `BEGIN IMMEDIATE` transactions with `synchronous=FULL` by default, so a
//! push is acknowledged only once it is on disk (`--sqlite-synchronous
//! normal` trades the last commits after a power loss for lower latency;
//! see [`Synchronous`]). Reads use a small pool of their own
//! connections and never wait for a writer. All database work runs on the
//! blocking thread pool, never on the async runtime.

mod push;

use super::{
    Access, ChangesBatch, ChangesQuery, DevicePosition, PushOutcome, SnapshotBatch, SnapshotQuery,
    Store, StoreError,
};
use super::{ChangeSink, GcReport, LoggedChange};
use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sync_core::retention::{
    device_active_since, min_retention_cutoff, plan_purge, PurgePlan, RetentionPolicy,
    WorkspaceLogState,
};
use sync_core::scope::LoggedScope;
use sync_core::validate::Operation;
use sync_core::wire::stored_json;
use sync_core::wire::{ChangeJson, ChangesArray, RecordVersion, WorkspaceInfo};
use sync_core::{Role, ServerVersion, TableConfig, ValidOp, WorkspaceId};

/// Log entries deleted per GC transaction, so a pass never holds the writer long.
pub const GC_BATCH: u64 = 2_000;

/// Most payload bytes one pull page carries (at least one change is always sent).
pub const MAX_PAGE_PAYLOAD_BYTES: usize = 4 << 20;
/// How many log entries a filtered pull examines at most.
pub const MAX_EXAMINED_ENTRIES: u64 = 10_000;

/// Versioned schema migrations; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    head INTEGER NOT NULL DEFAULT 0,
    oldest_retained_version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE members (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id);
CREATE TABLE records (
    workspace_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    pk TEXT NOT NULL,
    clock INTEGER NOT NULL,
    hlc TEXT NOT NULL,
    op_id TEXT NOT NULL,
    server_version INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    payload TEXT,
    scope_kind INTEGER NOT NULL,
    project_id TEXT,
    thread_id TEXT,
    committed_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, table_name, pk)
) WITHOUT ROWID;
CREATE INDEX records_by_thread ON records(workspace_id, thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX records_tombstone_payloads ON records(workspace_id, committed_at)
    WHERE deleted = 1 AND payload IS NOT NULL;
CREATE TABLE change_log (
    workspace_id TEXT NOT NULL,
    server_version INTEGER NOT NULL,
    table_name TEXT NOT NULL,
    pk TEXT NOT NULL,
    operation TEXT NOT NULL,
    payload TEXT,
    clock INTEGER NOT NULL,
    hlc TEXT NOT NULL,
    op_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    scoped INTEGER NOT NULL,
    project_id TEXT,
    prev_project_id TEXT,
    scope_change INTEGER NOT NULL,
    committed_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, server_version)
) WITHOUT ROWID;
CREATE TABLE applied_ops (
    workspace_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    server_version INTEGER NOT NULL,
    committed_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, op_id)
) WITHOUT ROWID;
CREATE TABLE device_positions (
    workspace_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, device_id)
) WITHOUT ROWID;
"#];

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
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    tables: TableConfig,
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
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                tables,
            }),
        })
    }

    /// Runs `work` on the writer connection, off the async runtime.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &TableConfig) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Internal("writer lock poisoned".into()))?;
            work(&mut conn, &inner.tables)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("write task failed: {e}")))?
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

/// Opens the writer (with its commit durability) or a read-only reader (`None`).
fn open_connection(path: &Path, writer: Option<Synchronous>) -> Result<Connection, StoreError> {
    let flags = if writer.is_some() {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(internal)?;
    if let Some(synchronous) = writer {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(internal)?;
        conn.pragma_update(None, "synchronous", synchronous.pragma())
            .map_err(internal)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(internal)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies every migration newer than the database's `user_version`.
pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let current: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map_err(internal)? as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(internal)?;
        tx.execute_batch(sql).map_err(internal)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
    }
    Ok(MIGRATIONS.len() - current)
}

fn internal(e: rusqlite::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The caller's role, checked inside the transaction. Errors: unknown workspace, not a member.
fn role_in(conn: &Connection, ws: &WorkspaceId, access: &Access) -> Result<Role, StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM workspaces WHERE id = ?1")
        .and_then(|mut s| s.exists([ws.as_str()]))
        .map_err(internal)?;
    if !exists {
        return Err(StoreError::UnknownWorkspace);
    }
    match access {
        Access::Claimed { role, .. } => Ok(*role),
        Access::Admin => Ok(Role::Owner),
        Access::Member { user_id } => conn
            .prepare_cached("SELECT role FROM members WHERE workspace_id = ?1 AND user_id = ?2")
            .and_then(|mut s| {
                s.query_row([ws.as_str(), user_id], |r| r.get::<_, String>(0))
                    .optional()
            })
            .map_err(internal)?
            .and_then(|r| Role::parse(&r))
            .ok_or(StoreError::Forbidden("not a member of this workspace")),
    }
}

fn require(
    conn: &Connection,
    ws: &WorkspaceId,
    access: &Access,
    needed: Role,
) -> Result<Role, StoreError> {
    let role = role_in(conn, ws, access)?;
    if role < needed {
        return Err(StoreError::Forbidden(match needed {
            Role::Owner => "only owners may do this",
            _ => "viewers may not push",
        }));
    }
    Ok(role)
}

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
        .map_err(internal)
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordVersion> {
    Ok(RecordVersion {
        table_name: r.get(0)?,
        pk: r.get(1)?,
        payload: stored_json(r.get(2)?),
        deleted: r.get(3)?,
        clock: r.get::<_, i64>(4)? as u64,
        hlc: r.get(5)?,
        op_id: r.get(6)?,
        server_version: r.get::<_, i64>(7)? as u64,
    })
}

/// The columns every change read selects, in [`change_json_from_row`]'s order.
const CHANGE_COLUMNS: &str =
    "server_version, table_name, pk, operation, payload, clock, hlc, op_id, device_id, scope_change";

/// One row of [`CHANGE_COLUMNS`], borrowed. The payload is JSON this server
/// validated and stored: its bytes are taken as they are, not checked again.
fn change_json_from_row<'r>(r: &'r rusqlite::Row<'_>) -> rusqlite::Result<ChangeJson<'r>> {
    let text = |i: usize| -> rusqlite::Result<&'r str> {
        r.get_ref(i)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let payload = match r.get_ref(4)? {
        rusqlite::types::ValueRef::Null => None,
        rusqlite::types::ValueRef::Text(bytes) => Some(bytes),
        _ => Some(text(4)?.as_bytes()),
    };
    Ok(ChangeJson {
        server_version: r.get::<_, i64>(0)? as u64,
        table_name: text(1)?,
        pk: text(2)?,
        operation: if text(3)? == "delete" {
            Operation::Delete
        } else {
            Operation::Put
        },
        payload,
        clock: r.get::<_, i64>(5)? as u64,
        hlc: text(6)?,
        op_id: text(7)?,
        device_id: text(8)?,
        scope_change: r.get(9)?,
    })
}

fn read_log_since(
    conn: &mut Connection,
    ws: &str,
    after: ServerVersion,
    limit: usize,
) -> Result<(Vec<LoggedChange>, ServerVersion), StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let (head, _) = workspace_positions(&tx, ws)?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS}, scoped, project_id, prev_project_id FROM change_log
             WHERE workspace_id = ?1 AND server_version > ?2 ORDER BY server_version LIMIT ?3"
        ))
        .map_err(internal)?;
    let entries = stmt
        .query_map(params![ws, after as i64, limit as i64], |r| {
            let change = change_json_from_row(r)?.to_change();
            Ok(LoggedChange {
                scope: LoggedScope {
                    scoped: r.get(10)?,
                    project_id: r.get(11)?,
                    prev_project_id: r.get(12)?,
                    scope_change: change.scope_change,
                },
                change,
            })
        })
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    Ok((entries, head))
}

fn read_changes<C: ChangeSink>(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
    query: &ChangesQuery,
) -> Result<ChangesBatch<C>, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    require(&tx, ws, access, Role::Viewer)?;
    let (head, oldest) = workspace_positions(&tx, ws.as_str())?;
    if query.cursor + 1 < oldest || query.cursor > head {
        return Err(StoreError::CursorExpired {
            oldest_retained_version: oldest,
        });
    }
    let window_end = match query.project_id {
        Some(_) => head.min(query.cursor.saturating_add(MAX_EXAMINED_ENTRIES)),
        None => head,
    };
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM change_log
             WHERE workspace_id = ?1 AND server_version > ?2 AND server_version <= ?3
               AND (?4 IS NULL OR scoped = 0 OR project_id = ?4 OR prev_project_id = ?4)
             ORDER BY server_version LIMIT ?5"
        ))
        .map_err(internal)?;
    let mut rows = stmt
        .query(params![
            ws.as_str(),
            query.cursor as i64,
            window_end as i64,
            query.project_id,
            query.limit as i64 + 1,
        ])
        .map_err(internal)?;
    let mut changes = C::default();
    let mut bytes = 0usize;
    let mut last = None;
    let mut full = false;
    while let Some(r) = rows.next().map_err(internal)? {
        if changes.count() == query.limit
            || (bytes >= MAX_PAGE_PAYLOAD_BYTES && changes.count() > 0)
        {
            full = true;
            break;
        }
        let change = change_json_from_row(r).map_err(internal)?;
        bytes += change.payload_len();
        last = Some(change.server_version);
        changes.take(change);
    }
    let cursor = match (full, last) {
        (true, Some(last)) => last,
        _ => window_end.max(query.cursor),
    };
    Ok(ChangesBatch {
        has_more: cursor < head,
        changes,
        cursor,
        oldest_retained_version: oldest,
    })
}

fn read_snapshot(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
    query: &SnapshotQuery,
) -> Result<SnapshotBatch, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    require(&tx, ws, access, Role::Viewer)?;
    let snapshot_version = match query.snapshot_version {
        Some(version) => version,
        None => workspace_positions(&tx, ws.as_str())?.0,
    };
    let (after_table, after_pk) = query.after.clone().unwrap_or_default();
    let mut stmt = tx
        .prepare_cached(
            "SELECT r.table_name, r.pk, r.payload, r.deleted, r.clock, r.hlc, r.op_id, r.server_version
             FROM records r
             WHERE r.workspace_id = ?1 AND (r.table_name, r.pk) > (?2, ?3)
               AND (?4 IS NULL OR r.scope_kind = 0
                    OR (r.scope_kind = 1 AND r.project_id = ?4)
                    OR (r.scope_kind = 2 AND EXISTS (
                        SELECT 1 FROM records t WHERE t.workspace_id = r.workspace_id
                          AND t.table_name = 'threads' AND t.pk = r.thread_id AND t.project_id = ?4)))
             ORDER BY r.table_name, r.pk LIMIT ?5",
        )
        .map_err(internal)?;
    let mut items = stmt
        .query_map(
            params![
                ws.as_str(),
                after_table,
                after_pk,
                query.project_id,
                query.limit as i64 + 1
            ],
            record_from_row,
        )
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    let has_more = items.len() > query.limit;
    items.truncate(query.limit);
    Ok(SnapshotBatch {
        snapshot_version,
        items,
        has_more,
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
        self.write(move |conn, _| {
            let tx = conn.transaction().map_err(internal)?;
            tx.execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id.as_str(), name, now_ms as i64],
            )
            .map_err(internal)?;
            tx.execute(
                "INSERT INTO members (workspace_id, user_id, role) VALUES (?1, ?2, 'owner')",
                params![id.as_str(), owner],
            )
            .map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(WorkspaceInfo {
                workspace_id: id.to_string(),
                name,
                role: Role::Owner,
            })
        })
        .await
    }

    async fn ensure_workspace(&self, id: &WorkspaceId, now_ms: u64) -> Result<(), StoreError> {
        let id = id.clone();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id.as_str(), now_ms as i64],
            )
            .map(drop)
            .map_err(internal)
        })
        .await
    }

    async fn list_workspaces(&self, user_id: &str) -> Result<Vec<WorkspaceInfo>, StoreError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT w.id, w.name, m.role FROM members m JOIN workspaces w ON w.id = m.workspace_id
                     WHERE m.user_id = ?1 ORDER BY w.created_at, w.id",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map([user_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })
                .map_err(internal)?;
            let mut list = Vec::new();
            for row in rows {
                let (workspace_id, name, role) = row.map_err(internal)?;
                if let Some(role) = Role::parse(&role) {
                    list.push(WorkspaceInfo {
                        workspace_id,
                        name,
                        role,
                    });
                }
            }
            Ok(list)
        })
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
        self.write(move |conn, _| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(internal)?;
            require(&tx, &ws, &access, Role::Owner)?;
            if role != Role::Owner {
                ensure_other_owner(&tx, &ws, &user_id)?;
            }
            tx.execute(
                "INSERT INTO members (workspace_id, user_id, role) VALUES (?1, ?2, ?3)
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
                params![ws.as_str(), user_id, role.as_str()],
            )
            .map_err(internal)?;
            tx.commit().map_err(internal)
        })
        .await
    }

    async fn remove_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let (ws, access, user_id) = (ws.clone(), access.clone(), user_id.to_owned());
        self.write(move |conn, _| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(internal)?;
            require(&tx, &ws, &access, Role::Owner)?;
            ensure_other_owner(&tx, &ws, &user_id)?;
            let removed = tx
                .execute(
                    "DELETE FROM members WHERE workspace_id = ?1 AND user_id = ?2",
                    params![ws.as_str(), user_id],
                )
                .map_err(internal)?;
            if removed == 0 {
                return Err(StoreError::MemberNotFound);
            }
            tx.commit().map_err(internal)
        })
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
        let (ws, access) = (ws.clone(), access.clone());
        self.write(move |conn, tables| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(internal)?;
            require(&tx, &ws, &access, Role::Editor)?;
            let (head, _) = workspace_positions(&tx, ws.as_str())?;
            push::push(tx, tables, &ws, head, &ops, now_ms)
        })
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
                .prepare_cached(
                    "SELECT table_name, pk, payload, deleted, clock, hlc, op_id, server_version
                     FROM records WHERE workspace_id = ?1 AND table_name = ?2 AND pk = ?3",
                )
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
        self.write(move |conn, _| {
            let tx = conn.transaction().map_err(internal)?;
            for p in &positions {
                tx.prepare_cached(
                    "INSERT INTO device_positions (workspace_id, device_id, cursor, seen_at)
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = ?1)
                     ON CONFLICT (workspace_id, device_id) DO UPDATE SET
                         cursor = excluded.cursor, seen_at = MAX(seen_at, excluded.seen_at)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        p.workspace_id.as_str(),
                        p.device_id,
                        p.cursor as i64,
                        p.seen_at_ms as i64
                    ])
                })
                .map_err(internal)?;
            }
            tx.commit().map_err(internal)
        })
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
        let ws = ws.clone();
        let policy = *policy;
        let (state, tombstones, purgeable_tombstones) = self
            .read({
                let ws = ws.clone();
                move |conn| log_state(conn, ws.as_str(), &policy, now_ms)
            })
            .await?;
        let plan = plan_purge(state, &policy, now_ms);
        let (mut log_purged, mut ops_purged, mut tombstones_purged) = (0, 0, 0);
        if dry_run {
            log_purged = plan.log_horizon - state.purged_through;
            ops_purged = log_purged;
            tombstones_purged = purgeable_tombstones;
        } else {
            // Each batch is its own transaction on the writer, so pushes
            // interleave with a long pass. The new oldest version is
            // committed first: a reader never sees a log with a hole.
            let ws_text = ws.to_string();
            if plan.log_horizon > state.purged_through {
                let w = ws_text.clone();
                self.write(move |conn, _| raise_oldest_retained(conn, &w, plan.log_horizon))
                    .await?;
            }
            let mut start = state.purged_through;
            while start < plan.log_horizon {
                let end = (start + GC_BATCH).min(plan.log_horizon);
                let w = ws_text.clone();
                let (log, ops) = self
                    .write(move |conn, _| purge_log_batch(conn, &w, start, end))
                    .await?;
                log_purged += log;
                ops_purged += ops;
                start = end;
            }
            loop {
                let w = ws_text.clone();
                let n = self
                    .write(move |conn, _| purge_tombstone_batch(conn, &w, &plan))
                    .await?;
                tombstones_purged += n;
                if n < GC_BATCH {
                    break;
                }
            }
        }
        Ok(GcReport::of_pass(
            &ws,
            &state,
            &plan,
            (log_purged, ops_purged, tombstones_purged),
            tombstones,
        ))
    }

    async fn head(&self, ws: &WorkspaceId) -> Result<ServerVersion, StoreError> {
        let ws = ws.clone();
        self.read(move |conn| workspace_positions(conn, ws.as_str()).map(|(head, _)| head))
            .await
    }
}

/// Reads what a GC pass plans from, in one read transaction.
fn log_state(
    conn: &mut Connection,
    ws: &str,
    policy: &RetentionPolicy,
    now_ms: u64,
) -> Result<(WorkspaceLogState, u64, u64), StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let (head, oldest) = workspace_positions(&tx, ws)?;
    let purged_through = oldest - 1;
    let watermark: Option<i64> = tx
        .query_row(
            "SELECT MIN(cursor) FROM device_positions
             WHERE workspace_id = ?1 AND seen_at >= ?2 AND cursor >= ?3",
            params![
                ws,
                device_active_since(policy, now_ms) as i64,
                purged_through as i64
            ],
            |r| r.get(0),
        )
        .map_err(internal)?;
    // Commit times grow with versions, so the first entry too young to purge
    // bounds the old ones; the scan stops there.
    let first_young: Option<i64> = tx
        .query_row(
            "SELECT server_version FROM change_log
             WHERE workspace_id = ?1 AND server_version > ?2 AND committed_at > ?3
             ORDER BY server_version LIMIT 1",
            params![
                ws,
                purged_through as i64,
                min_retention_cutoff(policy, now_ms) as i64
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(internal)?;
    let newest_old_version = match first_young {
        Some(v) => (v as u64).checked_sub(1),
        None => Some(head),
    };
    let tombstones: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM records WHERE workspace_id = ?1 AND deleted = 1",
            [ws],
            |r| r.get(0),
        )
        .map_err(internal)?;
    let purgeable_tombstones: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM records WHERE workspace_id = ?1 AND deleted = 1
               AND payload IS NOT NULL AND committed_at <= ?2 AND server_version <= ?3",
            params![
                ws,
                now_ms.saturating_sub(policy.tombstone_retention_ms) as i64,
                watermark.map_or(head, |w| (w as u64).min(head)) as i64
            ],
            |r| r.get(0),
        )
        .map_err(internal)?;
    Ok((
        WorkspaceLogState {
            head,
            watermark: watermark.map(|w| w as u64),
            newest_old_version,
            purged_through,
        },
        tombstones as u64,
        purgeable_tombstones as u64,
    ))
}

fn raise_oldest_retained(
    conn: &mut Connection,
    ws: &str,
    horizon: ServerVersion,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE workspaces SET oldest_retained_version = MAX(oldest_retained_version, ?2) WHERE id = ?1",
        params![ws, horizon as i64 + 1],
    )
    .map(drop)
    .map_err(internal)
}

/// Deletes the log entries in `(start, end]` and their op-id records.
fn purge_log_batch(
    conn: &mut Connection,
    ws: &str,
    start: ServerVersion,
    end: ServerVersion,
) -> Result<(u64, u64), StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let ops = tx
        .execute(
            "DELETE FROM applied_ops WHERE workspace_id = ?1 AND op_id IN (
                 SELECT op_id FROM change_log WHERE workspace_id = ?1
                   AND server_version > ?2 AND server_version <= ?3)",
            params![ws, start as i64, end as i64],
        )
        .map_err(internal)?;
    let log = tx
        .execute(
            "DELETE FROM change_log WHERE workspace_id = ?1 AND server_version > ?2 AND server_version <= ?3",
            params![ws, start as i64, end as i64],
        )
        .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok((log as u64, ops as u64))
}

/// Drops the payloads of up to [`GC_BATCH`] old tombstones; their stamps stay.
fn purge_tombstone_batch(
    conn: &mut Connection,
    ws: &str,
    plan: &PurgePlan,
) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE records SET payload = NULL
         WHERE (workspace_id, table_name, pk) IN (
             SELECT workspace_id, table_name, pk FROM records
             WHERE workspace_id = ?1 AND deleted = 1 AND payload IS NOT NULL
               AND committed_at <= ?2 AND server_version <= ?3
             LIMIT ?4)",
        params![
            ws,
            plan.tombstone_cutoff_ms as i64,
            plan.tombstone_horizon as i64,
            GC_BATCH as i64
        ],
    )
    .map(|n| n as u64)
    .map_err(internal)
}

/// Refuses to demote or remove `user_id` when they are the last owner.
fn ensure_other_owner(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    user_id: &str,
) -> Result<(), StoreError> {
    let other_owners: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM members WHERE workspace_id = ?1 AND role = 'owner' AND user_id <> ?2",
            params![ws.as_str(), user_id],
            |r| r.get(0),
        )
        .map_err(internal)?;
    if other_owners == 0 {
        return Err(StoreError::LastOwner);
    }
    Ok(())
}
