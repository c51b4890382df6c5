//! How the Postgres store reaches its database: the URL (with our `schema`
//! parameter), the connection pool with its limits and timeouts, and the
//! mapping of driver errors to [`StoreError`]s. An outage must surface as
//! `Unavailable` quickly, never as a hang: every wait here is bounded.

use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

/// Connection limits of a [`super::PostgresStore`], independent of the HTTP
/// server's settings (the CLI's `--pg-pool-size` and `--pg-statement-timeout-ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// Server-side limit of one statement (lock waits included). It also
    /// bounds how long a request waits for a pooled connection and for a new
    /// connection to open.
    pub statement_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            statement_timeout: Duration::from_millis(5000),
        }
    }
}

impl PgOptions {
    /// The longest one store call may take before it is reported as
    /// unavailable: a pool wait plus a few bounded statements. A guard
    /// against a peer that stops answering without closing the socket.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.statement_timeout * 4 + Duration::from_secs(1)
    }
}

/// How the store's connections are encrypted, from the URL's `sslmode`.
#[derive(Clone)]
pub enum PgTls {
    /// Plain TCP (`sslmode` absent or `disable`): a private network or a
    /// local socket.
    None,
    /// TLS with the server's certificate verified (chain and host name)
    /// against `sslrootcert` when given, else the Mozilla roots:
    /// `sslmode=require`, `verify-ca` or `verify-full` (all verify; a
    /// certificate that does not verify is an error, never a plaintext
    /// fallback), or `prefer` (TLS when the server offers it).
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PgTls::None => "PgTls::None",
            PgTls::Rustls(_) => "PgTls::Rustls",
        })
    }
}

/// A parsed `postgres://` URL.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    /// The driver's connection settings.
    pub config: Config,
    /// How connections are encrypted.
    pub tls: PgTls,
    /// The Postgres schema the store lives in, from `?schema=NAME`; created
    /// by the migrations when missing. `None` uses the connection's
    /// `search_path` (e.g. from `options=-c search_path=NAME`, which must exist).
    pub schema: Option<String>,
}

impl DatabaseUrl {
    /// Parses `postgres://user[:password]@host[:port]/db[?schema=NAME&...]`.
    /// `schema`, `sslmode` and `sslrootcert` (a PEM file of the CA
    /// certificates to trust instead of the Mozilla roots) are ours; every
    /// other parameter is the driver's (`options`, `connect_timeout`, ...).
    pub fn parse(url: &str) -> Result<DatabaseUrl, StoreError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut schema = None;
        let mut sslmode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", mode)) => sslmode = Some(mode.to_owned()),
                Some(("sslrootcert", path)) => root_cert = Some(path.to_owned()),
                Some(("schema", name)) => {
                    if !is_schema_name(name) {
                        return Err(StoreError::Internal(format!(
                            "schema `{name}` must be 1 to 63 characters of a-z, 0-9 and _, not starting with a digit"
                        )));
                    }
                    schema = Some(name.to_owned());
                }
                _ => rest.push(pair),
            }
        }
        let driver_url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config = Config::from_str(&driver_url)
            .map_err(|e| StoreError::Internal(format!("invalid Postgres URL: {e}")))?;
        let tls = match sslmode.as_deref() {
            None | Some("disable") => {
                if root_cert.is_some() {
                    return Err(StoreError::Internal(
                        "sslrootcert needs sslmode=require (or verify-full)".to_owned(),
                    ));
                }
                config.ssl_mode(SslMode::Disable);
                PgTls::None
            }
            Some(mode @ ("prefer" | "require" | "verify-ca" | "verify-full")) => {
                config.ssl_mode(if mode == "prefer" {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                });
                PgTls::Rustls(rustls_connector(root_cert.as_deref())?)
            }
            Some(other) => {
                return Err(StoreError::Internal(format!(
                "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
            )))
            }
        };
        Ok(DatabaseUrl {
            config,
            tls,
            schema,
        })
    }

    /// The URL's schema, quoted for SQL.
    pub(super) fn quoted_schema(&self) -> Option<String> {
        self.schema.as_deref().map(|s| format!("\"{s}\""))
    }
}

/// A TLS connector that verifies the server against the CA certificates in
/// `root_cert` (PEM), or the Mozilla roots.
fn rustls_connector(
    root_cert: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Internal(format!("sslrootcert {path}: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StoreError::Internal(format!(
                    "sslrootcert {path} holds no usable certificate"
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// True for a lowercase identifier that needs no quoting rules beyond `"..."`.
pub fn is_schema_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// The driver settings every connection of the store uses: the schema as
/// `search_path`, the statement timeout, and bounded connect and socket waits.
pub(super) fn connection_config(url: &DatabaseUrl, options: &PgOptions) -> Config {
    let mut config = url.config.clone();
    let mut startup = config.get_options().unwrap_or_default().to_owned();
    if let Some(schema) = &url.schema {
        startup.push_str(&format!(" -c search_path={schema}"));
    }
    startup.push_str(&format!(
        " -c statement_timeout={}",
        options.statement_timeout.as_millis()
    ));
    config.options(startup.trim());
    if config.get_application_name().is_none() {
        config.application_name("or3-sync");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.statement_timeout);
    }
    // Unacknowledged writes and dead idle peers are noticed within seconds
    // instead of the kernel's many minutes.
    config.tcp_user_timeout(options.statement_timeout + Duration::from_secs(5));
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(10));
    config.keepalives_interval(Duration::from_secs(2));
    config.keepalives_retries(3);
    config
}

/// A pool whose waits (for a free slot, a new connection, a health check)
/// are all bounded by the statement timeout.
pub(super) fn build_pool(
    config: Config,
    tls: &PgTls,
    options: &PgOptions,
) -> Result<Pool, StoreError> {
    let manager_config = || ManagerConfig {
        // A connection whose socket closed (server restart,
        // pg_terminate_backend) is dropped on checkout; a broken one
        // that is not yet noticed fails its first statement with
        // `Unavailable`, and the client retries.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        PgTls::None => Manager::from_config(config, NoTls, manager_config()),
        PgTls::Rustls(tls) => Manager::from_config(config, tls.clone(), manager_config()),
    };
    Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .wait_timeout(Some(options.statement_timeout))
        .create_timeout(Some(options.statement_timeout))
        .recycle_timeout(Some(options.statement_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the Postgres pool: {e}")))
}

/// Maps a pool checkout failure.
pub(super) fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        PoolError::Timeout(_) | PoolError::Closed => {
            StoreError::Unavailable(format!("no Postgres connection: {e}"))
        }
        other => StoreError::Internal(other.to_string()),
    }
}

/// Maps a driver error. Errors the server did not report (connect refused,
/// socket closed, timeouts) and the server's transient classes (connection
/// exceptions, shutdown, cancellation by `statement_timeout`, exhausted
/// resources, serialization failures, a read-only standby) are
/// `Unavailable`: the request is safe to retry. Everything else is `Internal`.
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // The driver's message ("error connecting to server") leaves out
        // the cause ("Connection refused"); the source has it.
        let message = match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        };
        return StoreError::Unavailable(message);
    };
    let code = db.code();
    let class = &code.code()[..2];
    let transient = matches!(class, "08" | "53" | "57" | "58")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
    let message = format!("{} ({})", db.message(), code.code());
    if transient {
        StoreError::Unavailable(message)
    } else {
        StoreError::Internal(message)
    }
}

/// The store's call time limit given to each step of a call made of
/// several (the pushes of a group, `group.rs`), so that one limit sized for
/// a single push never cuts a group short. A step that runs out leaves its
/// connection mid-statement: the call must not give it back to the pool.
pub(crate) struct StepBudget {
    limit: Duration,
    ran_out: AtomicBool,
}

impl StepBudget {
    pub(crate) fn new(limit: Duration) -> StepBudget {
        StepBudget {
            limit,
            ran_out: AtomicBool::new(false),
        }
    }

    /// Runs one step within the limit.
    pub(crate) async fn run<T>(
        &self,
        step: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.limit, step)
            .await
            .unwrap_or_else(|_| {
                self.ran_out.store(true, Ordering::Relaxed);
                Err(timed_out(self.limit))
            })
    }

    /// True when a step ran out of time.
    pub(crate) fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Relaxed)
    }
}

/// The error of a call that ran out of time.
pub(crate) fn timed_out(limit: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "Postgres did not answer within {} ms",
        limit.as_millis()
    ))
}

/// Maps a column that does not convert (a schema this binary does not expect).
pub(crate) fn column_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Internal(format!("unexpected column value: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_taken_out_of_the_driver_url() {
        let url =
            DatabaseUrl::parse("postgres://u@127.0.0.1:5433/db?schema=or3_a&application_name=x")
                .unwrap();
        assert_eq!(url.schema.as_deref(), Some("or3_a"));
        assert_eq!(url.config.get_dbname(), Some("db"));
        assert_eq!(url.config.get_application_name(), Some("x"));
        assert_eq!(url.config.get_ports(), &[5433]);
    }

    #[test]
    fn unsafe_schema_names_are_refused() {
        for bad in ["", "A", "a-b", "a;drop", "1a", &"a".repeat(64)] {
            assert!(
                DatabaseUrl::parse(&format!("postgres://u@h/db?schema={bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn connections_carry_search_path_and_statement_timeout() {
        let url =
            DatabaseUrl::parse("postgres://u@h/db?schema=s1&options=-c%20work_mem%3D8MB").unwrap();
        let config = connection_config(&url, &PgOptions::default());
        assert_eq!(
            config.get_options(),
            Some("-c work_mem=8MB -c search_path=s1 -c statement_timeout=5000")
        );
    }
}
