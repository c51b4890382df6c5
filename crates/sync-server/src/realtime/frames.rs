//! The frames a subscriber sends, parsed from JSON text (the frames the
//! server sends are in [`crate::fanout::frames`]).

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::extract::{body_too_large, parse_json};
use serde::Deserialize;
use sync_core::wire::PushRequest;
use sync_core::ServerVersion;

/// Room a push frame has over `--max-body-bytes` for what an HTTP body does
/// not carry: its `type` and `id`. A push admitted over HTTP is admitted on
/// the socket.
pub const PUSH_FRAME_ENVELOPE: usize = 1 << 10;
/// Longest push id a client may choose.
pub const MAX_PUSH_ID_CHARS: usize = 128;

/// A frame a client sends.
#[derive(Debug)]
pub enum ClientFrame {
    /// Start (or restart after a poke) from `cursor`.
    Hello {
        /// Highest version the client has applied.
        cursor: ServerVersion,
        /// The client's device id.
        device_id: Option<String>,
        /// Only this project's scoped records.
        project_id: Option<String>,
    },
    /// A refreshed token.
    Auth {
        /// The new bearer token.
        token: String,
    },
    /// A push on the subscription's socket (WebSocket only), answered by a
    /// `push_result` or `push_error` frame with the same `id`.
    Push {
        /// The client's name for this push, echoed in its answer.
        id: String,
        /// Its ops, or why the frame was refused before they were read
        /// (too large, too deep, not a push's shape): the error an HTTP push
        /// of the same body would get.
        request: Result<PushRequest, ApiError>,
    },
}

/// The frames whose whole shape serde checks.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum SessionFrame {
    Hello {
        cursor: ServerVersion,
        device_id: Option<String>,
        #[serde(default)]
        project_id: Option<String>,
    },
    Auth {
        token: String,
    },
}

/// What every frame is read for first: its type, and a push's id (the rest
/// of a push is read only once its size and depth are known to be fine).
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// The push frame's own fields next to a push body's `ops`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushFrame {
    #[serde(rename = "type")]
    _kind: serde::de::IgnoredAny,
    #[serde(rename = "id")]
    _id: serde::de::IgnoredAny,
    ops: Vec<serde_json::Value>,
}

impl ClientFrame {
    /// Parses one text frame. `Err` (the session answers `invalid_frame` and
    /// closes) for anything that is not a hello, an auth or a push with an
    /// id; a push whose ops cannot be read is a `Push` carrying its error, so
    /// it is answered and the session goes on.
    pub fn parse(text: &str, config: &ServerConfig) -> Result<ClientFrame, String> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if envelope.kind != "push" {
            return Ok(
                match serde_json::from_str::<SessionFrame>(text).map_err(|e| e.to_string())? {
                    SessionFrame::Hello {
                        cursor,
                        device_id,
                        project_id,
                    } => ClientFrame::Hello {
                        cursor,
                        device_id,
                        project_id,
                    },
                    SessionFrame::Auth { token } => ClientFrame::Auth { token },
                },
            );
        }
        let id = match envelope.id {
            Some(serde_json::Value::String(id))
                if !id.is_empty() && id.chars().count() <= MAX_PUSH_ID_CHARS =>
            {
                id
            }
            _ => {
                return Err(format!(
                    "a push frame needs an id: a string of 1 to {MAX_PUSH_ID_CHARS} characters"
                ))
            }
        };
        let request = if text.len() > config.max_body_bytes + PUSH_FRAME_ENVELOPE {
            Err(body_too_large(config))
        } else {
            parse_json::<PushFrame>(text.as_bytes(), config).map(|f| PushRequest { ops: f.ops })
        };
        Ok(ClientFrame::Push { id, request })
    }
}

/// The largest frame a WebSocket reads: a push of `--max-body-bytes` with its
/// envelope, and 1 KiB more (64 KiB at least), so that a push a little over
/// the limit is still read and answered 413 rather than dropping the
/// connection.
pub fn max_client_frame(config: &ServerConfig) -> usize {
    config.max_body_bytes.max(64 << 10) + 2 * PUSH_FRAME_ENVELOPE
}
