//! `GET`, `PATCH` and `DELETE /v1/workspaces/{workspace_id}`: one workspace
//! read by any member, renamed or deleted by an owner.

use crate::error::ApiError;
use crate::extract::{check_workspace_name, read_json, workspace_param, Caller};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::collections::HashMap;
use sync_core::wire::{CreateWorkspaceRequest, WorkspaceInfo};

/// The workspace's name and the caller's role.
pub async fn read(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<Json<WorkspaceInfo>, ApiError> {
    let (ws, _) = workspace_param(path)?;
    let access = state.access(&identity, &ws).await?;
    Ok(Json(state.store.workspace(&ws, &access).await?))
}

/// Renames the workspace (`{"name": "…"}`, checked as on creation).
pub async fn rename(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    body: axum::body::Body,
) -> Result<Json<WorkspaceInfo>, ApiError> {
    let (ws, _) = workspace_param(path)?;
    let request: CreateWorkspaceRequest = read_json(body, &state.config).await?;
    let name = check_workspace_name(&request.name)?;
    let access = state.access(&identity, &ws).await?;
    Ok(Json(
        state.store.rename_workspace(&ws, &access, name).await?,
    ))
}

/// Deletes the workspace and all its data, and ends its streams. Refused
/// when membership comes from claims: the auth system owns the workspaces
/// there (and would bring it back on the next call).
pub async fn delete(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    state.refuse_in_claims_mode()?;
    let (ws, _) = workspace_param(path)?;
    let access = state.access(&identity, &ws).await?;
    state.store.delete_workspace(&ws, &access).await?;
    state.hub.close_workspace(&ws);
    Ok(StatusCode::NO_CONTENT)
}
