//! Group commit, the same on both stores (`store/group.rs`): what a group
//! whose `COMMIT` fails answers. The caller makes the commit of any
//! transaction that wrote the record `commit-fails` fail (a deferred
//! constraint), and holds the store's write lock until `release`.

use super::{alice, all_changes, put, T0};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use sync_core::WorkspaceId;
use sync_server::store::{OpOutcome, PushOutcome, Store, StoreError};

/// The pk whose write makes its transaction's `COMMIT` fail.
pub const COMMIT_FAILS: &str = "commit-fails";

/// The one answer every push of a failed group gets, on both stores: 503
/// `store_unavailable`, saying nothing was written.
pub fn assert_failed_group_answer(answer: &Result<PushOutcome, StoreError>) {
    assert!(
        matches!(answer, Err(StoreError::Unavailable(m)) if m.contains("nothing was written")),
        "{answer:?}"
    );
}

/// A group whose `COMMIT` fails acknowledges none of its pushes: each is
/// answered `Unavailable`, nothing of them is in the log, and the workspace
/// goes on from where it was. A lone push whose commit fails gets the same.
pub async fn a_group_whose_commit_fails_answers_every_push_unavailable(
    store: Arc<dyn Store>,
    ws: WorkspaceId,
    release: impl Future<Output = ()>,
) {
    let spawn = |pk: String| {
        let (store, ws) = (store.clone(), ws.clone());
        tokio::spawn(async move { store.push(&ws, &alice(), vec![put(&pk, 1, T0)], T0).await })
    };
    // The first push waits for the lock alone; the others queue behind it
    // and make the next group, with the push whose commit fails among them.
    let first = spawn("first".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut queued: Vec<_> = (0..4).map(|i| spawn(format!("m{i}"))).collect();
    queued.push(spawn(COMMIT_FAILS.into()));
    queued.extend((4..8).map(|i| spawn(format!("m{i}"))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.await;

    let first = first.await.unwrap().unwrap();
    assert!(matches!(first.outcomes[..], [OpOutcome::Applied(1)]));
    for push in queued {
        assert_failed_group_answer(&push.await.unwrap());
    }
    let log = all_changes(&store, &ws, 0).await.unwrap();
    assert_eq!(
        log.iter().map(|c| c.pk.as_str()).collect::<Vec<_>>(),
        ["first"],
        "nothing of the failed group was written"
    );
    assert_failed_group_answer(&spawn(COMMIT_FAILS.into()).await.unwrap());
    let next = spawn("after".into()).await.unwrap().unwrap();
    assert!(matches!(next.outcomes[..], [OpOutcome::Applied(2)]));
}
