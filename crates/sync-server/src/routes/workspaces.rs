//! `POST` and `GET /v1/workspaces`: create a workspace, list the caller's.

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{read_json, Caller};
use crate::state::AppState;
use crate::store::Access;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sync_core::wire::{CreateWorkspaceRequest, WorkspaceInfo, WorkspaceList};
use sync_core::WorkspaceId;

/// Creates a workspace; the caller becomes its owner.
pub async fn create(
    State(state): State<AppState>,
    Caller(identity): Caller,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<WorkspaceInfo>), ApiError> {
    state.refuse_in_claims_mode()?;
    let request: CreateWorkspaceRequest = read_json(body, &state.config).await?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidName,
            "name",
            "name must be 1 to 200 characters without control characters",
        ));
    }
    let info = state
        .store
        .create_workspace(
            &WorkspaceId::generate(),
            name,
            &identity.user_id,
            state.clock.now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Lists the caller's workspaces.
pub async fn list(
    State(state): State<AppState>,
    Caller(identity): Caller,
) -> Result<Json<WorkspaceList>, ApiError> {
    if state.config.membership_from_claims {
        // The auth system owns membership: the token's organization is the one workspace.
        let mut workspaces = Vec::new();
        if let Some(ws) = identity.org_id.as_deref().and_then(WorkspaceId::parse) {
            if let Ok(Access::Claimed { role, .. }) = state.access(&identity, &ws).await {
                workspaces.push(WorkspaceInfo {
                    workspace_id: ws.to_string(),
                    name: ws.to_string(),
                    role,
                });
            }
        }
        return Ok(Json(WorkspaceList { workspaces }));
    }
    let workspaces = state.store.list_workspaces(&identity.user_id).await?;
    Ok(Json(WorkspaceList { workspaces }))
}
