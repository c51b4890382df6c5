//! A pull page written straight from stored rows, byte for byte what serde
//! writes for the [`Change`]s and [`super::ChangesPage`] they stand for:
//! the pull route's hot path, which builds nothing per row.

use super::{stored_json, Change};
use crate::ids::ServerVersion;
use crate::validate::Operation;

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
            committed_at: self.committed_at,
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
    /// Commit time, epoch ms.
    pub committed_at: u64,
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
            committed_at: self.committed_at,
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
            b",\"scope_change\":true"
        } else {
            b",\"scope_change\":false"
        });
        out.extend_from_slice(b",\"committed_at\":");
        write_u64(out, self.committed_at);
        out.push(b'}');
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

fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string, escaped as serde_json escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ChangesPage;
    use serde_json::value::RawValue;
    use serde_json::Value;

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
            committed_at: 1_732_540_000_123,
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
