//! `conformance/push.json` on a store: each vector's `stored` ops pushed into
//! a fresh workspace, then its `batch`; the outcomes, versions and logged
//! scopes compared with the vector's. Ops that fail validation are answered
//! `rejected` here, as the push route answers them, and never reach the store.

use super::{alice, workspace, T0};
use serde_json::{json, Value};
use std::sync::Arc;
use sync_core::validate::{validate_op, ValidationLimits};
use sync_core::{TableConfig, ValidOp};
use sync_server::store::{OpOutcome, PushOutcome, Store};

const VECTORS: &str = include_str!("../../../../conformance/push.json");

/// One result per op of `raw`, in the vectors' shape.
async fn push(
    store: &Arc<dyn Store>,
    ws: &sync_core::WorkspaceId,
    raw: &[Value],
    tables: &TableConfig,
    now_ms: u64,
) -> (Vec<Value>, u64) {
    let checked: Vec<Result<ValidOp, Value>> = raw
        .iter()
        .map(|op| {
            validate_op(op, tables, &ValidationLimits::default(), now_ms)
                .map_err(|r| json!({"status": "rejected", "code": r.code.as_str()}))
        })
        .collect();
    let valid: Vec<ValidOp> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let PushOutcome {
        outcomes,
        server_version,
        changes,
    } = store.push(ws, &alice(), valid, T0).await.unwrap();
    let mut outcomes = outcomes.into_iter();
    let results = checked
        .into_iter()
        .map(|c| match c {
            Err(rejected) => rejected,
            Ok(_) => match outcomes.next().expect("one outcome per valid op") {
                OpOutcome::Applied(v) => {
                    let logged = changes
                        .iter()
                        .find(|c| c.change.server_version == v)
                        .expect("an applied op is logged at its version");
                    let scope = &logged.scope;
                    json!({"status": "applied", "server_version": v, "scope": {
                        "scoped": scope.scoped, "project_id": scope.project_id,
                        "prev_project_id": scope.prev_project_id, "scope_change": scope.scope_change,
                    }})
                }
                OpOutcome::Duplicate(v) => json!({"status": "duplicate", "server_version": v}),
                OpOutcome::Superseded(w) => json!({"status": "superseded", "winner": {
                    "server_version": w.server_version, "op_id": w.stamp.op_id, "deleted": w.deleted,
                }}),
                OpOutcome::Rejected(r) => json!({"status": "rejected", "code": r.code.as_str()}),
            },
        })
        .collect();
    (results, server_version)
}

/// Every push vector agrees with the store.
pub async fn push_vectors_agree(store: Arc<dyn Store>) {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let config = &doc["config"];
    let tables = TableConfig::from_pairs(
        config["tables"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())),
    );
    let now_ms = config["now_ms"].as_u64().unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for vector in vectors {
        let why = vector["why"].as_str().unwrap();
        let ws = workspace(&store).await;
        let stored = vector["stored"].as_array().unwrap();
        let (results, _) = push(&store, &ws, stored, &tables, now_ms).await;
        for (i, r) in results.iter().enumerate() {
            assert_eq!(
                (&r["status"], r["server_version"].as_u64()),
                (&json!("applied"), Some(i as u64 + 1)),
                "{why}: stored op {i}"
            );
        }
        let batch = vector["batch"].as_array().unwrap();
        let (results, head) = push(&store, &ws, batch, &tables, now_ms).await;
        assert_eq!(
            json!({"results": results, "head": head}),
            vector["expect"],
            "{why}"
        );
    }
}
