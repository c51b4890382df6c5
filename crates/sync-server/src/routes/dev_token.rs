//! `POST /v1/dev/token`: dev-auth mode only. Signs a token for any user id,
//! so a fresh checkout works with no identity provider.

use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{check_user_id, read_json};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long a dev token lives.
pub const DEV_TOKEN_TTL_SECS: u64 = 12 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenRequest {
    user_id: String,
}

/// Issues a dev token.
pub async fn dev_token(
    State(state): State<AppState>,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let issuer = state.dev_issuer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "dev auth is off",
        )
    })?;
    let request: DevTokenRequest = read_json(body, &state.config).await?;
    check_user_id(&request.user_id)?;
    let now_secs = state.clock.now_ms() / 1000;
    let token = issuer.issue(&request.user_id, now_secs, DEV_TOKEN_TTL_SECS)?;
    Ok(Json(json!({
        "token": token,
        "user_id": request.user_id,
        "expires_at": now_secs + DEV_TOKEN_TTL_SECS,
    })))
}
