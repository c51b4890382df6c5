//! `POST /v1/workspaces/{workspace_id}/push`: the HTTP transport of a push
//! ([`crate::push`] applies it).

use crate::error::ApiError;
use crate::extract::{read_json, workspace_param, Caller};
use crate::push::{apply_push, refuse_while_draining};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::collections::HashMap;
use sync_core::wire::{PushRequest, PushResponse};

/// Handles a push.
pub async fn push(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    body: axum::body::Body,
) -> Result<Json<PushResponse>, ApiError> {
    let (ws, _) = workspace_param(path)?;
    refuse_while_draining(&state)?;
    let request: PushRequest = read_json(body, &state.config).await?;
    Ok(Json(apply_push(&state, &identity, ws, request).await?))
}
