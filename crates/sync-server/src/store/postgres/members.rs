//! Workspaces and members on Postgres: the access check, read with the
//! workspace row every call starts from (`require`), and the workspace and
//! member SQL. The rules are `store::access`'s; this file only reads and
//! writes what they need.

use super::connect::{column_error, pg_error};
use super::u64_at;
use crate::store::{check_member_change, member_user, require_role, role_from};
use crate::store::{Access, StoreError};
use deadpool_postgres::{Client, Transaction};
use sync_core::wire::{MemberInfo, WorkspaceInfo};
use sync_core::{Role, ServerVersion, WorkspaceId};

/// A workspace's positions as read with the access check.
pub(super) struct WorkspaceRow {
    pub head: ServerVersion,
    pub oldest_retained_version: ServerVersion,
    pub role: Role,
}

/// Whether the access check also locks the workspace row (membership
/// changes do, so two owners cannot both demote each other).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    None,
    Workspace,
}

/// Checks the caller's role inside `tx`. Errors: unknown workspace, not a
/// member, role below `needed`.
pub(super) async fn require(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    access: &Access,
    needed: Role,
    lock: Lock,
) -> Result<WorkspaceRow, StoreError> {
    let sql = match lock {
        Lock::None => {
            "SELECT w.head, w.oldest_retained_version, m.role FROM workspaces w
             LEFT JOIN members m ON m.workspace_id = w.id AND m.user_id = $2
             WHERE w.id = $1"
        }
        Lock::Workspace => {
            "SELECT w.head, w.oldest_retained_version, m.role FROM workspaces w
             LEFT JOIN members m ON m.workspace_id = w.id AND m.user_id = $2
             WHERE w.id = $1 FOR NO KEY UPDATE OF w"
        }
    };
    let user = member_user(access);
    let stmt = tx.prepare_cached(sql).await.map_err(pg_error)?;
    let row = tx
        .query_opt(&stmt, &[&ws.as_str(), &user])
        .await
        .map_err(pg_error)?
        .ok_or(StoreError::UnknownWorkspace)?;
    let member_role: Option<String> = row.try_get(2).map_err(column_error)?;
    let role = require_role(role_from(access, member_role.as_deref())?, needed)?;
    Ok(WorkspaceRow {
        head: u64_at(&row, 0)?,
        oldest_retained_version: u64_at(&row, 1)?,
        role,
    })
}

/// Creates `id` with `owner` as its one member.
pub(super) async fn create_workspace(
    client: &mut Client,
    id: &WorkspaceId,
    name: &str,
    owner: &str,
    now_ms: u64,
) -> Result<WorkspaceInfo, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute(
        "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)",
        &[&id.as_str(), &name, &(now_ms as i64)],
    )
    .await
    .map_err(pg_error)?;
    tx.execute(
        "INSERT INTO members (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
        &[&id.as_str(), &owner],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(WorkspaceInfo {
        workspace_id: id.to_string(),
        name: name.to_owned(),
        role: Role::Owner,
    })
}

/// Creates `id`, named after itself and without members, unless it exists.
pub(super) async fn ensure_workspace(
    client: &Client,
    id: &WorkspaceId,
    now_ms: u64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
            &[&id.as_str(), &(now_ms as i64)],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// The workspaces `user_id` is a member of, oldest first.
pub(super) async fn list_workspaces(
    client: &Client,
    user_id: &str,
) -> Result<Vec<WorkspaceInfo>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT w.id, w.name, m.role FROM members m JOIN workspaces w ON w.id = m.workspace_id
             WHERE m.user_id = $1 ORDER BY w.created_at, w.id",
        )
        .await
        .map_err(pg_error)?;
    let rows = client.query(&stmt, &[&user_id]).await.map_err(pg_error)?;
    let mut list = Vec::new();
    for r in &rows {
        let role: String = r.try_get(2).map_err(column_error)?;
        if let Some(role) = Role::parse(&role) {
            list.push(WorkspaceInfo {
                workspace_id: r.try_get(0).map_err(column_error)?,
                name: r.try_get(1).map_err(column_error)?,
                role,
            });
        }
    }
    Ok(list)
}

/// The members of `ws` ordered by user id, for any member, on one snapshot.
pub(super) async fn list_members(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    access: &Access,
) -> Result<Vec<MemberInfo>, StoreError> {
    require(tx, ws, access, Role::Viewer, Lock::None).await?;
    let stmt = tx
        .prepare_cached(
            "SELECT user_id, role FROM members WHERE workspace_id = $1 ORDER BY user_id",
        )
        .await
        .map_err(pg_error)?;
    let rows = tx.query(&stmt, &[&ws.as_str()]).await.map_err(pg_error)?;
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        let role: String = r.try_get(1).map_err(column_error)?;
        if let Some(role) = Role::parse(&role) {
            list.push(MemberInfo {
                user_id: r.try_get(0).map_err(column_error)?,
                role,
            });
        }
    }
    Ok(list)
}

/// Gives `user_id` the role `new_role`, or removes them (`None`), when
/// [`check_member_change`] allows it; the workspace row stays locked from
/// the check to the commit.
pub(super) async fn change_member(
    client: &mut Client,
    ws: &WorkspaceId,
    access: &Access,
    user_id: &str,
    new_role: Option<Role>,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let caller = require(&tx, ws, access, Role::Viewer, Lock::Workspace)
        .await?
        .role;
    check_member_change(caller, new_role, other_owners(&tx, ws, user_id).await?)?;
    match new_role {
        Some(role) => {
            tx.execute(
                "INSERT INTO members (workspace_id, user_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
                &[&ws.as_str(), &user_id, &role.as_str()],
            )
            .await
            .map_err(pg_error)?;
        }
        None => {
            let removed = tx
                .execute(
                    "DELETE FROM members WHERE workspace_id = $1 AND user_id = $2",
                    &[&ws.as_str(), &user_id],
                )
                .await
                .map_err(pg_error)?;
            if removed == 0 {
                return Err(StoreError::MemberNotFound);
            }
        }
    }
    tx.commit().await.map_err(pg_error)
}

/// How many owners `ws` has besides `user_id`.
async fn other_owners(
    tx: &Transaction<'_>,
    ws: &WorkspaceId,
    user_id: &str,
) -> Result<u64, StoreError> {
    let row = tx
        .query_one(
            "SELECT count(*) FROM members WHERE workspace_id = $1 AND role = 'owner' AND user_id <> $2",
            &[&ws.as_str(), &user_id],
        )
        .await
        .map_err(pg_error)?;
    u64_at(&row, 0)
}
