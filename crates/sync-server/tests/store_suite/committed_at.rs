//! The commit time every log entry, snapshot item and record carries
//! (PROTOCOL.md section 4, `committed_at`).

use super::{alice, all_changes, op, workspace, T0};
use serde_json::json;
use std::sync::Arc;
use sync_server::store::{SnapshotQuery, Store};

/// Each version carries the time it was committed; a tombstone the time of
/// its delete.
pub async fn each_version_carries_its_commit_time(store: Arc<dyn Store>) {
    let ws = workspace(&store).await;
    let later = T0 + 60_000;
    let first = vec![
        op("kv", "k1", 1, T0, 1, json!({}), false),
        op("kv", "k2", 1, T0, 2, json!({}), false),
    ];
    store.push(&ws, &alice(), first, T0).await.unwrap();
    let delete = vec![op("kv", "k2", 2, later, 3, json!({}), true)];
    let pushed = store.push(&ws, &alice(), delete, later).await.unwrap();
    assert_eq!(pushed.changes[0].change.committed_at, later, "fanned out");

    let log: Vec<u64> = all_changes(&store, &ws, 0)
        .await
        .unwrap()
        .iter()
        .map(|c| c.committed_at)
        .collect();
    assert_eq!(log, [T0, T0, later]);
    let (tail, _) = store.log_since(&ws, 0, 10).await.unwrap();
    let tail: Vec<u64> = tail.iter().map(|c| c.change.committed_at).collect();
    assert_eq!(tail, [T0, T0, later]);

    let snapshot = store
        .snapshot(
            &ws,
            &alice(),
            SnapshotQuery {
                after: None,
                snapshot_version: None,
                limit: 10,
                project_id: None,
                tables: None,
            },
        )
        .await
        .unwrap();
    let items: Vec<(&str, bool, u64)> = snapshot
        .items
        .iter()
        .map(|i| (i.pk.as_str(), i.deleted, i.committed_at))
        .collect();
    assert_eq!(items, [("k1", false, T0), ("k2", true, later)]);
    let one = store.record(&ws, &alice(), "kv", "k2").await.unwrap();
    assert_eq!(one.committed_at, later);
}
