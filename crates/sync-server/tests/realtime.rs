//! Subscriptions over WebSocket and SSE: backlog then live commits, chained
//! frames with no gap or duplicate, pokes, revocation, expiry and restarts.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use sync_server::clock::SystemClock;
use sync_server::config::ServerConfig;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(10);

async fn connect(
    s: &TestServer,
    ws: &str,
    token: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = s.ws_url(ws).into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("or3-sync.v1, bearer.{token}").parse().unwrap(),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(response.headers()["sec-websocket-protocol"], "or3-sync.v1");
    Ok(socket)
}

async fn hello(socket: &mut Socket, cursor: u64, project: Option<&str>) {
    let frame =
        json!({"type": "hello", "cursor": cursor, "device_id": DEVICE_B, "project_id": project});
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame (pings skipped), or `None` when the stream closed.
async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a frame before the deadline")
        {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Reads `changes` frames until `target` is reached; checks that they chain.
async fn collect_until(socket: &mut Socket, mut position: u64, target: u64) -> Vec<Value> {
    let mut changes = Vec::new();
    while position < target {
        let frame = next_frame(socket).await.expect("stream open");
        assert_eq!(frame["type"], "changes", "{frame}");
        assert_eq!(frame["from"], position, "frames chain");
        for c in frame["changes"].as_array().unwrap() {
            changes.push(c.clone());
        }
        position = frame["to"].as_u64().unwrap();
    }
    changes
}

fn one_op(i: u32, t: u64) -> Vec<Value> {
    vec![put(
        "messages",
        &format!("m{i}"),
        1,
        &hlc(t, i, DEVICE_A),
        json!({"n": i}),
    )]
}

#[tokio::test]
async fn subscriber_sees_every_push_in_order_across_the_backlog_seam() {
    let s = Arc::new(start().await);
    let ws = s.workspace("alice").await;
    let t = now_ms();
    for i in 0..50 {
        s.push_ok(&ws, "alice", one_op(i, t)).await;
    }
    let pusher = {
        let (s, ws) = (s.clone(), ws.clone());
        tokio::spawn(async move {
            for i in 50..150 {
                s.push_ok(&ws, "alice", one_op(i, t)).await;
            }
        })
    };
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 0, None).await;
    let changes = collect_until(&mut socket, 0, 150).await;
    pusher.await.unwrap();
    let versions: Vec<u64> = changes
        .iter()
        .map(|c| c["server_version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=150).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
}

#[tokio::test]
async fn hello_resumes_after_the_cursor() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    for i in 0..10 {
        s.push_ok(&ws, "alice", one_op(i, t)).await;
    }
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 7, None).await;
    let changes = collect_until(&mut socket, 7, 10).await;
    assert_eq!(changes.len(), 3);
    s.push_ok(&ws, "alice", one_op(10, t)).await;
    let live = collect_until(&mut socket, 10, 11).await;
    assert_eq!(live[0]["pk"], "m10");
    assert_eq!(live[0]["payload"]["n"], 10);
}

#[tokio::test]
async fn slow_subscriber_is_poked_and_the_others_keep_receiving() {
    let config = ServerConfig {
        subscriber_queue: 4,
        ..ServerConfig::default()
    };
    let s = start_with(config, Arc::new(SystemClock)).await;
    let ws = s.workspace("alice").await;
    let mut slow = connect(&s, &ws, &token("alice")).await.unwrap();
    let mut fast = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut slow, 0, None).await;
    hello(&mut fast, 0, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = now_ms();
    let big = "x".repeat(200_000);
    let reader = tokio::spawn(async move {
        let changes = collect_until(&mut fast, 0, 120).await;
        changes.len()
    });
    for i in 0..120u32 {
        let op = put(
            "messages",
            &format!("m{i}"),
            1,
            &hlc(t, i, DEVICE_A),
            json!({"blob": big}),
        );
        s.push_ok(&ws, "alice", vec![op]).await;
    }
    assert_eq!(
        reader.await.unwrap(),
        120,
        "the fast subscriber got everything"
    );
    // The slow one now reads what was buffered: somewhere in there is a poke,
    // and after it nothing until a new hello.
    let mut poked_at = None;
    let mut position = 0;
    while poked_at.is_none() {
        let frame = next_frame(&mut slow).await.expect("open");
        match frame["type"].as_str() {
            Some("changes") => {
                assert_eq!(frame["from"], position);
                position = frame["to"].as_u64().unwrap();
            }
            Some("poke") => poked_at = Some(frame["server_version"].as_u64().unwrap()),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(poked_at, Some(120));
    assert!(position < 120, "it really fell behind");
    let quiet = tokio::time::timeout(Duration::from_millis(300), slow.next()).await;
    assert!(quiet.is_err(), "silence after a poke");
    hello(&mut slow, position, None).await;
    let rest = collect_until(&mut slow, position, 120).await;
    assert_eq!(rest.len() as u64, 120 - position, "a new hello resumes");
}

#[tokio::test]
async fn non_member_subscription_is_refused() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    match connect(&s, &ws, &token("mallory")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403, got {:?}", other.map(|_| "a socket")),
    }
    match connect(&s, &ws, "garbage").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected a 401, got {:?}", other.map(|_| "a socket")),
    }
}

#[tokio::test]
async fn revoked_member_stream_is_closed_with_an_error_frame() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "editor").await;
    let mut socket = connect(&s, &ws, &token("bob")).await.unwrap();
    hello(&mut socket, 0, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = s
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/workspaces/{ws}/members/bob"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let frame = next_frame(&mut socket).await.expect("an error frame");
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["code"], "forbidden");
    assert!(
        next_frame(&mut socket).await.is_none(),
        "then the stream closes"
    );
}

#[tokio::test]
async fn token_expiry_without_refresh_ends_the_stream() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let mut c = claims("alice");
    c["exp"] = json!(now_secs() - 58); // still valid thanks to the 60 s leeway
    let short = key().sign(&c, Some("test"));
    let mut socket = connect(&s, &ws, &short).await.unwrap();
    hello(&mut socket, 0, None).await;
    let frame = next_frame(&mut socket).await.expect("an error frame");
    assert_eq!(frame["code"], "token_expired");
    assert!(next_frame(&mut socket).await.is_none());
}

#[tokio::test]
async fn auth_frame_refreshes_the_token() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let mut c = claims("alice");
    c["exp"] = json!(now_secs() - 58);
    let mut socket = connect(&s, &ws, &key().sign(&c, Some("test")))
        .await
        .unwrap();
    hello(&mut socket, 0, None).await;
    let fresh = json!({"type": "auth", "token": token("alice")});
    socket
        .send(Message::Text(fresh.to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.push_ok(&ws, "alice", one_op(1, now_ms())).await;
    let changes = collect_until(&mut socket, 0, 1).await;
    assert_eq!(changes.len(), 1, "still subscribed past the old expiry");
}

#[tokio::test]
async fn project_filter_applies_to_the_stream() {
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
            ],
        ),
    )
    .await;
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 0, Some("p1")).await;
    let backlog = collect_until(&mut socket, 0, 2).await;
    assert_eq!(
        backlog.iter().map(|c| c["pk"].clone()).collect::<Vec<_>>(),
        [json!("t1")]
    );
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "messages",
            "m2",
            1,
            &hlc(t, 2, DEVICE_A),
            json!({"thread_id": "t2"}),
        )],
    )
    .await;
    s.push_ok(
        &ws,
        "alice",
        vec![put(
            "messages",
            "m1",
            1,
            &hlc(t, 3, DEVICE_A),
            json!({"thread_id": "t1"}),
        )],
    )
    .await;
    let frame = next_frame(&mut socket).await.unwrap();
    assert_eq!(
        (frame["from"].as_u64(), frame["to"].as_u64()),
        (Some(2), Some(4)),
        "the frame covers the skipped version"
    );
    assert_eq!(frame["changes"].as_array().unwrap().len(), 1);
    assert_eq!(
        frame["changes"][0]["pk"], "m1",
        "a message is in its thread's project"
    );
}

#[tokio::test]
async fn expired_cursor_gets_an_error_frame() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    for i in 0..5 {
        s.push_ok(&ws, "alice", one_op(i, now_ms())).await;
    }
    let ws_id = sync_core::WorkspaceId::parse(&ws).unwrap();
    let later = now_ms() + 60 * 24 * 3600 * 1000;
    s.store
        .collect_garbage(&ws_id, &Default::default(), later, false)
        .await
        .unwrap();
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 1, None).await;
    let frame = next_frame(&mut socket).await.unwrap();
    assert_eq!(frame["code"], "cursor_expired");
    assert_eq!(frame["oldest_retained_version"], 6);
    hello(&mut socket, 5, None).await;
    s.push_ok(&ws, "alice", one_op(9, now_ms())).await;
    assert_eq!(
        collect_until(&mut socket, 5, 6).await.len(),
        1,
        "a hello after rescanning resumes"
    );
}

#[tokio::test]
async fn reconnect_after_a_restart_resumes_from_the_cursor() {
    let mut s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 0, None).await;
    for i in 0..5 {
        s.push_ok(&ws, "alice", one_op(i, t)).await;
    }
    let first = collect_until(&mut socket, 0, 5).await;
    assert_eq!(first.len(), 5);
    s.stop().await;
    let frame = next_frame(&mut socket)
        .await
        .expect("a frame before the close");
    assert_eq!(frame["code"], "shutting_down");
    assert!(
        next_frame(&mut socket).await.is_none(),
        "closed on shutdown"
    );

    let s = start_in(
        s.dir.clone(),
        ServerConfig::default(),
        Arc::new(SystemClock),
    )
    .await;
    for i in 5..9 {
        s.push_ok(&ws, "alice", one_op(i, t)).await;
    }
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 5, None).await;
    let rest = collect_until(&mut socket, 5, 9).await;
    let pks: Vec<_> = rest
        .iter()
        .map(|c| c["pk"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        pks,
        ["m5", "m6", "m7", "m8"],
        "nothing missed across the restart"
    );
}

#[tokio::test]
async fn sse_streams_the_same_frames() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    for i in 0..3 {
        s.push_ok(&ws, "alice", one_op(i, t)).await;
    }
    let response = s
        .http
        .get(format!("{}/v1/workspaces/{ws}/events?cursor=1", s.base))
        .bearer_auth(token("alice"))
        .header("x-device-id", DEVICE_B)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut frames = Vec::new();
    let mut pushed = false;
    while frames
        .iter()
        .map(|f: &Value| f["to"].as_u64().unwrap())
        .max()
        != Some(4)
    {
        let chunk = tokio::time::timeout(DEADLINE, body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                frames.push(serde_json::from_str(data).unwrap());
            }
        }
        if !pushed && !frames.is_empty() {
            s.push_ok(&ws, "alice", one_op(3, t)).await;
            pushed = true;
        }
    }
    assert_eq!(
        (frames[0]["from"].as_u64(), frames[0]["to"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(frames[1]["from"], 3);
    assert_eq!(frames[1]["changes"][0]["pk"], "m3");
    let non_member = s
        .http
        .get(format!("{}/v1/workspaces/{ws}/events", s.base))
        .bearer_auth(token("mallory"))
        .send()
        .await
        .unwrap();
    assert_eq!(non_member.status(), 403);
}

#[tokio::test]
async fn deleting_the_workspace_ends_its_streams_with_unknown_workspace() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let mut socket = connect(&s, &ws, &token("alice")).await.unwrap();
    hello(&mut socket, 0, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = s
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/workspaces/{ws}"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    let frame = next_frame(&mut socket).await.expect("an error frame");
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["code"], "unknown_workspace");
    assert!(next_frame(&mut socket).await.is_none(), "then it closes");
}
