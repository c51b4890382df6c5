//! The frames a subscriber sends, parsed from JSON text (the frames the
//! server sends are in [`crate::fanout::frames`]).

use serde::Deserialize;
use sync_core::ServerVersion;

/// A frame a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Start (or restart after a poke) from `cursor`.
    Hello {
        /// Highest version the client has applied.
        cursor: ServerVersion,
        /// The client's device id.
        device_id: Option<String>,
        /// Only this project's scoped records.
        #[serde(default)]
        project_id: Option<String>,
    },
    /// A refreshed token.
    Auth {
        /// The new bearer token.
        token: String,
    },
}
