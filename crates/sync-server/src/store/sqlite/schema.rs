//! The schema: versioned migrations and connection settings.

use super::{internal, unavailable, Synchronous};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

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

/// Opens the writer (with its commit durability) or a read-only reader (`None`).
/// The writer connection's page cache, in KiB (grown into as it is used).
const WRITER_CACHE_KIB: i64 = 32 * 1024;

pub(super) fn open_connection(
    path: &Path,
    writer: Option<Synchronous>,
) -> Result<Connection, StoreError> {
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
        // The statement journals of a group's savepoints (never needed after
        // a crash: the WAL is the journal) stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(internal)?;
        // Checkpoints run on a thread of their own (`checkpoint.rs`), not inside the writer's commits.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(internal)?;
        // The WAL file is cut back when it starts over after a burst (`checkpoint::WAL_SIZE_LIMIT`).
        conn.pragma_update(
            None,
            "journal_size_limit",
            super::checkpoint::WAL_SIZE_LIMIT as i64,
        )
        .map_err(internal)?;
        // The writer's page cache (SQLite's default is 2 MiB): a group's index pages stay in
        // memory instead of being read back from the OS and spilled mid-transaction.
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
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
