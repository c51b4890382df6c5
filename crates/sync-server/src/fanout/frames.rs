//! The frames the server sends to a subscriber, as JSON text.

use crate::error::{ApiError, ErrorCode};
use crate::limiter::RateLimitHint;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use sync_core::wire::{Change, PushResponse};
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

/// `{"type":"push_result","id":…,"results":[…],"server_version":N,"server_time":T,"rate_limit"?}`:
/// a WebSocket push's answer, the fields of an HTTP push's 200 body, and the
/// push rate limit's budget its `RateLimit-*` headers would have carried.
pub fn push_result_frame(
    id: &str,
    response: &PushResponse,
    rate_limit: Option<RateLimitHint>,
) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
        #[serde(flatten)]
        response: &'a PushResponse,
        #[serde(skip_serializing_if = "Option::is_none")]
        rate_limit: Option<RateLimitHint>,
    }
    serde_json::to_string(&Frame {
        kind: "push_result",
        id,
        response,
        rate_limit,
    })
    .unwrap_or_else(|_| {
        let error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        );
        push_error_frame(id, &error, rate_limit)
    })
}

/// `{"type":"push_error","id":…,"status":S,"error":{"code","message","field"?},"retry_after"?,"rate_limit"?}`:
/// a WebSocket push refused, with the status and error body (and `Retry-After`
/// in seconds, and the `RateLimit-*` budget once the push rate limit counted
/// the push) an HTTP push would have got.
pub fn push_error_frame(id: &str, refusal: &ApiError, rate_limit: Option<RateLimitHint>) -> String {
    let mut error = json!({"code": refusal.code.as_str(), "message": refusal.message});
    if let Some(field) = &refusal.field {
        error["field"] = json!(field);
    }
    let status = refusal.status.as_u16();
    let mut frame = json!({"type": "push_error", "id": id, "status": status, "error": error});
    if let Some(secs) = refusal.retry_after_secs {
        frame["retry_after"] = json!(secs);
    }
    if let Some(hint) = rate_limit {
        frame["rate_limit"] = json!(hint);
    }
    frame.to_string()
}
