//! Device positions on SQLite: the buffered ones of pulls and snapshots
//! (written as they come) and the ones a device reports on purpose (checked
//! against the head and the recorded position in the same transaction).

use super::members::require;
use super::{internal, workspace_positions};
use crate::store::{Access, DevicePosition, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sync_core::position::check_position;
use sync_core::Role;

/// Upserts one position (of an existing workspace): the cursor as given,
/// the latest time seen.
const UPSERT_POSITION: &str =
    "INSERT INTO device_positions (workspace_id, device_id, cursor, seen_at)
     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = ?1)
     ON CONFLICT (workspace_id, device_id) DO UPDATE SET
         cursor = excluded.cursor, seen_at = MAX(seen_at, excluded.seen_at)";

fn upsert(conn: &Connection, p: &DevicePosition) -> Result<(), StoreError> {
    conn.prepare_cached(UPSERT_POSITION)
        .and_then(|mut s| {
            s.execute(params![
                p.workspace_id.as_str(),
                p.device_id,
                p.cursor as i64,
                p.seen_at_ms as i64
            ])
        })
        .map(|_| ())
        .map_err(internal)
}

/// Stores buffered positions in one transaction.
pub(super) fn record_positions(
    conn: &mut Connection,
    positions: &[DevicePosition],
) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    for p in positions {
        upsert(&tx, p)?;
    }
    tx.commit().map_err(internal)
}

/// Records a reported position when `check_position` allows it.
pub(super) fn report_position(
    conn: &mut Connection,
    access: &Access,
    position: &DevicePosition,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(internal)?;
    let ws = &position.workspace_id;
    require(&tx, ws, access, Role::Viewer)?;
    let (head, _) = workspace_positions(&tx, ws.as_str())?;
    let recorded = tx
        .prepare_cached(
            "SELECT cursor FROM device_positions WHERE workspace_id = ?1 AND device_id = ?2",
        )
        .and_then(|mut s| {
            s.query_row([ws.as_str(), position.device_id.as_str()], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
        })
        .map_err(internal)?;
    check_position(position.cursor, head, recorded.map(|c| c.max(0) as u64))?;
    upsert(&tx, position)?;
    tx.commit().map_err(internal)
}
