//! Pull, snapshot and one-record reads over HTTP.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;

async fn seed(s: &TestServer, ws: &str, n: usize) {
    let t = now_ms();
    let ops: Vec<Value> = (0..n)
        .map(|i| {
            put(
                "messages",
                &format!("m{i:04}"),
                1,
                &hlc(t, i as u32, DEVICE_A),
                json!({"n": i}),
            )
        })
        .collect();
    for chunk in ops.chunks(100) {
        s.push_ok(ws, "alice", chunk.to_vec()).await;
    }
}

#[tokio::test]
async fn pull_returns_changes_in_order_with_no_gaps_across_pages() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    seed(&s, &ws, 250).await;
    let changes = s.pull_all(&ws, "alice", 0, 7).await;
    let versions: Vec<u64> = changes
        .iter()
        .map(|c| c["server_version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=250).collect::<Vec<_>>());
    let first = s.pull(&ws, "alice", 0, 7).await;
    assert_eq!(first["cursor"], 7);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["oldest_retained_version"], 1);
    let last = s.pull(&ws, "alice", 245, 100).await;
    assert_eq!(last["changes"].as_array().unwrap().len(), 5);
    assert_eq!(last["has_more"], false);
    assert_eq!(last["cursor"], 250);
}

#[tokio::test]
async fn change_carries_the_whole_stamp_and_payload() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let before = now_ms();
    let h = hlc(before, 3, DEVICE_A);
    let op = put(
        "messages",
        "m1",
        7,
        &h,
        json!({"text": "hello", "thread_id": "t1"}),
    );
    s.push_ok(&ws, "alice", vec![op.clone()]).await;
    let after = now_ms();
    let c = &s.pull(&ws, "alice", 0, 10).await["changes"][0];
    let committed_at = c["committed_at"].as_u64().expect("committed_at");
    assert!((before..=after).contains(&committed_at), "the commit time");
    assert_eq!(c["table_name"], "messages");
    assert_eq!(c["pk"], "m1");
    assert_eq!(c["operation"], "put");
    assert_eq!(c["clock"], 7);
    assert_eq!(c["hlc"], h.as_str());
    assert_eq!(c["op_id"], op["op_id"]);
    assert_eq!(c["device_id"], DEVICE_A);
    assert_eq!(c["scope_change"], false);
    assert_eq!(c["payload"]["text"], "hello");
    assert_eq!(
        c["payload"]["clock"], 7,
        "the row's sync fields mirror the stamp"
    );
}

#[tokio::test]
async fn pull_limit_is_bounded() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    for bad in ["limit=0", "limit=1001", "limit=x", "cursor=-1"] {
        let (status, body) = s
            .get(&format!("/v1/workspaces/{ws}/changes?{bad}"), "alice")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"]["code"].is_string());
    }
}

#[tokio::test]
async fn cursor_ahead_of_the_log_asks_for_a_rescan() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    seed(&s, &ws, 3).await;
    let (status, body) = s
        .get(&format!("/v1/workspaces/{ws}/changes?cursor=99"), "alice")
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["code"], "cursor_expired");
    assert_eq!(body["error"]["oldest_retained_version"], 1);
}

async fn snapshot_all(s: &TestServer, ws: &str, limit: usize, query: &str) -> (u64, Vec<Value>) {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut version = None;
    loop {
        let mut path = format!("/v1/workspaces/{ws}/snapshot?limit={limit}{query}");
        if let Some(t) = &token {
            path.push_str(&format!("&page_token={t}"));
        }
        let (status, page) = s.get(&path, "alice").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let v = page["snapshot_version"].as_u64().unwrap();
        assert_eq!(
            *version.get_or_insert(v),
            v,
            "every page carries the first page's version"
        );
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return (v, items),
        }
    }
}

#[tokio::test]
async fn snapshot_pages_cover_every_record_once_tombstones_included() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    seed(&s, &ws, 40).await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![
            delete("messages", "m0003", 2, &hlc(t, 900, DEVICE_A)),
            put("threads", "t1", 1, &hlc(t, 901, DEVICE_A), json!({})),
            put(
                "file_meta",
                "abc",
                1,
                &hlc(t, 902, DEVICE_A),
                json!({"hash": "abc"}),
            ),
        ],
    )
    .await;
    let (version, items) = snapshot_all(&s, &ws, 6, "").await;
    assert_eq!(version, 43);
    assert_eq!(items.len(), 42);
    let keys: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["table_name"].as_str().unwrap().to_owned(),
                i["pk"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by (table_name, pk)");
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        keys.len(),
        "no record twice"
    );
    let tomb = items.iter().find(|i| i["pk"] == "m0003").unwrap();
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["server_version"], 41);
}

#[tokio::test]
async fn page_token_is_bound_to_workspace_and_scope() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let other = s.workspace("alice").await;
    seed(&s, &ws, 5).await;
    let (_, page) = s
        .get(&format!("/v1/workspaces/{ws}/snapshot?limit=2"), "alice")
        .await;
    let token = page["next_page_token"].as_str().unwrap();
    for path in [
        format!("/v1/workspaces/{other}/snapshot?page_token={token}"),
        format!("/v1/workspaces/{ws}/snapshot?page_token={token}&project_id=p1"),
        format!("/v1/workspaces/{ws}/snapshot?page_token=garbage"),
    ] {
        let (status, body) = s.get(&path, "alice").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], "invalid_page_token");
    }
}

#[tokio::test]
async fn project_filter_follows_threads_and_their_messages() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        puts(
            t,
            vec![
                ("threads", "t1", json!({"project_id": "p1"})),
                ("threads", "t2", json!({"project_id": "p2"})),
                ("messages", "m1", json!({"thread_id": "t1"})),
                ("messages", "m2", json!({"thread_id": "t2"})),
                ("kv", "k1", json!({})),
            ],
        ),
    )
    .await;
    let page = s
        .get(
            &format!("/v1/workspaces/{ws}/changes?project_id=p1"),
            "alice",
        )
        .await
        .1;
    let pks: Vec<_> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pk"].as_str().unwrap())
        .collect();
    assert_eq!(pks, ["t1", "m1", "k1"]);
    assert_eq!(page["cursor"], 5);

    // Thread t2 moves into p1: the entry is logged with both projects and a scope change.
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "threads",
            "t2",
            2,
            &hlc(t, 5, DEVICE_A),
            json!({"project_id": "p1"}),
        )],
    )
    .await;
    for project in ["p1", "p2"] {
        let page = s
            .get(
                &format!("/v1/workspaces/{ws}/changes?cursor=5&project_id={project}"),
                "alice",
            )
            .await
            .1;
        assert_eq!(page["changes"][0]["pk"], "t2", "{project} sees the move");
        assert_eq!(page["changes"][0]["scope_change"], true);
    }
    let (_, items) = snapshot_all(&s, &ws, 100, "&project_id=p1").await;
    let pks: Vec<_> = items.iter().map(|i| i["pk"].as_str().unwrap()).collect();
    assert_eq!(
        pks,
        ["k1", "m1", "m2", "t1", "t2"],
        "m2 arrives with its thread"
    );
}

#[tokio::test]
async fn one_record_is_read_or_404() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    seed(&s, &ws, 1).await;
    let (status, rec) = s
        .get(
            &format!("/v1/workspaces/{ws}/records/messages/m0000"),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rec["payload"]["n"], 0);
    let (status, body) = s
        .get(
            &format!("/v1/workspaces/{ws}/records/messages/nope"),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = s
        .get(&format!("/v1/workspaces/{ws}/records/secrets/x"), "alice")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_table");
}

#[tokio::test]
async fn tables_filter_is_checked_and_binds_the_snapshot_token() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    let ops = puts(
        t,
        vec![
            ("messages", "m1", json!({})),
            ("kv", "k1", json!({})),
            ("kv", "k2", json!({})),
            ("kv", "k3", json!({})),
        ],
    );
    s.push_ok(&ws, "alice", ops).await;
    let (status, page) = s
        .get(
            &format!("/v1/workspaces/{ws}/changes?cursor=0&tables=kv"),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["changes"].as_array().unwrap().len(), 3);
    assert_eq!(page["cursor"], 4);
    for (query, code) in [
        ("tables=", "invalid_query"),
        ("tables=kv,,messages", "invalid_query"),
        ("tables=kv,kv", "invalid_query"),
        ("tables=kv,nope", "unknown_table"),
    ] {
        for route in ["changes", "snapshot"] {
            let path = format!("/v1/workspaces/{ws}/{route}?{query}");
            let (status, body) = s.get(&path, "alice").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(body["error"]["code"], code, "{path}");
            assert_eq!(body["error"]["field"], "tables", "{path}");
        }
    }
    let (_, first) = s
        .get(
            &format!("/v1/workspaces/{ws}/snapshot?limit=2&tables=kv"),
            "alice",
        )
        .await;
    let token = first["next_page_token"].as_str().unwrap();
    let (status, body) = s
        .get(
            &format!("/v1/workspaces/{ws}/snapshot?page_token={token}"),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_page_token");
    let (status, rest) = s
        .get(
            &format!("/v1/workspaces/{ws}/snapshot?page_token={token}&tables=kv"),
            "alice",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["items"][0]["pk"], "k3");
}

#[tokio::test]
async fn a_device_reports_its_cursor_never_past_the_head_nor_back() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    seed(&s, &ws, 3).await;
    s.add_member(&ws, "alice", "victor", "viewer").await;
    let report = |device: &str, cursor: Value, user: &'static str| {
        let path = format!("/v1/workspaces/{ws}/devices/{device}/cursor");
        let s = &s;
        async move {
            s.request(
                reqwest::Method::PUT,
                &path,
                Some(user),
                Some(json!({ "cursor": cursor })),
            )
            .await
        }
    };
    let (status, body) = report(DEVICE_A, json!(2), "victor").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"device_id": DEVICE_A, "cursor": 2}));
    let (status, _) = report(DEVICE_A, json!(2), "alice").await;
    assert_eq!(status, StatusCode::OK, "the same position again");
    for (device, cursor, status, code) in [
        (DEVICE_A, json!(4), StatusCode::BAD_REQUEST, "cursor_ahead"),
        (
            DEVICE_A,
            json!(1),
            StatusCode::CONFLICT,
            "cursor_regression",
        ),
        (
            "NOT-HEX",
            json!(1),
            StatusCode::BAD_REQUEST,
            "invalid_device_id",
        ),
        (
            DEVICE_A,
            json!(-1),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let (got, body) = report(device, cursor.clone(), "alice").await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)));
        let field = match code {
            "invalid_device_id" => "device_id",
            "invalid_request" => "body",
            _ => "cursor",
        };
        assert_eq!(body["error"]["field"], field, "{cursor}");
    }
    let (status, _) = report(DEVICE_A, json!(3), "mallory").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
