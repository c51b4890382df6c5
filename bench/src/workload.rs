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
    /// A random UUID v4, as the client makes them.
    pub op_id: String,
    /// Record key (`id` of the row), a random UUID v4 like OR3 Chat's.
    pub pk: String,
    /// The thread the message belongs to.
    pub thread_id: String,
    /// The op's hlc.
    pub hlc: String,
    /// The row as compact JSON.
    pub payload: String,
    /// The device that made the op (the suffix of its hlc).
    pub device_id: String,
}

impl MessageOp {
    /// The op as a push request's JSON element.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"op_id":"{}","table_name":"messages","operation":"put","pk":"{}","payload":{},"clock":1,"hlc":"{}","device_id":"{}"}}"#,
            self.op_id, self.pk, self.payload, self.hlc, self.device_id
        )
    }
}

/// The body of a push of `ops`.
pub fn push_body(ops: &[MessageOp]) -> String {
    let items: Vec<String> = ops.iter().map(MessageOp::to_json).collect();
    format!(r#"{{"ops":[{}]}}"#, items.join(","))
}

/// Messages this many to a thread.
const MESSAGES_PER_THREAD: u64 = 100;

/// Makes message ops: random ids (so the server's indexes see the random
/// inserts real clients cause), 100 messages to a thread, rising hlcs.
#[derive(Clone)]
pub struct OpFactory {
    random: u64,
    next: u64,
    hlc_ms: u64,
    thread_id: String,
    device_id: String,
}

impl Default for OpFactory {
    fn default() -> Self {
        OpFactory::new()
    }
}

impl OpFactory {
    /// A factory of [`DEVICE_ID`]'s ops whose hlcs start at the current wall time.
    pub fn new() -> OpFactory {
        OpFactory::for_device(DEVICE_ID)
    }

    /// A factory of `device_id`'s ops (16 to 64 lowercase hex characters),
    /// each factory with ids of its own.
    pub fn for_device(device_id: &str) -> OpFactory {
        static FACTORIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = FACTORIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = now_us()
            ^ epoch_ms().rotate_left(20)
            ^ u64::from(std::process::id()) << 40
            ^ nth.wrapping_mul(0xd6e8_feb8_6659_fd93);
        OpFactory {
            random: seed,
            next: 0,
            hlc_ms: epoch_ms(),
            thread_id: String::new(),
            device_id: device_id.to_owned(),
        }
    }

    /// The next message op; `extra` is appended to the row's fields
    /// (e.g. `,"sent_us":123`).
    pub fn message(&mut self, extra: &str) -> MessageOp {
        let n = self.next;
        self.next += 1;
        if n.is_multiple_of(MESSAGES_PER_THREAD) {
            self.thread_id = self.uuid();
        }
        let hlc = format!(
            "{:013}-{:06}-{}",
            self.hlc_ms + n / 1_000_000,
            n % 1_000_000,
            self.device_id
        );
        let pk = self.uuid();
        let payload = message_row(&pk, &self.thread_id, n, &hlc, self.hlc_ms / 1000, extra);
        MessageOp {
            op_id: self.uuid(),
            pk,
            thread_id: self.thread_id.clone(),
            hlc,
            payload,
            device_id: self.device_id.clone(),
        }
    }

    /// Writes the next message op over `request`'s: the op [`OpFactory::message`]
    /// would make (`extra` empty), with the same ids, hlc and thread, and its
    /// `index` padded to two characters with a space, without allocating.
    pub fn message_into(&mut self, request: &mut SinglePushRequest) {
        let n = self.next;
        self.next += 1;
        let bytes = &mut request.bytes;
        if n.is_multiple_of(MESSAGES_PER_THREAD) {
            let at = request.thread_id;
            bytes[at..at + UUID_LEN].copy_from_slice(&self.uuid_bytes());
        }
        for at in request.hlc {
            write_decimal(&mut bytes[at..at + 13], self.hlc_ms + n / 1_000_000);
            write_decimal(&mut bytes[at + 14..at + 20], n % 1_000_000);
        }
        let pk = self.uuid_bytes();
        for at in request.pk {
            bytes[at..at + UUID_LEN].copy_from_slice(&pk);
        }
        let index = n % MESSAGES_PER_THREAD;
        write_decimal(&mut bytes[request.index..request.index + 2], index);
        if index < 10 {
            bytes[request.index] = b' ';
        }
        let op_id = self.uuid_bytes();
        bytes[request.op_id..request.op_id + UUID_LEN].copy_from_slice(&op_id);
    }

    /// A random UUID v4 (splitmix64; ids need to be unique, not secret).
    fn uuid(&mut self) -> String {
        let bytes = self.uuid_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// [`OpFactory::uuid`]'s text as bytes.
    fn uuid_bytes(&mut self) -> [u8; UUID_LEN] {
        let (a, b) = (self.next_random(), self.next_random());
        let a = (a & !0xf000) | 0x4000; // version 4
        let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        let mut out = [b'-'; UUID_LEN];
        write_hex(&mut out[0..8], a >> 32);
        write_hex(&mut out[9..13], a >> 16);
        write_hex(&mut out[14..18], a);
        write_hex(&mut out[19..23], b >> 48);
        write_hex(&mut out[24..36], b);
        out
    }

    fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Characters of a UUID's text.
const UUID_LEN: usize = 36;

/// Writes the low `out.len()` hex digits of `value` (lowercase).
fn write_hex(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// Writes `value` in decimal, zero-padded to `out.len()` digits (its low ones).
fn write_decimal(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// A whole request (head and body) pushing one message op, made once per
/// device and rewritten in place for each op by [`OpFactory::message_into`]:
/// every field that changes from one op to the next has a fixed width, so
/// the next request is the same bytes with new ids, hlc and index, and the
/// load pays no JSON building or allocation per push.
pub struct SinglePushRequest {
    bytes: Vec<u8>,
    op_id: usize,
    pk: [usize; 2],
    thread_id: usize,
    hlc: [usize; 3],
    index: usize,
}

impl SinglePushRequest {
    /// The request of `factory`'s next ops: `head` makes the request's head
    /// from the body's length; the body is [`push_body`] of one message.
    /// Fill it with `factory.message_into` before each send.
    pub fn new(factory: &OpFactory, head: impl FnOnce(usize) -> Vec<u8>) -> SinglePushRequest {
        let placeholder = |c: char| c.to_string().repeat(UUID_LEN);
        let (op_id, pk) = (placeholder('O'), placeholder('P'));
        // A factory part way through a thread goes on with it.
        let thread_id = if factory.thread_id.is_empty() {
            placeholder('T')
        } else {
            factory.thread_id.clone()
        };
        let device_id = &factory.device_id;
        let hlc = format!("HHHHHHHHHHHHH-HHHHHH-{device_id}");
        // An index of two digits, a marker no other field holds.
        let payload = message_row(&pk, &thread_id, 10, &hlc, factory.hlc_ms / 1000, "");
        let body = push_body(&[MessageOp {
            op_id: op_id.clone(),
            pk: pk.clone(),
            thread_id: thread_id.clone(),
            hlc: hlc.clone(),
            payload,
            device_id: device_id.clone(),
        }]);
        let mut bytes = head(body.len());
        let start = bytes.len();
        bytes.extend_from_slice(body.as_bytes());
        let places = |needle: &str| -> Vec<usize> {
            body.match_indices(needle)
                .map(|(at, _)| start + at)
                .collect()
        };
        let [index] = places(r#""index":10,"#)
            .try_into()
            .expect("the index is in the row once");
        let [op_id] = places(&op_id)
            .try_into()
            .expect("the op id is in the op once");
        let [thread_id] = places(&thread_id)
            .try_into()
            .expect("the thread is in the row once");
        SinglePushRequest {
            op_id,
            pk: places(&pk)
                .try_into()
                .expect("the pk is in the op and its row"),
            thread_id,
            hlc: places(&hlc)
                .try_into()
                .expect("the hlc is in the op and twice in its row"),
            index: index + r#""index":"#.len(),
            bytes,
        }
    }

    /// The request as it stands.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The current op's id.
    pub fn op_id(&self) -> &[u8] {
        &self.bytes[self.op_id..self.op_id + UUID_LEN]
    }
}

/// A message row as OR3 Chat stores it, about 500 bytes of JSON.
pub fn message_row(
    pk: &str,
    thread_id: &str,
    n: u64,
    hlc: &str,
    created_secs: u64,
    extra: &str,
) -> String {
    format!(
        r#"{{"id":"{pk}","thread_id":"{thread_id}","role":"user","content":"{CONTENT}","index":{},"order_key":"{hlc}","created_at":{created_secs},"updated_at":{created_secs},"clock":1,"hlc":"{hlc}","deleted":false,"deleted_at":null{extra}}}"#,
        n % MESSAGES_PER_THREAD
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
        for id in [&list[0]["op_id"], &list[0]["pk"]] {
            let id = id.as_str().unwrap();
            assert_eq!((id.len(), &id[14..15]), (36, "4"), "{id} is a UUID v4");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        }
    }

    #[test]
    fn a_rewritten_request_holds_the_op_the_factory_would_make() {
        let mut factory = OpFactory::new();
        let mut twin = factory.clone();
        let mut request =
            SinglePushRequest::new(&factory, |len| format!("HEAD {len}\r\n\r\n").into_bytes());
        // Past the first thread of 100 messages, into the next.
        for _ in 0..150 {
            factory.message_into(&mut request);
            let expected = twin.message("");
            let text = std::str::from_utf8(request.bytes()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert_eq!(head, format!("HEAD {}", body.len()));
            let sent: serde_json::Value = serde_json::from_str(body).unwrap();
            let made: serde_json::Value =
                serde_json::from_str(&push_body(std::slice::from_ref(&expected))).unwrap();
            assert_eq!(sent, made);
            assert_eq!(request.op_id(), expected.op_id.as_bytes());
        }
    }
}
