//! The ops every benchmark pushes: OR3 Chat `messages` rows of a realistic
//! size, with unique op ids, and the clock that stamps send times.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The device every bench op comes from.
pub const DEVICE_ID: &str = "be0c0000000000a1";

/// About 200 characters of message text.
const CONTENT: &str = "The quick brown fox jumps over the lazy dog while the sync engine \
queues this message in its outbox, pushes it in a batch of one hundred, and the gateway \
orders it in the change log.";

/// Microseconds since the bench process started: the clock of send and
/// receive times (both are taken in this process).
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Wall time in epoch milliseconds.
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One `put` of a message row, in the shapes the push body and the raw
/// baseline need.
#[derive(Debug, Clone)]
pub struct MessageOp {
    /// UUID v4 form.
    pub op_id: String,
    /// Record key (`id` of the row).
    pub pk: String,
    /// The op's hlc.
    pub hlc: String,
    /// The row as compact JSON.
    pub payload: String,
}

impl MessageOp {
    /// The op as a push request's JSON element.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"op_id":"{}","table_name":"messages","operation":"put","pk":"{}","payload":{},"clock":1,"hlc":"{}","device_id":"{DEVICE_ID}"}}"#,
            self.op_id, self.pk, self.payload, self.hlc
        )
    }
}

/// The body of a push of `ops`.
pub fn push_body(ops: &[MessageOp]) -> String {
    let items: Vec<String> = ops.iter().map(MessageOp::to_json).collect();
    format!(r#"{{"ops":[{}]}}"#, items.join(","))
}

/// Makes message ops with ids unique across runs and servers.
pub struct OpFactory {
    run_tag: u32,
    next: u64,
    hlc_ms: u64,
}

impl Default for OpFactory {
    fn default() -> Self {
        OpFactory::new()
    }
}

impl OpFactory {
    /// A factory whose hlcs start at the current wall time.
    pub fn new() -> OpFactory {
        let ms = epoch_ms();
        OpFactory {
            run_tag: (ms as u32) ^ std::process::id().rotate_left(16),
            next: 0,
            hlc_ms: ms,
        }
    }

    /// The next message op; `extra` is appended to the row's fields
    /// (e.g. `,"sent_us":123`).
    pub fn message(&mut self, extra: &str) -> MessageOp {
        let n = self.next;
        self.next += 1;
        let hlc = format!(
            "{:013}-{:06}-{DEVICE_ID}",
            self.hlc_ms + n / 1_000_000,
            n % 1_000_000
        );
        let pk = format!("m{:08x}-{n}", self.run_tag);
        let created = self.hlc_ms / 1000;
        let payload = message_row(&pk, n, &hlc, created, extra);
        MessageOp {
            op_id: format!("{:08x}-0000-4000-8000-{n:012x}", self.run_tag),
            pk,
            hlc,
            payload,
        }
    }
}

/// A message row as OR3 Chat stores it, about 450 bytes of JSON.
pub fn message_row(pk: &str, n: u64, hlc: &str, created_secs: u64, extra: &str) -> String {
    format!(
        r#"{{"id":"{pk}","thread_id":"t{}","role":"user","content":"{CONTENT}","index":{n},"order_key":"{hlc}","created_at":{created_secs},"updated_at":{created_secs},"clock":1,"hlc":"{hlc}","deleted":false,"deleted_at":null{extra}}}"#,
        n / 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_valid_json_with_unique_ids() {
        let mut factory = OpFactory::new();
        let ops: Vec<MessageOp> = (0..3).map(|_| factory.message(r#","sent_us":5"#)).collect();
        let body: serde_json::Value = serde_json::from_str(&push_body(&ops)).unwrap();
        let list = body["ops"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0]["payload"]["id"], list[0]["pk"]);
        assert_eq!(list[0]["payload"]["sent_us"], 5);
        assert_ne!(list[0]["op_id"], list[1]["op_id"]);
        assert!(list[2]["hlc"].as_str().unwrap().ends_with(DEVICE_ID));
    }
}
