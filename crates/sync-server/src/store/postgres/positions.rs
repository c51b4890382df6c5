//! Device positions on Postgres: the buffered ones of pulls and snapshots
//! (one upsert per flush) and the ones a device reports on purpose (checked
//! against the head and the recorded position in the same transaction).

use super::connect::pg_error;
use super::members::{require, Lock};
use super::u64_at;
use crate::store::{Access, DevicePosition, StoreError};
use deadpool_postgres::Client;
use std::collections::HashMap;
use sync_core::position::check_position;
use sync_core::Role;

/// Upserts positions (of existing workspaces): the cursor as given, the
/// latest time seen.
const UPSERT_POSITIONS: &str =
    "INSERT INTO device_positions (workspace_id, device_id, cursor, seen_at)
     SELECT p.workspace_id, p.device_id, p.cursor, p.seen_at
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
         AS p(workspace_id, device_id, cursor, seen_at)
     WHERE EXISTS (SELECT 1 FROM workspaces w WHERE w.id = p.workspace_id)
     ON CONFLICT (workspace_id, device_id) DO UPDATE SET
         cursor = excluded.cursor,
         seen_at = greatest(device_positions.seen_at, excluded.seen_at)";

/// Stores buffered positions in one statement.
pub(super) async fn record_positions(
    client: &mut Client,
    positions: &[DevicePosition],
) -> Result<(), StoreError> {
    // One upsert may touch a row once: fold repeats of a device the way
    // applying them in order would (last cursor, latest time).
    let mut folded: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
    for p in positions {
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
    let stmt = client
        .prepare_cached(UPSERT_POSITIONS)
        .await
        .map_err(pg_error)?;
    client
        .execute(&stmt, &[&workspaces, &devices, &cursors, &seen])
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Records a reported position when `check_position` allows it. The
/// device's row is locked first (created at 0 when missing, which no check
/// tells apart from none), so two reports of one device run one after the
/// other and neither can slip below the other.
pub(super) async fn report_position(
    client: &mut Client,
    access: &Access,
    position: &DevicePosition,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let ws = position.workspace_id.as_str();
    let device = position.device_id.as_str();
    let workspace = require(
        &tx,
        &position.workspace_id,
        access,
        Role::Viewer,
        Lock::None,
    )
    .await?;
    let seen = position.seen_at_ms as i64;
    tx.execute(
        "INSERT INTO device_positions (workspace_id, device_id, cursor, seen_at)
         VALUES ($1, $2, 0, $3) ON CONFLICT (workspace_id, device_id) DO NOTHING",
        &[&ws, &device, &seen],
    )
    .await
    .map_err(pg_error)?;
    let row = tx
        .query_one(
            "SELECT cursor FROM device_positions WHERE workspace_id = $1 AND device_id = $2
             FOR UPDATE",
            &[&ws, &device],
        )
        .await
        .map_err(pg_error)?;
    check_position(position.cursor, workspace.head, Some(u64_at(&row, 0)?))?;
    let stmt = tx
        .prepare_cached(UPSERT_POSITIONS)
        .await
        .map_err(pg_error)?;
    tx.execute(
        &stmt,
        &[
            &vec![ws],
            &vec![device],
            &vec![position.cursor as i64],
            &vec![seen],
        ],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}
