//! The store suite on Postgres, plus what only a shared database has: two
//! gateway nodes (two `PostgresStore`s) on one workspace, connections killed
//! during a load, statement timeouts and an unreachable server. Each test
//! runs in a schema of its own that is dropped afterwards.

mod pg_support;
mod store_suite;

use pg_support::TestSchema;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store_suite::{alice, put, workspace, StoreUnderTest, T0};
use sync_core::{TableConfig, ValidOp, WorkspaceId};
use sync_server::store::postgres::{PgOptions, PostgresStore};
use sync_server::store::{ChangesQuery, OpOutcome, Store, StoreError};

struct Postgres {
    // Dropped in this order: the store's pool, then its schema.
    store: Arc<dyn Store>,
    _schema: TestSchema,
}

impl StoreUnderTest for Postgres {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

async fn connect(schema: &TestSchema, options: PgOptions) -> PostgresStore {
    PostgresStore::connect(&schema.url(), TableConfig::or3_chat(), options)
        .await
        .unwrap_or_else(|e| panic!("cannot open the Postgres store at {}: {e}", schema.url()))
}

async fn postgres() -> Postgres {
    let schema = TestSchema::new().await;
    let store = connect(&schema, PgOptions::default()).await;
    Postgres {
        store: Arc::new(store),
        _schema: schema,
    }
}

store_suite!(postgres);

/// Every change of the log, page by page.
async fn whole_log(store: &dyn Store, ws: &sync_core::WorkspaceId) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store
            .changes(
                ws,
                &alice(),
                ChangesQuery {
                    cursor,
                    limit: 1000,
                    project_id: None,
                },
            )
            .await
            .expect("pull");
        out.extend(
            page.changes
                .into_iter()
                .map(|c| (c.server_version, c.op_id)),
        );
        cursor = page.cursor;
        if !page.has_more {
            return out;
        }
    }
}

/// Checks the log is 1..=n without gaps and holds each acknowledged op once,
/// at the version it was acknowledged with.
fn assert_log_holds(log: &[(u64, String)], acked: &HashMap<String, u64>) {
    let versions: Vec<u64> = log.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (1..=log.len() as u64).collect::<Vec<_>>(),
        "the log is gap-free and in order"
    );
    let mut logged: HashMap<&str, u64> = HashMap::new();
    for (version, op_id) in log {
        assert!(
            logged.insert(op_id, *version).is_none(),
            "op {op_id} is in the log twice"
        );
    }
    for (op_id, version) in acked {
        assert_eq!(
            logged.get(op_id.as_str()),
            Some(version),
            "acknowledged op {op_id} is in the log at its version"
        );
    }
}

#[tokio::test]
async fn two_nodes_pushing_to_one_workspace_leave_a_gap_free_log() {
    let schema = TestSchema::new().await;
    let nodes: Vec<Arc<dyn Store>> = vec![
        Arc::new(connect(&schema, PgOptions::default()).await),
        Arc::new(connect(&schema, PgOptions::default()).await),
    ];
    let ws = workspace(&nodes[0]).await;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (store, ws) = (nodes[(t % 2) as usize].clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut hot_applied = Vec::new();
            for b in 0..10u64 {
                // 19 records of our own and one that every task fights over.
                let mut ops: Vec<ValidOp> = (0..19u64)
                    .map(|i| put(&format!("m{t}-{b}-{i}"), 1, T0))
                    .collect();
                ops.push(put("hot", 1 + b * 8 + t, T0));
                let ids: Vec<String> = ops.iter().map(|o| o.op_id.as_str().to_owned()).collect();
                let out = store.push(&ws, &alice(), ops, T0).await.expect("push");
                for (i, (o, id)) in out.outcomes.iter().zip(ids).enumerate() {
                    match o {
                        OpOutcome::Applied(v) => {
                            if i == 19 {
                                hot_applied.push(*v);
                            }
                            acked.push((id, *v));
                        }
                        OpOutcome::Superseded(winner) if i == 19 => {
                            assert!(winner.stamp.clock > 1 + b * 8 + t, "lost to a higher clock")
                        }
                        other => panic!("unexpected outcome {other:?}"),
                    }
                }
            }
            (acked, hot_applied)
        }));
    }
    let mut acked = HashMap::new();
    for task in tasks {
        let (ops, _) = task.await.expect("pusher");
        acked.extend(ops);
    }
    let log = whole_log(nodes[1].as_ref(), &ws).await;
    assert_eq!(log.len(), acked.len(), "only acknowledged ops are logged");
    assert_log_holds(&log, &acked);
    let hot = nodes[0]
        .record(&ws, &alice(), "messages", "hot")
        .await
        .expect("hot record");
    assert_eq!(hot.clock, 8 * 10, "the highest clock won across nodes");
}

#[tokio::test]
async fn killed_connections_lose_no_acknowledged_op_and_the_store_recovers() {
    let schema = TestSchema::new().await;
    let store: Arc<dyn Store> = Arc::new(
        connect(
            &schema,
            PgOptions {
                pool_size: 4,
                ..PgOptions::default()
            },
        )
        .await,
    );
    let ws = workspace(&store).await;
    let admin = pg_support::admin().await;
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mut pushers = Vec::new();
    for t in 0..4u64 {
        let (store, ws, stop, failures) =
            (store.clone(), ws.clone(), stop.clone(), failures.clone());
        pushers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut b = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ops: Vec<ValidOp> = (0..25u64)
                    .map(|i| put(&format!("m{t}-{b}-{i}"), 1, T0))
                    .collect();
                let ids: Vec<String> = ops.iter().map(|o| o.op_id.as_str().to_owned()).collect();
                // Retry the same batch like a client would, until it is
                // acknowledged; a push whose answer was lost comes back as
                // duplicates with the original versions.
                let deadline = Instant::now() + Duration::from_secs(30);
                let out = loop {
                    match store.push(&ws, &alice(), ops.clone(), T0).await {
                        Ok(out) => break out,
                        Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err(e) => panic!("push failed for good: {e}"),
                    }
                };
                for (o, id) in out.outcomes.iter().zip(ids) {
                    match o {
                        OpOutcome::Applied(v) | OpOutcome::Duplicate(Some(v)) => {
                            acked.push((id, *v))
                        }
                        other => panic!("unexpected outcome {other:?}"),
                    }
                }
                b += 1;
            }
            acked
        }));
    }
    let mut kills = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        kills += schema.terminate_connections(&admin).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acked = HashMap::new();
    for pusher in pushers {
        acked.extend(pusher.await.expect("pusher"));
    }
    assert!(kills > 0, "connections were killed");
    assert!(
        failures.load(Ordering::Relaxed) > 0,
        "some pushes met a killed connection"
    );
    assert!(!acked.is_empty(), "pushes went through between the kills");

    let log = whole_log(store.as_ref(), &ws).await;
    assert_log_holds(&log, &acked);
    assert_eq!(log.len(), acked.len(), "nothing unacknowledged stayed");
    let after = store
        .push(&ws, &alice(), vec![put("after", 1, T0)], T0)
        .await
        .expect("the store recovered");
    assert!(matches!(after.outcomes[0], OpOutcome::Applied(v) if v == log.len() as u64 + 1));
}

#[tokio::test]
async fn a_push_blocked_past_the_statement_timeout_is_unavailable_then_recovers() {
    let schema = TestSchema::new().await;
    let store = connect(
        &schema,
        PgOptions {
            pool_size: 2,
            statement_timeout: Duration::from_millis(300),
        },
    )
    .await;
    let store: Arc<dyn Store> = Arc::new(store);
    let ws = workspace(&store).await;
    // Another session holds the workspace's counter row.
    let mut blocker = pg_support::admin().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "SELECT 1 FROM \"{}\".workspaces WHERE id = '{}' FOR UPDATE",
        schema.name, ws
    ))
    .await
    .unwrap();
    let started = Instant::now();
    let blocked = store.push(&ws, &alice(), vec![put("m1", 1, T0)], T0).await;
    assert!(
        matches!(blocked, Err(StoreError::Unavailable(_))),
        "got {blocked:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "no hang");
    tx.rollback().await.unwrap();
    let out = store
        .push(&ws, &alice(), vec![put("m1", 1, T0)], T0)
        .await
        .expect("works again");
    assert!(matches!(out.outcomes[0], OpOutcome::Applied(1)));
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_not_a_hang() {
    let started = Instant::now();
    let result = PostgresStore::connect(
        "postgres://postgres@127.0.0.1:1/test",
        TableConfig::or3_chat(),
        PgOptions {
            pool_size: 2,
            statement_timeout: Duration::from_millis(500),
        },
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "got {:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let schema = TestSchema::new().await;
    let (a, b) = tokio::join!(
        connect(&schema, PgOptions::default()),
        connect(&schema, PgOptions::default())
    );
    assert_eq!(a.migrate().await.unwrap(), 0, "nothing left to run");
    assert_eq!(b.migrate().await.unwrap(), 0);
    let admin = pg_support::admin().await;
    let versions: Vec<i32> = admin
        .query(
            &format!(
                "SELECT version FROM \"{}\".schema_migrations ORDER BY version",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1]);
}

#[tokio::test]
async fn a_test_schema_is_gone_after_the_test() {
    let admin = pg_support::admin().await;
    let schema = TestSchema::new().await;
    let name = schema.name.clone();
    let store: Arc<dyn Store> = Arc::new(connect(&schema, PgOptions::default()).await);
    workspace(&store).await;
    assert!(pg_support::schema_exists(&admin, &name).await);
    drop(store);
    drop(schema);
    assert!(!pg_support::schema_exists(&admin, &name).await);
}

#[tokio::test]
async fn a_search_path_in_the_url_options_selects_an_existing_schema() {
    let schema = TestSchema::new().await;
    let admin = pg_support::admin().await;
    let url = format!(
        "{}?options=-c%20search_path%3D{}&application_name={}",
        pg_support::base_url(),
        schema.name,
        schema.name
    );
    let missing = PostgresStore::connect(&url, TableConfig::or3_chat(), PgOptions::default()).await;
    assert!(
        matches!(&missing, Err(StoreError::Internal(why)) if why.contains("schema")),
        "a search_path naming no schema is refused with a reason"
    );
    admin
        .batch_execute(&format!("CREATE SCHEMA \"{}\"", schema.name))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(&url, TableConfig::or3_chat(), PgOptions::default())
            .await
            .unwrap(),
    );
    let ws = workspace(&store).await;
    let found = admin
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".workspaces WHERE id = $1",
                schema.name
            ),
            &[&ws.as_str()],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(found, 1, "the store lives in the schema the options name");
}

/// A connection holding `ws`'s counter row in an open transaction (end it
/// with `ROLLBACK`): pushes to `ws` queue behind it.
async fn hold_counter_row(schema: &TestSchema, ws: &WorkspaceId) -> tokio_postgres::Client {
    let holder = pg_support::admin().await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder
        .execute(
            &format!(
                "SELECT head FROM {}.workspaces WHERE id = $1 FOR UPDATE",
                schema.name
            ),
            &[&ws.as_str()],
        )
        .await
        .unwrap();
    holder
}

/// Group commit per workspace (`store/postgres/group.rs`): pushes queued
/// behind a push that waits for the workspace's counter row share the next
/// transaction, each keeps its own outcome (a viewer's push, and one whose
/// second op aborts the transaction, fail alone: the group runs again with
/// savepoints), and versions follow the queue order without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_pushes_to_one_workspace_share_a_transaction_and_keep_their_own_outcomes() {
    let schema = TestSchema::new().await;
    let pg = connect(&schema, PgOptions::default()).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let ws = workspace(&store).await;
    store
        .set_member(&ws, &alice(), "bob", sync_core::Role::Viewer)
        .await
        .unwrap();
    // A push whose second op aborts its statement (and so the transaction):
    // it fails alone, leaving not even its first op behind.
    pg_support::admin()
        .await
        .batch_execute(&format!(
            "CREATE FUNCTION {s}.boom() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
             CREATE TRIGGER boom BEFORE INSERT ON {s}.records
               FOR EACH ROW WHEN (NEW.pk = 'boom') EXECUTE FUNCTION {s}.boom();",
            s = schema.name
        ))
        .await
        .unwrap();
    let (groups_before, pushes_before) = pg.group_commits();

    // Another connection holds the counter row: the first push's group waits.
    let lock = hold_counter_row(&schema, &ws).await;
    let spawn = |access: sync_server::store::Access, pk: String| {
        let (store, ws) = (store.clone(), ws.clone());
        tokio::spawn(async move { store.push(&ws, &access, vec![put(&pk, 1, T0)], T0).await })
    };
    let first = spawn(alice(), "first".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued: Vec<_> = (0..20).map(|i| spawn(alice(), format!("m{i}"))).collect();
    let bob = sync_server::store::Access::Member {
        user_id: "bob".into(),
    };
    let viewer = spawn(bob, "by-viewer".into());
    let aborting = {
        let (store, ws) = (store.clone(), ws.clone());
        tokio::spawn(async move {
            let ops = vec![put("before-boom", 1, T0), put("boom", 1, T0)];
            store.push(&ws, &alice(), ops, T0).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!first.is_finished() && queued.iter().all(|q| !q.is_finished()));
    lock.batch_execute("ROLLBACK").await.unwrap();

    let versions = |o: sync_server::store::PushOutcome| -> Vec<u64> {
        o.outcomes
            .iter()
            .map(|o| match o {
                OpOutcome::Applied(v) => *v,
                other => panic!("expected applied, got {other:?}"),
            })
            .collect()
    };
    assert_eq!(versions(first.await.unwrap().unwrap()), [1]);
    // Each push's answer is the head right after it: its own version.
    let mut seen = Vec::new();
    for push in queued {
        let outcome = push.await.unwrap().unwrap();
        let head = outcome.server_version;
        assert_eq!(versions(outcome), [head]);
        seen.push(head);
    }
    seen.sort();
    assert_eq!(seen, (2..=21).collect::<Vec<_>>());
    assert!(matches!(
        viewer.await.unwrap(),
        Err(StoreError::Forbidden(_))
    ));
    let aborted = aborting.await.unwrap();
    assert!(
        matches!(&aborted, Err(StoreError::Internal(m)) if m.contains("boom")),
        "{aborted:?}"
    );
    let (groups, pushes) = pg.group_commits();
    assert_eq!(pushes - pushes_before, 23);
    assert!(
        groups - groups_before <= 2,
        "23 pushes took {} groups: the 22 queued ones share one",
        groups - groups_before
    );
    let log = whole_log(&*store, &ws).await;
    assert_eq!(
        log.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (1..=21).collect::<Vec<_>>(),
        "gap-free, and nothing of the viewer's push or of the aborted one"
    );
    assert_eq!(store.head(&ws).await.unwrap(), 21);

    // A group in which every push succeeds commits in its first, plain attempt.
    let (groups_before, _) = pg.group_commits();
    let lock = hold_counter_row(&schema, &ws).await;
    let first = spawn(alice(), "again-first".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued: Vec<_> = (0..5)
        .map(|i| spawn(alice(), format!("again-{i}")))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(versions(first.await.unwrap().unwrap()), [22]);
    let mut seen = Vec::new();
    for push in queued {
        seen.extend(versions(push.await.unwrap().unwrap()));
    }
    seen.sort();
    assert_eq!(seen, (23..=27).collect::<Vec<_>>());
    let (groups, _) = pg.group_commits();
    assert!(
        groups - groups_before <= 2,
        "{} groups",
        groups - groups_before
    );
    assert_eq!(whole_log(&*store, &ws).await.len(), 27);
}

/// The same rule as on SQLite (`store_suite/group.rs`): here a deferred
/// constraint trigger that raises makes the `COMMIT` fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_whose_commit_fails_answers_every_push_unavailable() {
    let schema = TestSchema::new().await;
    let store: Arc<dyn Store> = Arc::new(connect(&schema, PgOptions::default()).await);
    let ws = workspace(&store).await;
    pg_support::admin()
        .await
        .batch_execute(&format!(
            "CREATE FUNCTION {s}.commit_fails() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
             CREATE CONSTRAINT TRIGGER commit_fails AFTER INSERT ON {s}.records
               DEFERRABLE INITIALLY DEFERRED
               FOR EACH ROW WHEN (NEW.pk = '{pk}') EXECUTE FUNCTION {s}.commit_fails();",
            s = schema.name,
            pk = store_suite::group::COMMIT_FAILS,
        ))
        .await
        .unwrap();
    let lock = hold_counter_row(&schema, &ws).await;
    store_suite::group::a_group_whose_commit_fails_answers_every_push_unavailable(
        store,
        ws,
        async move { lock.batch_execute("ROLLBACK").await.unwrap() },
    )
    .await;
}
