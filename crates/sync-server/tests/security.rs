//! Limits and tenancy under attack: rate limits, connection and subscription
//! caps, CORS, draining, membership from Clerk organization claims, and a
//! property test that throws garbage at the push handler.

mod common;

use common::*;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use sync_server::clock::SystemClock;
use sync_server::config::RateLimitConfig;

#[tokio::test]
async fn push_flood_is_rate_limited_per_user_with_headers() {
    let s = start_with_push_limit(5).await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "editor").await;
    let push = |user: &'static str| {
        s.http
            .post(format!("{}/v1/workspaces/{ws}/push", s.base))
            .bearer_auth(token(user))
            .json(&json!({"ops": []}))
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..8 {
        let res = push("alice").await.unwrap();
        let status = res.status();
        let h = res.headers().clone();
        assert_eq!(h["ratelimit-limit"], "5");
        let remaining: u32 = h["ratelimit-remaining"].to_str().unwrap().parse().unwrap();
        assert!(h.contains_key("ratelimit-reset"));
        if status == StatusCode::OK {
            assert_eq!(remaining, 4 - i, "remaining counts down");
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "retry-after {retry}");
            assert_eq!(
                res.json::<Value>().await.unwrap()["error"]["code"],
                "rate_limited"
            );
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert_eq!(
        push("bob").await.unwrap().status(),
        StatusCode::OK,
        "limits are per user"
    );
    let pull = s
        .get(&format!("/v1/workspaces/{ws}/changes"), "alice")
        .await;
    assert_eq!(pull.0, StatusCode::OK, "limits are per route class");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_limited_per_ip() {
    let limits = RateLimitConfig {
        anonymous_per_minute: 3,
        ..RateLimitConfig::default()
    };
    let s = start_with(
        config_with(|c| c.rate_limits = limits),
        Arc::new(SystemClock),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = s
            .http
            .get(format!("{}/v1/workspaces/w/changes", s.base))
            .bearer_auth("forged")
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let health = s
        .http
        .get(format!("{}/v1/health", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "health checks are never limited"
    );
}

#[tokio::test]
async fn connections_over_the_cap_get_503() {
    let s = start_with(
        config_with(|c| c.max_connections = 2),
        Arc::new(SystemClock),
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let _a = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _b = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::AsyncReadExt;
    let mut reply = String::new();
    c.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("too_many_connections"));
}

#[tokio::test]
async fn subscriptions_per_user_are_capped() {
    let s = start_with(
        config_with(|c| c.max_subscriptions_per_user = 2),
        Arc::new(SystemClock),
    )
    .await;
    let ws = s.workspace("alice").await;
    let open = || {
        s.http
            .get(format!("{}/v1/workspaces/{ws}/events", s.base))
            .bearer_auth(token("alice"))
            .send()
    };
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = open().await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        third.json::<Value>().await.unwrap()["error"]["code"],
        "too_many_subscriptions"
    );
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let s = start_with(
        config_with(|c| c.allowed_origins = vec![ALLOWED_ORIGIN.to_owned()]),
        Arc::new(SystemClock),
    )
    .await;
    let preflight = |origin: &str| {
        s.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/workspaces", s.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight(ALLOWED_ORIGIN).await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], ALLOWED_ORIGIN);
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(!evil.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = start().await;
    let res = s
        .http
        .get(format!("{}/v1/health", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 36);
    let res = s
        .http
        .get(format!("{}/v1/health", s.base))
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["x-request-id"],
        "trace-me",
        "a client's id is kept"
    );
}

#[tokio::test]
async fn pushes_during_the_drain_get_503_with_retry_after() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let res = s
        .http
        .post(format!("{}/v1/workspaces/{ws}/push", s.base))
        .bearer_auth(token("alice"))
        .json(&json!({"ops": [put("messages", "m1", 1, &hlc(now_ms(), 0, DEVICE_A), json!({}))]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "draining"
    );
}

fn org_token(user: &str, org: &str, role: &str) -> String {
    let mut c = claims(user);
    c["org_id"] = json!(org);
    c["org_role"] = json!(role);
    key().sign(&c, Some("test"))
}

#[tokio::test]
async fn membership_from_claims_follows_the_organization() {
    let s = start_with(
        config_with(|c| c.membership_from_claims = true),
        Arc::new(SystemClock),
    )
    .await;
    let push = |tok: String, ws: &'static str| {
        let op = put("messages", "m1", 1, &hlc(now_ms(), 0, DEVICE_A), json!({}));
        s.http
            .post(format!("{}/v1/workspaces/{ws}/push", s.base))
            .bearer_auth(tok)
            .json(&json!({ "ops": [op] }))
            .send()
    };
    let admin = push(org_token("alice", "org_1", "org:admin"), "org_1")
        .await
        .unwrap();
    assert_eq!(
        admin.status(),
        StatusCode::OK,
        "the organization's workspace is created on first use"
    );
    let member = push(org_token("bob", "org_1", "org:member"), "org_1")
        .await
        .unwrap();
    assert_eq!(member.status(), StatusCode::OK);
    let viewer = push(org_token("carol", "org_1", "org:viewer"), "org_1")
        .await
        .unwrap();
    assert_eq!(
        viewer.status(),
        StatusCode::FORBIDDEN,
        "other roles may only read"
    );
    let outsider = push(org_token("mallory", "org_2", "org:admin"), "org_1")
        .await
        .unwrap();
    assert_eq!(
        outsider.status(),
        StatusCode::FORBIDDEN,
        "another organization's token"
    );
    let listed: Value = s
        .http
        .get(format!("{}/v1/workspaces", s.base))
        .bearer_auth(org_token("bob", "org_1", "org:member"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["workspaces"][0]["workspace_id"], "org_1");
    assert_eq!(listed["workspaces"][0]["role"], "editor");
    let invite = s
        .http
        .put(format!("{}/v1/workspaces/org_1/members/dave", s.base))
        .bearer_auth(org_token("alice", "org_1", "org:admin"))
        .json(&json!({"role": "editor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        invite.status(),
        StatusCode::CONFLICT,
        "members live in the auth system"
    );
}

#[tokio::test]
async fn ten_thousand_ops_are_refused_whole() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let op = put("messages", "m1", 1, &hlc(now_ms(), 0, DEVICE_A), json!({}));
    let (status, body) = s.push(&ws, "alice", vec![op; 10_000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "too_many_ops");
    assert!(s.pull_all(&ws, "alice", 0, 10).await.is_empty());
}

#[tokio::test]
async fn workspace_ids_of_others_never_leak_through_any_route() {
    let s = start().await;
    let mine = s.workspace("alice").await;
    let theirs = s.workspace("bob").await;
    s.push_ok(
        &theirs,
        "bob",
        vec![put(
            "threads",
            "t1",
            1,
            &hlc(now_ms(), 0, DEVICE_A),
            json!({"project_id": "p"}),
        )],
    )
    .await;
    for path in [
        format!("/v1/workspaces/{theirs}/changes?project_id=p"),
        format!("/v1/workspaces/{theirs}/snapshot?project_id=p"),
        format!("/v1/workspaces/{theirs}/records/threads/t1"),
        format!("/v1/workspaces/{theirs}/events"),
    ] {
        assert_eq!(
            s.get(&path, "alice").await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // A snapshot page token of bob's workspace used against alice's is refused.
    let (_, page) = s
        .get(&format!("/v1/workspaces/{theirs}/snapshot?limit=1"), "bob")
        .await;
    assert!(page["next_page_token"].is_null(), "one record, one page");
    let (_, own) = s
        .get(
            &format!("/v1/workspaces/{mine}/records/threads/t1"),
            "alice",
        )
        .await;
    assert_eq!(
        own["error"]["code"], "not_found",
        "the same pk in another workspace is another record"
    );
}

fn arbitrary_op() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(json!("00000000-0000-4000-8000-000000000001")),
        Just(json!("messages")),
        Just(json!("put")),
        Just(json!("delete")),
        Just(json!("1732540000000-000000-aaaaaaaaaaaaaaaa")),
        Just(json!("aaaaaaaaaaaaaaaa")),
        Just(json!({"id": "m1"})),
        Just(json!([1, 2, 3])),
    ];
    let fields = [
        "op_id",
        "table_name",
        "operation",
        "pk",
        "payload",
        "clock",
        "hlc",
        "device_id",
        "extra",
    ];
    proptest::collection::vec((0..fields.len(), text), 0..10).prop_map(move |pairs| {
        let mut op = serde_json::Map::new();
        for (i, v) in pairs {
            op.insert(fields[i].to_owned(), v);
        }
        Value::Object(op)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bytes and random almost-right ops never panic the push handler
    /// nor make it answer 5xx.
    #[test]
    fn push_handler_never_fails_on_garbage(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ops in proptest::collection::vec(arbitrary_op(), 0..20),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (base, ws) = shared_server();
            let http = reqwest::Client::new();
            let url = format!("{base}/v1/workspaces/{ws}/push");
            let raw = http.post(&url).bearer_auth(token("alice")).body(bytes).send().await.unwrap();
            prop_assert!(raw.status().is_client_error() || raw.status().is_success(), "{}", raw.status());
            let res = http.post(&url).bearer_auth(token("alice")).json(&json!({"ops": ops})).send().await.unwrap();
            prop_assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            prop_assert_eq!(body["results"].as_array().unwrap().len(), ops.len());
            Ok(())
        })?;
    }
}

/// One server for all proptest cases, on a runtime thread of its own:
/// its base URL and a workspace of alice's.
fn shared_server() -> &'static (String, String) {
    static SERVER: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let config = config_with(|c| c.rate_limits = RateLimitConfig::off());
                let s = start_with(config, Arc::new(SystemClock)).await;
                let ws = s.workspace("alice").await;
                let _ = tx.send((s.base.clone(), ws));
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}
