//! `PUT /v1/workspaces/{workspace_id}/devices/{device_id}/cursor`: a device
//! reports the version it has durably applied, for garbage collection; never
//! past the head, never back (`sync_core::position`). Viewers may: it is a
//! read-side act.

use crate::error::ApiError;
use crate::extract::{check_device_id, read_json, workspace_param, Caller};
use crate::state::AppState;
use crate::store::DevicePosition;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::collections::HashMap;
use sync_core::wire::DeviceCursor;

/// Records the device's position.
pub async fn report_cursor(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    body: axum::body::Body,
) -> Result<Json<DeviceCursor>, ApiError> {
    let (ws, params) = workspace_param(path)?;
    let device_id = check_device_id(
        params.get("device_id").map_or("", String::as_str),
        "device_id",
    )?;
    let request: DeviceCursor = read_json(body, &state.config).await?;
    let access = state.access(&identity, &ws).await?;
    // Positions buffered from pulls land first: the check compares with the
    // latest one the device reported by any route.
    state.positions.flush(state.store.as_ref()).await;
    state
        .store
        .report_position(
            &access,
            DevicePosition {
                workspace_id: ws,
                device_id: device_id.clone(),
                cursor: request.cursor,
                seen_at_ms: state.clock.now_ms(),
            },
        )
        .await?;
    Ok(Json(DeviceCursor {
        device_id,
        cursor: request.cursor,
    }))
}
