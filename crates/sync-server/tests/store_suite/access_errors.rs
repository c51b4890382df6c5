//! The error of every `Store` method for a workspace that does not exist
//! and for a caller who is not a member: the same on both stores, so the
//! gateway answers `unknown_workspace` (404) and `forbidden` (403) whatever
//! the store.

use super::{alice, put, workspace, T0};
use std::sync::Arc;
use sync_core::retention::RetentionPolicy;
use sync_core::{Role, WorkspaceId};
use sync_server::store::{Access, ChangesQuery, DevicePosition, SnapshotQuery, Store, StoreError};

/// The kind of a method's answer, for comparing answers across methods.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    UnknownWorkspace,
    Forbidden,
    Other(String),
}

fn kind<T>(result: Result<T, StoreError>) -> Answer {
    match result {
        Ok(_) => Answer::Ok,
        Err(StoreError::UnknownWorkspace) => Answer::UnknownWorkspace,
        Err(StoreError::Forbidden(_)) => Answer::Forbidden,
        Err(other) => Answer::Other(format!("{other:?}")),
    }
}

/// Every method that checks the caller's access, by name, with its answer.
async fn access_checked(
    store: &Arc<dyn Store>,
    ws: &WorkspaceId,
    access: &Access,
) -> Vec<(&'static str, Answer)> {
    let query = || ChangesQuery {
        cursor: 0,
        limit: 10,
        project_id: None,
    };
    let snapshot = SnapshotQuery {
        after: None,
        snapshot_version: None,
        limit: 10,
        project_id: None,
    };
    vec![
        (
            "set_member",
            kind(store.set_member(ws, access, "bob", Role::Editor).await),
        ),
        (
            "remove_member",
            kind(store.remove_member(ws, access, "bob").await),
        ),
        ("role_of", kind(store.role_of(ws, access).await)),
        (
            "push",
            kind(store.push(ws, access, vec![put("m1", 1, T0)], T0).await),
        ),
        ("changes", kind(store.changes(ws, access, query()).await)),
        (
            "changes_json",
            kind(store.changes_json(ws, access, query()).await),
        ),
        ("snapshot", kind(store.snapshot(ws, access, snapshot).await)),
        (
            "record",
            kind(store.record(ws, access, "messages", "m1").await),
        ),
    ]
}

fn expect_all(answers: Vec<(&'static str, Answer)>, expected: Answer) {
    let wrong: Vec<_> = answers.iter().filter(|(_, a)| *a != expected).collect();
    assert!(wrong.is_empty(), "expected {expected:?}, got {wrong:?}");
}

/// A missing workspace is `UnknownWorkspace` for every method that names
/// one, whoever asks; the maintenance methods that check no access answer
/// it too, except `record_positions`, which drops positions of workspaces
/// that are gone (a device may report one that was just deleted).
pub async fn every_method_reports_a_missing_workspace(store: Arc<dyn Store>) {
    let missing = WorkspaceId::parse("missing").unwrap();
    for access in [alice(), Access::Admin] {
        expect_all(
            access_checked(&store, &missing, &access).await,
            Answer::UnknownWorkspace,
        );
    }
    let maintenance = vec![
        ("log_since", kind(store.log_since(&missing, 0, 10).await)),
        ("head", kind(store.head(&missing).await)),
        (
            "collect_garbage",
            kind(
                store
                    .collect_garbage(&missing, &RetentionPolicy::default(), T0, true)
                    .await,
            ),
        ),
    ];
    expect_all(maintenance, Answer::UnknownWorkspace);
    let position = DevicePosition {
        workspace_id: missing.clone(),
        device_id: "abcdefabcdefabcd".into(),
        cursor: 0,
        seen_at_ms: T0,
    };
    assert_eq!(
        kind(store.record_positions(vec![position]).await),
        Answer::Ok
    );
    assert!(!store.workspace_ids().await.unwrap().contains(&missing));
}

/// A caller who is not a member is `Forbidden` for every method that checks
/// access, and is told nothing more (not even whether a record exists).
pub async fn every_method_refuses_a_non_member(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    store
        .push(&ws, &alice(), vec![put("m1", 1, T0)], T0)
        .await
        .unwrap();
    let mallory = Access::Member {
        user_id: "mallory".into(),
    };
    expect_all(
        access_checked(&store, &ws, &mallory).await,
        Answer::Forbidden,
    );
    assert!(
        store.list_workspaces("mallory").await.unwrap().is_empty(),
        "a non-member lists no workspace"
    );
}
