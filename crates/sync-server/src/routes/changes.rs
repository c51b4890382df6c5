//! `GET /v1/workspaces/{workspace_id}/changes`: the change log after a cursor.

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{check_project_id, device_id_header, parse_query, workspace_param, Caller};
use crate::state::AppState;
use crate::store::{ChangesQuery, DevicePosition};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    cursor: Option<u64>,
    limit: Option<usize>,
    project_id: Option<String>,
}

/// Handles a pull. The body is the protocol's `ChangesPage`, written by
/// [`sync_core::wire::ChangesArray`] (stored payloads are copied as they are,
/// not parsed again).
pub async fn changes(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ws, _) = workspace_param(path)?;
    let params: Params = parse_query(query.as_deref())?;
    let device_id = device_id_header(&headers)?;
    let cursor = params.cursor.unwrap_or(0);
    if cursor > sync_core::MAX_SAFE_INTEGER {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidCursor,
            "cursor",
            "cursor is out of range",
        ));
    }
    let limit = match params.limit {
        None => state.config.default_pull_limit,
        Some(l) if (1..=state.config.max_pull_limit).contains(&l) => l,
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidLimit,
                "limit",
                format!("limit must be 1 to {}", state.config.max_pull_limit),
            ))
        }
    };
    let project_id = check_project_id(params.project_id)?;
    let batch = state
        .store
        .changes_json(
            &ws,
            &state.access(&identity, &ws).await?,
            ChangesQuery {
                cursor,
                limit,
                project_id,
            },
        )
        .await?;
    if let Some(device_id) = device_id {
        state.positions.report(DevicePosition {
            workspace_id: ws,
            device_id,
            cursor,
            seen_at_ms: state.clock.now_ms(),
        });
    }
    let body =
        batch
            .changes
            .into_page_body(batch.cursor, batch.has_more, batch.oldest_retained_version);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
