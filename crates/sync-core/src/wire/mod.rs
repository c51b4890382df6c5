//! The JSON shapes of the gateway HTTP API (PROTOCOL.md section 4).
//! Requests reject unknown fields; responses carry payloads as raw JSON so a
//! stored row is sent without being parsed again. A pull page can also be
//! written straight from stored rows (`page_json.rs`).

use crate::ids::{Role, ServerVersion};
use crate::validate::{Operation, Rejection};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

mod page_json;
pub use page_json::{ChangeJson, ChangesArray};

/// `POST /v1/workspaces/{id}/push` body. Ops stay raw so each one is validated
/// on its own and a bad op cannot sink the batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The ops, in outbox order.
    pub ops: Vec<Value>,
}

/// The outcome of one op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Won and entered the log.
    Applied,
    /// Seen before; nothing changed.
    Duplicate,
    /// Lost LWW; `winner` holds the stored version.
    Superseded,
    /// Invalid; `error` says why.
    Rejected,
}

/// The stored version that beat a pushed op.
#[derive(Debug, Clone, Serialize)]
pub struct Winner {
    /// Record clock.
    pub clock: u64,
    /// Record hlc.
    pub hlc: String,
    /// Op that wrote it.
    pub op_id: String,
    /// Log position of that op.
    pub server_version: ServerVersion,
    /// Tombstone flag.
    pub deleted: bool,
    /// The row (null when a tombstone's payload was purged).
    pub payload: Box<RawValue>,
}

/// One entry of a push response.
#[derive(Debug, Clone, Serialize)]
pub struct OpResult {
    /// The op's id as sent.
    pub op_id: String,
    /// What happened.
    pub status: OpStatus,
    /// Log position (applied, and duplicate when still known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<ServerVersion>,
    /// For superseded ops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<Winner>,
    /// For rejected ops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Rejection>,
}

/// `push` response body.
#[derive(Debug, Clone, Serialize)]
pub struct PushResponse {
    /// One per op, in request order.
    pub results: Vec<OpResult>,
    /// The workspace's newest version after this push.
    pub server_version: ServerVersion,
    /// Server wall time, epoch ms.
    pub server_time: u64,
}

/// One change-log entry as pulled or streamed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Log position.
    pub server_version: ServerVersion,
    /// Table.
    pub table_name: String,
    /// Record key.
    pub pk: String,
    /// Put or delete.
    pub operation: Operation,
    /// The row as committed (null once a purged tombstone).
    pub payload: Box<RawValue>,
    /// Record clock.
    pub clock: u64,
    /// Write hlc.
    pub hlc: String,
    /// Write op id.
    pub op_id: String,
    /// Writing device.
    pub device_id: String,
    /// A thread moved between projects.
    pub scope_change: bool,
}

/// A stored payload as raw JSON; `null` when there is none (a tombstone
/// whose payload was purged) or it is not JSON.
pub fn stored_json(text: Option<String>) -> Box<RawValue> {
    text.and_then(|t| RawValue::from_string(t).ok())
        .unwrap_or_else(|| {
            // "null" is valid JSON, so this cannot fail.
            RawValue::from_string("null".to_owned()).expect("null is JSON")
        })
}

/// `changes` response body.
#[derive(Debug, Clone, Serialize)]
pub struct ChangesPage {
    /// Changes after the cursor, ascending.
    pub changes: Vec<Change>,
    /// Highest version examined.
    pub cursor: ServerVersion,
    /// More entries follow.
    pub has_more: bool,
    /// Lowest version still in the log.
    pub oldest_retained_version: ServerVersion,
}

/// One record of a snapshot, or the answer of the one-record route.
#[derive(Debug, Clone, Serialize)]
pub struct RecordVersion {
    /// Table.
    pub table_name: String,
    /// Record key.
    pub pk: String,
    /// The row (null once a purged tombstone).
    pub payload: Box<RawValue>,
    /// Tombstone flag.
    pub deleted: bool,
    /// Record clock.
    pub clock: u64,
    /// Write hlc.
    pub hlc: String,
    /// Write op id.
    pub op_id: String,
    /// Log position of the write.
    pub server_version: ServerVersion,
}

/// `snapshot` response body.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotPage {
    /// The version the snapshot started at; pull from here afterwards.
    pub snapshot_version: ServerVersion,
    /// Records ordered by `(table_name, pk)`.
    pub items: Vec<RecordVersion>,
    /// Opaque token for the next page, or null after the last.
    pub next_page_token: Option<String>,
}

/// `POST /v1/workspaces` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {
    /// Display name.
    pub name: String,
}

/// A workspace as its member sees it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceInfo {
    /// Id.
    pub workspace_id: String,
    /// Display name.
    pub name: String,
    /// The caller's role.
    pub role: Role,
}

/// `GET /v1/workspaces` body.
#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceList {
    /// The caller's workspaces.
    pub workspaces: Vec<WorkspaceInfo>,
}

/// `GET /v1/config` body: what this server syncs and the limits of a push,
/// so a client can check its own declarations before it writes.
#[derive(Debug, Clone, Serialize)]
pub struct ServerDescription {
    /// The synced tables, by name.
    pub tables: Vec<SyncedTableInfo>,
    /// Most ops in one push.
    pub max_ops_per_push: usize,
    /// Largest payload of one op, in bytes of compact JSON.
    pub max_payload_bytes: usize,
}

/// One synced table and the payload field that holds its primary key.
#[derive(Debug, Clone, Serialize)]
pub struct SyncedTableInfo {
    /// Table name.
    pub name: String,
    /// The payload field equal to `pk`.
    pub pk: String,
}

/// `PUT /v1/workspaces/{id}/members/{user}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMemberRequest {
    /// The new role.
    pub role: Role,
}

/// The error body of every failed request.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code, message and the field at fault.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `cursor_expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_retained_version: Option<ServerVersion>,
}
