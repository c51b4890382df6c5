//! `GET /v1/workspaces/{workspace_id}/members` (any member lists them), `PUT`
//! and `DELETE /v1/workspaces/{workspace_id}/members/{user_id}`: owners
//! manage membership; a workspace always keeps one owner.

use crate::error::ApiError;
use crate::extract::{check_user_id, read_json, workspace_param, Caller};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use sync_core::wire::{MemberList, SetMemberRequest};

fn user_param(params: &HashMap<String, String>) -> Result<String, ApiError> {
    let user = params.get("user_id").map_or("", String::as_str);
    check_user_id(user).map(|_| user.to_owned())
}

/// Lists the members, ordered by user id (any member may).
pub async fn list_members(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<Json<MemberList>, ApiError> {
    state.refuse_in_claims_mode()?;
    let (ws, _) = workspace_param(path)?;
    let members = state
        .store
        .members(&ws, &state.access(&identity, &ws).await?)
        .await?;
    Ok(Json(MemberList { members }))
}

/// Adds a member or changes their role.
pub async fn set_member(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    state.refuse_in_claims_mode()?;
    let (ws, params) = workspace_param(path)?;
    let user_id = user_param(&params)?;
    let request: SetMemberRequest = read_json(body, &state.config).await?;
    state
        .store
        .set_member(
            &ws,
            &state.access(&identity, &ws).await?,
            &user_id,
            request.role,
        )
        .await?;
    Ok(Json(json!({
        "workspace_id": ws,
        "user_id": user_id,
        "role": request.role,
    })))
}

/// Removes a member.
pub async fn remove_member(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    state.refuse_in_claims_mode()?;
    let (ws, params) = workspace_param(path)?;
    let user_id = user_param(&params)?;
    state
        .store
        .remove_member(&ws, &state.access(&identity, &ws).await?, &user_id)
        .await?;
    state.hub.revoke(&ws, &user_id);
    Ok(StatusCode::NO_CONTENT)
}
