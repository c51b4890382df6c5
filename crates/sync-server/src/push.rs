//! A push, whichever transport carried it (PROTOCOL.md section 4, "Push"):
//! `POST …/push` (`routes/push.rs`) and a `push` frame on a subscription's
//! WebSocket (`realtime/session.rs`) both end here, so both answer the same
//! results and the same errors. Each op is validated, the valid ones are
//! applied in one store transaction, the commit is fanned out, and one result
//! per op comes back in request order.

use crate::auth::Identity;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::state::AppState;
use crate::store::{OpOutcome, StoreError};
use axum::http::StatusCode;
use sync_core::validate::{raw_op_id, validate_op, Rejection};
use sync_core::wire::{OpResult, OpStatus, PushRequest, PushResponse, Winner};
use sync_core::{ValidOp, WorkspaceId};

/// 503 `draining` once shutdown began: checked before a push is read, so a
/// draining node refuses it without reading its ops.
pub fn refuse_while_draining(state: &AppState) -> Result<(), ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Draining,
            "the server is shutting down; retry on another node or shortly",
        )
        .with_retry_after(2));
    }
    Ok(())
}

/// Applies `request` to `ws` as `identity`: at most `max_ops_per_push` ops,
/// each validated, the valid ones committed and published, one result per
/// op in request order.
pub async fn apply_push(
    state: &AppState,
    identity: &Identity,
    ws: WorkspaceId,
    request: PushRequest,
) -> Result<PushResponse, ApiError> {
    if request.ops.len() > state.config.max_ops_per_push {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooManyOps,
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
    let access = state.access(identity, &ws).await?;
    let outcome = tokio::spawn(async move {
        let mut outcome = task_state.store.push(&ws, &access, valid, now_ms).await?;
        let changes = std::mem::take(&mut outcome.changes);
        task_state.hub.publish_local(&ws, changes).await;
        Ok::<_, StoreError>(outcome)
    })
    .await
    .map_err(|e| StoreError::Internal(format!("push task failed: {e}")))??;

    let results = pair_results(checked, outcome.outcomes)?;
    for r in &results {
        let status = match r.status {
            OpStatus::Applied => "applied",
            OpStatus::Duplicate => "duplicate",
            OpStatus::Superseded => "superseded",
            OpStatus::Rejected => "rejected",
        };
        metrics::counter!("or3_push_ops_total", "status" => status).increment(1);
    }
    Ok(PushResponse {
        results,
        server_version: outcome.server_version,
        server_time: now_ms,
    })
}

/// One result per op in request order: a rejection where validation failed,
/// the store's outcomes, in order, for the valid ops.
///
/// The store answers exactly once per valid op. Any other count is a store
/// bug and must not reach the client as an answer: a missing outcome reported
/// as `duplicate` (or as anything) would make the client drop a write the
/// store may never have kept. It is an internal error instead, and the client
/// retries the batch, which is idempotent.
fn pair_results(
    checked: Vec<Result<ValidOp, (String, Rejection)>>,
    outcomes: Vec<OpOutcome>,
) -> Result<Vec<OpResult>, StoreError> {
    let valid = checked.iter().filter(|c| c.is_ok()).count();
    if outcomes.len() != valid {
        return Err(StoreError::Internal(format!(
            "push: the store answered {} outcomes for {valid} valid ops",
            outcomes.len()
        )));
    }
    Ok(checked
        .into_iter()
        .scan(outcomes.into_iter(), |outcomes, checked| {
            Some(match checked {
                Err((op_id, rejection)) => OpResult {
                    op_id,
                    status: OpStatus::Rejected,
                    server_version: None,
                    winner: None,
                    error: Some(rejection),
                },
                // Counted above: there is one outcome per valid op.
                Ok(op) => outcome_result(op.op_id.as_str().to_owned(), outcomes.next()?),
            })
        })
        .collect())
}

/// The result of a valid op from its outcome.
fn outcome_result(op_id: String, outcome: OpOutcome) -> OpResult {
    match outcome {
        OpOutcome::Applied(v) => result(op_id, OpStatus::Applied, Some(v), None),
        OpOutcome::Duplicate(v) => result(op_id, OpStatus::Duplicate, v, None),
        OpOutcome::Superseded(stored) => result(
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
        OpOutcome::Rejected(rejection) => OpResult {
            error: Some(rejection),
            ..result(op_id, OpStatus::Rejected, None, None)
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::{TableConfig, ValidationLimits};

    const NOW_MS: u64 = 1_732_540_000_000;

    /// A raw op through the route's validation, as `push` checks it.
    fn checked(raw: serde_json::Value) -> Result<ValidOp, (String, Rejection)> {
        validate_op(
            &raw,
            &TableConfig::or3_chat(),
            &ValidationLimits::default(),
            NOW_MS,
        )
        .map_err(|rejection| (raw_op_id(&raw), rejection))
    }

    fn valid_op(n: u32) -> Result<ValidOp, (String, Rejection)> {
        let op = checked(serde_json::json!({
            "op_id": format!("00000000-0000-4000-8000-{n:012}"),
            "table_name": "threads", "operation": "put", "pk": format!("t{n}"),
            "payload": { "id": format!("t{n}") }, "clock": 1,
            "hlc": "1732540000000-000000-0123456789abcdef", "device_id": "0123456789abcdef",
        }));
        assert!(op.is_ok(), "the test op is valid: {op:?}");
        op
    }

    fn rejected_op() -> Result<ValidOp, (String, Rejection)> {
        let op = checked(serde_json::json!({ "op_id": "not-a-uuid" }));
        assert!(op.is_err(), "the test op is invalid");
        op
    }

    #[test]
    fn a_store_answering_fewer_outcomes_than_valid_ops_is_an_internal_error_never_a_duplicate() {
        let checked = vec![valid_op(1), rejected_op(), valid_op(2)];
        let short = pair_results(checked, vec![OpOutcome::Applied(7)]);
        assert!(
            matches!(short, Err(StoreError::Internal(_))),
            "a short answer must fail the request, got {short:?}"
        );
    }

    #[test]
    fn a_store_answering_more_outcomes_than_valid_ops_is_an_internal_error() {
        let checked = vec![valid_op(1)];
        let long = pair_results(checked, vec![OpOutcome::Applied(7), OpOutcome::Applied(8)]);
        assert!(matches!(long, Err(StoreError::Internal(_))), "got {long:?}");
    }

    #[test]
    fn outcomes_fill_the_valid_ops_in_order_around_rejections() {
        let checked = vec![valid_op(1), rejected_op(), valid_op(2)];
        let results = pair_results(
            checked,
            vec![OpOutcome::Applied(7), OpOutcome::Duplicate(Some(3))],
        )
        .expect("one outcome per valid op");
        let summary: Vec<_> = results
            .iter()
            .map(|r| (r.op_id.as_str(), r.status, r.server_version))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "00000000-0000-4000-8000-000000000001",
                    OpStatus::Applied,
                    Some(7)
                ),
                ("not-a-uuid", OpStatus::Rejected, None),
                (
                    "00000000-0000-4000-8000-000000000002",
                    OpStatus::Duplicate,
                    Some(3)
                ),
            ]
        );
    }
}
