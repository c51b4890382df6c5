//! Bad input gets a clear error with a code, never a 500.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn raw_push(s: &TestServer, ws: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let res = s
        .http
        .post(format!("{}/v1/workspaces/{ws}/push", s.base))
        .bearer_auth(token("alice"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let (status, body) = raw_push(&s, &ws, b"{\"ops\": [".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_json");
    let (status, body) = raw_push(&s, &ws, vec![0xff, 0xfe, b'{']).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "invalid UTF-8");
    assert_eq!(body["error"]["code"], "invalid_json");
}

#[tokio::test]
async fn wrong_shape_is_400_invalid_request() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    for body in [
        json!({"ops": "x"}),
        json!([]),
        json!({"ops": [], "extra": 1}),
        json!({}),
    ] {
        let (status, reply) = raw_push(&s, &ws, body.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply["error"]["code"], "invalid_request", "{body}");
        assert_eq!(reply["error"]["field"], "body");
    }
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let big = format!("{{\"ops\": [\"{}\"]}}", "x".repeat(9 << 20));
    let (status, body) = raw_push(&s, &ws, big.into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn more_than_500_ops_is_413_too_many_ops() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let ops: Vec<Value> = (0..501).map(|i| json!({"op_id": i})).collect();
    let (status, body) = s.push(&ws, "alice", ops).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_many_ops");
    assert_eq!(body["error"]["field"], "ops");
}

#[tokio::test]
async fn deeply_nested_json_is_refused() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, body) = raw_push(&s, &ws, deep.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "json_too_deep");
}

#[tokio::test]
async fn unknown_workspace_is_404() {
    let s = start().await;
    let (status, body) = s
        .get("/v1/workspaces/does-not-exist/changes", "alice")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "unknown_workspace");
}

/// Sends a GET with the path exactly as written (no client-side URL normalisation).
async fn raw_get(s: &TestServer, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token("alice")
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    let text = String::from_utf8_lossy(&reply);
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn path_tricks_are_400_not_500() {
    let s = start().await;
    let long = "a".repeat(10_000);
    for ws in [
        "..%2F..%2Fetc",
        "%2e%2e",
        "%2E.",
        "a%00b",
        long.as_str(),
        "x%20y",
    ] {
        let (status, body) = raw_get(&s, &format!("/v1/workspaces/{ws}/changes")).await;
        assert_eq!(status, 400, "{ws}: {body}");
        assert_eq!(body["error"]["code"], "invalid_workspace_id", "{ws}");
    }
    let (status, body) = raw_get(&s, "/v1/workspaces/%ff/changes").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_path")),
        "invalid UTF-8"
    );
    let ws = s.workspace("alice").await;
    for pk in ["%00".to_owned(), "p".repeat(300), "a%0Ab".to_owned()] {
        let (status, body) =
            raw_get(&s, &format!("/v1/workspaces/{ws}/records/messages/{pk}")).await;
        assert_eq!(status, 400, "{pk}: {body}");
        assert_eq!(body["error"]["code"], "invalid_pk");
    }
    let (status, body) = raw_get(
        &s,
        &format!("/v1/workspaces/{ws}/records/messages/..%2F..%2Fx"),
    )
    .await;
    assert_eq!(status, 404, "a pk is an opaque key, never a path: {body}");
}

#[tokio::test]
async fn payload_that_is_not_an_object_is_rejected_per_op() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let h = hlc(now_ms(), 0, DEVICE_A);
    let mut ops = Vec::new();
    for payload in [json!([1, 2]), json!("text"), json!(3)] {
        let mut op = put("messages", "m1", 1, &h, json!({}));
        op["payload"] = payload;
        ops.push(op);
    }
    let results = s.push_ok(&ws, "alice", ops).await;
    for r in results {
        assert_eq!(r["status"], "rejected");
        assert_eq!(r["error"]["code"], "invalid_op");
        assert_eq!(r["error"]["field"], "payload");
    }
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let s = start().await;
    let (status, body) = s.get("/v2/nothing", "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn health_and_metrics_need_no_token() {
    let s = start().await;
    let (status, body) = s
        .request(reqwest::Method::GET, "/v1/health", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let ws = s.workspace("alice").await;
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "messages",
            "m1",
            1,
            &hlc(now_ms(), 0, DEVICE_A),
            json!({}),
        )],
    )
    .await;
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("or3_push_ops_total"), "{text}");
}

#[tokio::test]
async fn web_app_is_served_beside_the_api() {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(app.path().join("app.js"), "console.log(1)").unwrap();
    let config = sync_server::config::ServerConfig {
        static_dir: Some(app.path().to_owned()),
        ..Default::default()
    };
    let s = start_with(config, std::sync::Arc::new(sync_server::clock::SystemClock)).await;
    let get = |path: &str| s.http.get(format!("{}{path}", s.base)).send();
    assert_eq!(
        get("/").await.unwrap().text().await.unwrap(),
        "<h1>demo</h1>"
    );
    assert_eq!(
        get("/app.js").await.unwrap().text().await.unwrap(),
        "console.log(1)"
    );
    assert_eq!(
        get("/w/123").await.unwrap().text().await.unwrap(),
        "<h1>demo</h1>",
        "client-side routes"
    );
    for path in ["/v1/nothing", "/health", "/healthz", "/metricsz", "/api/x"] {
        let api = get(path).await.unwrap();
        assert_eq!(api.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            api.json::<Value>().await.unwrap()["error"]["code"],
            "not_found",
            "{path}: the API's JSON 404, never the app's HTML"
        );
    }
}

#[tokio::test]
async fn a_bad_query_parameter_names_itself() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    for (route, query, field) in [
        ("changes", "cursor=abc", "cursor"),
        ("changes", "cursor=-1", "cursor"),
        ("changes", "limit=ten", "limit"),
        ("changes", "cursor=1&cursor=2", "cursor"),
        ("changes", "since=3", "since"),
        ("snapshot", "limit=1.5", "limit"),
        ("snapshot", "project_id=a&project_id=b", "project_id"),
        ("snapshot", "page=2", "page"),
        ("events", "cursor=x", "cursor"),
        ("events", "device=1", "device"),
    ] {
        let (status, body) = s
            .get(&format!("/v1/workspaces/{ws}/{route}?{query}"), "alice")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}?{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{route}?{query}");
        assert_eq!(body["error"]["field"], field, "{route}?{query}: {body}");
    }
}
