//! Garbage collection passes over every workspace (PROTOCOL.md section 5),
//! run by `or3-sync gc` and periodically by `serve`. The rules live in
//! `sync_core::retention`; the deleting is the store's.

use crate::clock::Clock;
use crate::positions::PositionBuffer;
use crate::store::{GcReport, Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync_core::retention::RetentionPolicy;
use sync_core::WorkspaceId;

/// Runs one pass over `only` (or every workspace). Pending device positions
/// are written first, so a device that just reported is never expired.
pub async fn collect_all(
    store: &dyn Store,
    positions: Option<&PositionBuffer>,
    policy: &RetentionPolicy,
    now_ms: u64,
    dry_run: bool,
    only: Option<&WorkspaceId>,
) -> Result<Vec<GcReport>, StoreError> {
    if let Some(positions) = positions {
        positions.flush(store).await;
    }
    let started = Instant::now();
    let workspaces = match only {
        Some(ws) => vec![ws.clone()],
        None => store.workspace_ids().await?,
    };
    let mut reports = Vec::with_capacity(workspaces.len());
    for ws in &workspaces {
        let report = store.collect_garbage(ws, policy, now_ms, dry_run).await?;
        if !dry_run {
            record_metrics(&report);
        }
        reports.push(report);
    }
    if !dry_run {
        let (log, tombstones) = reports
            .iter()
            .fold((0, 0), |(l, t), r| (l + r.log_length, t + r.tombstones));
        metrics::gauge!("or3_log_entries").set(log as f64);
        metrics::gauge!("or3_tombstones").set(tombstones as f64);
        metrics::histogram!("or3_gc_seconds").record(started.elapsed().as_secs_f64());
    }
    Ok(reports)
}

fn record_metrics(report: &GcReport) {
    metrics::counter!("or3_gc_purged_total", "kind" => "log_entries")
        .increment(report.log_entries_purged);
    metrics::counter!("or3_gc_purged_total", "kind" => "op_ids").increment(report.op_ids_purged);
    metrics::counter!("or3_gc_purged_total", "kind" => "tombstone_payloads")
        .increment(report.tombstone_payloads_purged);
    metrics::gauge!("or3_oldest_retained_version", "workspace" => report.workspace_id.clone())
        .set(report.oldest_retained_version as f64);
}

/// Runs a pass every `interval` for as long as the process lives.
pub fn spawn_periodic(
    store: Arc<dyn Store>,
    positions: Arc<PositionBuffer>,
    clock: Arc<dyn Clock>,
    policy: RetentionPolicy,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await; // the first tick is immediate; let the server settle
        loop {
            tick.tick().await;
            let now = clock.now_ms();
            match collect_all(store.as_ref(), Some(&positions), &policy, now, false, None).await {
                Ok(reports) => {
                    let purged: u64 = reports.iter().map(|r| r.log_entries_purged).sum();
                    tracing::info!(
                        workspaces = reports.len(),
                        log_entries_purged = purged,
                        "gc pass done"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "gc pass failed"),
            }
        }
    });
}
