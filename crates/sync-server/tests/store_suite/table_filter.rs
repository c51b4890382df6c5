//! The `tables` filter of pulls and snapshots (PROTOCOL.md section 4).

use super::{alice, op, workspace, T0};
use serde_json::json;
use std::sync::Arc;
use sync_server::store::{ChangesQuery, SnapshotQuery, Store};

/// A pull filtered by tables returns only their entries, and its cursor
/// still advances over the entries it skipped.
pub async fn pull_and_snapshot_filter_by_tables(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let ops = vec![
        op("threads", "t1", 1, T0, 1, json!({}), false),
        op("kv", "k1", 1, T0, 2, json!({}), false),
        op(
            "messages",
            "m1",
            1,
            T0,
            3,
            json!({"thread_id": "t1"}),
            false,
        ),
        op("kv", "k2", 1, T0, 4, json!({}), false),
    ];
    store.push(&ws, &alice(), ops, T0).await.unwrap();
    let only = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    let page = store
        .changes(
            &ws,
            &alice(),
            ChangesQuery {
                cursor: 0,
                limit: 100,
                project_id: None,
                tables: only(&["messages", "threads"]),
            },
        )
        .await
        .unwrap();
    let pks: Vec<_> = page.changes.iter().map(|c| c.pk.as_str()).collect();
    assert_eq!(pks, ["t1", "m1"]);
    assert_eq!((page.cursor, page.has_more), (4, false), "skips k2 too");

    let snapshot = store
        .snapshot(
            &ws,
            &alice(),
            SnapshotQuery {
                after: None,
                snapshot_version: None,
                limit: 100,
                project_id: None,
                tables: only(&["kv"]),
            },
        )
        .await
        .unwrap();
    let pks: Vec<_> = snapshot.items.iter().map(|i| i.pk.as_str()).collect();
    assert_eq!(pks, ["k1", "k2"]);
    assert_eq!(snapshot.snapshot_version, 4);
}
