//! One workspace on Postgres: read, rename, delete. A delete removes the
//! workspace row and its members in one transaction (every later call is
//! `UnknownWorkspace`; a push holding the row's lock commits first), then
//! its data in batches (`purge_batch`), each its own short transaction.

use super::connect::{column_error, pg_error};
use super::members::{require, Lock};
use crate::store::{Access, StoreError, GC_BATCH};
use deadpool_postgres::{Client, Transaction};
use sync_core::wire::WorkspaceInfo;
use sync_core::{Role, WorkspaceId};

/// The workspace as the caller sees it, when their role is at least `needed`.
pub(super) async fn read_workspace(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    access: &Access,
    needed: Role,
    lock: Lock,
) -> Result<WorkspaceInfo, StoreError> {
    let role = require(tx, ws, access, needed, lock).await?.role;
    let name: String = tx
        .query_one("SELECT name FROM workspaces WHERE id = $1", &[&ws.as_str()])
        .await
        .map_err(pg_error)?
        .try_get(0)
        .map_err(column_error)?;
    Ok(WorkspaceInfo {
        workspace_id: ws.to_string(),
        name,
        role,
    })
}

/// Renames the workspace (owners only).
pub(super) async fn rename_workspace(
    client: &mut Client,
    ws: &WorkspaceId,
    access: &Access,
    name: &str,
) -> Result<WorkspaceInfo, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    require(&tx, ws, access, Role::Owner, Lock::Workspace).await?;
    tx.execute(
        "UPDATE workspaces SET name = $2 WHERE id = $1",
        &[&ws.as_str(), &name],
    )
    .await
    .map_err(pg_error)?;
    let info = read_workspace(&tx, ws, access, Role::Owner, Lock::None).await?;
    tx.commit().await.map_err(pg_error)?;
    Ok(info)
}

/// Removes the workspace, its members and device positions (owners only).
pub(super) async fn remove_workspace(
    client: &mut Client,
    ws: &WorkspaceId,
    access: &Access,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    require(&tx, ws, access, Role::Owner, Lock::Workspace).await?;
    for sql in [
        "DELETE FROM members WHERE workspace_id = $1",
        "DELETE FROM device_positions WHERE workspace_id = $1",
        "DELETE FROM workspaces WHERE id = $1",
    ] {
        tx.execute(sql, &[&ws.as_str()]).await.map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)
}

/// Deletes up to [`GC_BATCH`] rows of each data table of a removed
/// workspace; the number deleted (0: nothing is left).
pub(super) async fn purge_batch(client: &mut Client, ws: &WorkspaceId) -> Result<u64, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let mut deleted = 0;
    for sql in [
        "DELETE FROM change_log WHERE workspace_id = $1 AND server_version IN
             (SELECT server_version FROM change_log WHERE workspace_id = $1 LIMIT $2)",
        "DELETE FROM records WHERE workspace_id = $1 AND (table_name, pk) IN
             (SELECT table_name, pk FROM records WHERE workspace_id = $1 LIMIT $2)",
    ] {
        deleted += tx
            .execute(sql, &[&ws.as_str(), &(GC_BATCH as i64)])
            .await
            .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(deleted)
}
