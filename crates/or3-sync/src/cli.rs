//! Command-line flags. Every flag can also be set as an `OR3_SYNC_*`
//! environment variable.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// or3-sync: the local-first sync gateway.
#[derive(Parser)]
#[command(name = "or3-sync", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway server. With none of --jwt-public-key, --jwks-file and
    /// --jwks-url it runs in dev-auth mode: on loopback only, it signs tokens
    /// itself for anyone who asks (`POST /v1/dev/token`), with a key kept
    /// beside the SQLite file (`./or3-sync.devkey.pem` by default).
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Purge the change log and old tombstone payloads (PROTOCOL.md section 5).
    Gc {
        #[command(flatten)]
        database: DatabaseUrl,
        #[command(flatten)]
        retention: RetentionArgs,
        /// Print what would be purged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this workspace.
        #[arg(long)]
        workspace: Option<String>,
        /// Judge ages as if it were this time (epoch ms), for rehearsing a
        /// policy or testing; default now.
        #[arg(long, hide = true)]
        as_of_ms: Option<u64>,
    },
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage workspace members.
    #[command(subcommand)]
    Member(MemberCommand),
}

/// The `--database` of every command. Operator commands (`gc`, `member`,
/// `workspace`) take only this, and the default Postgres settings.
#[derive(Args, Clone)]
pub struct DatabaseUrl {
    /// The database: sqlite://PATH (embedded, the default), or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME] shared by
    /// several nodes (`schema` is created when missing; default: the
    /// connection's search_path). `&sslmode=require` connects with TLS and
    /// verifies the server's certificate against the Mozilla roots, or the
    /// CA certificates of `&sslrootcert=PATH.pem`; without it, plain TCP.
    #[arg(
        long,
        env = "OR3_SYNC_DATABASE",
        default_value = "sqlite://./or3-sync.db"
    )]
    pub database: String,
}

/// The database flags of `serve` and `migrate`.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    #[command(flatten)]
    pub url: DatabaseUrl,
    /// SQLite only: `full` (default) fsyncs every commit before a push is
    /// acknowledged, so acknowledged writes survive a power loss; `normal`
    /// acknowledges once the commit is in the WAL file (it survives a crash of
    /// the server, kill -9 included, but the last commits may roll back after
    /// an OS crash or a power loss) and cuts push latency by the fsync.
    #[arg(long, env = "OR3_SYNC_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSynchronous::Full)]
    pub sqlite_synchronous: SqliteSynchronous,
    /// Postgres only: how long to wait, at start, for a Postgres that cannot
    /// be reached yet (still booting, a restarting container), retrying with
    /// backoff and logging each attempt, before giving up. 0: give up at once.
    #[arg(long, env = "OR3_SYNC_PG_CONNECT_WAIT_SECS", default_value_t = DatabaseArgs::PG_CONNECT_WAIT_SECS)]
    pub pg_connect_wait_secs: u64,
    /// Postgres only: most connections this process opens.
    #[arg(long, env = "OR3_SYNC_PG_POOL_SIZE", default_value_t = DatabaseArgs::PG_POOL_SIZE)]
    pub pg_pool_size: usize,
    /// Postgres only: longest a statement may run (lock waits included), and
    /// longest a request waits for a connection, in milliseconds. Past it the
    /// request gets 503 store_unavailable.
    #[arg(long, env = "OR3_SYNC_PG_STATEMENT_TIMEOUT_MS", default_value_t = DatabaseArgs::PG_STATEMENT_TIMEOUT_MS)]
    pub pg_statement_timeout_ms: u64,
}

impl DatabaseArgs {
    const PG_CONNECT_WAIT_SECS: u64 = 60;
    const PG_POOL_SIZE: usize = 16;
    const PG_STATEMENT_TIMEOUT_MS: u64 = 5000;

    /// `url` with every other setting at its default (operator commands).
    pub fn defaults_for(url: DatabaseUrl) -> DatabaseArgs {
        DatabaseArgs {
            url,
            sqlite_synchronous: SqliteSynchronous::Full,
            pg_connect_wait_secs: Self::PG_CONNECT_WAIT_SECS,
            pg_pool_size: Self::PG_POOL_SIZE,
            pg_statement_timeout_ms: Self::PG_STATEMENT_TIMEOUT_MS,
        }
    }
}

/// `--sqlite-synchronous`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// Fsync every commit.
    Full,
    /// Fsync at checkpoints.
    Normal,
}

#[derive(Args, Clone, Copy)]
pub struct RetentionArgs {
    /// A device not seen for this many days no longer holds back GC.
    #[arg(long, env = "OR3_SYNC_DEVICE_TTL_DAYS", default_value_t = 30.0)]
    pub device_ttl_days: f64,
    /// Log entries younger than this many hours always stay (at least 1).
    #[arg(long, env = "OR3_SYNC_MIN_RETENTION_HOURS", default_value_t = 168.0)]
    pub min_retention_hours: f64,
    /// Tombstones older than this many days lose their payload (never their stamp).
    #[arg(
        long,
        env = "OR3_SYNC_TOMBSTONE_RETENTION_DAYS",
        default_value_t = 30.0
    )]
    pub tombstone_retention_days: f64,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (the log names it).
    #[arg(long, env = "OR3_SYNC_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// RSA public key (PEM) that signs session tokens.
    #[arg(long, env = "OR3_SYNC_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file with the keys that sign session tokens (picked by kid).
    #[arg(long, env = "OR3_SYNC_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// URL of the JWKS that signs session tokens (Clerk: https://<domain>/.well-known/jwks.json);
    /// fetched at start and again when a token names an unknown kid (at most once a minute).
    #[arg(long, env = "OR3_SYNC_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Required `iss` of session tokens.
    #[arg(long, env = "OR3_SYNC_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// An origin allowed as a token's `azp` (repeatable).
    #[arg(long, env = "OR3_SYNC_ALLOWED_ORIGIN", value_delimiter = ',')]
    pub allowed_origin: Vec<String>,
    /// Take workspace membership from Clerk organization claims (`org_id`,
    /// `org_role`) instead of the member table.
    #[arg(long, env = "OR3_SYNC_MEMBERSHIP_FROM_CLAIMS")]
    pub membership_from_claims: bool,
    /// Pushes per user per minute (0: unlimited).
    #[arg(long, env = "OR3_SYNC_RATE_PUSH_PER_MINUTE", default_value_t = 600)]
    pub rate_push_per_minute: u32,
    /// Pulls and other reads per user per minute (0: unlimited).
    #[arg(long, env = "OR3_SYNC_RATE_PULL_PER_MINUTE", default_value_t = 1200)]
    pub rate_pull_per_minute: u32,
    /// Subscription connects per user per minute (0: unlimited).
    #[arg(long, env = "OR3_SYNC_RATE_SUBSCRIBE_PER_MINUTE", default_value_t = 60)]
    pub rate_subscribe_per_minute: u32,
    /// Requests without a valid token per client IP per minute (0: unlimited).
    #[arg(
        long,
        env = "OR3_SYNC_RATE_ANONYMOUS_PER_MINUTE",
        default_value_t = 120
    )]
    pub rate_anonymous_per_minute: u32,
    /// Most open connections.
    #[arg(long, env = "OR3_SYNC_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most open connections from one client IP address (0: no per-IP cap).
    /// Behind a reverse proxy every client has the proxy's address: set 0
    /// there, or a cap above what the proxy opens.
    #[arg(long, env = "OR3_SYNC_MAX_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub max_connections_per_ip: usize,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    /// Most open subscriptions per user.
    #[arg(
        long,
        env = "OR3_SYNC_MAX_SUBSCRIPTIONS_PER_USER",
        default_value_t = 32
    )]
    pub max_subscriptions_per_user: usize,
    /// Synced tables, comma-separated (`name` or `name:pk_field`; the pk
    /// field is `id`, `hash` for `file_meta`). Default: OR3 Chat's.
    #[arg(long, env = "OR3_SYNC_TABLES", default_value = sync_core::validate::OR3_CHAT_TABLES)]
    pub tables: String,
    /// Largest payload of one op, in bytes.
    #[arg(long, env = "OR3_SYNC_MAX_PAYLOAD_BYTES", default_value_t = 1 << 20)]
    pub max_payload_bytes: usize,
    /// Most ops in one push.
    #[arg(long, env = "OR3_SYNC_MAX_OPS_PER_PUSH", default_value_t = 500)]
    pub max_ops_per_push: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "OR3_SYNC_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Seconds between GC passes (0 turns periodic GC off).
    #[arg(long, env = "OR3_SYNC_GC_INTERVAL_SECS", default_value_t = 3600)]
    pub gc_interval_secs: u64,
    /// Serve the web app in this folder at `/` (e.g. packages/demo/dist).
    #[arg(long, env = "OR3_SYNC_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// How far ahead of server time an op's hlc may be, in seconds.
    #[arg(long, env = "OR3_SYNC_MAX_CLOCK_SKEW_SECS", default_value_t = 300)]
    pub max_clock_skew_secs: u64,
}

/// Deadlines for the stages of a connection a client controls, in seconds
/// (fractions allowed). A connection past one is closed and counted in
/// `/metrics` (`or3_connections_closed_total{reason}`).
#[derive(Args, Clone, Copy)]
pub struct TimeoutArgs {
    /// Longest wait for a new connection's first byte.
    #[arg(long, env = "OR3_SYNC_FIRST_BYTE_TIMEOUT_SECS", default_value = "5", value_parser = seconds)]
    pub first_byte_timeout_secs: Duration,
    /// Longest wait for a whole request head, counted from when the server
    /// starts waiting for it (accept, or the end of the previous response):
    /// so also the longest idle keep-alive between requests.
    #[arg(long, env = "OR3_SYNC_HEADER_TIMEOUT_SECS", default_value = "10", value_parser = seconds)]
    pub header_timeout_secs: Duration,
    /// How long a request body may take, plus one second per
    /// --min-body-bytes-per-sec bytes received; past it, 408 body_timeout.
    #[arg(long, env = "OR3_SYNC_BODY_TIMEOUT_SECS", default_value = "10", value_parser = seconds)]
    pub body_timeout_secs: Duration,
    /// The slowest steady upload never cut off, in bytes per second (0: the
    /// whole body within --body-timeout-secs).
    #[arg(long, env = "OR3_SYNC_MIN_BODY_BYTES_PER_SEC", default_value_t = 4096)]
    pub min_body_bytes_per_sec: u64,
    /// Longest wait for a WebSocket subscriber's first hello frame.
    #[arg(long, env = "OR3_SYNC_HELLO_TIMEOUT_SECS", default_value = "10", value_parser = seconds)]
    pub hello_timeout_secs: Duration,
    /// Longest a WebSocket subscriber may send nothing, pongs included; the
    /// server pings every third of it, so an honest client is never cut off.
    #[arg(long, env = "OR3_SYNC_SUBSCRIBER_TIMEOUT_SECS", default_value = "75", value_parser = seconds)]
    pub subscriber_timeout_secs: Duration,
    /// Longest the server waits, with no progress, for a client to read what
    /// it is sent (a response, a stream).
    #[arg(long, env = "OR3_SYNC_WRITE_STALL_TIMEOUT_SECS", default_value = "30", value_parser = seconds)]
    pub write_stall_timeout_secs: Duration,
}

/// A positive number of seconds, fractions allowed.
fn seconds(raw: &str) -> Result<Duration, String> {
    match raw.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!("`{raw}` is not a positive number of seconds")),
    }
}

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace with an owner.
    Create {
        #[command(flatten)]
        database: DatabaseUrl,
        /// Display name.
        #[arg(long)]
        name: String,
        /// User id (token `sub`) of the owner.
        #[arg(long)]
        owner: String,
        /// Workspace id (default: a new UUID).
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Add a member or change their role.
    Set {
        #[command(flatten)]
        database: DatabaseUrl,
        /// Workspace id.
        workspace_id: String,
        /// User id (token `sub`).
        user_id: String,
        /// owner, editor or viewer.
        role: String,
    },
    /// Remove a member.
    Remove {
        #[command(flatten)]
        database: DatabaseUrl,
        /// Workspace id.
        workspace_id: String,
        /// User id.
        user_id: String,
    },
}
