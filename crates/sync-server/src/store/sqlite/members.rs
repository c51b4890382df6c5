//! Workspaces and members on SQLite: the access check each transaction
//! starts with (`role_in`, `require`), and the workspace and member SQL. The
//! rules are `store::access`'s; this file only reads and writes what they
//! need.

use super::internal;
use crate::store::{check_member_change, member_user, require_role, role_from};
use crate::store::{Access, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use sync_core::wire::{MemberInfo, WorkspaceInfo};
use sync_core::{Role, WorkspaceId};

/// The caller's role, checked inside the transaction. Errors: unknown workspace, not a member.
pub(super) fn role_in(
    conn: &Connection,
    ws: &WorkspaceId,
    access: &Access,
) -> Result<Role, StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM workspaces WHERE id = ?1")
        .and_then(|mut s| s.exists([ws.as_str()]))
        .map_err(internal)?;
    if !exists {
        return Err(StoreError::UnknownWorkspace);
    }
    let member_role = match member_user(access) {
        Some(user_id) => conn
            .prepare_cached("SELECT role FROM members WHERE workspace_id = ?1 AND user_id = ?2")
            .and_then(|mut s| {
                s.query_row([ws.as_str(), user_id], |r| r.get::<_, String>(0))
                    .optional()
            })
            .map_err(internal)?,
        None => None,
    };
    role_from(access, member_role.as_deref())
}

/// The caller's role, when it is at least `needed`.
pub(super) fn require(
    conn: &Connection,
    ws: &WorkspaceId,
    access: &Access,
    needed: Role,
) -> Result<Role, StoreError> {
    require_role(role_in(conn, ws, access)?, needed)
}

/// Creates `id` with `owner` as its one member.
pub(super) fn create_workspace(
    conn: &mut Connection,
    id: &WorkspaceId,
    name: String,
    owner: &str,
    now_ms: u64,
) -> Result<WorkspaceInfo, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    tx.execute(
        "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![id.as_str(), name, now_ms as i64],
    )
    .map_err(internal)?;
    tx.execute(
        "INSERT INTO members (workspace_id, user_id, role) VALUES (?1, ?2, 'owner')",
        params![id.as_str(), owner],
    )
    .map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok(WorkspaceInfo {
        workspace_id: id.to_string(),
        name,
        role: Role::Owner,
    })
}

/// Creates `id`, named after itself and without members, unless it exists.
pub(super) fn ensure_workspace(
    conn: &Connection,
    id: &WorkspaceId,
    now_ms: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
        params![id.as_str(), now_ms as i64],
    )
    .map(drop)
    .map_err(internal)
}

/// The workspaces `user_id` is a member of, oldest first.
pub(super) fn list_workspaces(
    conn: &Connection,
    user_id: &str,
) -> Result<Vec<WorkspaceInfo>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT w.id, w.name, m.role FROM members m JOIN workspaces w ON w.id = m.workspace_id
             WHERE m.user_id = ?1 ORDER BY w.created_at, w.id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map([user_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(internal)?;
    let mut list = Vec::new();
    for row in rows {
        let (workspace_id, name, role) = row.map_err(internal)?;
        if let Some(role) = Role::parse(&role) {
            list.push(WorkspaceInfo {
                workspace_id,
                name,
                role,
            });
        }
    }
    Ok(list)
}

/// The members of `ws` ordered by user id, for any member.
pub(super) fn list_members(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
) -> Result<Vec<MemberInfo>, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    require(&tx, ws, access, Role::Viewer)?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT user_id, role FROM members WHERE workspace_id = ?1 ORDER BY user_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map([ws.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    Ok(rows
        .into_iter()
        .filter_map(|(user_id, role)| {
            Some(MemberInfo {
                user_id,
                role: Role::parse(&role)?,
            })
        })
        .collect())
}

/// Gives `user_id` the role `new_role`, or removes them (`None`), when
/// [`check_member_change`] allows it, in one `BEGIN IMMEDIATE` transaction.
pub(super) fn change_member(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
    user_id: &str,
    new_role: Option<Role>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(internal)?;
    let caller = role_in(&tx, ws, access)?;
    check_member_change(caller, new_role, other_owners(&tx, ws, user_id)?)?;
    match new_role {
        Some(role) => {
            tx.execute(
                "INSERT INTO members (workspace_id, user_id, role) VALUES (?1, ?2, ?3)
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
                params![ws.as_str(), user_id, role.as_str()],
            )
            .map_err(internal)?;
        }
        None => {
            let removed = tx
                .execute(
                    "DELETE FROM members WHERE workspace_id = ?1 AND user_id = ?2",
                    params![ws.as_str(), user_id],
                )
                .map_err(internal)?;
            if removed == 0 {
                return Err(StoreError::MemberNotFound);
            }
        }
    }
    tx.commit().map_err(internal)
}

/// How many owners `ws` has besides `user_id`.
fn other_owners(tx: &Transaction<'_>, ws: &WorkspaceId, user_id: &str) -> Result<u64, StoreError> {
    tx.query_row(
        "SELECT COUNT(*) FROM members WHERE workspace_id = ?1 AND role = 'owner' AND user_id <> ?2",
        params![ws.as_str(), user_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
    .map_err(internal)
}
