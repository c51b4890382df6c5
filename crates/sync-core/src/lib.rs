//! The or3-sync rules, without I/O.
//!
//! Everything here takes values and returns values: the wire types of the
//! protocol, hybrid logical clocks, last-writer-wins comparison, op validation,
//! project scope, the push decision and retention math. The server, the stores and the tests build
//! on these; nothing here knows about HTTP, SQL or time sources.

pub mod commit;
pub mod hlc;
pub mod ids;
pub mod lww;
pub mod position;
pub mod push;
pub mod retention;
pub mod scope;
pub mod validate;
pub mod wire;

pub use hlc::{Hlc, HlcState, MAX_DRIFT_MS};
pub use ids::{DeviceId, OpId, Role, ServerVersion, WorkspaceId};
pub use lww::Stamp;
pub use validate::{RejectCode, Rejection, TableConfig, ValidOp, ValidationLimits};

/// The largest integer every implementation (JavaScript included) represents exactly.
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;
