//! Stalled connections, tried as a hostile client would through the real
//! binary: each stage a client controls has a deadline (set short here by
//! flags), a connection past one is closed and gives its slot back, and
//! honest slow or idle clients are never cut off.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{dev_token, now_ms, post, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Deadlines far apart, so each test can tell which one closed a connection.
const FIRST_BYTE: f64 = 1.0;
const HEADER: f64 = 3.0;
const BODY: f64 = 1.0;
const MIN_BODY_RATE: u64 = 1000;
const HELLO: f64 = 1.0;
const SUBSCRIBER: f64 = 3.0;
const WRITE_STALL: f64 = 1.0;
/// Longer than any of them.
const PAST_EVERY_DEADLINE: Duration = Duration::from_secs(5);

fn start(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let mut flags: Vec<String> = [
        ("--first-byte-timeout-secs", FIRST_BYTE.to_string()),
        ("--header-timeout-secs", HEADER.to_string()),
        ("--body-timeout-secs", BODY.to_string()),
        ("--min-body-bytes-per-sec", MIN_BODY_RATE.to_string()),
        ("--hello-timeout-secs", HELLO.to_string()),
        ("--subscriber-timeout-secs", SUBSCRIBER.to_string()),
        ("--write-stall-timeout-secs", WRITE_STALL.to_string()),
    ]
    .into_iter()
    // A flag in `extra` replaces its default here.
    .filter(|(flag, _)| !extra.contains(flag))
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect();
    flags.extend(extra.iter().map(|f| f.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_with(&dir.path().join("t.db"), &flags);
    (dir, server)
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or 15 s pass); returns
/// what it sent and how long that took from `since`.
async fn read_until_closed(tcp: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut reply)).await;
    let elapsed = since.elapsed();
    assert!(
        read.is_ok(),
        "still open after {elapsed:?}: {:?}",
        String::from_utf8_lossy(&reply)
    );
    (String::from_utf8_lossy(&reply).into_owned(), elapsed)
}

async fn closed_by(server: &Server, reason: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("or3_connections_closed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// A server started by [`start`], alice's token and a workspace of hers.
struct Gateway {
    _dir: tempfile::TempDir,
    server: Server,
    http: reqwest::Client,
    token: String,
    ws: String,
}

async fn gateway(extra: &[&str]) -> Gateway {
    let (_dir, server) = start(extra);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let token = dev_token(&http, &server.base, "alice").await;
    let (status, ws) = post(
        &http,
        format!("{}/v1/workspaces", server.base),
        Some(&token),
        json!({"name": "w"}),
    )
    .await;
    assert_eq!(status, 201, "{ws}");
    let ws = ws["workspace_id"].as_str().unwrap().to_owned();
    Gateway {
        _dir,
        server,
        http,
        token,
        ws,
    }
}

fn push_body(pks: std::ops::Range<u32>, padding: usize) -> Value {
    let device = "0123456789abcdef";
    let t = now_ms();
    let ops: Vec<Value> = pks
        .map(|n| {
            json!({"op_id": format!("00000000-0000-4000-8000-{n:012x}"), "table_name": "messages",
                   "operation": "put", "pk": format!("m{n}"),
                   "payload": {"id": format!("m{n}"), "text": "x".repeat(padding)},
                   "clock": 1, "hlc": format!("{t:013}-{n:06}-{device}"), "device_id": device})
        })
        .collect();
    json!({ "ops": ops })
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_byte_deadline() {
    let (_dir, server) = start(&[]);
    let opened = Instant::now();
    let mut tcp = TcpStream::connect(addr(&server)).await.unwrap();
    let (reply, elapsed) = read_until_closed(&mut tcp, opened).await;
    assert!(reply.is_empty(), "nothing to answer: {reply}");
    assert!(
        elapsed >= Duration::from_secs_f64(FIRST_BYTE * 0.9)
            && elapsed < Duration::from_secs_f64(HEADER * 0.8),
        "closed by the first-byte deadline ({FIRST_BYTE} s), not the header one ({HEADER} s): {elapsed:?}"
    );
    assert_eq!(closed_by(&server, "first_byte_timeout").await, 1);
}

#[tokio::test]
async fn unfinished_headers_are_closed_at_the_header_deadline() {
    let (_dir, server) = start(&[]);
    let opened = Instant::now();
    let mut tcp = TcpStream::connect(addr(&server)).await.unwrap();
    let head = format!(
        "GET /v1/health HTTP/1.1\r\nHost: {}\r\nX-Slow: 1\r\n",
        addr(&server)
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (_, elapsed) = read_until_closed(&mut tcp, opened).await;
    assert!(
        elapsed >= Duration::from_secs_f64(HEADER * 0.9),
        "the first byte came in time: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs_f64(HEADER + 3.0),
        "{elapsed:?}"
    );
    assert_eq!(closed_by(&server, "header_timeout").await, 1);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_header_deadline() {
    let (_dir, server) = start(&[]);
    let mut tcp = TcpStream::connect(addr(&server)).await.unwrap();
    let request = format!("GET /v1/health HTTP/1.1\r\nHost: {}\r\n\r\n", addr(&server));
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    tcp.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let answered = Instant::now();
    let (_, elapsed) = read_until_closed(&mut tcp, answered).await;
    assert!(
        elapsed < Duration::from_secs_f64(HEADER + 3.0),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn an_unfinished_chunked_body_is_closed_at_the_body_deadline() {
    let Gateway {
        _dir,
        server,
        http: _,
        token,
        ws,
    } = gateway(&[]).await;
    let mut tcp = TcpStream::connect(addr(&server)).await.unwrap();
    let head = format!(
        "POST /v1/workspaces/{ws}/push HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{{\"ops\":\r\n",
        addr(&server)
    );
    let sent = Instant::now();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (reply, elapsed) = read_until_closed(&mut tcp, sent).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"body_timeout\""), "{reply}");
    assert!(
        elapsed >= Duration::from_secs_f64(BODY * 0.9) && elapsed < Duration::from_secs_f64(HEADER),
        "{elapsed:?}"
    );
    assert_eq!(closed_by(&server, "body_timeout").await, 1);
}

#[tokio::test]
async fn a_slow_but_steady_upload_within_the_minimum_rate_succeeds() {
    let Gateway {
        _dir,
        server,
        http,
        token,
        ws,
    } = gateway(&[]).await;
    // About 6 KB at 1.5 times the minimum rate: four seconds, four times
    // the body deadline.
    let body = push_body(0..20, 200).to_string().into_bytes();
    let chunk = (MIN_BODY_RATE as usize * 3 / 2) / 10;
    let chunks: Vec<Vec<u8>> = body.chunks(chunk).map(<[u8]>::to_vec).collect();
    let expected = Duration::from_secs_f64(chunks.len() as f64 / 10.0);
    assert!(
        expected > Duration::from_secs_f64(BODY * 3.0),
        "{expected:?}"
    );
    let stream = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(c)
    });
    let started = Instant::now();
    let res = http
        .post(format!("{}/v1/workspaces/{ws}/push", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let reply: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert!(started.elapsed() >= expected.mul_f64(0.9));
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|r| r["status"] == "applied"), "{reply}");
}

#[tokio::test]
async fn with_the_cap_filled_by_silent_sockets_a_push_gets_in_after_the_deadline() {
    // A longer first-byte deadline than the other tests': on a loaded
    // machine (CI runs the suites side by side on two cores) a second
    // could pass between filling the cap and the first push, the silent
    // sockets would already be gone, and the push would get in without
    // ever having been refused.
    const DEADLINE: f64 = 3.0;
    let deadline = DEADLINE.to_string();
    let Gateway {
        _dir,
        server,
        http,
        token,
        ws,
    } = gateway(&[
        "--max-connections",
        "8",
        "--max-connections-per-ip",
        "0",
        "--first-byte-timeout-secs",
        &deadline,
    ])
    .await;
    let (_silent, first_held) = hold_every_slot(&server, 8).await;
    let mut refused = 0;
    let status = loop {
        let res = http
            .post(format!("{}/v1/workspaces/{ws}/push", server.base))
            .bearer_auth(&token)
            .json(&push_body(0..1, 1))
            .send()
            .await;
        match res.map(|r| r.status().as_u16()) {
            Ok(200) => break 200,
            Ok(503) | Err(_) if first_held.elapsed() < Duration::from_secs(15) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("{other:?}"),
        }
    };
    // The first slot comes free when the first held socket's deadline ends.
    let elapsed = first_held.elapsed();
    assert_eq!(status, 200);
    assert!(refused > 0, "the silent sockets filled the cap");
    assert!(
        elapsed >= Duration::from_secs_f64(DEADLINE * 0.9)
            && elapsed < Duration::from_secs_f64(DEADLINE + 2.0),
        "in once the first-byte deadline freed a slot: {elapsed:?}"
    );
}

/// Opens `cap` connections that send nothing and that the server counts, and
/// when the first of them connected. A connection over the cap is answered
/// at once (503 `too_many_connections`) and closed, so one that hears nothing
/// for half a second holds a slot; the others are opened again, until every
/// slot is held (the server may still count connections the test's client
/// closed a moment ago).
async fn hold_every_slot(server: &Server, cap: usize) -> (Vec<TcpStream>, Instant) {
    let mut held: Vec<(TcpStream, Instant)> = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(10);
    while held.len() < cap {
        assert!(
            Instant::now() < give_up,
            "only {} of {cap} connections held a slot",
            held.len()
        );
        let mut fresh = Vec::new();
        for _ in held.len()..cap {
            let tcp = TcpStream::connect(addr(server)).await.unwrap();
            fresh.push((tcp, Instant::now()));
        }
        let heard = futures_util::future::join_all(fresh.into_iter().map(|(tcp, at)| async move {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(500), tcp.peek(&mut byte)).await {
                Err(_) => Some((tcp, at)),
                Ok(_) => None,
            }
        }))
        .await;
        held.extend(heard.into_iter().flatten());
    }
    let first = held.iter().map(|(_, at)| *at).min().unwrap();
    (held.into_iter().map(|(tcp, _)| tcp).collect(), first)
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let (_dir, server) = start(&["--max-connections-per-ip", "3"]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    let opened = Instant::now();
    let mut fourth = TcpStream::connect(addr(&server)).await.unwrap();
    let (reply, _) = read_until_closed(&mut fourth, opened).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("too_many_connections"), "{reply}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(server: &Server, ws: &str, token: &str) -> Socket {
    let url = format!(
        "{}/v1/workspaces/{ws}/subscribe",
        server.base.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("or3-sync.v1, bearer.{token}").parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn hello(socket: &mut Socket) {
    let frame = json!({"type": "hello", "cursor": 0});
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next text frame within `wait`, answering pings on the way (the
/// client library queues a pong for each); counts the pings.
async fn next_text(socket: &mut Socket, wait: Duration, pings: &mut u32) -> Option<Value> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Some(Ok(Message::Ping(_)))) => *pings += 1,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                panic!("the server closed the subscription")
            }
            Ok(Some(Ok(_))) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn an_idle_subscriber_that_answers_pings_stays_past_every_deadline() {
    let Gateway {
        _dir,
        server,
        http,
        token,
        ws,
    } = gateway(&[]).await;
    let mut socket = subscribe(&server, &ws, &token).await;
    hello(&mut socket).await;
    let mut pings = 0;
    assert_eq!(
        next_text(&mut socket, PAST_EVERY_DEADLINE, &mut pings).await,
        None,
        "nothing to send yet"
    );
    assert!(pings >= 2, "pinged every third of {SUBSCRIBER} s: {pings}");
    let (status, reply) = post(
        &http,
        format!("{}/v1/workspaces/{ws}/push", server.base),
        Some(&token),
        push_body(0..1, 1),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let frame = next_text(&mut socket, Duration::from_secs(10), &mut pings)
        .await
        .expect("the subscriber is still connected");
    assert_eq!(frame["type"], "changes", "{frame}");
}

#[tokio::test]
async fn a_subscriber_that_never_answers_is_closed_at_the_subscriber_deadline() {
    let Gateway {
        _dir,
        server,
        http: _,
        token,
        ws,
    } = gateway(&[]).await;
    let mut socket = subscribe(&server, &ws, &token).await;
    hello(&mut socket).await;
    // Not reading: no pong goes back.
    tokio::time::sleep(Duration::from_secs_f64(SUBSCRIBER + 2.0)).await;
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the silent subscriber was closed");
    assert_eq!(closed_by(&server, "subscriber_timeout").await, 1);
}

#[tokio::test]
async fn a_subscriber_that_never_says_hello_is_closed_at_the_hello_deadline() {
    let Gateway {
        _dir,
        server,
        http: _,
        token,
        ws,
    } = gateway(&[]).await;
    let opened = Instant::now();
    let mut socket = subscribe(&server, &ws, &token).await;
    let mut pings = 0;
    let frame = next_text(&mut socket, Duration::from_secs(10), &mut pings)
        .await
        .expect("an error frame");
    assert_eq!(frame["code"], "hello_timeout", "{frame}");
    let elapsed = opened.elapsed();
    assert!(
        elapsed >= Duration::from_secs_f64(HELLO * 0.9)
            && elapsed < Duration::from_secs_f64(SUBSCRIBER),
        "{elapsed:?}"
    );
    assert_eq!(closed_by(&server, "hello_timeout").await, 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_let_go_at_the_write_stall_deadline() {
    let Gateway {
        _dir,
        server,
        http,
        token,
        ws,
    } = gateway(&[]).await;
    // About 6 MB of records: more than the socket buffers on both sides hold.
    let (status, reply) = post(
        &http,
        format!("{}/v1/workspaces/{ws}/push", server.base),
        Some(&token),
        push_body(0..500, 12_000),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket
        .connect(addr(&server).parse().unwrap())
        .await
        .unwrap();
    let request = format!(
        "GET /v1/workspaces/{ws}/snapshot?limit=1000 HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        addr(&server)
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Never reading; the server gives up on the write after the deadline.
    let until = Instant::now() + Duration::from_secs_f64(WRITE_STALL + 10.0);
    while closed_by(&server, "write_stall").await == 0 {
        assert!(
            Instant::now() < until,
            "the stalled response still holds its connection"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut received = Vec::new();
    let _ = tcp.read_to_end(&mut received).await;
    assert!(received.len() < 6_000_000, "the response was cut off");
}
