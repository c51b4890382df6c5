//! `/v1/health`, `/metrics` and the JSON 404 for unknown routes.

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Liveness: answers while the process serves requests.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "server_time": state.clock.now_ms() }))
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Prometheus text exposition.
pub async fn metrics() -> Result<String, ApiError> {
    prometheus().map(PrometheusHandle::render).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::MetricsUnavailable,
            "another metrics recorder is installed",
        )
    })
}

/// Unknown routes answer in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError::no_such_route()
}
