//! GC on Postgres: the steps of `store::gc`'s pass, each its own short
//! transaction, so pushes interleave with a long pass.

use super::connect::{column_error, pg_error};
use super::members::{require, Lock};
use super::{read_tx, u64_at, PostgresStore};
use crate::store::gc::{GcSteps, LogCensus};
use crate::store::Access;
use crate::store::{StoreError, GC_BATCH};
use async_trait::async_trait;
use deadpool_postgres::Client;
use sync_core::retention::{
    device_active_since, min_retention_cutoff, newest_old_version, plan_purge, PurgePlan,
    RetentionPolicy, WorkspaceLogState,
};
use sync_core::{Role, ServerVersion, WorkspaceId};

#[async_trait]
impl GcSteps for PostgresStore {
    async fn census(
        &self,
        ws: &WorkspaceId,
        policy: &RetentionPolicy,
        now_ms: u64,
    ) -> Result<LogCensus, StoreError> {
        self.with_client(async |client| log_census(client, ws, policy, now_ms).await)
            .await
    }

    async fn raise_oldest_retained(
        &self,
        ws: &WorkspaceId,
        horizon: ServerVersion,
    ) -> Result<(), StoreError> {
        self.with_client(async |client| {
            client
                .execute(
                    "UPDATE workspaces SET oldest_retained_version =
                         greatest(oldest_retained_version, $2) WHERE id = $1",
                    &[&ws.as_str(), &(horizon as i64 + 1)],
                )
                .await
                .map_err(pg_error)
        })
        .await?;
        Ok(())
    }

    async fn purge_log_batch(
        &self,
        ws: &WorkspaceId,
        start: ServerVersion,
        end: ServerVersion,
    ) -> Result<(u64, u64), StoreError> {
        // The log is the record of applied op ids: one delete purges both.
        let purged = self
            .with_client(async |client| purge_log_batch(client, ws, start, end).await)
            .await?;
        Ok((purged, purged))
    }

    async fn purge_tombstone_batch(
        &self,
        ws: &WorkspaceId,
        plan: &PurgePlan,
    ) -> Result<u64, StoreError> {
        self.with_client(async |client| purge_tombstone_batch(client, ws, plan).await)
            .await
    }
}

/// What a GC pass plans from, read on one snapshot: the log state, the
/// number of tombstones and how many of them may lose their payload.
async fn log_census(
    client: &mut Client,
    ws: &WorkspaceId,
    policy: &RetentionPolicy,
    now_ms: u64,
) -> Result<LogCensus, StoreError> {
    let tx = read_tx(client).await?;
    let positions = require(&tx, ws, &Access::Admin, Role::Viewer, Lock::None).await?;
    let head = positions.head;
    let purged_through = positions.oldest_retained_version - 1;
    let watermark: Option<i64> = tx
        .query_one(
            "SELECT min(cursor) FROM device_positions
             WHERE workspace_id = $1 AND seen_at >= $2 AND cursor >= $3",
            &[
                &ws.as_str(),
                &(device_active_since(policy, now_ms) as i64),
                &(purged_through as i64),
            ],
        )
        .await
        .map_err(pg_error)?
        .try_get(0)
        .map_err(column_error)?;
    let first_young = tx
        .query_opt(
            "SELECT server_version FROM change_log
             WHERE workspace_id = $1 AND server_version > $2 AND committed_at > $3
             ORDER BY server_version LIMIT 1",
            &[
                &ws.as_str(),
                &(purged_through as i64),
                &(min_retention_cutoff(policy, now_ms) as i64),
            ],
        )
        .await
        .map_err(pg_error)?;
    let first_young = first_young.map(|row| u64_at(&row, 0)).transpose()?;
    let state = WorkspaceLogState {
        head,
        watermark: watermark.map(|w| w as u64),
        newest_old_version: newest_old_version(first_young, head),
        purged_through,
    };
    let plan = plan_purge(state, policy, now_ms);
    let counts = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE deleted),
                    count(*) FILTER (WHERE deleted AND payload IS NOT NULL
                                       AND committed_at <= $2 AND server_version <= $3)
             FROM records WHERE workspace_id = $1 AND deleted",
            &[
                &ws.as_str(),
                &(plan.tombstone_cutoff_ms as i64),
                &(plan.tombstone_horizon as i64),
            ],
        )
        .await
        .map_err(pg_error)?;
    Ok(LogCensus {
        state,
        tombstones: u64_at(&counts, 0)?,
        purgeable_tombstones: u64_at(&counts, 1)?,
    })
}

/// Deletes the log entries in `(start, end]`, and with them the record of
/// their op ids (see `migrations.rs`), in one statement.
async fn purge_log_batch(
    client: &Client,
    ws: &WorkspaceId,
    start: ServerVersion,
    end: ServerVersion,
) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM change_log
             WHERE workspace_id = $1 AND server_version > $2 AND server_version <= $3",
            &[&ws.as_str(), &(start as i64), &(end as i64)],
        )
        .await
        .map_err(pg_error)
}

/// Drops the payloads of up to [`GC_BATCH`] old tombstones; their stamps stay.
async fn purge_tombstone_batch(
    client: &Client,
    ws: &WorkspaceId,
    plan: &PurgePlan,
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE records SET payload = NULL
             WHERE (workspace_id, table_name, pk) IN (
                 SELECT workspace_id, table_name, pk FROM records
                 WHERE workspace_id = $1 AND deleted AND payload IS NOT NULL
                   AND committed_at <= $2 AND server_version <= $3
                 LIMIT $4)",
            &[
                &ws.as_str(),
                &(plan.tombstone_cutoff_ms as i64),
                &(plan.tombstone_horizon as i64),
                &(GC_BATCH as i64),
            ],
        )
        .await
        .map_err(pg_error)
}
