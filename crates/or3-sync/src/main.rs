//! `or3-sync`: the gateway server and its operator commands.

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{
    Cli, Command, DatabaseArgs, DatabaseUrl, MemberCommand, RetentionArgs, ServeArgs,
    SqliteSynchronous, WorkspaceCommand,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use sync_core::retention::RetentionPolicy;
use sync_core::{Role, TableConfig, ValidationLimits, WorkspaceId};
use sync_server::auth::{Authenticator, DevIssuer, RemoteJwks, VerifyingKeys};
use sync_server::clock::{Clock, SystemClock};
use sync_server::config::{ServerConfig, Timeouts};
use sync_server::fanout::bus::{Bus, LocalBus};
use sync_server::fanout::pg_bus::PgBus;
use sync_server::state::AppState;
use sync_server::store::postgres::{DatabaseUrl as PgUrl, PgOptions, PostgresStore};
use sync_server::store::sqlite::{SqliteStore, Synchronous};
use sync_server::store::{Access, Store, StoreError};

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate { database } => {
            open_store(&database, TableConfig::or3_chat(), Opening::CreateIfMissing).await?;
            println!("migrations are up to date");
            Ok(())
        }
        Command::Gc {
            database,
            retention,
            dry_run,
            workspace,
            as_of_ms,
        } => {
            let policy = retention_policy(retention)?;
            let store = open_existing_store(database).await?;
            let only = match workspace {
                Some(w) => Some(WorkspaceId::parse(&w).context("invalid --workspace id")?),
                None => None,
            };
            let reports = sync_server::gc::collect_all(
                store.as_ref(),
                None,
                &policy,
                as_of_ms.unwrap_or_else(|| SystemClock.now_ms()),
                dry_run,
                only.as_ref(),
            )
            .await?;
            for report in reports {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(())
        }
        Command::Workspace(WorkspaceCommand::Create {
            database,
            name,
            owner,
            id,
        }) => {
            // A new deployment may create its first workspace before it
            // first serves: this command may create the database.
            let database = DatabaseArgs::defaults_for(database);
            let store = open_store(&database, TableConfig::or3_chat(), Opening::CreateIfMissing)
                .await?
                .store;
            let id = match id {
                Some(id) => WorkspaceId::parse(&id)
                    .context("--id must be 1 to 128 characters of A-Z, a-z, 0-9, _ and -")?,
                None => WorkspaceId::generate(),
            };
            let info = store
                .create_workspace(&id, &name, &owner, SystemClock.now_ms())
                .await?;
            println!("{}", serde_json::to_string(&info)?);
            Ok(())
        }
        Command::Member(MemberCommand::Set {
            database,
            workspace_id,
            user_id,
            role,
        }) => {
            let store = open_existing_store(database).await?;
            let ws = WorkspaceId::parse(&workspace_id).context("invalid workspace id")?;
            let role = Role::parse(&role).context("role must be owner, editor or viewer")?;
            store
                .set_member(&ws, &Access::Admin, &user_id, role)
                .await?;
            println!("{user_id} is now {} of {ws}", role.as_str());
            Ok(())
        }
        Command::Member(MemberCommand::Remove {
            database,
            workspace_id,
            user_id,
        }) => {
            let store = open_existing_store(database).await?;
            let ws = WorkspaceId::parse(&workspace_id).context("invalid workspace id")?;
            store.remove_member(&ws, &Access::Admin, &user_id).await?;
            println!("{user_id} removed from {ws}");
            Ok(())
        }
    }
}

const DAY_MS: f64 = 86_400_000.0;

/// The retention flags as a policy; `min_retention` below an hour is refused.
fn retention_policy(args: RetentionArgs) -> Result<RetentionPolicy> {
    let ms = |v: f64, unit: f64, flag: &str| -> Result<u64> {
        if !v.is_finite() || v < 0.0 {
            bail!("{flag} must be a non-negative number");
        }
        Ok((v * unit) as u64)
    };
    RetentionPolicy {
        device_ttl_ms: ms(args.device_ttl_days, DAY_MS, "--device-ttl-days")?,
        min_retention_ms: ms(
            args.min_retention_hours,
            DAY_MS / 24.0,
            "--min-retention-hours",
        )?,
        tombstone_retention_ms: ms(
            args.tombstone_retention_days,
            DAY_MS,
            "--tombstone-retention-days",
        )?,
    }
    .validated()
    .map_err(|e| anyhow::anyhow!("--min-retention-hours: {e}"))
}

/// What a `--database` URL names.
enum Database {
    /// `sqlite://PATH`, or a plain path.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, kept whole for the driver.
    Postgres(String),
}

impl Database {
    fn parse(url: &str) -> Result<Database> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if path.is_empty() {
            bail!("--database needs a file path, e.g. sqlite://./or3-sync.db");
        }
        Ok(Database::Sqlite(PathBuf::from(path)))
    }

    /// Where dev auth keeps its signing key: beside the SQLite file, or in
    /// the working directory for Postgres (nodes started in one directory
    /// share it, so a dev token works on each of them).
    fn dev_key_path(&self) -> PathBuf {
        match self {
            Database::Sqlite(path) => path.with_extension("devkey.pem"),
            Database::Postgres(_) => PathBuf::from("or3-sync.devkey.pem"),
        }
    }
}

/// An open store, and the Postgres store behind it when there is one (for
/// the bus between nodes).
struct OpenStore {
    store: Arc<dyn Store>,
    postgres: Option<PostgresStore>,
}

/// Whether opening a store may create it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// `serve` and `migrate`: a missing store is created.
    CreateIfMissing,
    /// A command that names what must already be there (a workspace, a log
    /// to collect): a missing SQLite file or Postgres schema is an error
    /// naming it, never a new empty store.
    Existing,
}

/// The store of a command that works on an existing one.
async fn open_existing_store(url: DatabaseUrl) -> Result<Arc<dyn Store>> {
    let database = DatabaseArgs::defaults_for(url);
    Ok(
        open_store(&database, TableConfig::or3_chat(), Opening::Existing)
            .await?
            .store,
    )
}

const NO_STORE_HINT: &str = "this command works on an existing one; name it with --database \
     (or OR3_SYNC_DATABASE), or create it with `or3-sync migrate`";

/// Opens the store `--database` names and runs its pending migrations.
async fn open_store(
    database: &DatabaseArgs,
    tables: TableConfig,
    opening: Opening,
) -> Result<OpenStore> {
    match Database::parse(&database.url.database)? {
        Database::Sqlite(path) => {
            if opening == Opening::Existing && !path.exists() {
                bail!("no database at {}: {NO_STORE_HINT}", path.display());
            }
            let synchronous = match database.sqlite_synchronous {
                SqliteSynchronous::Full => Synchronous::Full,
                SqliteSynchronous::Normal => Synchronous::Normal,
            };
            let store = SqliteStore::open_with(&path, tables, synchronous)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            tracing::info!(
                "SQLite database {} (WAL, synchronous={:?})",
                path.display(),
                database.sqlite_synchronous
            );
            Ok(OpenStore {
                store: Arc::new(store),
                postgres: None,
            })
        }
        Database::Postgres(url) => {
            let options = PgOptions {
                pool_size: database.pg_pool_size,
                statement_timeout: Duration::from_millis(database.pg_statement_timeout_ms),
            };
            let wait = Duration::from_secs(database.pg_connect_wait_secs);
            let store = connect_postgres(&url, tables, options, wait, opening).await?;
            Ok(OpenStore {
                store: Arc::new(store.clone()),
                postgres: Some(store),
            })
        }
    }
}

/// Connects to Postgres, retrying with backoff while it cannot be reached
/// (`Unavailable`), for at most `wait`; any other error ends it at once.
async fn connect_postgres(
    url: &str,
    tables: TableConfig,
    options: PgOptions,
    wait: Duration,
    opening: Opening,
) -> Result<PostgresStore> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    for attempt in 1.. {
        let connected = match opening {
            Opening::CreateIfMissing => PostgresStore::connect(url, tables.clone(), options)
                .await
                .map(Some),
            Opening::Existing => {
                PostgresStore::connect_existing(url, tables.clone(), options).await
            }
        };
        match connected {
            Ok(Some(store)) => return Ok(store),
            Ok(None) => {
                let place = match PgUrl::parse(url)?.schema {
                    Some(schema) => format!("schema {schema}"),
                    None => "the connection's search_path".to_string(),
                };
                bail!("no or3-sync database in {place} of the Postgres database: {NO_STORE_HINT}")
            }
            Err(StoreError::Unavailable(why)) if started.elapsed() + delay <= wait => {
                tracing::warn!(
                    "Postgres cannot be reached yet (attempt {attempt}): {why}; retrying in {} ms \
                     (--pg-connect-wait-secs {})",
                    delay.as_millis(),
                    wait.as_secs()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                let waited = started.elapsed().as_secs_f64();
                bail!("cannot open the Postgres database (after {attempt} attempts, {waited:.1} s): {e}")
            }
        }
    }
    unreachable!("the loop returns or bails")
}

async fn serve(args: ServeArgs) -> Result<()> {
    let policy = retention_policy(args.retention)?;
    let tables = TableConfig::from_names(args.tables.split(','));
    let database = Database::parse(&args.database.url.database)?;
    let opened = open_store(&args.database, tables.clone(), Opening::CreateIfMissing).await?;
    let listen: SocketAddr = args.listen.parse().context("--listen must be HOST:PORT")?;
    let (auth, dev_issuer) = match (&args.jwt_public_key, &args.jwks_file, &args.jwks_url) {
        (Some(pem), None, None) => (key_auth(VerifyingKeys::from_pem_file(pem), &args)?, None),
        (None, Some(jwks), None) => (key_auth(VerifyingKeys::from_jwks_file(jwks), &args)?, None),
        (None, None, Some(url)) => {
            let remote = Arc::new(
                RemoteJwks::new(url, std::time::Duration::from_secs(60))
                    .map_err(anyhow::Error::msg)?,
            );
            match remote.refresh().await {
                Ok(n) => tracing::info!(keys = n, "fetched the JWKS from {url}"),
                Err(e) => tracing::warn!("{e}; will retry when a token arrives"),
            }
            (key_auth(Ok(VerifyingKeys::Remote(remote)), &args)?, None)
        }
        (None, None, None) => {
            if !listen.ip().is_loopback() {
                bail!("dev auth (no --jwt-public-key or --jwks-file) only listens on loopback; {listen} is not");
            }
            let key_path = database.dev_key_path();
            let (issuer, verifier) = DevIssuer::load_or_create(Some(&key_path), "or3-sync-dev")
                .map_err(anyhow::Error::msg)?;
            tracing::warn!(
                "DEV AUTH: no key configured; anyone on this machine can get a token from POST /v1/dev/token (key: {})",
                key_path.display()
            );
            (verifier, Some(issuer))
        }
        _ => bail!("use one of --jwt-public-key, --jwks-file and --jwks-url"),
    };
    let config = ServerConfig {
        tables,
        limits: ValidationLimits {
            max_payload_bytes: args.max_payload_bytes,
            max_clock_skew_ms: args.max_clock_skew_secs * 1000,
        },
        max_ops_per_push: args.max_ops_per_push,
        max_body_bytes: args.max_body_bytes,
        static_dir: args.static_dir.clone(),
        allowed_origins: args.allowed_origin.clone(),
        membership_from_claims: args.membership_from_claims,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        timeouts: Timeouts {
            first_byte: args.timeouts.first_byte_timeout_secs,
            header: args.timeouts.header_timeout_secs,
            body: args.timeouts.body_timeout_secs,
            min_body_bytes_per_sec: args.timeouts.min_body_bytes_per_sec,
            hello: args.timeouts.hello_timeout_secs,
            subscriber: args.timeouts.subscriber_timeout_secs,
            write_stall: args.timeouts.write_stall_timeout_secs,
        },
        max_subscriptions_per_user: args.max_subscriptions_per_user,
        rate_limits: sync_server::config::RateLimitConfig {
            push_per_minute: args.rate_push_per_minute,
            pull_per_minute: args.rate_pull_per_minute,
            subscribe_per_minute: args.rate_subscribe_per_minute,
            anonymous_per_minute: args.rate_anonymous_per_minute,
        },
        ..ServerConfig::default()
    };
    // Several nodes share a Postgres store: they announce commits to each
    // other over LISTEN/NOTIFY. One SQLite node needs no bus.
    let pg_bus = opened.postgres.as_ref().map(|pg| Arc::new(PgBus::new(pg)));
    let bus: Arc<dyn Bus> = match &pg_bus {
        Some(pg_bus) => pg_bus.clone(),
        None => Arc::new(LocalBus),
    };
    let mut state = AppState::new(opened.store, bus, auth, Arc::new(SystemClock), config);
    if let Some(pg_bus) = &pg_bus {
        pg_bus.listen(Arc::downgrade(&state.hub));
    }
    if let Some(issuer) = dev_issuer {
        state = state.with_dev_issuer(issuer);
    }
    if args.gc_interval_secs > 0 {
        sync_server::gc::spawn_periodic(
            state.store.clone(),
            state.positions.clone(),
            state.clock.clone(),
            policy,
            Duration::from_secs(args.gc_interval_secs),
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        "syncing tables (table:pk field): {} (change with --tables)",
        state.config.tables
    );
    tracing::info!("or3-sync listening on http://{local}");
    sync_server::serve::run(listener, state, sync_server::serve::shutdown_signal()).await?;
    tracing::info!("or3-sync stopped");
    Ok(())
}

fn key_auth(keys: Result<VerifyingKeys, String>, args: &ServeArgs) -> Result<Authenticator> {
    let keys = keys.map_err(anyhow::Error::msg)?;
    if args.jwt_issuer.is_none() {
        tracing::warn!("no --jwt-issuer: tokens from any issuer signed by the key are accepted");
    }
    Ok(Authenticator::new(
        keys,
        args.jwt_issuer.as_deref(),
        args.allowed_origin.clone(),
    ))
}
