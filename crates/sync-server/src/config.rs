//! Server settings that the CLI fills in. Defaults are the protocol's.

use std::time::Duration;
use sync_core::{TableConfig, ValidationLimits};

/// Deadlines for each stage of a connection that a client controls, so a
/// stalled or silent client gives its connection slot back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept to the connection's first byte.
    pub first_byte: Duration,
    /// From when the server starts waiting for a request (accept, or the end
    /// of the previous response on a kept-alive connection) to the end of its
    /// head: so also the longest idle keep-alive.
    pub header: Duration,
    /// How long any request body may take; each `min_body_bytes_per_sec`
    /// bytes received extend it by a second.
    pub body: Duration,
    /// The slowest steady upload that is never cut off, in bytes per second
    /// (0: the body must arrive within `body`).
    pub min_body_bytes_per_sec: u64,
    /// From a WebSocket upgrade to the client's first `hello`.
    pub hello: Duration,
    /// Longest a WebSocket subscriber may stay silent (pongs count); the
    /// server pings every third of it.
    pub subscriber: Duration,
    /// Longest a write may wait for the client to read (a response, a
    /// stream's frames) without any progress.
    pub write_stall: Duration,
}

impl Timeouts {
    /// How often a quiet subscription is pinged: three times per
    /// `subscriber` deadline, so an honest client answers in time even when
    /// one ping is late.
    pub fn ping_interval(&self) -> Duration {
        (self.subscriber / 3).max(Duration::from_millis(100))
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            first_byte: Duration::from_secs(5),
            header: Duration::from_secs(10),
            body: Duration::from_secs(10),
            min_body_bytes_per_sec: 4096,
            hello: Duration::from_secs(10),
            subscriber: Duration::from_secs(75),
            write_stall: Duration::from_secs(30),
        }
    }
}

/// Requests per minute for each class; 0 turns a class's limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Pushes per user.
    pub push_per_minute: u32,
    /// Pulls, snapshots, record reads and other authenticated calls per user.
    pub pull_per_minute: u32,
    /// Subscription connects (WebSocket and SSE) per user.
    pub subscribe_per_minute: u32,
    /// Requests without a valid token, per client IP.
    pub anonymous_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            push_per_minute: 600,
            pull_per_minute: 1200,
            subscribe_per_minute: 60,
            anonymous_per_minute: 120,
        }
    }
}

impl RateLimitConfig {
    /// No limits at all.
    pub fn off() -> RateLimitConfig {
        RateLimitConfig {
            push_per_minute: 0,
            pull_per_minute: 0,
            subscribe_per_minute: 0,
            anonymous_per_minute: 0,
        }
    }
}

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
    pub rate_limits: RateLimitConfig,
    /// Most open TCP connections (subscriptions included).
    pub max_connections: usize,
    /// Most open TCP connections from one client IP (0: no per-IP cap).
    pub max_connections_per_ip: usize,
    /// Deadlines of the stages a client controls.
    pub timeouts: Timeouts,
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
            subscriber_queue: 256,
            static_dir: None,
            rate_limits: RateLimitConfig::default(),
            max_subscriptions_per_user: 32,
            max_connections: 10_000,
            max_connections_per_ip: 1000,
            timeouts: Timeouts::default(),
            allowed_origins: Vec::new(),
            membership_from_claims: false,
        }
    }
}
