//! WebSocket subscribers on loopback: open many, read every frame, and tally
//! deliveries and latencies. A frame is scanned for the markers the pushed
//! payloads carry instead of being parsed whole, so thousands of clients
//! cost the shared CPU as little as possible.

use crate::workload::{now_us, DEVICE_ID};
use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Marks a payload whose delivery latency is measured: `"sent_us":T`.
pub const LATENCY_MARKER: &str = "\"sent_us\":";
/// Marks a payload of the back-to-back burst: `"burst_us":T`.
pub const BURST_MARKER: &str = "\"burst_us\":";

/// An open subscription.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Counters shared by every subscriber of one run.
#[derive(Default)]
pub struct Tally {
    /// Subscribers that received at least one frame.
    pub synced: AtomicU64,
    /// Deliveries of latency-marked changes.
    pub latency_deliveries: AtomicU64,
    /// Deliveries of burst-marked changes.
    pub burst_deliveries: AtomicU64,
    /// Receive time of the latest burst delivery (µs, [`now_us`]).
    pub last_burst_us: AtomicU64,
    /// `poke` frames: a subscriber fell behind the server's queue.
    pub pokes: AtomicU64,
    /// `error` frames.
    pub errors: AtomicU64,
    /// Subscriptions that ended before the run did.
    pub closed: AtomicU64,
}

impl Tally {
    /// Waits until `counter` reaches `target` or `deadline` passes; returns its value.
    pub async fn wait_for(counter: &AtomicU64, target: u64, deadline: Duration) -> u64 {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let now = counter.load(Ordering::Relaxed);
            if now >= target || tokio::time::Instant::now() >= end {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Opens one subscription and sends `hello` at `cursor` (when given). With
/// a token it offers `or3-sync.v1` and `bearer.<token>` as subprotocols.
pub async fn open(url: &str, token: Option<&str>, cursor: Option<u64>) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("or3-sync.v1, bearer.{token}"))?,
        );
    }
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(small_buffers()), true)
            .await
            .with_context(|| format!("cannot subscribe at {url}"))?;
    if let Some(cursor) = cursor {
        let hello = format!(
            r#"{{"type":"hello","cursor":{cursor},"device_id":"{DEVICE_ID}","project_id":null}}"#
        );
        socket.send(Message::text(hello)).await?;
    }
    Ok(socket)
}

/// tungstenite zero-fills up to its read buffer size (128 KiB by default)
/// on every read; frames here are small, so a small buffer keeps the
/// clients from spending the shared CPU on memset.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 << 10)
}

/// Opens `count` subscriptions, `parallel` handshakes at a time.
pub async fn open_many(
    url: &str,
    token: Option<&str>,
    cursor: Option<u64>,
    count: usize,
    parallel: usize,
) -> Result<Vec<Socket>> {
    futures_util::stream::iter(0..count)
        .map(|_| open(url, token, cursor))
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Reads `socket` until `stop` flips, tallying frames; returns the
/// latencies (µs) of the latency-marked changes it received.
pub fn spawn_reader(
    mut socket: Socket,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<Vec<u32>> {
    tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut synced = false;
        loop {
            let message = tokio::select! {
                message = socket.next() => message,
                _ = stop.changed() => break,
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    return latencies;
                }
                Some(Ok(_)) => continue,
            };
            let received = now_us();
            if !synced {
                synced = true;
                tally.synced.fetch_add(1, Ordering::Relaxed);
            }
            let text = text.as_str();
            for sent in marked_times(text, LATENCY_MARKER) {
                latencies.push(received.saturating_sub(sent).min(u32::MAX as u64) as u32);
                tally.latency_deliveries.fetch_add(1, Ordering::Relaxed);
            }
            let burst = marked_times(text, BURST_MARKER).count() as u64;
            if burst > 0 {
                tally.burst_deliveries.fetch_add(burst, Ordering::Relaxed);
                tally.last_burst_us.fetch_max(received, Ordering::Relaxed);
            }
            if !text.starts_with(r#"{"type":"changes""#) {
                if text.contains(r#""type":"poke""#) {
                    tally.pokes.fetch_add(1, Ordering::Relaxed);
                } else if text.contains(r#""type":"error""#) {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let _ = socket.close(None).await;
        latencies
    })
}

/// The numbers that follow each `marker` in `text`.
fn marked_times<'a>(text: &'a str, marker: &'a str) -> impl Iterator<Item = u64> + 'a {
    text.match_indices(marker).filter_map(move |(at, _)| {
        let digits = &text[at + marker.len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_every_change_of_a_frame() {
        let frame = r#"{"type":"changes","changes":[{"payload":{"a":1,"sent_us":120}},{"payload":{"sent_us":7,"z":0}}]}"#;
        assert_eq!(
            marked_times(frame, LATENCY_MARKER).collect::<Vec<_>>(),
            vec![120, 7]
        );
        assert_eq!(marked_times(frame, BURST_MARKER).count(), 0);
    }
}
