//! The frames the server sends to a subscriber, as JSON text.

use crate::error::ErrorCode;
use serde_json::json;
use sync_core::wire::Change;
use sync_core::ServerVersion;

/// `{"type":"changes","from":A,"to":B,"changes":[…]}` covering `(A, B]`.
pub fn changes_frame<'a>(
    from: ServerVersion,
    to: ServerVersion,
    changes: impl IntoIterator<Item = &'a Change>,
) -> String {
    let list: Vec<&Change> = changes.into_iter().collect();
    let changes = serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned());
    format!(r#"{{"type":"changes","from":{from},"to":{to},"changes":{changes}}}"#)
}

/// `{"type":"poke","server_version":V}`: too far behind; pull, then hello again.
pub fn poke_frame(server_version: ServerVersion) -> String {
    json!({"type": "poke", "server_version": server_version}).to_string()
}

/// `{"type":"error","code":…,"message":…}` (plus `oldest_retained_version`).
pub fn error_frame(
    code: ErrorCode,
    message: &str,
    oldest_retained_version: Option<ServerVersion>,
) -> String {
    let mut frame = json!({"type": "error", "code": code.as_str(), "message": message});
    if let Some(v) = oldest_retained_version {
        frame["oldest_retained_version"] = json!(v);
    }
    frame.to_string()
}
