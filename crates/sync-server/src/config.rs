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
    /// Requests per minute per user and class, and per IP without a token.
    pub rate_limits: crate::rate_limit::RateLimitConfig,
    /// Most open TCP connections (subscriptions included).
    pub max_connections: usize,
    /// Most concurrent subscriptions per user (WebSocket and SSE).
    pub max_subscriptions_per_user: usize,
    /// Origins allowed to call the API from a browser (CORS); none = same origin only.
    pub allowed_origins: Vec<String>,
    /// Take workspace membership from Clerk organization claims.
    pub membership_from_claims: bool,
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
            rate_limits: crate::rate_limit::RateLimitConfig::default(),
            max_subscriptions_per_user: 32,
            max_connections: 10_000,
            allowed_origins: Vec::new(),
            membership_from_claims: false,
        }
    }
}
