//! `GET /v1/config`: the tables this server syncs (with their pk fields) and
//! the limits of a push, for any caller with a valid token.

use crate::extract::Caller;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use sync_core::wire::{ServerDescription, SyncedTableInfo};

/// Describes the server's sync configuration (the token is checked by `Caller`).
pub async fn config(
    State(state): State<AppState>,
    Caller(_identity): Caller,
) -> Json<ServerDescription> {
    let config = &state.config;
    let tables = config
        .tables
        .pk_fields()
        .map(|(name, pk)| SyncedTableInfo {
            name: name.to_owned(),
            pk: pk.to_owned(),
        })
        .collect();
    Json(ServerDescription {
        tables,
        max_ops_per_push: config.max_ops_per_push,
        max_payload_bytes: config.limits.max_payload_bytes,
    })
}
