//! Reading and managing a workspace itself (PROTOCOL.md section 4,
//! workspaces and members).

use super::{alice, workspace};
use std::sync::Arc;
use sync_core::wire::MemberInfo;
use sync_core::Role;
use sync_server::store::{Access, Store, StoreError};

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
