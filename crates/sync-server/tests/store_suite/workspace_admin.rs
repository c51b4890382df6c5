//! Reading and managing a workspace itself (PROTOCOL.md section 4,
//! workspaces and members).

use super::{alice, all_changes, put, workspace, T0};
use std::sync::Arc;
use sync_core::wire::MemberInfo;
use sync_core::Role;
use sync_server::store::{Access, OpOutcome, SnapshotQuery, Store, StoreError, GC_BATCH};

fn member(user_id: &str) -> Access {
    Access::Member {
        user_id: user_id.into(),
    }
}

/// Any member lists the members, ordered by user id; others may not.
pub async fn members_are_listed_by_user_id_to_any_member(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    for (user, role) in [("victor", Role::Viewer), ("bob", Role::Editor)] {
        store.set_member(&ws, &alice(), user, role).await.unwrap();
    }
    let listed = store.members(&ws, &member("victor")).await.unwrap();
    let expected = [
        ("alice", Role::Owner),
        ("bob", Role::Editor),
        ("victor", Role::Viewer),
    ]
    .map(|(user_id, role)| MemberInfo {
        user_id: user_id.into(),
        role,
    });
    assert_eq!(listed, expected);
    let refused = store.members(&ws, &member("mallory")).await;
    assert!(matches!(refused, Err(StoreError::Forbidden(_))));
}

/// Any member reads the workspace; only an owner renames it.
pub async fn owners_rename_a_workspace_any_member_reads_it(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    store
        .set_member(&ws, &alice(), "bob", Role::Editor)
        .await
        .unwrap();
    let refused = store.rename_workspace(&ws, &member("bob"), "x").await;
    assert!(matches!(refused, Err(StoreError::Forbidden(_))));
    let renamed = store.rename_workspace(&ws, &alice(), "Team").await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.role), ("Team", Role::Owner));
    let read = store.workspace(&ws, &member("bob")).await.unwrap();
    assert_eq!(
        (read.workspace_id, read.name.as_str(), read.role),
        (ws.to_string(), "Team", Role::Editor)
    );
    let stranger = store.workspace(&ws, &member("mallory")).await;
    assert!(matches!(stranger, Err(StoreError::Forbidden(_))));
}

/// Only an owner deletes a workspace; afterwards it is unknown, and none of
/// its data is left (a workspace made again under its id starts empty: no
/// log, no records, no op ids), while other workspaces keep theirs.
pub async fn deleting_a_workspace_removes_it_and_all_its_data(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let other = workspace(&store).await;
    // More than one purge batch of every table.
    let ops: Vec<_> = (0..GC_BATCH + 100)
        .map(|i| put(&format!("m{i}"), 1, T0))
        .collect();
    for chunk in ops.chunks(500) {
        store.push(&ws, &alice(), chunk.to_vec(), T0).await.unwrap();
    }
    store
        .push(&other, &alice(), vec![put("kept", 1, T0)], T0)
        .await
        .unwrap();
    store
        .set_member(&ws, &alice(), "bob", Role::Editor)
        .await
        .unwrap();
    let refused = store.delete_workspace(&ws, &member("bob")).await;
    assert!(matches!(refused, Err(StoreError::Forbidden(_))));
    store.delete_workspace(&ws, &alice()).await.unwrap();
    assert!(matches!(
        store.workspace(&ws, &alice()).await,
        Err(StoreError::UnknownWorkspace)
    ));
    assert!(matches!(
        store.members(&ws, &alice()).await,
        Err(StoreError::UnknownWorkspace)
    ));
    assert_eq!(all_changes(&store, &other, 0).await.unwrap().len(), 1);

    store
        .create_workspace(&ws, "again", "alice", T0)
        .await
        .unwrap();
    assert!(all_changes(&store, &ws, 0).await.unwrap().is_empty());
    let query = SnapshotQuery {
        after: None,
        snapshot_version: None,
        limit: 10,
        project_id: None,
        tables: None,
    };
    let left = store.snapshot(&ws, &alice(), query).await.unwrap();
    assert!(left.items.is_empty(), "no record is left");
    let again = store
        .push(&ws, &alice(), ops[..1].to_vec(), T0)
        .await
        .unwrap();
    assert!(
        matches!(again.outcomes[0], OpOutcome::Applied(1)),
        "its op ids are gone too"
    );
    let members = store.members(&ws, &alice()).await.unwrap();
    assert_eq!(members.len(), 1, "bob's membership went with it");
}
