//! GC on a large log runs in small batches: pushes keep being served while it runs.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use sync_core::retention::RetentionPolicy;
use sync_core::WorkspaceId;

const ENTRIES: u64 = 1_000_000;

/// Writes `ENTRIES` old log entries straight into the database file.
fn seed_log(path: &std::path::Path, ws: &str, committed_at: i64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut log = tx
            .prepare(
                "INSERT INTO change_log (workspace_id, server_version, table_name, pk, operation, payload,
                     clock, hlc, op_id, device_id, scoped, project_id, prev_project_id, scope_change, committed_at)
                 VALUES (?1, ?2, 'kv', ?3, 'put', '{}', 1, '1700000000000-000000-aaaaaaaaaaaaaaaa', ?3,
                     'aaaaaaaaaaaaaaaa', 0, NULL, NULL, 0, ?4)",
            )
            .unwrap();
        let mut ops = tx
            .prepare("INSERT INTO applied_ops (workspace_id, op_id, server_version, committed_at) VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        for v in 1..=ENTRIES as i64 {
            let id = format!("5eed0000-0000-4000-8000-{v:012x}");
            log.execute(rusqlite::params![ws, v, id, committed_at])
                .unwrap();
            ops.execute(rusqlite::params![ws, id, v, committed_at])
                .unwrap();
        }
    }
    tx.execute(
        "UPDATE workspaces SET head = ?2 WHERE id = ?1",
        rusqlite::params![ws, ENTRIES as i64],
    )
    .unwrap();
    tx.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_of_a_million_entries_keeps_pushes_flowing() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let seeded = Instant::now();
    seed_log(
        &s.dir.path().join("t.db"),
        &ws,
        (now_ms() - 30 * 24 * 3600 * 1000) as i64,
    );
    println!("seeded {ENTRIES} entries in {:?}", seeded.elapsed());

    let ws_id = WorkspaceId::parse(&ws).unwrap();
    let store = s.store.clone();
    let gc = tokio::spawn(async move {
        let started = Instant::now();
        let report = store
            .collect_garbage(&ws_id, &RetentionPolicy::default(), now_ms(), false)
            .await
            .unwrap();
        (report, started.elapsed())
    });
    let mut latencies = Vec::new();
    let mut i = 0u32;
    while !gc.is_finished() {
        let op = put(
            "messages",
            &format!("live{i}"),
            1,
            &hlc(now_ms(), i, DEVICE_A),
            json!({}),
        );
        let started = Instant::now();
        let results = s.push_ok(&ws, "alice", vec![op]).await;
        latencies.push(started.elapsed());
        assert_eq!(results[0]["status"], "applied");
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (report, took) = gc.await.unwrap();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    println!(
        "gc purged {} entries in {took:?}; {} pushes served meanwhile, latency p50 {p50:?}, max {max:?}",
        report.log_entries_purged,
        latencies.len()
    );
    assert_eq!(report.log_entries_purged, ENTRIES);
    assert_eq!(report.op_ids_purged, ENTRIES);
    assert!(latencies.len() >= 5, "pushes were served while GC ran");
    assert!(
        max < Duration::from_secs(2),
        "no push waited long for GC: max {max:?}"
    );
    let page = s.pull(&ws, "alice", ENTRIES, 1000).await;
    assert_eq!(
        page["changes"].as_array().unwrap().len() as u32,
        i,
        "live pushes after the purged range are intact"
    );
}
