//! One file per route of the HTTP API.

pub mod changes;
pub mod dev_token;
pub mod health;
pub mod members;
pub mod push;
pub mod records;
pub mod snapshot;
pub mod web_app;
pub mod workspaces;

use crate::app::parse_workspace_id;
use crate::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use sync_core::WorkspaceId;

/// Unwraps path parameters, turning a bad path into a 400 with a code.
pub fn path_params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_path", "path", e.body_text()))
}

/// The workspace id of a `/v1/workspaces/{workspace_id}/...` route.
pub fn workspace_param(
    path: Result<Path<std::collections::HashMap<String, String>>, PathRejection>,
) -> Result<(WorkspaceId, std::collections::HashMap<String, String>), ApiError> {
    let params = path_params(path)?;
    let ws = parse_workspace_id(params.get("workspace_id").map_or("", String::as_str))?;
    Ok((ws, params))
}

/// A user id (a token's `sub`): 1 to 256 characters without control characters.
pub fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    sync_core::validate::check_pk(user_id).map_err(|_| {
        ApiError::bad_request(
            "invalid_user_id",
            "user_id",
            "user_id must be 1 to 256 characters without control characters",
        )
    })
}

/// Validates an `X-Device-Id` header when present.
pub fn device_id_header(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("x-device-id") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(sync_core::DeviceId::parse)
            .map(|d| Some(d.as_str().to_owned()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_device_id",
                    "X-Device-Id",
                    "X-Device-Id must be 16 to 64 lowercase hex characters",
                )
            }),
    }
}
