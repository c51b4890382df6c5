//! `GET /v1/workspaces/{workspace_id}/records/{table_name}/{pk}`: one record.

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{workspace_param, Caller};
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use std::collections::HashMap;
use sync_core::wire::RecordVersion;

/// Handles a one-record read.
pub async fn record(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Result<Json<RecordVersion>, ApiError> {
    let (ws, params) = workspace_param(path)?;
    let table_name = params.get("table_name").map_or("", String::as_str);
    let pk = params.get("pk").map_or("", String::as_str);
    if state.config.tables.pk_field(table_name).is_none() {
        let rejection = sync_core::Rejection::unknown_table(table_name);
        return Err(ApiError::bad_request(
            ErrorCode::UnknownTable,
            "table_name",
            rejection.message,
        ));
    }
    sync_core::validate::check_pk(pk)
        .map_err(|r| ApiError::bad_request(ErrorCode::InvalidPk, "pk", r.message))?;
    let record = state
        .store
        .record(&ws, &state.access(&identity, &ws).await?, table_name, pk)
        .await?;
    Ok(Json(record))
}
