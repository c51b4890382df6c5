//! Pushes on a subscription's WebSocket (PROTOCOL.md section 4, "Subscribe"):
//! announced by the subprotocol, taken after an accepted `hello`, applied by
//! the one push of the HTTP route and answered on the socket with the HTTP
//! answer's fields, or its error with the same code and status.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use sync_server::clock::{ManualClock, SystemClock};
use sync_server::config::ServerConfig;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(10);

/// A socket offering `protocols` (and the token); the subprotocol the server chose.
async fn connect_offering(
    s: &TestServer,
    ws: &str,
    user: &str,
    protocols: &str,
) -> (Socket, String) {
    let mut request = s.ws_url(ws).into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("{protocols}, bearer.{}", token(user))
            .parse()
            .unwrap(),
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (socket, response) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .unwrap();
    let chosen = response.headers()["sec-websocket-protocol"]
        .to_str()
        .unwrap()
        .to_owned();
    (socket, chosen)
}

/// A socket that offered pushes, with its hello sent.
async fn subscribed(s: &TestServer, ws: &str, user: &str) -> Socket {
    let (mut socket, chosen) = connect_offering(s, ws, user, "or3-sync.v1+push, or3-sync.v1").await;
    assert_eq!(chosen, "or3-sync.v1+push");
    send(
        &mut socket,
        json!({"type": "hello", "cursor": 0, "device_id": DEVICE_A}),
    )
    .await;
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

async fn push_frame(socket: &mut Socket, id: &str, ops: Vec<Value>) {
    send(socket, json!({"type": "push", "id": id, "ops": ops})).await;
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

/// The next frame that is not `changes`: the answer of a push.
async fn answer(socket: &mut Socket) -> Value {
    loop {
        let frame = next_frame(socket).await.expect("the socket stays open");
        if frame["type"] != "changes" {
            return frame;
        }
    }
}

fn message(i: u32, t: u64) -> Value {
    put(
        "messages",
        &format!("m{i}"),
        1,
        &hlc(t, i, DEVICE_A),
        json!({"n": i}),
    )
}

#[tokio::test]
async fn the_server_chooses_the_push_subprotocol_only_when_offered() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let (_, chosen) = connect_offering(&s, &ws, "alice", "or3-sync.v1+push, or3-sync.v1").await;
    assert_eq!(chosen, "or3-sync.v1+push");
    let (_, chosen) = connect_offering(&s, &ws, "alice", "or3-sync.v1").await;
    assert_eq!(
        chosen, "or3-sync.v1",
        "an older client is answered as before"
    );
}

#[tokio::test]
async fn a_push_on_the_socket_is_applied_answered_and_fanned_out() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "editor").await;
    let (mut bob, _) = connect_offering(&s, &ws, "bob", "or3-sync.v1").await;
    send(
        &mut bob,
        json!({"type": "hello", "cursor": 0, "device_id": DEVICE_B}),
    )
    .await;
    let mut alice = subscribed(&s, &ws, "alice").await;
    let t = now_ms();
    let ops = vec![message(1, t), message(2, t)];
    push_frame(&mut alice, "push-1", ops.clone()).await;

    let reply = answer(&mut alice).await;
    assert_eq!(reply["type"], "push_result", "{reply}");
    assert_eq!(reply["id"], "push-1");
    assert_eq!(reply["server_version"], 2);
    assert!(reply["server_time"].as_u64().unwrap() >= t);
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["op_id"], ops[i]["op_id"]);
        assert_eq!(result["status"], "applied");
        assert_eq!(result["server_version"], i as u64 + 1);
    }

    let frame = next_frame(&mut bob).await.expect("bob's stream is open");
    assert_eq!(frame["type"], "changes");
    assert_eq!(
        (frame["from"].as_u64(), frame["to"].as_u64()),
        (Some(0), Some(2))
    );
    let pks: Vec<_> = frame["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pk"].clone())
        .collect();
    assert_eq!(pks, vec![json!("m1"), json!("m2")]);

    // The same push again, now over HTTP: the one push, so the same answer as a retry.
    let again = s.push_ok(&ws, "alice", ops).await;
    assert!(
        again.iter().all(|r| r["status"] == "duplicate"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_push_before_an_accepted_hello_is_refused_and_the_session_goes_on() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let (mut socket, _) = connect_offering(&s, &ws, "alice", "or3-sync.v1+push, or3-sync.v1").await;
    let t = now_ms();
    push_frame(&mut socket, "early", vec![message(1, t)]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["id"], "early");
    assert_eq!(reply["status"], 400);
    assert_eq!(reply["error"]["code"], "invalid_frame");
    // A refused hello does not let pushes in either.
    send(
        &mut socket,
        json!({"type": "hello", "cursor": 0, "device_id": "NOT-HEX"}),
    )
    .await;
    assert_eq!(answer(&mut socket).await["code"], "invalid_device_id");
    push_frame(&mut socket, "still-early", vec![message(1, t)]).await;
    assert_eq!(answer(&mut socket).await["error"]["code"], "invalid_frame");

    send(
        &mut socket,
        json!({"type": "hello", "cursor": 0, "device_id": DEVICE_A}),
    )
    .await;
    push_frame(&mut socket, "after", vec![message(1, t)]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_result", "{reply}");
    assert_eq!(reply["results"][0]["status"], "applied");
    assert_eq!(
        s.pull(&ws, "alice", 0, 10).await["changes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_viewer_pushing_on_the_socket_is_refused_403_and_keeps_reading() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "victor", "viewer").await;
    let mut socket = subscribed(&s, &ws, "victor").await;
    push_frame(&mut socket, "p", vec![message(1, now_ms())]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["status"], 403);
    assert_eq!(reply["error"]["code"], "forbidden");
    s.push_ok(&ws, "alice", vec![message(2, now_ms())]).await;
    let frame = next_frame(&mut socket).await.unwrap();
    assert_eq!(frame["type"], "changes", "the viewer still reads: {frame}");
    assert_eq!(frame["changes"][0]["pk"], "m2");
}

#[tokio::test]
async fn too_many_ops_on_the_socket_is_413_as_over_http() {
    let s = start_with(
        config_with(|c| c.max_ops_per_push = 2),
        Arc::new(SystemClock),
    )
    .await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    let t = now_ms();
    push_frame(&mut socket, "big", (1..=3).map(|i| message(i, t)).collect()).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["status"], 413);
    assert_eq!(reply["error"]["code"], "too_many_ops");
    assert_eq!(reply["error"]["field"], "ops");
    let (status, body) = s
        .push(&ws, "alice", (1..=3).map(|i| message(i, t)).collect())
        .await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (413, &json!("too_many_ops"))
    );
}

#[tokio::test]
async fn a_bad_op_is_rejected_on_its_own_and_the_rest_applied() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    let t = now_ms();
    let bad = put("no_such_table", "x", 1, &hlc(t, 9, DEVICE_A), json!({}));
    push_frame(&mut socket, "mixed", vec![message(1, t), bad]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_result", "{reply}");
    assert_eq!(reply["results"][0]["status"], "applied");
    assert_eq!(reply["results"][1]["status"], "rejected");
    assert_eq!(reply["results"][1]["error"]["code"], "unknown_table");
}

#[tokio::test]
async fn socket_pushes_count_against_the_push_rate_limit_with_http_pushes() {
    let s = start_with_push_limit(2).await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    let t = now_ms();
    s.push_ok(&ws, "alice", vec![message(1, t)]).await;
    push_frame(&mut socket, "second", vec![message(2, t)]).await;
    assert_eq!(answer(&mut socket).await["type"], "push_result");
    push_frame(&mut socket, "third", vec![message(3, t)]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["id"], "third");
    assert_eq!(reply["status"], 429);
    assert_eq!(reply["error"]["code"], "rate_limited");
    let retry = reply["retry_after"].as_u64().expect("retry_after");
    assert!((1..=60).contains(&retry), "retry_after {retry}");
    let (status, _) = s.push(&ws, "alice", vec![message(4, t)]).await;
    assert_eq!(status.as_u16(), 429, "and HTTP pushes after them");
}

#[tokio::test]
async fn socket_push_answers_carry_the_rate_limit_budget_an_http_answer_has_in_its_headers() {
    // Three pushes a minute: one comes back every 20 s, far longer than this test.
    let s = start_with_push_limit(3).await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    let t = now_ms();

    push_frame(&mut socket, "first", vec![message(1, t)]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_result", "{reply}");
    assert_eq!(reply["rate_limit"]["limit"], 3, "{reply}");
    assert_eq!(reply["rate_limit"]["remaining"], 2, "{reply}");
    let reset = reply["rate_limit"]["reset"].as_u64().expect("reset");
    assert!((1..=60).contains(&reset), "reset {reset}");

    push_frame(&mut socket, "second", vec![message(2, t)]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["rate_limit"]["remaining"], 1, "{reply}");

    // An HTTP push spends the same budget, and says so in its headers.
    let http = s
        .http
        .post(format!("{}/v1/workspaces/{ws}/push", s.base))
        .bearer_auth(token("alice"))
        .json(&json!({"ops": [message(3, t)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(http.status().as_u16(), 200);
    assert_eq!(http.headers()["ratelimit-remaining"], "0");

    // The refusal carries the budget too, as a 429 carries the headers.
    push_frame(&mut socket, "fourth", vec![message(4, t)]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["status"], 429);
    assert_eq!(reply["rate_limit"]["limit"], 3, "{reply}");
    assert_eq!(reply["rate_limit"]["remaining"], 0, "{reply}");
}

#[tokio::test]
async fn a_push_refused_before_the_rate_limit_counts_it_carries_no_budget() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let (mut socket, _) = connect_offering(&s, &ws, "alice", "or3-sync.v1+push, or3-sync.v1").await;
    push_frame(&mut socket, "early", vec![message(1, now_ms())]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["error"]["code"], "invalid_frame", "{reply}");
    assert!(reply.get("rate_limit").is_none(), "{reply}");
}

#[tokio::test]
async fn a_draining_server_refuses_socket_pushes_503() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    s.state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    push_frame(&mut socket, "late", vec![message(1, now_ms())]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["status"], 503, "{reply}");
    assert_eq!(reply["error"]["code"], "draining");
    assert_eq!(reply["retry_after"], 2);
}

#[tokio::test]
async fn an_expired_token_refuses_the_push_401() {
    let clock = Arc::new(ManualClock::new(now_ms()));
    let s = start_with(ServerConfig::default(), clock.clone()).await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    push_frame(&mut socket, "fresh", vec![message(1, now_ms())]).await;
    assert_eq!(answer(&mut socket).await["type"], "push_result");
    // Past the token's hour and the verifier's leeway, before the session's timer says so.
    clock.advance(3_600_000 + 61_000);
    push_frame(&mut socket, "stale", vec![message(2, now_ms())]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["status"], 401, "{reply}");
    assert_eq!(reply["error"]["code"], "token_expired");
}

/// A server taking bodies of at most 4 KiB, and alice's subscribed socket to a workspace of hers.
async fn small_body_socket() -> (TestServer, Socket) {
    let s = start_with(
        config_with(|c| c.max_body_bytes = 4096),
        Arc::new(SystemClock),
    )
    .await;
    let ws = s.workspace("alice").await;
    let socket = subscribed(&s, &ws, "alice").await;
    (s, socket)
}

#[tokio::test]
async fn a_push_frame_over_the_body_limit_is_413_and_the_session_goes_on() {
    let (_s, mut socket) = small_body_socket().await;
    let t = now_ms();
    let big = put(
        "messages",
        "big",
        1,
        &hlc(t, 1, DEVICE_A),
        json!({"text": "x".repeat(8000)}),
    );
    push_frame(&mut socket, "big", vec![big]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["id"], "big");
    assert_eq!(reply["status"], 413);
    assert_eq!(reply["error"]["code"], "body_too_large");
    push_frame(&mut socket, "small", vec![message(2, t)]).await;
    assert_eq!(answer(&mut socket).await["type"], "push_result");
}

#[tokio::test]
async fn a_push_frame_of_the_wrong_shape_is_400_with_its_id() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let mut socket = subscribed(&s, &ws, "alice").await;
    send(
        &mut socket,
        json!({"type": "push", "id": "odd", "ops": {"not": "a list"}}),
    )
    .await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "push_error", "{reply}");
    assert_eq!(reply["id"], "odd");
    assert_eq!(reply["status"], 400);
    assert_eq!(reply["error"]["code"], "invalid_request");
    // Without an id there is nothing to answer: the frame is invalid, the session ends.
    send(&mut socket, json!({"type": "push", "ops": []})).await;
    assert_eq!(answer(&mut socket).await["code"], "invalid_frame");
    assert!(next_frame(&mut socket).await.is_none(), "closed");
}

#[tokio::test]
async fn a_frame_larger_than_the_socket_reads_gets_a_coded_error_before_the_close() {
    let (_s, mut socket) = small_body_socket().await;
    let t = now_ms();
    let huge = put(
        "messages",
        "huge",
        1,
        &hlc(t, 1, DEVICE_A),
        json!({"text": "x".repeat(200_000)}),
    );
    push_frame(&mut socket, "huge", vec![huge]).await;
    let reply = answer(&mut socket).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "body_too_large");
    assert!(next_frame(&mut socket).await.is_none(), "closed");
}
