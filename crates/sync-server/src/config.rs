//! Server settings that the CLI fills in. Defaults are the protocol's.

use sync_core::{TableConfig, ValidationLimits};

/// Limits and behaviour of the HTTP API.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Synced tables.
    pub tables: TableConfig,
    /// Per-op limits (payload size, clock skew).
    pub limits: ValidationLimits,
    /// Most ops in one push.
    pub max_ops_per_push: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_depth: usize,
    /// Pull page size when the client names none.
    pub default_pull_limit: usize,
    /// Largest pull page.
    pub max_pull_limit: usize,
    /// Snapshot page size when the client names none.
    pub default_snapshot_limit: usize,
    /// Largest snapshot page.
    pub max_snapshot_limit: usize,
    /// Commits a subscriber may fall behind before it is poked.
    pub subscriber_queue: usize,
    /// A web app to serve at `/` (e.g. the demo's build), if any.
    pub static_dir: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tables: TableConfig::or3_chat(),
            limits: ValidationLimits::default(),
            max_ops_per_push: 500,
            max_body_bytes: 8 << 20,
            max_json_depth: 64,
            default_pull_limit: 500,
            max_pull_limit: 1000,
            default_snapshot_limit: 500,
            max_snapshot_limit: 1000,
            subscriber_queue: crate::realtime::hub::DEFAULT_QUEUE,
            static_dir: None,
        }
    }
}
