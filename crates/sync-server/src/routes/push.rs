//! `POST /v1/workspaces/{workspace_id}/push`: validate each op, apply the
//! valid ones in one store transaction, answer one result per op in order.

use super::workspace_param;
use crate::app::{read_json, AppState, Caller};
use crate::error::ApiError;
use crate::store::OpOutcome;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use std::collections::HashMap;
use sync_core::validate::{raw_op_id, validate_op};
use sync_core::wire::{OpResult, OpStatus, PushRequest, PushResponse, Winner};

/// Handles a push.
pub async fn push(
    State(state): State<AppState>,
    Caller(identity): Caller,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    body: axum::body::Body,
) -> Result<Json<PushResponse>, ApiError> {
    let (ws, _) = workspace_param(path)?;
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down; retry on another node or shortly",
        )
        .with_retry_after(2));
    }
    let request: PushRequest = read_json(body, &state.config).await?;
    if request.ops.len() > state.config.max_ops_per_push {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_ops",
            format!(
                "a push carries at most {} ops; this one has {}",
                state.config.max_ops_per_push,
                request.ops.len()
            ),
        )
        .with_field("ops"));
    }
    let now_ms = state.clock.now_ms();
    let checked: Vec<_> = request
        .ops
        .iter()
        .map(|raw| {
            validate_op(raw, &state.config.tables, &state.config.limits, now_ms)
                .map_err(|rejection| (raw_op_id(raw), rejection))
        })
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().cloned())
        .collect();
    // Commit and publish in a task of their own: if the client goes away
    // mid-request, a committed push is still fanned out.
    let task_state = state.clone();
    let access = state.access(&identity, &ws).await?;
    let outcome = tokio::spawn(async move {
        let mut outcome = task_state.store.push(&ws, &access, valid, now_ms).await?;
        let changes = std::mem::take(&mut outcome.changes);
        task_state.hub.publish_local(&ws, changes).await;
        Ok::<_, crate::store::StoreError>(outcome)
    })
    .await
    .map_err(|e| crate::store::StoreError::Internal(format!("push task failed: {e}")))??;

    let mut outcomes = outcome.outcomes.into_iter();
    let results: Vec<OpResult> = checked
        .into_iter()
        .map(|checked| match checked {
            Err((op_id, rejection)) => OpResult {
                op_id,
                status: OpStatus::Rejected,
                server_version: None,
                winner: None,
                error: Some(rejection),
            },
            Ok(op) => {
                let op_id = op.op_id.as_str().to_owned();
                match outcomes.next() {
                    Some(OpOutcome::Applied(v)) => result(op_id, OpStatus::Applied, Some(v), None),
                    Some(OpOutcome::Duplicate(v)) => result(op_id, OpStatus::Duplicate, v, None),
                    Some(OpOutcome::Superseded(stored)) => result(
                        op_id,
                        OpStatus::Superseded,
                        None,
                        Some(Winner {
                            clock: stored.stamp.clock,
                            hlc: stored.stamp.hlc,
                            op_id: stored.stamp.op_id,
                            server_version: stored.server_version,
                            deleted: stored.deleted,
                            payload: stored.payload,
                        }),
                    ),
                    // The store answers once per op; a short answer is a store bug.
                    None => result(op_id, OpStatus::Duplicate, None, None),
                }
            }
        })
        .collect();
    for r in &results {
        let status = match r.status {
            OpStatus::Applied => "applied",
            OpStatus::Duplicate => "duplicate",
            OpStatus::Superseded => "superseded",
            OpStatus::Rejected => "rejected",
        };
        metrics::counter!("or3_push_ops_total", "status" => status).increment(1);
    }
    Ok(Json(PushResponse {
        results,
        server_version: outcome.server_version,
        server_time: now_ms,
    }))
}

fn result(
    op_id: String,
    status: OpStatus,
    server_version: Option<u64>,
    winner: Option<Winner>,
) -> OpResult {
    OpResult {
        op_id,
        status,
        server_version,
        winner,
        error: None,
    }
}
