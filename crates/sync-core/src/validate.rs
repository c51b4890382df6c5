//! Op validation: turns a raw push op (JSON) into a [`ValidOp`] or a
//! [`Rejection`] with the protocol's code. The order of the checks is part of
//! the contract (conformance/validation.json pins it): the first failing
//! check gives the code.

use crate::hlc::Hlc;
use crate::ids::{DeviceId, OpId};
use crate::MAX_SAFE_INTEGER;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The reason codes of a rejected op, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The table is not in the server's allow-list.
    UnknownTable,
    /// The pk is empty, too long or has control characters.
    InvalidPk,
    /// The payload is larger than the configured limit.
    PayloadTooLarge,
    /// The payload's pk field is missing or differs from `pk`.
    PkMismatch,
    /// The hlc does not parse, or its suffix is not the op's device id.
    InvalidHlc,
    /// The op is malformed.
    InvalidOp,
    /// The hlc is too far ahead of server time; re-stamp and retry.
    ClockSkew,
}

impl RejectCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [RejectCode] = &[
        RejectCode::UnknownTable,
        RejectCode::InvalidPk,
        RejectCode::PayloadTooLarge,
        RejectCode::PkMismatch,
        RejectCode::InvalidHlc,
        RejectCode::InvalidOp,
        RejectCode::ClockSkew,
    ];

    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::UnknownTable => "unknown_table",
            RejectCode::InvalidPk => "invalid_pk",
            RejectCode::PayloadTooLarge => "payload_too_large",
            RejectCode::PkMismatch => "pk_mismatch",
            RejectCode::InvalidHlc => "invalid_hlc",
            RejectCode::InvalidOp => "invalid_op",
            RejectCode::ClockSkew => "clock_skew",
        }
    }

    /// Only a clock skew goes away by itself (after a re-stamp).
    pub fn is_retryable(self) -> bool {
        self == RejectCode::ClockSkew
    }
}

/// Why one op was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The reason code.
    pub code: RejectCode,
    /// A human-readable explanation.
    pub message: String,
    /// The op field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// True only for `clock_skew`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
}

impl Rejection {
    fn new(code: RejectCode, field: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
            field: Some(field),
            retryable: code.is_retryable(),
        }
    }

    /// The rejection of a table this server does not sync, naming the fix:
    /// the server decides which tables sync (`--tables`), not the client.
    pub fn unknown_table(table: &str) -> Rejection {
        Rejection::new(
            RejectCode::UnknownTable,
            "table_name",
            format!(
                "table `{table}` is not synced by this server: add it to --tables \
                 (`{table}:field` names its key field, `id` by default)"
            ),
        )
    }
}

/// `put` or `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Create or replace the row.
    Put,
    /// Delete the row (leaves a tombstone).
    Delete,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Put => "put",
            Operation::Delete => "delete",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Operation> {
        match text {
            "put" => Some(Operation::Put),
            "delete" => Some(Operation::Delete),
            _ => None,
        }
    }
}

/// The synced tables and the name of each one's primary key field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    tables: BTreeMap<String, String>,
}

/// OR3 Chat's tables, as a `--tables` list.
pub const OR3_CHAT_TABLES: &str = "threads,messages,projects,posts,kv,file_meta,notifications";

impl TableConfig {
    /// OR3 Chat's tables: `file_meta` is keyed by `hash`, the rest by `id`.
    pub fn or3_chat() -> TableConfig {
        TableConfig::from_names(OR3_CHAT_TABLES.split(','))
    }

    /// Tables from a list of names; `file_meta` is keyed by `hash`, any other by `id`,
    /// and `name:field` names the pk field explicitly.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> TableConfig {
        let tables = names
            .into_iter()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|name| match name.split_once(':') {
                Some((table, field)) => (table.to_owned(), field.to_owned()),
                None if name == "file_meta" => (name.to_owned(), "hash".to_owned()),
                None => (name.to_owned(), "id".to_owned()),
            })
            .collect();
        TableConfig { tables }
    }

    /// Tables from explicit `(table, pk field)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> TableConfig {
        TableConfig {
            tables: pairs.into_iter().collect(),
        }
    }

    /// The pk field of a table, or `None` when the table is not synced.
    pub fn pk_field(&self, table: &str) -> Option<&str> {
        self.tables.get(table).map(String::as_str)
    }

    /// Every synced table name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Every synced table with its pk field, by name.
    pub fn pk_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tables.iter().map(|(t, f)| (t.as_str(), f.as_str()))
    }
}

/// `name:field` for every table, comma-separated: the `--tables` list that
/// declares exactly this configuration.
impl std::fmt::Display for TableConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (table, field)) in self.pk_fields().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{table}:{field}")?;
        }
        Ok(())
    }
}

/// Limits applied to every op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Largest payload, in bytes of compact JSON.
    pub max_payload_bytes: usize,
    /// How far an hlc may be ahead of server time.
    pub max_clock_skew_ms: u64,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits {
            max_payload_bytes: 1 << 20,
            max_clock_skew_ms: 5 * 60 * 1000,
        }
    }
}

/// An op that passed every check. Only these reach a store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOp {
    /// Idempotency key.
    pub op_id: OpId,
    /// Synced table.
    pub table_name: String,
    /// Put or delete.
    pub operation: Operation,
    /// Record key.
    pub pk: String,
    /// The row as sent (absent for a bare delete).
    pub payload: Option<Map<String, Value>>,
    /// New per-record clock.
    pub clock: u64,
    /// The write's HLC.
    pub hlc: Hlc,
    /// The writing device.
    pub device_id: DeviceId,
}

impl ValidOp {
    /// A delete, or a put whose payload says `deleted: true`, makes a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.operation == Operation::Delete
            || self
                .payload
                .as_ref()
                .and_then(|p| p.get("deleted"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }

    /// The op's LWW stamp.
    pub fn stamp(&self) -> crate::Stamp {
        crate::Stamp {
            clock: self.clock,
            hlc: self.hlc.to_string(),
            op_id: self.op_id.as_str().to_owned(),
        }
    }
}

const OP_FIELDS: [&str; 8] = [
    "op_id",
    "table_name",
    "operation",
    "pk",
    "payload",
    "clock",
    "hlc",
    "device_id",
];

/// The `op_id` of a raw op, for reporting a result even when the op is invalid.
pub fn raw_op_id(raw: &Value) -> String {
    raw.get("op_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Validates one raw op against the tables, the limits and the server's time.
pub fn validate_op(
    raw: &Value,
    tables: &TableConfig,
    limits: &ValidationLimits,
    now_ms: u64,
) -> Result<ValidOp, Rejection> {
    let invalid = |field: &'static str, message: &str| {
        Rejection::new(RejectCode::InvalidOp, field, message.to_owned())
    };
    let obj = raw
        .as_object()
        .ok_or_else(|| invalid("op", "an op must be a JSON object"))?;
    if let Some(extra) = obj.keys().find(|k| !OP_FIELDS.contains(&k.as_str())) {
        return Err(Rejection::new(
            RejectCode::InvalidOp,
            "op",
            format!("unknown op field `{extra}`"),
        ));
    }
    let text = |field: &'static str| -> Result<&str, Rejection> {
        obj.get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(field, &format!("`{field}` must be a string")))
    };
    let op_id =
        OpId::parse(text("op_id")?).ok_or_else(|| invalid("op_id", "`op_id` must be a UUID"))?;
    let table_name = text("table_name")?;
    let operation = match text("operation")? {
        "put" => Operation::Put,
        "delete" => Operation::Delete,
        _ => {
            return Err(invalid(
                "operation",
                "`operation` must be `put` or `delete`",
            ))
        }
    };
    let pk = text("pk")?;
    let clock = obj
        .get("clock")
        .and_then(as_safe_integer)
        .ok_or_else(|| invalid("clock", "`clock` must be an integer from 0 to 2^53-1"))?;
    let hlc_text = text("hlc")?;
    let device_id = DeviceId::parse(text("device_id")?).ok_or_else(|| {
        invalid(
            "device_id",
            "`device_id` must be 16 to 64 lowercase hex characters",
        )
    })?;

    let pk_field = tables
        .pk_field(table_name)
        .ok_or_else(|| Rejection::unknown_table(table_name))?;
    check_pk(pk)?;
    let hlc = Hlc::parse(hlc_text)
        .ok()
        .filter(|h| h.device_id() == device_id.as_str())
        .ok_or_else(|| {
            Rejection::new(
                RejectCode::InvalidHlc,
                "hlc",
                "`hlc` must be <13 digits>-<6 digits>-<device_id> with the op's device_id",
            )
        })?;
    let payload = match (operation, obj.get("payload")) {
        (_, Some(Value::Object(map))) => Some(map),
        (Operation::Delete, None | Some(Value::Null)) => None,
        (Operation::Put, _) => return Err(invalid("payload", "a put needs an object payload")),
        (Operation::Delete, _) => {
            return Err(invalid(
                "payload",
                "a delete's payload must be an object or null",
            ))
        }
    };
    if let Some(map) = payload {
        if map.get(pk_field).and_then(Value::as_str) != Some(pk) {
            return Err(Rejection::new(
                RejectCode::PkMismatch,
                "payload",
                format!(
                    "payload.{pk_field} must be a string equal to pk: this server keys \
                     `{table_name}` by `{pk_field}`; if the app keys it by another field, \
                     declare that on the server with --tables {table_name}:field"
                ),
            ));
        }
        let size = json_size(map);
        if size > limits.max_payload_bytes {
            return Err(Rejection::new(
                RejectCode::PayloadTooLarge,
                "payload",
                format!(
                    "payload is {size} bytes; the limit is {}",
                    limits.max_payload_bytes
                ),
            ));
        }
    }
    if hlc.ms() > now_ms.saturating_add(limits.max_clock_skew_ms) {
        return Err(Rejection::new(
            RejectCode::ClockSkew,
            "hlc",
            format!(
                "hlc is more than {} ms ahead of server time {now_ms}",
                limits.max_clock_skew_ms
            ),
        ));
    }
    Ok(ValidOp {
        op_id,
        table_name: table_name.to_owned(),
        operation,
        pk: pk.to_owned(),
        payload: payload.cloned(),
        clock,
        hlc,
        device_id,
    })
}

/// A JSON number that is a whole number from 0 to 2^53-1 (`3.0` counts, as in JavaScript).
fn as_safe_integer(value: &Value) -> Option<u64> {
    let n = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_SAFE_INTEGER as f64)
            .map(|f| f as u64)
    })?;
    (n <= MAX_SAFE_INTEGER).then_some(n)
}

/// Checks a record key: 1 to 256 characters, none of them a control character.
pub fn check_pk(pk: &str) -> Result<(), Rejection> {
    let chars = pk.chars().count();
    if chars == 0 || chars > 256 || pk.chars().any(char::is_control) {
        return Err(Rejection::new(
            RejectCode::InvalidPk,
            "pk",
            "pk must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

/// Byte length of a value as compact JSON.
pub fn json_size(map: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing a `Map` into a counting writer cannot fail.
    let _ = serde_json::to_writer(&mut counter, map);
    counter.0
}
