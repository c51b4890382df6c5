//! One workspace on SQLite: read, rename, delete. A delete removes the
//! workspace row and its members in one transaction (every later call is
//! `UnknownWorkspace`), then its data in batches (`purge_batch`), each its
//! own short write, so other workspaces' pushes interleave.

use super::internal;
use super::members::require;
use crate::store::{Access, StoreError, GC_BATCH};
use rusqlite::{params, Connection, TransactionBehavior};
use sync_core::wire::WorkspaceInfo;
use sync_core::{Role, WorkspaceId};

/// The workspace as the caller sees it, when their role is at least `needed`.
pub(super) fn read_workspace(
    conn: &Connection,
    ws: &WorkspaceId,
    access: &Access,
    needed: Role,
) -> Result<WorkspaceInfo, StoreError> {
    let role = require(conn, ws, access, needed)?;
    let name = conn
        .query_row(
            "SELECT name FROM workspaces WHERE id = ?1",
            [ws.as_str()],
            |r| r.get::<_, String>(0),
        )
        .map_err(internal)?;
    Ok(WorkspaceInfo {
        workspace_id: ws.to_string(),
        name,
        role,
    })
}

/// Renames the workspace (owners only).
pub(super) fn rename_workspace(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
    name: &str,
) -> Result<WorkspaceInfo, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(internal)?;
    require(&tx, ws, access, Role::Owner)?;
    tx.execute(
        "UPDATE workspaces SET name = ?2 WHERE id = ?1",
        params![ws.as_str(), name],
    )
    .map_err(internal)?;
    let info = read_workspace(&tx, ws, access, Role::Owner)?;
    tx.commit().map_err(internal)?;
    Ok(info)
}

/// Removes the workspace, its members and device positions (owners only).
pub(super) fn remove_workspace(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(internal)?;
    require(&tx, ws, access, Role::Owner)?;
    for sql in [
        "DELETE FROM members WHERE workspace_id = ?1",
        "DELETE FROM device_positions WHERE workspace_id = ?1",
        "DELETE FROM workspaces WHERE id = ?1",
    ] {
        tx.execute(sql, [ws.as_str()]).map_err(internal)?;
    }
    tx.commit().map_err(internal)
}

/// Deletes up to [`GC_BATCH`] rows of each data table of a removed
/// workspace; the number deleted (0: nothing is left).
pub(super) fn purge_batch(conn: &mut Connection, ws: &WorkspaceId) -> Result<u64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(internal)?;
    let mut deleted = 0;
    for sql in [
        "DELETE FROM change_log WHERE workspace_id = ?1 AND server_version IN
             (SELECT server_version FROM change_log WHERE workspace_id = ?1 LIMIT ?2)",
        "DELETE FROM applied_ops WHERE workspace_id = ?1 AND op_id IN
             (SELECT op_id FROM applied_ops WHERE workspace_id = ?1 LIMIT ?2)",
        "DELETE FROM records WHERE workspace_id = ?1 AND (table_name, pk) IN
             (SELECT table_name, pk FROM records WHERE workspace_id = ?1 LIMIT ?2)",
    ] {
        deleted += tx
            .execute(sql, params![ws.as_str(), GC_BATCH as i64])
            .map_err(internal)? as u64;
    }
    tx.commit().map_err(internal)?;
    Ok(deleted)
}
