//! One garbage-collection pass (PROTOCOL.md section 5), the same for every
//! store: read the log's state, plan with `sync_core::retention`, then purge
//! in small transactions of the store's own ([`GcSteps`]), so pushes
//! interleave with a long pass. The new oldest version is committed first: a
//! reader never sees a log with a hole.

use super::{GcReport, StoreError, GC_BATCH};
use async_trait::async_trait;
use sync_core::retention::{plan_purge, PurgePlan, RetentionPolicy, WorkspaceLogState};
use sync_core::{ServerVersion, WorkspaceId};

/// What a GC pass plans from: the log's state, the tombstones, and how many
/// of them are old enough to lose their payload.
pub(crate) struct LogCensus {
    /// Head, purged-through version, device positions.
    pub state: WorkspaceLogState,
    /// Tombstones in the records table.
    pub tombstones: u64,
    /// Tombstones whose payload a pass may purge now: those within the
    /// tombstone bounds of `plan_purge(state, …)`, counted on the same snapshot.
    pub purgeable_tombstones: u64,
}

/// The small store operations a GC pass is made of, each its own transaction.
#[async_trait]
pub(crate) trait GcSteps: Sync {
    /// Reads what a pass plans from, in one read transaction.
    async fn census(
        &self,
        ws: &WorkspaceId,
        policy: &RetentionPolicy,
        now_ms: u64,
    ) -> Result<LogCensus, StoreError>;
    /// Raises the workspace's oldest retained version to `horizon + 1`.
    async fn raise_oldest_retained(
        &self,
        ws: &WorkspaceId,
        horizon: ServerVersion,
    ) -> Result<(), StoreError>;
    /// Deletes the log entries (and op-id records) in `(start, end]`; returns
    /// how many of each.
    async fn purge_log_batch(
        &self,
        ws: &WorkspaceId,
        start: ServerVersion,
        end: ServerVersion,
    ) -> Result<(u64, u64), StoreError>;
    /// Drops the payloads of up to [`GC_BATCH`] old tombstones; their stamps stay.
    async fn purge_tombstone_batch(
        &self,
        ws: &WorkspaceId,
        plan: &PurgePlan,
    ) -> Result<u64, StoreError>;
}

/// One pass over a workspace; with `dry_run` only counts.
pub(crate) async fn collect_garbage(
    store: &impl GcSteps,
    ws: &WorkspaceId,
    policy: &RetentionPolicy,
    now_ms: u64,
    dry_run: bool,
) -> Result<GcReport, StoreError> {
    let census = store.census(ws, policy, now_ms).await?;
    let state = census.state;
    let plan = plan_purge(state, policy, now_ms);
    let (mut log_purged, mut ops_purged, mut tombstones_purged) = (0, 0, 0);
    if dry_run {
        log_purged = plan.log_horizon - state.purged_through;
        ops_purged = log_purged;
        tombstones_purged = census.purgeable_tombstones;
    } else {
        if plan.log_horizon > state.purged_through {
            store.raise_oldest_retained(ws, plan.log_horizon).await?;
        }
        let mut start = state.purged_through;
        while start < plan.log_horizon {
            let end = (start + GC_BATCH).min(plan.log_horizon);
            let (log, ops) = store.purge_log_batch(ws, start, end).await?;
            log_purged += log;
            ops_purged += ops;
            start = end;
        }
        loop {
            let n = store.purge_tombstone_batch(ws, &plan).await?;
            tombstones_purged += n;
            if n < GC_BATCH {
                break;
            }
        }
    }
    Ok(GcReport::of_pass(
        ws,
        &state,
        &plan,
        (log_purged, ops_purged, tombstones_purged),
        census.tombstones,
    ))
}
