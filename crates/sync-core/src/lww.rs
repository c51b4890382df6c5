//! Last-writer-wins: the greater `(clock, hlc, op_id)` wins, compared as
//! (integer, bytes, bytes). Tombstones follow the same rule as puts.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// The part of a record version that decides conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Per-record version counter.
    pub clock: u64,
    /// HLC of the write.
    pub hlc: String,
    /// Op id of the write.
    pub op_id: String,
}

impl Stamp {
    /// Compares two versions of a record. `Equal` means the same write.
    pub fn compare(&self, other: &Stamp) -> Ordering {
        self.clock
            .cmp(&other.clock)
            .then_with(|| self.hlc.as_bytes().cmp(other.hlc.as_bytes()))
            .then_with(|| self.op_id.as_bytes().cmp(other.op_id.as_bytes()))
    }

    /// True when `self` strictly beats `other` and should replace it.
    pub fn beats(&self, other: &Stamp) -> bool {
        self.compare(other) == Ordering::Greater
    }
}
