//! The JSON shapes of the gateway HTTP API (PROTOCOL.md section 4).
//! Requests reject unknown fields; responses carry payloads as raw JSON so a
//! stored row is sent without being parsed again.

use crate::ids::{Role, ServerVersion};
use crate::validate::{Operation, Rejection};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

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

impl Change {
    /// This change as borrowed parts, for [`ChangeJson::write`].
    pub fn as_json(&self) -> ChangeJson<'_> {
        ChangeJson {
            server_version: self.server_version,
            table_name: &self.table_name,
            pk: &self.pk,
            operation: self.operation,
            payload: Some(self.payload.get().as_bytes()),
            clock: self.clock,
            hlc: &self.hlc,
            op_id: &self.op_id,
            device_id: &self.device_id,
            scope_change: self.scope_change,
        }
    }
}

/// A change-log entry borrowed from where it is stored, written as exactly
/// the JSON of the [`Change`] it stands for without building one: the pull
/// route's hot path. `payload` is JSON the server wrote itself (validated
/// when it was pushed) and is copied as it is; `None` writes `null`.
#[derive(Debug, Clone, Copy)]
pub struct ChangeJson<'a> {
    /// Log position.
    pub server_version: ServerVersion,
    /// Table.
    pub table_name: &'a str,
    /// Record key.
    pub pk: &'a str,
    /// Put or delete.
    pub operation: Operation,
    /// The stored row, raw JSON text (UTF-8).
    pub payload: Option<&'a [u8]>,
    /// Record clock.
    pub clock: u64,
    /// Write hlc.
    pub hlc: &'a str,
    /// Write op id.
    pub op_id: &'a str,
    /// Writing device.
    pub device_id: &'a str,
    /// A thread moved between projects.
    pub scope_change: bool,
}

impl ChangeJson<'_> {
    /// The owned [`Change`]. A payload that is not JSON (which a store never
    /// holds: it wrote it from a validated op) becomes `null`.
    pub fn to_change(&self) -> Change {
        let payload = stored_json(
            self.payload
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .map(str::to_owned),
        );
        Change {
            server_version: self.server_version,
            table_name: self.table_name.to_owned(),
            pk: self.pk.to_owned(),
            operation: self.operation,
            payload,
            clock: self.clock,
            hlc: self.hlc.to_owned(),
            op_id: self.op_id.to_owned(),
            device_id: self.device_id.to_owned(),
            scope_change: self.scope_change,
        }
    }

    /// Bytes of the payload as the page-size rule counts them (`null` is 4).
    pub fn payload_len(&self) -> usize {
        self.payload.map_or(4, <[u8]>::len)
    }

    /// Appends the change's JSON object to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"server_version\":");
        write_u64(out, self.server_version);
        out.extend_from_slice(b",\"table_name\":");
        write_str(out, self.table_name);
        out.extend_from_slice(b",\"pk\":");
        write_str(out, self.pk);
        out.extend_from_slice(b",\"operation\":\"");
        out.extend_from_slice(self.operation.as_str().as_bytes());
        out.extend_from_slice(b"\",\"payload\":");
        out.extend_from_slice(self.payload.unwrap_or(b"null"));
        out.extend_from_slice(b",\"clock\":");
        write_u64(out, self.clock);
        out.extend_from_slice(b",\"hlc\":");
        write_str(out, self.hlc);
        out.extend_from_slice(b",\"op_id\":");
        write_str(out, self.op_id);
        out.extend_from_slice(b",\"device_id\":");
        write_str(out, self.device_id);
        out.extend_from_slice(if self.scope_change {
            b",\"scope_change\":true}"
        } else {
            b",\"scope_change\":false}"
        });
    }
}

/// Builds the JSON array of a page's changes, one [`ChangeJson`] at a time.
#[derive(Debug, Default)]
pub struct ChangesArray {
    json: Vec<u8>,
    len: usize,
}

impl ChangesArray {
    /// Appends one change.
    pub fn push(&mut self, change: ChangeJson<'_>) {
        self.json.push(if self.len == 0 { b'[' } else { b',' });
        change.write(&mut self.json);
        self.len += 1;
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body of a `changes` response holding this array: the same JSON as
    /// the [`ChangesPage`] with these changes.
    pub fn into_page_body(
        mut self,
        cursor: ServerVersion,
        has_more: bool,
        oldest_retained_version: ServerVersion,
    ) -> Vec<u8> {
        if self.len == 0 {
            self.json.push(b'[');
        }
        self.json.push(b']');
        let mut body = Vec::with_capacity(self.json.len() + 96);
        body.extend_from_slice(b"{\"changes\":");
        body.extend_from_slice(&self.json);
        body.extend_from_slice(b",\"cursor\":");
        write_u64(&mut body, cursor);
        body.extend_from_slice(if has_more {
            b",\"has_more\":true"
        } else {
            b",\"has_more\":false"
        });
        body.extend_from_slice(b",\"oldest_retained_version\":");
        write_u64(&mut body, oldest_retained_version);
        body.push(b'}');
        body
    }
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

fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string, escaped as serde_json escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(pk: &str, payload: &str, operation: Operation, scope_change: bool) -> Change {
        Change {
            server_version: 9_007_199_254_740_991,
            table_name: "messages".into(),
            pk: pk.into(),
            operation,
            payload: RawValue::from_string(payload.into()).unwrap(),
            clock: 0,
            hlc: "1732540000000-000001-a1b2c3d4e5f60718".into(),
            op_id: "0191c7a8-1d2e-7c3f-8a4b-5c6d7e8f9a0b".into(),
            device_id: "a1b2c3d4e5f60718".into(),
            scope_change,
        }
    }

    #[test]
    fn change_json_writes_exactly_what_serde_writes() {
        let changes = [
            change("m1", r#"{"id":"m1","content":"hi"}"#, Operation::Put, false),
            change(
                "quote \" back\\slash é 😀 \u{7f}",
                r#"{"a":[1,2.5,null,true],"b":"\u00e9\n"}"#,
                Operation::Delete,
                true,
            ),
            change("gone", "null", Operation::Delete, false),
        ];
        let mut array = ChangesArray::default();
        for c in &changes {
            let mut one = Vec::new();
            c.as_json().write(&mut one);
            assert_eq!(
                String::from_utf8(one).unwrap(),
                serde_json::to_string(c).unwrap()
            );
            array.push(c.as_json());
        }
        assert_eq!(array.len(), 3);
        for c in &changes {
            let back = c.as_json().to_change();
            assert_eq!(
                serde_json::to_string(&back).unwrap(),
                serde_json::to_string(c).unwrap()
            );
        }
        let page = ChangesPage {
            changes: changes.to_vec(),
            cursor: 42,
            has_more: true,
            oldest_retained_version: 7,
        };
        assert_eq!(
            String::from_utf8(array.into_page_body(42, true, 7)).unwrap(),
            serde_json::to_string(&page).unwrap()
        );
    }

    #[test]
    fn an_empty_page_and_a_purged_payload() {
        let page = ChangesPage {
            changes: vec![],
            cursor: 0,
            has_more: false,
            oldest_retained_version: 1,
        };
        assert_eq!(
            String::from_utf8(ChangesArray::default().into_page_body(0, false, 1)).unwrap(),
            serde_json::to_string(&page).unwrap()
        );
        let mut out = Vec::new();
        ChangeJson {
            payload: None,
            ..change("t", "{}", Operation::Delete, false).as_json()
        }
        .write(&mut out);
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["payload"], Value::Null);
    }
}
