//! `GET /v1/workspaces/{workspace_id}/subscribe`: the WebSocket transport.
//! Browsers cannot set headers on a WebSocket, so the token comes as the
//! subprotocol `bearer.<jwt>` next to `or3-sync.v1` (an `Authorization`
//! header works too). The server answers with `or3-sync.v1+push` when the
//! client offered it (this server takes `push` frames on the socket), else
//! with `or3-sync.v1`.

use super::frames::{max_client_frame, ClientFrame};
use super::session::{Outbound, Session};
use crate::auth::Identity;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{bearer_token, body_too_large, parse_workspace_id, path_params};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tungstenite::error::CapacityError;

/// The subprotocol of this protocol version.
pub const SUBPROTOCOL: &str = "or3-sync.v1";
/// The same, announcing that this server answers `push` frames on the socket:
/// a client that offers both and gets this one back may push over it; one
/// that gets [`SUBPROTOCOL`] (an older server) pushes over HTTP.
pub const PUSH_SUBPROTOCOL: &str = "or3-sync.v1+push";
/// Initial read buffer of a connection. Clients send mostly small frames, and
/// the buffer grows for a larger one; tungstenite's default (128 KiB,
/// allocated up front) made an idle subscriber cost about 140 KiB.
const READ_BUFFER: usize = 4 << 10;

/// Upgrades to a subscription after checking the token and membership.
pub async fn subscribe(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    verified: Option<Extension<Identity>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let raw = path_params(path)?;
    let ws = parse_workspace_id(&raw)?;
    // The rate limiter verified this same token (`bearer_token`) already
    // when it could; verify it here only when it did not.
    let identity = match verified {
        Some(Extension(identity)) => identity,
        None => {
            let token = bearer_token(&headers).ok_or_else(|| {
                ApiError::unauthorized(
                    ErrorCode::MissingToken,
                    "offer the subprotocol bearer.<jwt>",
                )
            })?;
            state.auth.verify(&token).await?
        }
    };
    let access = state.access(&identity, &ws).await?;
    state.store.role_of(&ws, &access).await?;
    let slot = state.subscription_slot(&identity)?;
    Ok(upgrade
        .protocols([PUSH_SUBPROTOCOL, SUBPROTOCOL])
        .max_message_size(max_client_frame(&state.config))
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| async move {
            let (sink, mut stream) = socket.split();
            let (client_tx, client_rx) = mpsc::channel(8);
            let mut out = WsOut { sink };
            // A subscriber answers pings, so one silent for longer than
            // the deadline is gone (or hostile): end the session.
            let silence = state.config.timeouts.subscriber;
            let config = state.config.clone();
            let reader = tokio::spawn(async move {
                loop {
                    let message = match tokio::time::timeout(silence, stream.next()).await {
                        Ok(Some(Ok(message))) => message,
                        Ok(Some(Err(e))) if is_too_long(&e) => {
                            // The frame cannot be read, so its push (if it was one) cannot be
                            // answered by id: say why, and end the session.
                            let _ = client_tx.send(Err(body_too_large(&config))).await;
                            break;
                        }
                        Ok(_) => break,
                        Err(_) => {
                            metrics::counter!("or3_connections_closed_total", "reason" => "subscriber_timeout").increment(1);
                            break;
                        }
                    };
                    let frame = match message {
                        Message::Text(text) => ClientFrame::parse(&text, &config).map_err(|why| {
                            ApiError::bad_request(
                                ErrorCode::InvalidFrame,
                                "type",
                                format!("frames are JSON hello, auth or push objects: {why}"),
                            )
                        }),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let bad = frame.is_err();
                    if client_tx.send(frame).await.is_err() || bad {
                        break;
                    }
                }
            });
            Session::new(state, ws, identity, true)
                .run(None, client_rx, &mut out)
                .await;
            reader.abort();
            drop(slot);
        }))
}

struct WsOut {
    sink: SplitSink<WebSocket, Message>,
}

impl Outbound for WsOut {
    async fn send(&mut self, frame: Utf8Bytes) -> bool {
        self.sink.send(Message::Text(frame)).await.is_ok()
    }

    async fn ping(&mut self) -> bool {
        self.sink
            .send(Message::Ping(Default::default()))
            .await
            .is_ok()
    }

    async fn close(&mut self, going_away: bool) {
        let code = if going_away { 1001 } else { 1008 };
        let _ = self
            .sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(""),
            })))
            .await;
    }
}

/// Whether a read failed on a frame over the size limit: tungstenite's
/// `MessageTooLong`, the source of axum's error.
fn is_too_long(error: &axum::Error) -> bool {
    let mut chain = std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    });
    chain.any(|e| {
        matches!(
            e.downcast_ref::<tungstenite::Error>(),
            Some(tungstenite::Error::Capacity(
                CapacityError::MessageTooLong { .. }
            ))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_over_the_size_limit_is_told_by_its_error_type() {
        let too_long = tungstenite::Error::Capacity(CapacityError::MessageTooLong {
            size: 10,
            max_size: 5,
        });
        assert!(is_too_long(&axum::Error::new(too_long)));
    }

    #[test]
    fn other_read_errors_are_not_too_long_whatever_their_message_says() {
        let other = tungstenite::Error::Capacity(CapacityError::TooManyHeaders);
        assert!(!is_too_long(&axum::Error::new(other)));
        let mimic = std::io::Error::other("Message too long: 10 > 5");
        assert!(!is_too_long(&axum::Error::new(mimic)));
    }
}
