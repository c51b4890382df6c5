//! `or3-sync`: the gateway server and its operator commands.

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command, DatabaseArgs, MemberCommand, RetentionArgs, ServeArgs, WorkspaceCommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use sync_core::retention::RetentionPolicy;
use sync_core::{Role, TableConfig, ValidationLimits, WorkspaceId};
use sync_server::app::AppState;
use sync_server::auth::{Authenticator, DevIssuer, VerifyingKeys};
use sync_server::clock::{Clock, SystemClock};
use sync_server::config::ServerConfig;
use sync_server::realtime::bus::LocalBus;
use sync_server::store::sqlite::SqliteStore;
use sync_server::store::{Access, Store};

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
        Command::Serve(args) => serve(args).await,
        Command::Migrate { database } => {
            open_store(&database, TableConfig::or3_chat())?;
            println!("migrations are up to date ({})", database.database);
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
            let store = open_store(&database, TableConfig::or3_chat())?;
            let only = match workspace {
                Some(w) => Some(WorkspaceId::parse(&w).context("invalid --workspace id")?),
                None => None,
            };
            let reports = sync_server::gc::collect_all(
                &store,
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
            let store = open_store(&database, TableConfig::or3_chat())?;
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
            let store = open_store(&database, TableConfig::or3_chat())?;
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
            let store = open_store(&database, TableConfig::or3_chat())?;
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

/// Where a `sqlite://` URL (or a plain path) points.
fn sqlite_path(url: &str) -> Result<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        bail!("Postgres is not supported by this build yet; use sqlite://PATH");
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if path.is_empty() {
        bail!("--database needs a file path, e.g. sqlite://./or3-sync.db");
    }
    Ok(PathBuf::from(path))
}

fn open_store(database: &DatabaseArgs, tables: TableConfig) -> Result<SqliteStore> {
    let path = sqlite_path(&database.database)?;
    SqliteStore::open(&path, tables)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let policy = retention_policy(args.retention)?;
    let tables = match &args.tables {
        Some(list) => TableConfig::from_names(list.split(',')),
        None => TableConfig::or3_chat(),
    };
    let store = open_store(&args.database, tables.clone())?;
    let listen: SocketAddr = args.listen.parse().context("--listen must be HOST:PORT")?;
    let (auth, dev_issuer) = match (&args.jwt_public_key, &args.jwks_file) {
        (Some(_), Some(_)) => bail!("use one of --jwt-public-key and --jwks-file, not both"),
        (Some(pem), None) => (key_auth(VerifyingKeys::from_pem_file(pem), &args)?, None),
        (None, Some(jwks)) => (key_auth(VerifyingKeys::from_jwks_file(jwks), &args)?, None),
        (None, None) => {
            if !listen.ip().is_loopback() {
                bail!("dev auth (no --jwt-public-key or --jwks-file) only listens on loopback; {listen} is not");
            }
            let key_path = sqlite_path(&args.database.database)?.with_extension("devkey.pem");
            let (issuer, verifier) = DevIssuer::load_or_create(Some(&key_path), "or3-sync-dev")
                .map_err(anyhow::Error::msg)?;
            tracing::warn!(
                "DEV AUTH: no key configured; anyone on this machine can get a token from POST /v1/dev/token (key: {})",
                key_path.display()
            );
            (verifier, Some(issuer))
        }
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
        ..ServerConfig::default()
    };
    let mut state = AppState::new(
        Arc::new(store) as Arc<dyn Store>,
        Arc::new(LocalBus),
        auth,
        Arc::new(SystemClock),
        config,
    );
    if let Some(issuer) = dev_issuer {
        state = state.with_dev_issuer(issuer);
    }
    if args.gc_interval_secs > 0 {
        sync_server::gc::spawn_periodic(
            state.store.clone(),
            state.positions.clone(),
            state.clock.clone(),
            policy,
            std::time::Duration::from_secs(args.gc_interval_secs),
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
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
