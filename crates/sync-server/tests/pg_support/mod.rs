//! A private Postgres schema per test, on the local server
//! (`postgres://postgres@127.0.0.1:5432/test`, or `OR3_SYNC_TEST_PG_URL`).
//! The schema is dropped when the [`TestSchema`] is; schemas left behind by a
//! killed run are swept by the next one. An unreachable server fails the
//! test with a message that says so: these tests never skip.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The server the tests use unless `OR3_SYNC_TEST_PG_URL` names another.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas are named `or3_test_<unix secs>_<random>`.
const PREFIX: &str = "or3_test_";

/// Schemas older than this are leftovers of a killed run.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The database URL of the test server, without a schema.
pub fn base_url() -> String {
    std::env::var("OR3_SYNC_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` (`postgres://USER@HOST:PORT/...`) with its `HOST:PORT` replaced by
/// `host`; also returns the old `HOST:PORT`.
pub fn with_host(url: &str, host: &str) -> (String, String) {
    let at = url.find('@').expect("the test URL names a user") + 1;
    let end = at + url[at..].find('/').expect("the test URL names a database");
    (
        format!("{}{host}{}", &url[..at], &url[end..]),
        url[at..end].to_owned(),
    )
}

/// An admin connection to the test database, created if missing.
pub async fn admin() -> Client {
    let url = base_url();
    match connect(&url).await {
        Ok(client) => client,
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            create_database(&url).await;
            connect(&url)
                .await
                .unwrap_or_else(|e| unreachable_postgres(&url, e))
        }
        Err(e) => unreachable_postgres(&url, e),
    }
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn unreachable_postgres(url: &str, e: tokio_postgres::Error) -> ! {
    panic!(
        "Postgres is not reachable at {url}: {e}. The Postgres tests need a running server \
         (CI starts one; locally `pg_ctlcluster 15 main start`, or set OR3_SYNC_TEST_PG_URL)."
    )
}

/// Creates the URL's database through the `postgres` maintenance database.
async fn create_database(url: &str) {
    let config: tokio_postgres::Config = url.parse().expect("a valid test database URL");
    let name = config.get_dbname().unwrap_or("test").to_owned();
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let (client, connection) = maintenance
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| unreachable_postgres(url, e));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    if let Err(e) = client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
    {
        // Another test binary may have created it meanwhile.
        assert_eq!(
            e.code(),
            Some(&SqlState::DUPLICATE_DATABASE),
            "cannot create database {name}: {e}"
        );
    }
}

/// A schema of its own for one test; dropped with this value.
pub struct TestSchema {
    /// The schema's name (also the `application_name` of its connections).
    pub name: String,
}

impl TestSchema {
    /// Picks a fresh schema name (the store creates the schema when it
    /// migrates) and sweeps leftovers of killed runs.
    pub async fn new() -> TestSchema {
        let admin = admin().await;
        sweep_stale(&admin).await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let name = format!(
            "{PREFIX}{now}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        TestSchema { name }
    }

    /// The store URL for this schema. Connections carry the schema name as
    /// their `application_name`, so a test can find (and kill) them.
    pub fn url(&self) -> String {
        self.url_as(&self.name)
    }

    /// The store URL with another `application_name` (which must start with
    /// the schema name, so the schema's clean-up still finds it): tells the
    /// connections of one node from another's.
    pub fn url_as(&self, application_name: &str) -> String {
        assert!(application_name.starts_with(&self.name));
        format!(
            "{}?schema={}&application_name={application_name}",
            base_url(),
            self.name
        )
    }

    /// Terminates every connection of this schema's stores; returns how many.
    pub async fn terminate_connections(&self, admin: &Client) -> u64 {
        terminate(admin, &self.name).await.unwrap_or(0)
    }
}

/// Terminates the connections whose `application_name` is `exactly`.
pub async fn terminate_exactly(admin: &Client, application_name: &str) -> u64 {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&application_name],
        )
        .await
        .map(|rows| rows.len() as u64)
        .unwrap_or(0)
}

/// Terminates the connections whose `application_name` starts with `prefix`.
async fn terminate(admin: &Client, prefix: &str) -> Result<u64, tokio_postgres::Error> {
    let rows = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE starts_with(application_name, $1) AND pid <> pg_backend_pid()",
            &[&prefix],
        )
        .await?;
    Ok(rows.len() as u64)
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop may run on the test's runtime thread: do the async work on a
        // thread and runtime of its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let admin = admin().await;
                drop_schema(&admin, &name).await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test schema {}: {e}", self.name),
            Err(_) => eprintln!("could not drop test schema {}", self.name),
        }
    }
}

/// Ends the schema's connections (an aborted test may leave one holding
/// locks), then drops the schema with everything in it.
async fn drop_schema(admin: &Client, name: &str) -> Result<(), tokio_postgres::Error> {
    terminate(admin, name).await?;
    admin
        .batch_execute(&format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
        ))
        .await
}

/// Drops test schemas older than [`STALE_AFTER`] (from runs that were killed
/// before their schemas were dropped).
async fn sweep_stale(admin: &Client) {
    let Ok(rows) = admin
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, $1)",
            &[&PREFIX],
        )
        .await
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for row in rows {
        let name: String = row.get(0);
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if matches!(created, Some(t) if now.saturating_sub(t) > STALE_AFTER.as_secs()) {
            let _ = drop_schema(admin, &name).await;
        }
    }
}

/// True when a schema of that name exists.
pub async fn schema_exists(admin: &Client, name: &str) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
        .await
        .map(|row| row.is_some())
        .unwrap_or(false)
}
