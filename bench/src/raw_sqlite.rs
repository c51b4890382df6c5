//! The physical baselines: what SQLite alone does with the same rows on the
//! same disk, with the settings the server uses (WAL, `synchronous=FULL`).

use crate::workload::{epoch_ms, MessageOp, DEVICE_ID};
use anyhow::Result;
use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

const INSERT_LOG_ROW: &str = "INSERT INTO change_log (workspace_id, server_version, table_name, pk,
        operation, payload, clock, hlc, op_id, device_id, scoped, project_id, prev_project_id,
        scope_change, committed_at)
    VALUES (?1, ?2, 'messages', ?3, 'put', ?4, 1, ?5, ?6, ?7, 1, NULL, NULL, 0, ?8)";

/// The server's pull query (`read_changes`), with the same WHERE, ORDER BY and LIMIT.
const PULL_QUERY: &str = "SELECT server_version, table_name, pk, operation, payload, clock, hlc,
        op_id, device_id, scope_change FROM change_log
    WHERE workspace_id = ?1 AND server_version > ?2 AND server_version <= ?3
      AND (?4 IS NULL OR scoped = 0 OR project_id = ?4 OR prev_project_id = ?4)
    ORDER BY server_version LIMIT ?5";

const INSERT_RECORD: &str = "INSERT INTO records (workspace_id, table_name, pk, clock, hlc, op_id,
        server_version, deleted, payload, scope_kind, project_id, thread_id, committed_at)
    VALUES (?1, 'messages', ?2, 1, ?3, ?4, ?5, 0, ?6, 2, NULL, ?7, ?8)";

const INSERT_APPLIED_OP: &str = "INSERT INTO applied_ops (workspace_id, op_id, server_version,
        committed_at) VALUES (?1, ?2, ?3, ?4)";

/// What the raw baseline writes for each op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawRows {
    /// What the server stores for a new record: its change-log row, its
    /// current-state row and its op-id row, in the server's own schema.
    SameAsServer,
    /// Only the change-log row: a bare append to the log.
    LogOnly,
}

/// A connection that inserts ops the way the raw baseline does: one
/// transaction per batch, WAL, `synchronous=FULL`. Kept open across rounds
/// (closing the last connection of a WAL database checkpoints it).
pub struct RawWriter {
    conn: Connection,
    rows: RawRows,
    heads: std::collections::HashMap<String, i64>,
}

impl RawWriter {
    /// Opens `path`, which must hold the server's schema (`or3-sync migrate`).
    pub fn open(path: &Path, rows: RawRows) -> Result<RawWriter> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(RawWriter {
            conn,
            rows,
            heads: Default::default(),
        })
    }

    /// Inserts each batch in a transaction of its own; returns the time taken.
    pub fn insert(&mut self, batches: &[(String, Vec<MessageOp>)]) -> Result<Duration> {
        let now = epoch_ms() as i64;
        let started = Instant::now();
        for (ws, ops) in batches {
            self.commit(ws, ops, now)?;
        }
        Ok(started.elapsed())
    }

    /// Commits one op at a time (`BEGIN IMMEDIATE`, its rows, `COMMIT`: one
    /// fsync each) until the commits have taken `budget` in all; `next` makes
    /// each op and its workspace, off the clock. Returns each commit's time.
    pub fn commit_single_ops_for(
        &mut self,
        budget: Duration,
        mut next: impl FnMut() -> (String, MessageOp),
    ) -> Result<Vec<Duration>> {
        let mut commits = Vec::new();
        let mut spent = Duration::ZERO;
        while spent < budget {
            let (ws, op) = next();
            let now = epoch_ms() as i64;
            let started = Instant::now();
            self.commit(&ws, std::slice::from_ref(&op), now)?;
            let took = started.elapsed();
            spent += took;
            commits.push(took);
        }
        Ok(commits)
    }

    /// One transaction holding `ops` of `ws`.
    fn commit(&mut self, ws: &str, ops: &[MessageOp], now: i64) -> Result<()> {
        let head = self.heads.entry(ws.to_owned()).or_insert(0);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut log = tx.prepare_cached(INSERT_LOG_ROW)?;
            for op in ops {
                *head += 1;
                log.execute(params![
                    ws,
                    *head,
                    op.pk,
                    op.payload,
                    op.hlc,
                    op.op_id,
                    op.device_id,
                    now
                ])?;
            }
        }
        if self.rows == RawRows::SameAsServer {
            let mut version = *head - ops.len() as i64;
            let mut record = tx.prepare_cached(INSERT_RECORD)?;
            let mut applied = tx.prepare_cached(INSERT_APPLIED_OP)?;
            for op in ops {
                version += 1;
                record.execute(params![
                    ws,
                    op.pk,
                    op.hlc,
                    op.op_id,
                    version,
                    op.payload,
                    op.thread_id,
                    now
                ])?;
                applied.execute(params![ws, op.op_id, version, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Reads the whole log of `ws` in `path` in pages of `page` with the
/// server's pull query, reading every column. Returns rows read and time.
pub fn scan_log(path: &Path, ws: &str, page: usize) -> Result<(u64, Duration)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let head: i64 = conn.query_row("SELECT head FROM workspaces WHERE id = ?1", [ws], |r| {
        r.get(0)
    })?;
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(PULL_QUERY)?;
    let (mut cursor, mut total) = (0i64, 0u64);
    loop {
        let mut rows = stmt.query(params![
            ws,
            cursor,
            head,
            Option::<String>::None,
            page as i64 + 1
        ])?;
        let mut read = 0usize;
        while let Some(r) = rows.next()? {
            if read == page {
                break;
            }
            let version: i64 = r.get(0)?;
            let row = (
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, bool>(9)?,
            );
            std::hint::black_box(row);
            cursor = version;
            read += 1;
        }
        total += read as u64;
        if read < page {
            break;
        }
    }
    Ok((total, started.elapsed()))
}

/// Writes `entries` log entries (and their op-id records) for `ws` straight
/// into a migrated server database, as `crates/sync-server/tests/gc_load.rs`
/// does, and sets the workspace head. Commit times are now, so nothing is
/// old enough for GC.
pub fn seed_log(path: &Path, ws: &str, entries: u64) -> Result<()> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let now_ms = epoch_ms();
    let tx = conn.transaction()?;
    {
        let mut log = tx.prepare(INSERT_LOG_ROW)?;
        let mut ops = tx.prepare(
            "INSERT INTO applied_ops (workspace_id, op_id, server_version, committed_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for v in 1..=entries {
            let op_id = format!("5eed0000-0000-4000-8000-{v:012x}");
            let pk = format!("seed-{v}");
            let hlc = format!("{:013}-{:06}-{DEVICE_ID}", now_ms, v % 1_000_000);
            let payload =
                crate::workload::message_row(&pk, "seed-thread", v, &hlc, now_ms / 1000, "");
            log.execute(params![
                ws,
                v as i64,
                pk,
                payload,
                hlc,
                op_id,
                DEVICE_ID,
                now_ms as i64
            ])?;
            ops.execute(params![ws, op_id, v as i64, now_ms as i64])?;
        }
    }
    tx.execute(
        "UPDATE workspaces SET head = ?2 WHERE id = ?1",
        params![ws, entries as i64],
    )?;
    tx.commit()?;
    // Move the seed out of the WAL, so the server reads a plain database file.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::OpFactory;

    #[test]
    fn a_raw_insert_can_be_scanned_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.db");
        let mut factory = OpFactory::new();
        let batches: Vec<(String, Vec<MessageOp>)> = (0..3)
            .map(|_| {
                (
                    "raw".to_owned(),
                    (0..100).map(|_| factory.message("")).collect(),
                )
            })
            .collect();
        sync_server::store::sqlite::migrate(&mut Connection::open(&path).unwrap()).unwrap();
        let mut writer = RawWriter::open(&path, RawRows::LogOnly).unwrap();
        writer.insert(&batches).unwrap();
        writer
            .conn
            .execute(
                "INSERT INTO workspaces (id, name, created_at, head) VALUES ('raw', 'raw', 0, 300)",
                [],
            )
            .unwrap();
        let (rows, _) = scan_log(&path, "raw", 128).unwrap();
        assert_eq!(rows, 300);
    }
}
