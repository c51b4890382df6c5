//! The store contract, one test per rule, run against every `Store`
//! implementation (`store_sqlite.rs`, `store_postgres.rs`). Talks to the
//! store directly with an explicit clock, so retention is tested without sleeps.
#![allow(dead_code)]

mod access_errors;
pub mod group;
mod push_vectors;
pub use access_errors::{
    every_method_refuses_a_non_member, every_method_reports_a_missing_workspace,
};
pub use push_vectors::push_vectors_agree;

use serde_json::{json, Value};
use std::sync::Arc;
use sync_core::retention::RetentionPolicy;
use sync_core::validate::{validate_op, ValidationLimits};
use sync_core::{Role, TableConfig, ValidOp, WorkspaceId};
use sync_server::store::{
    Access, ChangesQuery, DevicePosition, OpOutcome, SnapshotQuery, Store, StoreError,
};

pub const DAY: u64 = 24 * 3600 * 1000;
pub const T0: u64 = 1_800_000_000_000;
const DEV: &str = "abcdefabcdefabcd";

/// Generates one `#[tokio::test]` per suite rule for a store factory.
#[macro_export]
macro_rules! store_suite {
    ($factory:path) => {
        store_suite!(@tests $factory;
            versions_are_gap_free_under_concurrent_pushes,
            duplicate_op_id_is_idempotent,
            lower_stamp_is_superseded_with_the_winner,
            stale_put_loses_to_a_tombstone,
            non_member_and_viewer_are_refused,
            unknown_workspace_is_reported,
            every_method_reports_a_missing_workspace,
            every_method_refuses_a_non_member,
            last_owner_cannot_leave,
            changes_page_in_order_and_filter_by_project,
            snapshot_pages_cover_every_record,
            gc_never_purges_what_an_active_device_has_not_pulled,
            gc_keeps_entries_younger_than_min_retention,
            idle_device_stops_holding_gc_back,
            purged_tombstone_keeps_its_stamp,
            dry_run_purges_nothing,
            thread_created_after_its_messages_is_a_scope_change,
            later_ops_in_a_batch_see_earlier_ones,
            repeated_op_in_one_batch_stays_a_duplicate,
            message_scope_follows_its_thread_at_commit_time,
            pull_pages_stop_after_about_4_mib,
            filtered_pull_examines_a_bounded_window,
            repeated_device_positions_keep_the_last_cursor,
            claimed_access_takes_its_role_from_the_claims,
            odd_project_and_thread_ids_are_data_not_errors,
            changes_json_is_the_page_changes_reads,
            push_vectors_agree
        );
    };
    (@tests $factory:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $factory().await;
                store_suite::$name(store.store()).await;
            }
        )*
    };
}

/// A store under test; dropping it cleans up (temp file, Postgres schema).
pub trait StoreUnderTest {
    fn store(&self) -> Arc<dyn Store>;
}

pub fn alice() -> Access {
    Access::Member {
        user_id: "alice".into(),
    }
}

pub async fn workspace(store: &Arc<dyn Store>) -> WorkspaceId {
    let ws = WorkspaceId::generate();
    store.create_workspace(&ws, "w", "alice", T0).await.unwrap();
    ws
}

pub fn op(
    table: &str,
    pk: &str,
    clock: u64,
    ms: u64,
    counter: u32,
    data: Value,
    delete: bool,
) -> ValidOp {
    let mut payload = json!({"id": pk});
    for (k, v) in data.as_object().unwrap() {
        payload[k] = v.clone();
    }
    let raw = json!({
        "op_id": uuid::Uuid::new_v4().to_string(), "table_name": table,
        "operation": if delete { "delete" } else { "put" }, "pk": pk,
        "payload": if delete { Value::Null } else { payload },
        "clock": clock, "hlc": format!("{ms:013}-{counter:06}-{DEV}"), "device_id": DEV,
    });
    validate_op(
        &raw,
        &TableConfig::or3_chat(),
        &ValidationLimits::default(),
        ms,
    )
    .unwrap()
}

pub fn put(pk: &str, clock: u64, ms: u64) -> ValidOp {
    op("messages", pk, clock, ms, 0, json!({"text": pk}), false)
}

fn applied(o: &OpOutcome) -> u64 {
    match o {
        OpOutcome::Applied(v) => *v,
        other => panic!("expected applied, got {other:?}"),
    }
}

pub async fn all_changes(
    store: &Arc<dyn Store>,
    ws: &WorkspaceId,
    cursor: u64,
) -> Result<Vec<sync_core::wire::Change>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = cursor;
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
            .await?;
        out.extend(page.changes);
        cursor = page.cursor;
        if !page.has_more {
            return Ok(out);
        }
    }
}

pub async fn versions_are_gap_free_under_concurrent_pushes(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for b in 0..10u64 {
                let ops: Vec<ValidOp> = (0..10u64)
                    .map(|i| put(&format!("m{t}-{b}-{i}"), 1, T0))
                    .collect();
                let ids: Vec<String> = ops.iter().map(|o| o.op_id.as_str().to_owned()).collect();
                let out = store.push(&ws, &alice(), ops, T0).await.unwrap();
                for (o, id) in out.outcomes.iter().zip(ids) {
                    acked.push((applied(o), id));
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let log = all_changes(&store, &ws, 0).await.unwrap();
    let versions: Vec<u64> = log.iter().map(|c| c.server_version).collect();
    assert_eq!(
        versions,
        (1..=800).collect::<Vec<_>>(),
        "gap-free, in order"
    );
    acked.sort();
    let logged: Vec<(u64, String)> = log
        .iter()
        .map(|c| (c.server_version, c.op_id.clone()))
        .collect();
    assert_eq!(
        acked, logged,
        "every acknowledged op is in the log at its version, once"
    );
}

pub async fn duplicate_op_id_is_idempotent(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let a = put("m1", 1, T0);
    let first = store
        .push(&ws, &alice(), vec![a.clone()], T0)
        .await
        .unwrap();
    assert_eq!(applied(&first.outcomes[0]), 1);
    let again = store
        .push(&ws, &alice(), vec![a.clone(), a], T0)
        .await
        .unwrap();
    assert!(again
        .outcomes
        .iter()
        .all(|o| matches!(o, OpOutcome::Duplicate(Some(1)))));
    assert_eq!(again.server_version, 1);
    assert!(again.changes.is_empty());
}

pub async fn lower_stamp_is_superseded_with_the_winner(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    store
        .push(&ws, &alice(), vec![put("m1", 3, T0)], T0)
        .await
        .unwrap();
    let out = store
        .push(&ws, &alice(), vec![put("m1", 2, T0 + 5)], T0)
        .await
        .unwrap();
    match &out.outcomes[0] {
        OpOutcome::Superseded(winner) => {
            assert_eq!(winner.stamp.clock, 3);
            assert_eq!(winner.server_version, 1);
            let payload: Value = serde_json::from_str(winner.payload.get()).unwrap();
            assert_eq!(payload["text"], "m1");
        }
        other => panic!("expected superseded, got {other:?}"),
    }
}

pub async fn stale_put_loses_to_a_tombstone(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let del = op("messages", "m1", 2, T0, 1, json!({}), true);
    store
        .push(&ws, &alice(), vec![put("m1", 1, T0), del], T0)
        .await
        .unwrap();
    let out = store
        .push(&ws, &alice(), vec![put("m1", 1, T0 + 9)], T0)
        .await
        .unwrap();
    assert!(matches!(&out.outcomes[0], OpOutcome::Superseded(w) if w.deleted));
    let rec = store.record(&ws, &alice(), "messages", "m1").await.unwrap();
    assert!(rec.deleted);
}

pub async fn non_member_and_viewer_are_refused(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let mallory = Access::Member {
        user_id: "mallory".into(),
    };
    assert!(matches!(
        store.push(&ws, &mallory, vec![], T0).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store
            .changes(
                &ws,
                &mallory,
                ChangesQuery {
                    cursor: 0,
                    limit: 10,
                    project_id: None
                }
            )
            .await,
        Err(StoreError::Forbidden(_))
    ));
    store
        .set_member(&ws, &alice(), "victor", Role::Viewer)
        .await
        .unwrap();
    let victor = Access::Member {
        user_id: "victor".into(),
    };
    assert!(matches!(
        store.push(&ws, &victor, vec![put("m1", 1, T0)], T0).await,
        Err(StoreError::Forbidden(_))
    ));
    assert_eq!(store.role_of(&ws, &victor).await.unwrap(), Role::Viewer);
    assert!(
        store.record(&ws, &victor, "messages", "m1").await.is_err(),
        "nothing was written"
    );
}

pub async fn unknown_workspace_is_reported(store: Arc<dyn Store>) {
    let ws = WorkspaceId::parse("nope").unwrap();
    assert!(matches!(
        store.push(&ws, &alice(), vec![], T0).await,
        Err(StoreError::UnknownWorkspace)
    ));
}

pub async fn last_owner_cannot_leave(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    assert!(matches!(
        store.remove_member(&ws, &alice(), "alice").await,
        Err(StoreError::LastOwner)
    ));
    assert!(matches!(
        store.set_member(&ws, &alice(), "alice", Role::Editor).await,
        Err(StoreError::LastOwner)
    ));
    store
        .set_member(&ws, &alice(), "bob", Role::Owner)
        .await
        .unwrap();
    store
        .set_member(&ws, &alice(), "alice", Role::Editor)
        .await
        .unwrap();
    let listed = store.list_workspaces("alice").await.unwrap();
    assert_eq!(listed[0].role, Role::Editor);
}

pub async fn changes_page_in_order_and_filter_by_project(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    store
        .push(
            &ws,
            &alice(),
            vec![
                op(
                    "threads",
                    "t1",
                    1,
                    T0,
                    0,
                    json!({"project_id": "p1"}),
                    false,
                ),
                op(
                    "threads",
                    "t2",
                    1,
                    T0,
                    1,
                    json!({"project_id": "p2"}),
                    false,
                ),
                op(
                    "messages",
                    "m1",
                    1,
                    T0,
                    2,
                    json!({"thread_id": "t1"}),
                    false,
                ),
                op(
                    "messages",
                    "m2",
                    1,
                    T0,
                    3,
                    json!({"thread_id": "t2"}),
                    false,
                ),
                op("kv", "k1", 1, T0, 4, json!({}), false),
            ],
            T0,
        )
        .await
        .unwrap();
    let page = store
        .changes(
            &ws,
            &alice(),
            ChangesQuery {
                cursor: 0,
                limit: 2,
                project_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (page.changes.len(), page.cursor, page.has_more),
        (2, 2, true)
    );
    let p1 = store
        .changes(
            &ws,
            &alice(),
            ChangesQuery {
                cursor: 0,
                limit: 100,
                project_id: Some("p1".into()),
            },
        )
        .await
        .unwrap();
    let pks: Vec<_> = p1.changes.iter().map(|c| c.pk.as_str()).collect();
    assert_eq!(pks, ["t1", "m1", "k1"]);
    assert_eq!((p1.cursor, p1.has_more), (5, false));
}

pub async fn snapshot_pages_cover_every_record(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let ops: Vec<ValidOp> = (0..25).map(|i| put(&format!("m{i:02}"), 1, T0)).collect();
    store.push(&ws, &alice(), ops, T0).await.unwrap();
    let mut after = None;
    let mut seen = Vec::new();
    let mut version = None;
    loop {
        let page = store
            .snapshot(
                &ws,
                &alice(),
                SnapshotQuery {
                    after: after.clone(),
                    snapshot_version: version,
                    limit: 10,
                    project_id: None,
                },
            )
            .await
            .unwrap();
        version = Some(page.snapshot_version);
        seen.extend(page.items.iter().map(|i| i.pk.clone()));
        after = page
            .items
            .last()
            .map(|i| (i.table_name.clone(), i.pk.clone()));
        if !page.has_more {
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(version, Some(25));
}

fn policy() -> RetentionPolicy {
    RetentionPolicy::default()
}

async fn position(store: &Arc<dyn Store>, ws: &WorkspaceId, device: &str, cursor: u64, at: u64) {
    store
        .record_positions(vec![DevicePosition {
            workspace_id: ws.clone(),
            device_id: device.into(),
            cursor,
            seen_at_ms: at,
        }])
        .await
        .unwrap();
}

/// 100 entries committed at T0, 20 more at T0 + 10 days.
async fn aged_log(store: &Arc<dyn Store>) -> WorkspaceId {
    let ws = workspace(store).await;
    let old: Vec<ValidOp> = (0..100).map(|i| put(&format!("old{i}"), 1, T0)).collect();
    store.push(&ws, &alice(), old, T0).await.unwrap();
    let new: Vec<ValidOp> = (0..20)
        .map(|i| put(&format!("new{i}"), 1, T0 + 10 * DAY))
        .collect();
    store.push(&ws, &alice(), new, T0 + 10 * DAY).await.unwrap();
    ws
}

pub async fn gc_never_purges_what_an_active_device_has_not_pulled(store: Arc<dyn Store>) {
    let ws = aged_log(&store).await;
    let now = T0 + 20 * DAY;
    position(&store, &ws, "dev1", 40, now - DAY).await;
    position(&store, &ws, "dev2", 110, now).await;
    let report = store
        .collect_garbage(&ws, &policy(), now, false)
        .await
        .unwrap();
    assert_eq!(report.log_entries_purged, 40);
    assert_eq!(report.oldest_retained_version, 41);
    let rest = all_changes(&store, &ws, 40).await.unwrap();
    assert_eq!(
        rest.first().map(|c| c.server_version),
        Some(41),
        "dev1 still gets everything after 40"
    );
    assert_eq!(rest.len(), 80);
    assert!(matches!(
        all_changes(&store, &ws, 39).await,
        Err(StoreError::CursorExpired {
            oldest_retained_version: 41
        })
    ));
}

pub async fn gc_keeps_entries_younger_than_min_retention(store: Arc<dyn Store>) {
    let ws = aged_log(&store).await;
    let now = T0 + 12 * DAY; // the 20 newest are 2 days old: younger than 7 days
    position(&store, &ws, "dev1", 120, now).await;
    let report = store
        .collect_garbage(&ws, &policy(), now, false)
        .await
        .unwrap();
    assert_eq!(report.oldest_retained_version, 101);
    assert_eq!(report.log_length, 20);
    assert_eq!(all_changes(&store, &ws, 100).await.unwrap().len(), 20);
}

pub async fn idle_device_stops_holding_gc_back(store: Arc<dyn Store>) {
    let ws = aged_log(&store).await;
    position(&store, &ws, "idle", 5, T0).await;
    position(&store, &ws, "busy", 120, T0 + 40 * DAY).await;
    let held = store
        .collect_garbage(&ws, &policy(), T0 + 20 * DAY, false)
        .await
        .unwrap();
    assert_eq!(
        held.oldest_retained_version, 6,
        "the idle device is within device_ttl"
    );
    let freed = store
        .collect_garbage(&ws, &policy(), T0 + 40 * DAY, false)
        .await
        .unwrap();
    assert_eq!(
        freed.oldest_retained_version, 121,
        "past device_ttl it no longer holds the log"
    );
    assert!(matches!(
        all_changes(&store, &ws, 5).await,
        Err(StoreError::CursorExpired { .. })
    ));
}

pub async fn purged_tombstone_keeps_its_stamp(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let original = put("m1", 1, T0);
    let del = op("messages", "m1", 2, T0, 1, json!({}), true);
    let del_again = del.clone();
    store
        .push(&ws, &alice(), vec![original.clone(), del], T0)
        .await
        .unwrap();
    let report = store
        .collect_garbage(&ws, &policy(), T0 + 90 * DAY, false)
        .await
        .unwrap();
    assert_eq!(report.tombstone_payloads_purged, 1);
    assert_eq!(report.op_ids_purged, 2);
    assert_eq!(report.tombstones, 1);
    let rec = store.record(&ws, &alice(), "messages", "m1").await.unwrap();
    assert!(rec.deleted);
    assert_eq!(rec.payload.get(), "null", "payload purged");
    assert_eq!((rec.clock, rec.server_version), (2, 2), "stamp kept");
    // A device offline for months retries its old ops: nothing resurrects.
    let out = store
        .push(
            &ws,
            &alice(),
            vec![original, del_again, put("m1", 2, T0 - 1)],
            T0 + 90 * DAY,
        )
        .await
        .unwrap();
    assert!(matches!(&out.outcomes[0], OpOutcome::Superseded(w) if w.deleted));
    assert!(
        matches!(&out.outcomes[1], OpOutcome::Duplicate(_)),
        "recognised by its stamp"
    );
    assert!(matches!(&out.outcomes[2], OpOutcome::Superseded(_)));
    // A genuinely newer edit still applies.
    let newer = store
        .push(
            &ws,
            &alice(),
            vec![put("m1", 3, T0 + 90 * DAY)],
            T0 + 90 * DAY,
        )
        .await
        .unwrap();
    assert!(matches!(newer.outcomes[0], OpOutcome::Applied(3)));
}

pub async fn dry_run_purges_nothing(store: Arc<dyn Store>) {
    let ws = aged_log(&store).await;
    let now = T0 + 60 * DAY;
    let dry = store
        .collect_garbage(&ws, &policy(), now, true)
        .await
        .unwrap();
    assert_eq!(dry.log_entries_purged, 120);
    assert_eq!(
        all_changes(&store, &ws, 0).await.unwrap().len(),
        120,
        "nothing purged"
    );
    let real = store
        .collect_garbage(&ws, &policy(), now, false)
        .await
        .unwrap();
    assert_eq!(real.log_entries_purged, dry.log_entries_purged);
    assert_eq!(store.workspace_ids().await.unwrap(), vec![ws]);
}

pub async fn thread_created_after_its_messages_is_a_scope_change(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    store
        .push(
            &ws,
            &alice(),
            vec![op(
                "messages",
                "m1",
                1,
                T0,
                0,
                json!({"thread_id": "t1"}),
                false,
            )],
            T0,
        )
        .await
        .unwrap();
    let out = store
        .push(
            &ws,
            &alice(),
            vec![op(
                "threads",
                "t1",
                1,
                T0,
                1,
                json!({"project_id": "p1"}),
                false,
            )],
            T0,
        )
        .await
        .unwrap();
    assert!(
        out.changes[0].change.scope_change,
        "p1's clients must rescan to get m1"
    );
    let p1 = store
        .changes(
            &ws,
            &alice(),
            ChangesQuery {
                cursor: 0,
                limit: 100,
                project_id: Some("p1".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(p1.changes.len(), 1);
    assert!(p1.changes[0].scope_change);
    // A thread with no messages yet is an ordinary creation.
    let plain = store
        .push(
            &ws,
            &alice(),
            vec![op(
                "threads",
                "t2",
                1,
                T0,
                2,
                json!({"project_id": "p1"}),
                false,
            )],
            T0,
        )
        .await
        .unwrap();
    assert!(!plain.changes[0].change.scope_change);
}

pub async fn later_ops_in_a_batch_see_earlier_ones(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let out = store
        .push(
            &ws,
            &alice(),
            vec![
                put("m1", 1, T0),
                put("m1", 3, T0),
                put("m1", 2, T0),
                op("messages", "m2", 1, T0, 0, json!({"text": "kept"}), false),
                op("messages", "m2", 2, T0, 1, json!({}), true),
            ],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(applied(&out.outcomes[0]), 1);
    assert_eq!(applied(&out.outcomes[1]), 2);
    match &out.outcomes[2] {
        OpOutcome::Superseded(w) => assert_eq!((w.stamp.clock, w.server_version), (3, 2)),
        other => panic!("expected superseded by the batch's own write, got {other:?}"),
    }
    assert_eq!(applied(&out.outcomes[4]), 4);
    assert_eq!(out.server_version, 4);
    let m1 = store.record(&ws, &alice(), "messages", "m1").await.unwrap();
    assert_eq!((m1.clock, m1.server_version), (3, 2));
    let m2 = store.record(&ws, &alice(), "messages", "m2").await.unwrap();
    let row: Value = serde_json::from_str(m2.payload.get()).unwrap();
    assert!(m2.deleted);
    assert_eq!(
        (
            row["text"].as_str(),
            row["deleted"].as_bool(),
            row["clock"].as_u64()
        ),
        (Some("kept"), Some(true), Some(2)),
        "a bare delete keeps the row written earlier in its batch, as a tombstone"
    );
}

pub async fn repeated_op_in_one_batch_stays_a_duplicate(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let first = put("m1", 1, T0);
    let out = store
        .push(
            &ws,
            &alice(),
            vec![first.clone(), put("m1", 2, T0), first],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(applied(&out.outcomes[0]), 1);
    assert_eq!(applied(&out.outcomes[1]), 2);
    assert!(
        matches!(out.outcomes[2], OpOutcome::Duplicate(Some(1))),
        "known by its op id even though a later write replaced it: {:?}",
        out.outcomes[2]
    );
    assert_eq!(out.changes.len(), 2);
}

async fn pks_in_project(store: &Arc<dyn Store>, ws: &WorkspaceId, project: &str) -> Vec<String> {
    store
        .changes(
            ws,
            &alice(),
            ChangesQuery {
                cursor: 0,
                limit: 100,
                project_id: Some(project.into()),
            },
        )
        .await
        .unwrap()
        .changes
        .iter()
        .map(|c| format!("{}:{}", c.pk, c.server_version))
        .collect()
}

pub async fn message_scope_follows_its_thread_at_commit_time(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let thread = |clock, counter, project: &str| {
        op(
            "threads",
            "t1",
            clock,
            T0,
            counter,
            json!({ "project_id": project }),
            false,
        )
    };
    // Each in its own push: the thread's project is read from the store.
    for ops in [
        vec![thread(1, 0, "p1")],
        vec![op(
            "messages",
            "m1",
            1,
            T0,
            1,
            json!({"thread_id": "t1"}),
            false,
        )],
        vec![thread(2, 2, "p2")],
        vec![op("messages", "m1", 2, T0, 3, json!({}), true)],
    ] {
        store.push(&ws, &alice(), ops, T0).await.unwrap();
    }
    let moved = all_changes(&store, &ws, 2).await.unwrap();
    assert!(moved[0].scope_change, "the thread's move is logged as one");
    assert_eq!(
        pks_in_project(&store, &ws, "p1").await,
        ["t1:1", "m1:2", "t1:3", "m1:4"],
        "the message was committed in p1, so p1 hears that it changed"
    );
    assert_eq!(
        pks_in_project(&store, &ws, "p2").await,
        ["t1:3", "m1:4"],
        "the delete belongs to the project its thread has now"
    );
    let snapshot = store
        .snapshot(
            &ws,
            &alice(),
            SnapshotQuery {
                after: None,
                snapshot_version: None,
                limit: 10,
                project_id: Some("p2".into()),
            },
        )
        .await
        .unwrap();
    let items: Vec<(&str, bool)> = snapshot
        .items
        .iter()
        .map(|i| (i.pk.as_str(), i.deleted))
        .collect();
    assert_eq!(items, [("m1", true), ("t1", false)]);
}

pub async fn pull_pages_stop_after_about_4_mib(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let big = "x".repeat(900_000);
    let ops: Vec<ValidOp> = (0..6u32)
        .map(|i| op("kv", &format!("k{i}"), 1, T0, i, json!({ "v": big }), false))
        .collect();
    store.push(&ws, &alice(), ops, T0).await.unwrap();
    let page = |cursor| {
        let store = store.clone();
        let ws = ws.clone();
        async move {
            store
                .changes(
                    &ws,
                    &alice(),
                    ChangesQuery {
                        cursor,
                        limit: 100,
                        project_id: None,
                    },
                )
                .await
                .unwrap()
        }
    };
    let first = page(0).await;
    assert_eq!(
        (first.changes.len(), first.cursor, first.has_more),
        (5, 5, true),
        "changes are added while the page holds less than 4 MiB"
    );
    let second = page(5).await;
    assert_eq!(
        (second.changes.len(), second.cursor, second.has_more),
        (1, 6, false)
    );
}

pub async fn filtered_pull_examines_a_bounded_window(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    for b in 0..21u32 {
        let ops: Vec<ValidOp> = (0..500u32)
            .map(|i| {
                let n = b * 500 + i;
                op(
                    "threads",
                    &format!("t{n}"),
                    1,
                    T0,
                    n,
                    json!({"project_id": "p2"}),
                    false,
                )
            })
            .collect();
        store.push(&ws, &alice(), ops, T0).await.unwrap();
    }
    let page = store
        .changes(
            &ws,
            &alice(),
            ChangesQuery {
                cursor: 0,
                limit: 100,
                project_id: Some("p1".into()),
            },
        )
        .await
        .unwrap();
    assert!(page.changes.is_empty());
    assert_eq!(
        (page.cursor, page.has_more),
        (10_000, true),
        "an empty page still advances the cursor over what it examined"
    );
}

pub async fn repeated_device_positions_keep_the_last_cursor(store: Arc<dyn Store>) {
    let ws = aged_log(&store).await;
    let now = T0 + 20 * DAY;
    let at = |cursor, seen_at_ms| DevicePosition {
        workspace_id: ws.clone(),
        device_id: "dev1".into(),
        cursor,
        seen_at_ms,
    };
    store
        .record_positions(vec![at(90, now), at(30, now - DAY)])
        .await
        .unwrap();
    let report = store
        .collect_garbage(&ws, &policy(), now, false)
        .await
        .unwrap();
    assert_eq!(report.oldest_retained_version, 31);
}

pub async fn claimed_access_takes_its_role_from_the_claims(store: Arc<dyn Store>) {
    let ws = WorkspaceId::parse("org_claims").unwrap();
    store.ensure_workspace(&ws, T0).await.unwrap();
    store.ensure_workspace(&ws, T0).await.unwrap();
    let editor = Access::Claimed {
        user_id: "carol".into(),
        role: Role::Editor,
    };
    let viewer = Access::Claimed {
        user_id: "dave".into(),
        role: Role::Viewer,
    };
    let out = store
        .push(&ws, &editor, vec![put("m1", 1, T0)], T0)
        .await
        .unwrap();
    assert_eq!(applied(&out.outcomes[0]), 1);
    assert!(matches!(
        store.push(&ws, &viewer, vec![put("m2", 1, T0)], T0).await,
        Err(StoreError::Forbidden(_))
    ));
    assert_eq!(store.role_of(&ws, &viewer).await.unwrap(), Role::Viewer);
    assert!(
        store.list_workspaces("carol").await.unwrap().is_empty(),
        "claims make no member rows"
    );
}

/// Project and thread ids come from payloads: any JSON string, NUL included.
pub async fn odd_project_and_thread_ids_are_data_not_errors(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let odd = "p\u{0}\u{E000}1";
    store
        .push(
            &ws,
            &alice(),
            vec![
                op(
                    "threads",
                    "t1",
                    1,
                    T0,
                    0,
                    json!({ "project_id": odd }),
                    false,
                ),
                op(
                    "threads",
                    "t2",
                    1,
                    T0,
                    1,
                    json!({ "project_id": "\u{E000}" }),
                    false,
                ),
                op(
                    "messages",
                    "m1",
                    1,
                    T0,
                    2,
                    json!({"thread_id": "t1"}),
                    false,
                ),
                op(
                    "messages",
                    "m2",
                    1,
                    T0,
                    3,
                    json!({"thread_id": "t\u{0}"}),
                    false,
                ),
            ],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(pks_in_project(&store, &ws, odd).await, ["t1:1", "m1:3"]);
    assert_eq!(pks_in_project(&store, &ws, "\u{E000}").await, ["t2:2"]);
    assert!(pks_in_project(&store, &ws, "p").await.is_empty());
    let (logged, _) = store.log_since(&ws, 0, 10).await.unwrap();
    assert_eq!(logged[0].scope.project_id.as_deref(), Some(odd));
    assert!(logged[3].scope.scoped && logged[3].scope.project_id.is_none());
    let snapshot = store
        .snapshot(
            &ws,
            &alice(),
            SnapshotQuery {
                after: None,
                snapshot_version: None,
                limit: 10,
                project_id: Some(odd.into()),
            },
        )
        .await
        .unwrap();
    let pks: Vec<&str> = snapshot.items.iter().map(|i| i.pk.as_str()).collect();
    assert_eq!(pks, ["m1", "t1"]);
}

/// The pull route writes its body from `changes_json`; it must be the JSON of
/// the page `changes` reads, for every shape of entry and query.
pub async fn changes_json_is_the_page_changes_reads(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    store
        .push(
            &ws,
            &alice(),
            vec![
                op("threads", "t1", 1, T0, 0, json!({"project_id": "p1"}), false),
                op(
                    "messages",
                    "m \"odd\" \\ pk é",
                    1,
                    T0,
                    1,
                    json!({"thread_id": "t1", "text": "line\nbreak \u{1F600}", "n": [1, 2.5, null]}),
                    false,
                ),
                op("kv", "k1", 1, T0, 2, json!({}), false),
                op("kv", "k1", 2, T0, 3, json!({}), true),
                op("threads", "t1", 2, T0, 4, json!({"project_id": "p2"}), false),
            ],
            T0,
        )
        .await
        .unwrap();
    let queries = [
        (0, 2, None),
        (0, 100, None),
        (2, 100, None),
        (0, 100, Some("p1")),
        (0, 100, Some("p2")),
        (5, 100, None),
    ];
    for (cursor, limit, project) in queries {
        let query = || ChangesQuery {
            cursor,
            limit,
            project_id: project.map(str::to_owned),
        };
        let page = store.changes(&ws, &alice(), query()).await.unwrap();
        let json = store.changes_json(&ws, &alice(), query()).await.unwrap();
        assert_eq!(json.changes.len(), page.changes.len());
        let expected = serde_json::to_value(sync_core::wire::ChangesPage {
            changes: page.changes,
            cursor: page.cursor,
            has_more: page.has_more,
            oldest_retained_version: page.oldest_retained_version,
        })
        .unwrap();
        let body =
            json.changes
                .into_page_body(json.cursor, json.has_more, json.oldest_retained_version);
        let written: Value = serde_json::from_slice(&body).expect("the body is JSON");
        assert_eq!(written, expected, "query {cursor} {limit} {project:?}");
    }
    let err = store
        .changes_json(
            &ws,
            &alice(),
            ChangesQuery {
                cursor: 99,
                limit: 10,
                project_id: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CursorExpired { .. }), "{err:?}");
}
