//! Hybrid logical clocks: the `"<ms:13>-<counter:6>-<device_id>"` stamps and
//! the send/receive rules of PROTOCOL.md section 2.

use std::cmp::Ordering;
use std::fmt;

/// How far ahead of local time a received clock may be before it is ignored.
pub const MAX_DRIFT_MS: u64 = 60_000;
/// The largest counter a stamp can carry (six decimal digits).
pub const MAX_COUNTER: u32 = 999_999;
const MAX_MS: u64 = 9_999_999_999_999;

/// A parsed HLC stamp. Its textual form orders bytewise exactly as
/// `(ms, counter, device_id)` does, because every part is fixed-width.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hlc {
    ms: u64,
    counter: u32,
    device_id: String,
}

/// Why a string is not an HLC stamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hlc must look like <13 digits>-<6 digits>-<16 to 64 lowercase hex>")]
pub struct HlcParseError;

impl Hlc {
    /// Builds a stamp; `None` when a part does not fit the fixed-width format.
    pub fn new(ms: u64, counter: u32, device_id: &str) -> Option<Hlc> {
        if ms > MAX_MS || counter > MAX_COUNTER || !is_device_id(device_id) {
            return None;
        }
        Some(Hlc {
            ms,
            counter,
            device_id: device_id.to_owned(),
        })
    }

    /// Parses the textual form strictly: no whitespace, sign, uppercase or extra parts.
    pub fn parse(text: &str) -> Result<Hlc, HlcParseError> {
        let bytes = text.as_bytes();
        if bytes.len() < 13 + 1 + 6 + 1 + 16 || bytes[13] != b'-' || bytes[20] != b'-' {
            return Err(HlcParseError);
        }
        let ms = parse_digits(&bytes[..13]).ok_or(HlcParseError)?;
        let counter = parse_digits(&bytes[14..20]).ok_or(HlcParseError)? as u32;
        let device_id = &text[21..];
        if !is_device_id(device_id) {
            return Err(HlcParseError);
        }
        Ok(Hlc {
            ms,
            counter,
            device_id: device_id.to_owned(),
        })
    }

    /// Wall-clock milliseconds part.
    pub fn ms(&self) -> u64 {
        self.ms
    }

    /// Logical counter part.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The device that produced the stamp.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}-{:06}-{}", self.ms, self.counter, self.device_id)
    }
}

impl Ord for Hlc {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ms, self.counter, self.device_id.as_bytes()).cmp(&(
            other.ms,
            other.counter,
            other.device_id.as_bytes(),
        ))
    }
}

impl PartialOrd for Hlc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// True for a device id: 16 to 64 lowercase hex characters.
pub fn is_device_id(text: &str) -> bool {
    (16..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn parse_digits(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// The clock state a device keeps: `(ms, counter)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HlcState {
    /// Milliseconds part of the latest stamp.
    pub ms: u64,
    /// Counter part of the latest stamp.
    pub counter: u32,
}

impl HlcState {
    /// Advances the clock for a local write at wall time `now` (ms, offset applied).
    pub fn send(self, now: u64) -> HlcState {
        if now > self.ms {
            HlcState {
                ms: now,
                counter: 0,
            }
        } else {
            bump(self.ms, u64::from(self.counter) + 1)
        }
    }

    /// Merges a remote stamp seen at wall time `now`. A remote clock more than
    /// [`MAX_DRIFT_MS`] ahead of `now` is ignored, so one bad clock cannot drag
    /// every device into the future.
    pub fn receive(self, remote: HlcState, now: u64) -> HlcState {
        if remote.ms > now.saturating_add(MAX_DRIFT_MS) {
            return self;
        }
        let m = self.ms.max(remote.ms).max(now);
        let (local, rc) = (u64::from(self.counter), u64::from(remote.counter));
        let counter = if m == self.ms && m == remote.ms {
            local.max(rc) + 1
        } else if m == self.ms {
            local + 1
        } else if m == remote.ms {
            rc + 1
        } else {
            0
        };
        bump(m, counter)
    }
}

fn bump(ms: u64, counter: u64) -> HlcState {
    if counter > u64::from(MAX_COUNTER) {
        HlcState {
            ms: ms + 1,
            counter: 0,
        }
    } else {
        HlcState {
            ms,
            counter: counter as u32,
        }
    }
}

impl From<&Hlc> for HlcState {
    fn from(hlc: &Hlc) -> Self {
        HlcState {
            ms: hlc.ms,
            counter: hlc.counter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_round_trips() {
        let h = Hlc::new(1_732_540_000_000, 3, "9f2c4e1ab37d5e60").unwrap();
        assert_eq!(h.to_string(), "1732540000000-000003-9f2c4e1ab37d5e60");
        assert_eq!(Hlc::parse(&h.to_string()).unwrap(), h);
    }

    #[test]
    fn multibyte_text_never_panics() {
        assert!(Hlc::parse("1732540000000-00000é-9f2c4e1ab37d5e60").is_err());
        assert!(Hlc::parse("173254000000é-000003-9f2c4e1ab37d5e60").is_err());
    }
}
