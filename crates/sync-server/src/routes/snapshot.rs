//! `GET /v1/workspaces/{workspace_id}/snapshot`: current records in pages.
//! The page token binds workspace, scope and snapshot version; it is opaque
//! to clients (base64url of a small JSON object).

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{check_project_id, device_id_header, parse_query, workspace_param, Caller};
use crate::state::AppState;
use crate::store::{DevicePosition, SnapshotQuery, StoreError};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use sync_core::wire::SnapshotPage;
use sync_core::{ServerVersion, WorkspaceId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    page_token: Option<String>,
    limit: Option<usize>,
    project_id: Option<String>,
}

/// Where the next page starts, and what it is bound to.
#[derive(Serialize, Deserialize)]
struct PageToken {
    w: String,
    p: Option<String>,
    v: ServerVersion,
    t: String,
    k: String,
}

impl PageToken {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(
        text: &str,
        ws: &WorkspaceId,
        project: &Option<String>,
    ) -> Result<PageToken, StoreError> {
        let token: PageToken = URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(StoreError::InvalidPageToken("the page token is malformed"))?;
        if token.w != ws.as_str() || &token.p != project {
            return Err(StoreError::InvalidPageToken(
                "the page token belongs to another workspace or scope",
            ));
        }
        Ok(token)
    }
}

/// Handles a snapshot page.
pub async fn snapshot(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<SnapshotPage>, ApiError> {
    let (ws, _) = workspace_param(path)?;
    let params: Params = parse_query(query.as_deref())?;
    let device_id = device_id_header(&headers)?;
    let limit = match params.limit {
        None => state.config.default_snapshot_limit,
        Some(l) if (1..=state.config.max_snapshot_limit).contains(&l) => l,
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidLimit,
                "limit",
                format!("limit must be 1 to {}", state.config.max_snapshot_limit),
            ))
        }
    };
    let project_id = check_project_id(params.project_id)?;
    let token = params
        .page_token
        .as_deref()
        .map(|t| PageToken::decode(t, &ws, &project_id))
        .transpose()?;
    let first_page = token.is_none();
    let batch = state
        .store
        .snapshot(
            &ws,
            &state.access(&identity, &ws).await?,
            SnapshotQuery {
                after: token.as_ref().map(|t| (t.t.clone(), t.k.clone())),
                snapshot_version: token.as_ref().map(|t| t.v),
                limit,
                project_id: project_id.clone(),
            },
        )
        .await?;
    if let (true, Some(device_id)) = (first_page, device_id) {
        state.positions.report(DevicePosition {
            workspace_id: ws.clone(),
            device_id,
            cursor: batch.snapshot_version,
            seen_at_ms: state.clock.now_ms(),
        });
        state.positions.flush(state.store.as_ref()).await;
    }
    let next_page_token = match (batch.has_more, batch.items.last()) {
        (true, Some(last)) => Some(
            PageToken {
                w: ws.to_string(),
                p: project_id,
                v: batch.snapshot_version,
                t: last.table_name.clone(),
                k: last.pk.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(Json(SnapshotPage {
        snapshot_version: batch.snapshot_version,
        items: batch.items,
        next_page_token,
    }))
}
