//! GC on SQLite: the steps of `store::gc`'s pass, each its own transaction
//! (the census on a reader, the purges on the writer, so pushes interleave).

use super::{internal, workspace_positions, SqliteStore};
use crate::store::gc::{GcSteps, LogCensus};
use crate::store::{StoreError, GC_BATCH};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use sync_core::retention::{
    device_active_since, min_retention_cutoff, newest_old_version, plan_purge, PurgePlan,
    RetentionPolicy, WorkspaceLogState,
};
use sync_core::{ServerVersion, WorkspaceId};

#[async_trait]
impl GcSteps for SqliteStore {
    async fn census(
        &self,
        ws: &WorkspaceId,
        policy: &RetentionPolicy,
        now_ms: u64,
    ) -> Result<LogCensus, StoreError> {
        let (ws, policy) = (ws.to_string(), *policy);
        self.read(move |conn| log_census(conn, &ws, &policy, now_ms))
            .await
    }

    async fn raise_oldest_retained(
        &self,
        ws: &WorkspaceId,
        horizon: ServerVersion,
    ) -> Result<(), StoreError> {
        let ws = ws.to_string();
        self.write(move |conn, _| raise_oldest_retained(conn, &ws, horizon))
            .await
    }

    async fn purge_log_batch(
        &self,
        ws: &WorkspaceId,
        start: ServerVersion,
        end: ServerVersion,
    ) -> Result<(u64, u64), StoreError> {
        let ws = ws.to_string();
        self.write(move |conn, _| purge_log_batch(conn, &ws, start, end))
            .await
    }

    async fn purge_tombstone_batch(
        &self,
        ws: &WorkspaceId,
        plan: &PurgePlan,
    ) -> Result<u64, StoreError> {
        let (ws, plan) = (ws.to_string(), *plan);
        self.write(move |conn, _| purge_tombstone_batch(conn, &ws, &plan))
            .await
    }
}

/// Reads what a GC pass plans from, in one read transaction.
fn log_census(
    conn: &mut Connection,
    ws: &str,
    policy: &RetentionPolicy,
    now_ms: u64,
) -> Result<LogCensus, StoreError> {
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
    let state = WorkspaceLogState {
        head,
        watermark: watermark.map(|w| w as u64),
        newest_old_version: newest_old_version(first_young.map(|v| v as u64), head),
        purged_through,
    };
    let plan = plan_purge(state, policy, now_ms);
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
                plan.tombstone_cutoff_ms as i64,
                plan.tombstone_horizon as i64
            ],
            |r| r.get(0),
        )
        .map_err(internal)?;
    Ok(LogCensus {
        state,
        tombstones: tombstones as u64,
        purgeable_tombstones: purgeable_tombstones as u64,
    })
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
