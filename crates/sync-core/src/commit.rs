//! What a winning op commits: the row stored in the records table and the log.

use crate::validate::ValidOp;
use serde_json::{Map, Value};

/// The row a winning op stores. The sync fields (`clock`, `hlc`, `deleted`)
/// always mirror the op's stamp, so a pulled row never disagrees with its
/// stamp. A delete without a payload keeps the previous row's data (when the
/// server still has it) marked as a tombstone.
pub fn committed_row(
    op: &ValidOp,
    previous: Option<Map<String, Value>>,
    pk_field: &str,
) -> Map<String, Value> {
    let mut row = match (&op.payload, previous) {
        (Some(payload), _) => payload.clone(),
        (None, Some(previous)) => previous,
        (None, None) => Map::new(),
    };
    row.insert(pk_field.to_owned(), Value::String(op.pk.clone()));
    row.insert("clock".to_owned(), Value::from(op.clock));
    row.insert("hlc".to_owned(), Value::String(op.hlc.to_string()));
    row.insert("deleted".to_owned(), Value::Bool(op.is_tombstone()));
    row
}
