//! The one wire error type: every failure a request can meet becomes an
//! [`ApiError`] with a status, a code, a message and, where it helps, the
//! field at fault. Store errors are mapped here and nowhere else, and every
//! code is an [`ErrorCode`] (`code.rs`).

mod code;

pub use code::ErrorCode;

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sync_core::wire::{ErrorBody, ErrorDetail};
use sync_core::ServerVersion;

/// A failed request, ready to be sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// The request field at fault.
    pub field: Option<String>,
    /// With `cursor_expired`.
    pub oldest_retained_version: Option<ServerVersion>,
    /// Seconds for `Retry-After`.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            oldest_retained_version: None,
            retry_after_secs: None,
        }
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Adds a `Retry-After`.
    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after_secs = Some(secs);
        self
    }

    /// 400 with a code and the field at fault.
    pub fn bad_request(code: ErrorCode, field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).with_field(field)
    }

    /// 401.
    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// 404 for a path no route serves.
    pub fn no_such_route() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::UnknownWorkspace => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::UnknownWorkspace,
                "no such workspace",
            )
            .with_field("workspace_id"),
            StoreError::Forbidden(why) => ApiError::forbidden(why),
            StoreError::RecordNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such record")
            }
            StoreError::MemberNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such member")
                    .with_field("user_id")
            }
            StoreError::LastOwner => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::LastOwner,
                "a workspace must keep at least one owner",
            )
            .with_field("role"),
            StoreError::CursorExpired {
                oldest_retained_version,
            } => {
                let mut e = ApiError::new(
                    StatusCode::GONE,
                    ErrorCode::CursorExpired,
                    "the cursor is outside the retained change log; rescan from a snapshot",
                )
                .with_field("cursor");
                e.oldest_retained_version = Some(oldest_retained_version);
                e
            }
            StoreError::InvalidPageToken(why) => {
                ApiError::bad_request(ErrorCode::InvalidPageToken, "page_token", why)
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StoreUnavailable,
                    "the database is unavailable; retry later",
                )
                .with_retry_after(2)
            }
            StoreError::Internal(why) => {
                tracing::error!(error = %why, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
                field: self.field,
                oldest_retained_version: self.oldest_retained_version,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}
