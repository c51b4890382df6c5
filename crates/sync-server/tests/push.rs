//! Push over HTTP: per-op statuses, idempotency and last-writer-wins on the server.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn new_op_is_applied_with_a_server_version() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    let results = s
        .push_ok(
            &ws,
            "alice",
            puts(
                t,
                vec![
                    ("messages", "m1", json!({"text": "a"})),
                    ("messages", "m2", json!({"text": "b"})),
                ],
            ),
        )
        .await;
    assert_eq!(results[0]["status"], "applied");
    assert_eq!(results[0]["server_version"], 1);
    assert_eq!(results[1]["status"], "applied");
    assert_eq!(results[1]["server_version"], 2);
}

#[tokio::test]
async fn pushing_the_same_batch_twice_changes_nothing() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    let batch = vec![
        put(
            "messages",
            "m1",
            1,
            &hlc(t, 0, DEVICE_A),
            json!({"text": "a"}),
        ),
        delete("messages", "m1", 2, &hlc(t, 1, DEVICE_A)),
        put(
            "threads",
            "t1",
            1,
            &hlc(t, 2, DEVICE_A),
            json!({"title": "x"}),
        ),
    ];
    let first = s.push_ok(&ws, "alice", batch.clone()).await;
    let (status, second) = s.push(&ws, "alice", batch).await;
    assert_eq!(status, StatusCode::OK);
    for (a, b) in first.iter().zip(second["results"].as_array().unwrap()) {
        assert_eq!(a["status"], "applied");
        assert_eq!(b["status"], "duplicate");
        assert_eq!(
            a["server_version"], b["server_version"],
            "duplicate names the original version"
        );
    }
    assert_eq!(second["server_version"], 3, "no new versions");
    assert_eq!(s.pull_all(&ws, "alice", 0, 100).await.len(), 3);
}

#[tokio::test]
async fn same_op_twice_in_one_batch_is_applied_once() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let op = put("messages", "m1", 1, &hlc(now_ms(), 0, DEVICE_A), json!({}));
    let results = s.push_ok(&ws, "alice", vec![op.clone(), op]).await;
    assert_eq!(results[0]["status"], "applied");
    assert_eq!(results[1]["status"], "duplicate");
    assert_eq!(results[1]["server_version"], 1);
}

#[tokio::test]
async fn batch_mixing_valid_and_invalid_ops_applies_the_valid_ones() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    let mut mismatch = put("messages", "m2", 1, &hlc(t, 1, DEVICE_A), json!({}));
    mismatch["payload"]["id"] = json!("other");
    let results = s
        .push_ok(
            &ws,
            "alice",
            vec![
                put("messages", "m1", 1, &hlc(t, 0, DEVICE_A), json!({})),
                put("nope", "x", 1, &hlc(t, 1, DEVICE_A), json!({})),
                mismatch,
                json!("not an op"),
                put("messages", "m3", 1, &hlc(t, 2, DEVICE_A), json!({})),
            ],
        )
        .await;
    let statuses: Vec<_> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["applied", "rejected", "rejected", "rejected", "applied"]
    );
    assert_eq!(results[1]["error"]["code"], "unknown_table");
    assert_eq!(results[2]["error"]["code"], "pk_mismatch");
    assert_eq!(results[3]["error"]["code"], "invalid_op");
    assert_eq!(
        results[4]["server_version"], 2,
        "rejections take no version"
    );
}

#[tokio::test]
async fn hlc_too_far_ahead_is_rejected_as_retryable_clock_skew() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let year_ahead = now_ms() + 365 * 24 * 3600 * 1000;
    let results = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "messages",
                "m1",
                1,
                &hlc(year_ahead, 0, DEVICE_A),
                json!({}),
            )],
        )
        .await;
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["error"]["code"], "clock_skew");
    assert_eq!(results[0]["error"]["retryable"], true);
}

#[tokio::test]
async fn higher_clock_wins_even_with_an_older_hlc() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "messages",
            "m1",
            5,
            &hlc(t - 1000, 0, DEVICE_A),
            json!({"text": "five"}),
        )],
    )
    .await;
    let results = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "messages",
                "m1",
                4,
                &hlc(t, 0, DEVICE_B),
                json!({"text": "four"}),
            )],
        )
        .await;
    assert_eq!(results[0]["status"], "superseded");
    let winner = &results[0]["winner"];
    assert_eq!(winner["clock"], 5);
    assert_eq!(winner["server_version"], 1);
    assert_eq!(winner["deleted"], false);
    assert_eq!(
        winner["payload"]["text"], "five",
        "the winner carries its whole row"
    );
    assert!(winner["op_id"].is_string() && winner["hlc"].is_string());
}

#[tokio::test]
async fn equal_clocks_are_decided_by_hlc() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "messages",
            "m1",
            2,
            &hlc(t, 0, DEVICE_A),
            json!({"text": "a"}),
        )],
    )
    .await;
    let later = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "messages",
                "m1",
                2,
                &hlc(t, 1, DEVICE_A),
                json!({"text": "b"}),
            )],
        )
        .await;
    assert_eq!(later[0]["status"], "applied");
    let earlier = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "messages",
                "m1",
                2,
                &hlc(t, 0, DEVICE_B),
                json!({"text": "c"}),
            )],
        )
        .await;
    assert_eq!(earlier[0]["status"], "superseded");
    assert_eq!(earlier[0]["winner"]["payload"]["text"], "b");
}

#[tokio::test]
async fn equal_clock_and_hlc_are_decided_by_op_id() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let h = hlc(now_ms(), 0, DEVICE_A);
    let mut low = put("messages", "m1", 2, &h, json!({"text": "low"}));
    low["op_id"] = json!("00000000-0000-4000-8000-aaaaaaaaaaa1");
    let mut high = put("messages", "m1", 2, &h, json!({"text": "high"}));
    high["op_id"] = json!("00000000-0000-4000-8000-aaaaaaaaaaa2");
    assert_eq!(
        s.push_ok(&ws, "alice", vec![high]).await[0]["status"],
        "applied"
    );
    let r = s.push_ok(&ws, "alice", vec![low]).await;
    assert_eq!(r[0]["status"], "superseded");
    assert_eq!(r[0]["winner"]["payload"]["text"], "high");
}

#[tokio::test]
async fn stale_put_never_overwrites_a_tombstone() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![
            put(
                "messages",
                "m1",
                1,
                &hlc(t, 0, DEVICE_A),
                json!({"text": "hi"}),
            ),
            delete("messages", "m1", 2, &hlc(t, 1, DEVICE_A)),
        ],
    )
    .await;
    let stale = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "messages",
                "m1",
                2,
                &hlc(t - 5, 0, DEVICE_B),
                json!({"text": "edit"}),
            )],
        )
        .await;
    assert_eq!(stale[0]["status"], "superseded");
    assert_eq!(stale[0]["winner"]["deleted"], true);
    let (status, record) = s
        .get(&format!("/v1/workspaces/{ws}/records/messages/m1"), "alice")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["deleted"], true);
    assert_eq!(record["payload"]["deleted"], true);
    assert_eq!(
        record["payload"]["text"], "hi",
        "a bare delete keeps the row's data in its tombstone"
    );
}

#[tokio::test]
async fn delete_with_higher_clock_wins_and_a_newer_put_revives() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![put("threads", "t1", 1, &hlc(t, 0, DEVICE_A), json!({}))],
    )
    .await;
    let del = s
        .push_ok(
            &ws,
            "alice",
            vec![delete("threads", "t1", 2, &hlc(t, 1, DEVICE_B))],
        )
        .await;
    assert_eq!(del[0]["status"], "applied");
    let revive = s
        .push_ok(
            &ws,
            "alice",
            vec![put(
                "threads",
                "t1",
                3,
                &hlc(t, 2, DEVICE_A),
                json!({"title": "back"}),
            )],
        )
        .await;
    assert_eq!(
        revive[0]["status"], "applied",
        "a put that wins LWW against the tombstone is applied"
    );
    let changes = s.pull_all(&ws, "alice", 0, 100).await;
    let ops: Vec<_> = changes
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["put", "delete", "put"]);
}

#[tokio::test]
async fn put_with_deleted_true_is_stored_as_a_tombstone() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "messages",
            "m1",
            1,
            &hlc(t, 0, DEVICE_A),
            json!({"deleted": true, "deleted_at": 5}),
        )],
    )
    .await;
    let (_, record) = s
        .get(&format!("/v1/workspaces/{ws}/records/messages/m1"), "alice")
        .await;
    assert_eq!(record["deleted"], true);
    let changes = s.pull_all(&ws, "alice", 0, 100).await;
    assert_eq!(changes[0]["operation"], "delete");
}

#[tokio::test]
async fn same_stamp_with_a_new_op_id_record_is_a_duplicate() {
    // An op whose op-id record is gone is still recognised by its stamp.
    let s = start().await;
    let ws = s.workspace("alice").await;
    let op = put("messages", "m1", 1, &hlc(now_ms(), 0, DEVICE_A), json!({}));
    s.push_ok(&ws, "alice", vec![op.clone()]).await;
    let r = s.push_ok(&ws, "alice", vec![op]).await;
    assert_eq!(r[0]["status"], "duplicate");
}

#[tokio::test]
async fn push_response_carries_server_time() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let before = now_ms();
    let (_, body) = s.push(&ws, "alice", vec![]).await;
    let server_time = body["server_time"].as_u64().unwrap();
    assert!(server_time >= before && server_time <= now_ms());
}

#[tokio::test]
async fn an_op_id_reused_with_other_content_is_rejected_and_keeps_the_first_write() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    let first = put(
        "messages",
        "m1",
        1,
        &hlc(t, 0, DEVICE_A),
        json!({"text": "a"}),
    );
    s.push_ok(&ws, "alice", vec![first.clone()]).await;
    let mut reused = put(
        "messages",
        "m1",
        2,
        &hlc(t, 1, DEVICE_A),
        json!({"text": "b"}),
    );
    reused["op_id"] = first["op_id"].clone();
    let results = s.push_ok(&ws, "alice", vec![reused]).await;
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["error"]["code"], "op_id_reused");
    assert_eq!(results[0]["error"]["field"], "op_id");
    assert!(results[0]["error"].get("retryable").is_none(), "permanent");
    let log = s.pull_all(&ws, "alice", 0, 100).await;
    assert_eq!(log.len(), 1, "nothing logged for the reused id");
    assert_eq!(log[0]["payload"]["text"], "a");
}
