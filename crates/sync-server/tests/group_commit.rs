//! Group commit on the SQLite store (`store/sqlite/writer.rs`): pushes that
//! queue while a commit is in flight share the next one, each keeps its own
//! all-or-nothing outcome, versions stay gap-free, and nothing is answered
//! before its group commits. The writer is held up by a second connection
//! holding SQLite's write lock, so the groups are made, not hoped for.

#[allow(unused_imports)] // the suite's runner is not used here, only its helpers
mod store_suite;

use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store_suite::group::{assert_failed_group_answer, COMMIT_FAILS};
use store_suite::{alice, all_changes, op, put, workspace, T0};
use sync_core::{Role, TableConfig, WorkspaceId};
use sync_server::store::sqlite::SqliteStore;
use sync_server::store::{Access, OpOutcome, PushOutcome, Store, StoreError};
use tokio::task::JoinHandle;

fn open(dir: &Path) -> (SqliteStore, Arc<dyn Store>) {
    let store = SqliteStore::open(&dir.join("group.db"), TableConfig::or3_chat()).unwrap();
    (store.clone(), Arc::new(store))
}

/// Takes SQLite's write lock from another connection until the returned
/// connection commits.
fn hold_write_lock(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join("group.db")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

fn spawn_push(
    store: &Arc<dyn Store>,
    ws: &WorkspaceId,
    access: Access,
    pks: &[&str],
) -> JoinHandle<Result<PushOutcome, StoreError>> {
    let (store, ws) = (store.clone(), ws.clone());
    let ops = pks.iter().map(|pk| put(pk, 1, T0)).collect();
    tokio::spawn(async move { store.push(&ws, &access, ops, T0).await })
}

fn applied_versions(outcome: &PushOutcome) -> Vec<u64> {
    outcome
        .outcomes
        .iter()
        .map(|o| match o {
            OpOutcome::Applied(v) => *v,
            other => panic!("expected applied, got {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_pushes_share_one_commit_and_keep_their_own_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, store) = open(dir.path());
    let workspaces = [
        workspace(&store).await,
        workspace(&store).await,
        workspace(&store).await,
    ];
    let bob = Access::Member {
        user_id: "bob".into(),
    };
    store
        .set_member(&workspaces[0], &alice(), "bob", Role::Viewer)
        .await
        .unwrap();
    // A write that fails half-way through its push: the record upsert of
    // `boom` aborts after the push's first op was already written.
    Connection::open(dir.path().join("group.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.pk = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let (groups_before, pushes_before) = sqlite.group_commits();

    let lock = hold_write_lock(dir.path());
    // The writer takes this push and waits for the lock in `BEGIN`...
    let first = spawn_push(&store, &workspaces[0], alice(), &["first"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while these queue behind it.
    let mut good = Vec::new();
    for i in 0..30 {
        let ws = &workspaces[i % 3];
        let pk = format!("m{i}");
        good.push((i % 3, spawn_push(&store, ws, alice(), &[&pk])));
    }
    let viewer = spawn_push(&store, &workspaces[0], bob, &["by-viewer"]);
    let unknown = spawn_push(&store, &WorkspaceId::generate(), alice(), &["lost"]);
    let half_way = spawn_push(&store, &workspaces[1], alice(), &["before-boom", "boom"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !first.is_finished(),
        "nothing is answered before its group commits"
    );
    assert!(good.iter().all(|(_, p)| !p.is_finished()));
    lock.execute_batch("COMMIT").unwrap();

    assert_eq!(applied_versions(&first.await.unwrap().unwrap()), [1]);
    // Each push's answer is the head right after it (its own version), and
    // each workspace's versions are gap-free (tasks reach the queue in any
    // order, so which push got which version is not fixed).
    let mut versions_of: [Vec<u64>; 3] = [vec![1], vec![], vec![]];
    for (w, push) in good {
        let outcome = push.await.unwrap().unwrap();
        assert_eq!(applied_versions(&outcome), [outcome.server_version]);
        versions_of[w].push(outcome.server_version);
    }
    let mut expected_next = [0u64; 3];
    for (w, versions) in versions_of.iter_mut().enumerate() {
        versions.sort();
        assert_eq!(*versions, (1..=versions.len() as u64).collect::<Vec<_>>());
        expected_next[w] = versions.len() as u64 + 1;
    }
    assert!(matches!(
        viewer.await.unwrap(),
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        unknown.await.unwrap(),
        Err(StoreError::UnknownWorkspace)
    ));
    assert!(matches!(
        half_way.await.unwrap(),
        Err(StoreError::Internal(_))
    ));

    let (groups, pushes) = sqlite.group_commits();
    assert_eq!(
        pushes - pushes_before,
        34,
        "every push went through a group"
    );
    assert!(
        groups - groups_before <= 2,
        "34 pushes took {} commits: the 33 queued ones share one",
        groups - groups_before
    );

    // The failed pushes left nothing: not the viewer's row, not the op that
    // came before `boom` in its push.
    for (w, ws) in workspaces.iter().enumerate() {
        let changes = all_changes(&store, ws, 0).await.unwrap();
        let versions: Vec<u64> = changes.iter().map(|c| c.server_version).collect();
        let count = expected_next[w] - 1;
        assert_eq!(versions, (1..=count).collect::<Vec<_>>(), "gap-free log");
        assert!(changes
            .iter()
            .all(|c| c.pk != "by-viewer" && c.pk != "before-boom" && c.pk != "boom"));
        assert_eq!(store.head(ws).await.unwrap(), count);
    }
    // The workspace whose push failed half-way goes on from where it was.
    let next = store
        .push(&workspaces[1], &alice(), vec![put("after", 1, T0)], T0)
        .await
        .unwrap();
    assert_eq!(applied_versions(&next), [expected_next[1]]);
}

#[tokio::test]
async fn a_lone_push_commits_at_once_in_a_group_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, store) = open(dir.path());
    let ws = workspace(&store).await;
    let (groups_before, _) = sqlite.group_commits();
    for i in 1..=5u64 {
        let outcome = store
            .push(&ws, &alice(), vec![put(&format!("m{i}"), 1, T0)], T0)
            .await
            .unwrap();
        assert_eq!(applied_versions(&outcome), [i]);
    }
    assert_eq!(sqlite.group_commits().0 - groups_before, 5);
}

/// A group whose transaction cannot start (the lock is held past the busy
/// timeout) answers every push with `unavailable` and writes none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_that_cannot_begin_acknowledges_none_of_its_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let (_sqlite, store) = open(dir.path());
    let ws = workspace(&store).await;
    let lock = hold_write_lock(dir.path());
    let pushes: Vec<_> = (0..5)
        .map(|i| spawn_push(&store, &ws, alice(), &[&format!("m{i}")]))
        .collect();
    for push in pushes {
        let answer = tokio::time::timeout(Duration::from_secs(30), push)
            .await
            .expect("the writer gives up after its busy timeout")
            .unwrap();
        assert_failed_group_answer(&answer);
    }
    lock.execute_batch("COMMIT").unwrap();
    assert!(all_changes(&store, &ws, 0).await.unwrap().is_empty());
    let outcome = store
        .push(&ws, &alice(), vec![put("later", 1, T0)], T0)
        .await
        .unwrap();
    assert_eq!(applied_versions(&outcome), [1]);
}

/// The same rule as on Postgres (`store_suite/group.rs`): here a deferred
/// foreign key that a trigger breaks makes the `COMMIT` fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_whose_commit_fails_answers_every_push_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let (_sqlite, store) = open(dir.path());
    let ws = workspace(&store).await;
    Connection::open(dir.path().join("group.db"))
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE commit_guard (
                 ref TEXT REFERENCES records_nowhere (id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TABLE records_nowhere (id TEXT PRIMARY KEY);
             CREATE TRIGGER commit_fails AFTER INSERT ON records WHEN NEW.pk = '{COMMIT_FAILS}'
             BEGIN INSERT INTO commit_guard VALUES ('dangling'); END;"
        ))
        .unwrap();
    let lock = hold_write_lock(dir.path());
    store_suite::group::a_group_whose_commit_fails_answers_every_push_unavailable(
        store,
        ws,
        async move { lock.execute_batch("COMMIT").unwrap() },
    )
    .await;
}

/// A group stops taking pushes once it holds 20,000 ops: two pushes of
/// 10,000 ops fill one, and the push queued after them waits for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_stops_taking_pushes_at_its_op_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, store) = open(dir.path());
    let ws = workspace(&store).await;
    let lock = hold_write_lock(dir.path());
    let first = spawn_push(&store, &ws, alice(), &["first"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (groups_before, _) = sqlite.group_commits();
    let big: Vec<String> = (0..10_000).map(|i| format!("b{i}")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    let mut queued = Vec::new();
    for _ in 0..2 {
        queued.push(spawn_push(&store, &ws, alice(), &big));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    queued.push(spawn_push(&store, &ws, alice(), &["small"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.execute_batch("COMMIT").unwrap();
    first.await.unwrap().unwrap();
    for push in queued {
        push.await.unwrap().unwrap();
    }
    // The lone first push's group, then the two big pushes, then the small one.
    assert_eq!(sqlite.group_commits().0 - groups_before, 3);
}

/// The writer never checkpoints inside its commits (`wal_autocheckpoint=0`):
/// the checkpointer thread copies the WAL into the database beside it (the
/// writer checkpoints itself only past 256 MB of WAL that did not start over),
/// and once the WAL starts over, commits no longer call for checkpoints though
/// its file keeps its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_run_beside_the_writer_and_keep_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (sqlite, store) = open(dir.path());
    let ws = workspace(&store).await;
    let text = "x".repeat(1000);
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
    let mut pushed = 0;
    let mut push = |count: usize| {
        let ops: Vec<_> = (0..count)
            .map(|_| {
                pushed += 1;
                let pk = format!("m{pushed:06}");
                op(
                    "messages",
                    &pk,
                    1,
                    T0,
                    0,
                    serde_json::json!({ "text": text }),
                    false,
                )
            })
            .collect();
        let (store, ws) = (store.clone(), ws.clone());
        async move { store.push(&ws, &alice(), ops, T0).await.unwrap() }
    };
    // Past the checkpointer's threshold (4 MB of WAL), far below the writer's own.
    let mut wal_at_peak = 0;
    for _ in 0..15 {
        push(50).await;
        wal_at_peak = wal_at_peak.max(size("group.db-wal"));
    }
    // Only the checkpointer copies the WAL into the database now.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size("group.db") < 2_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpointer copied nothing: database {} bytes",
            size("group.db")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(all_changes(&store, &ws, 0).await.unwrap().len(), 750);
    assert!(
        wal_at_peak > 4_096_000,
        "the burst grew the WAL past the checkpointer's threshold: {wal_at_peak} bytes"
    );
    // Once the checkpointer has copied all of it, the WAL starts over at the next write, in the
    // same file, which SQLite does not cut back below `journal_size_limit` (64 MB). The thresholds
    // count the frames the WAL holds, not the file's size: a size would call for a checkpoint
    // after every commit from here on (and, past the writer's own bound, have the writer run it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let before = sqlite.wal_checkpoints();
        for _ in 0..20 {
            push(1).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // At most the one that finished the catch-up.
        if sqlite.wal_checkpoints() - before <= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "small commits kept calling for checkpoints after the WAL started over: {} in the last 20",
            sqlite.wal_checkpoints() - before
        );
    }
    assert!(
        size("group.db-wal") > 4_096_000,
        "the WAL file kept its size (this test is about a file larger than what it holds): {} bytes",
        size("group.db-wal")
    );
}
