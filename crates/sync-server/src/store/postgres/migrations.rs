//! Versioned schema migrations of the Postgres store. `schema_migrations`
//! records every version that ran; all pending ones run in one transaction
//! under an advisory lock, so nodes starting together migrate once.
//!
//! Identifiers and keys use the "C" collation: text compares bytewise, as in
//! SQLite and in the protocol's HLC order, and snapshot pages sort the same
//! on every store. Payloads are `text`, not `jsonb`: the row is stored and
//! served as the exact bytes the server produced (no re-serialisation, no
//! key reordering, no parse on read), and `jsonb` would refuse `\u0000`.
//!
//! Unlike SQLite there is no `applied_ops` table: an op id is applied exactly
//! when its entry is in the change log (GC purges both together), so a
//! unique index on `change_log (workspace_id, op_id)` answers "seen before?"
//! and makes the database itself refuse an op entering the log twice, for
//! one index write per op instead of a second table.

use super::connect::{column_error, pg_error, DatabaseUrl};
use crate::store::StoreError;
use deadpool_postgres::Client;

/// Advisory lock key held while migrating (any constant unique to or3-sync).
const MIGRATION_LOCK: i64 = 0x006f_7233_7379_6e63; // "or3sync" in ASCII

/// The migrations, in order; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE workspaces (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    created_at bigint NOT NULL,
    head bigint NOT NULL DEFAULT 0,
    oldest_retained_version bigint NOT NULL DEFAULT 1
);
CREATE TABLE members (
    workspace_id text COLLATE "C" NOT NULL REFERENCES workspaces(id),
    user_id text COLLATE "C" NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);
CREATE TABLE records (
    workspace_id text COLLATE "C" NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    pk text COLLATE "C" NOT NULL,
    clock bigint NOT NULL,
    hlc text COLLATE "C" NOT NULL,
    op_id text COLLATE "C" NOT NULL,
    server_version bigint NOT NULL,
    deleted boolean NOT NULL,
    payload text,
    scope_kind smallint NOT NULL,
    project_id text COLLATE "C",
    thread_id text COLLATE "C",
    committed_at bigint NOT NULL,
    PRIMARY KEY (workspace_id, table_name, pk)
);
CREATE INDEX records_by_thread ON records(workspace_id, thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX records_tombstone_payloads ON records(workspace_id, committed_at)
    WHERE deleted AND payload IS NOT NULL;
CREATE TABLE change_log (
    workspace_id text COLLATE "C" NOT NULL,
    server_version bigint NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    pk text COLLATE "C" NOT NULL,
    operation text NOT NULL,
    payload text,
    clock bigint NOT NULL,
    hlc text COLLATE "C" NOT NULL,
    op_id text COLLATE "C" NOT NULL,
    device_id text NOT NULL,
    scoped boolean NOT NULL,
    project_id text COLLATE "C",
    prev_project_id text COLLATE "C",
    scope_change boolean NOT NULL,
    committed_at bigint NOT NULL,
    PRIMARY KEY (workspace_id, server_version),
    UNIQUE (workspace_id, op_id)
);
CREATE TABLE device_positions (
    workspace_id text COLLATE "C" NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    cursor bigint NOT NULL,
    seen_at bigint NOT NULL,
    PRIMARY KEY (workspace_id, device_id)
);
"#];

/// Whether the schema the migrations would work in (`current_schema()`: the
/// URL's, else the first existing one of the `search_path`) holds an or3-sync
/// store: its migrations table. A schema that does not exist holds none; a
/// store in a schema further down the `search_path` does not count, since
/// `migrate` would build a new one in front of it.
pub(super) async fn installed(client: &Client) -> Result<bool, StoreError> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = current_schema() AND c.relname = 'schema_migrations')",
            &[],
        )
        .await
        .map_err(pg_error)?
        .try_get::<_, bool>(0)
        .map_err(column_error)
}

/// Applies every pending migration (creating the URL's schema first when it
/// names one) and returns how many ran.
pub(super) async fn migrate(client: &mut Client, url: &DatabaseUrl) -> Result<usize, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    // Index builds on a large table may take longer than a request may.
    // "already exists, skipping" notices on every start are noise.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL client_min_messages = warning")
        .await
        .map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    if let Some(schema) = url.quoted_schema() {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(pg_error)?;
    }
    let in_schema = tx
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(pg_error)?
        .try_get::<_, Option<String>>(0)
        .map_err(column_error)?;
    if in_schema.is_none() {
        return Err(StoreError::Internal(
            "the connection's search_path names no existing schema; add ?schema=NAME to the URL"
                .into(),
        ));
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error)?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?
        .try_get(0)
        .map_err(column_error)?;
    let current = current.max(0) as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this binary knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&((index + 1) as i32)],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(MIGRATIONS.len() - current)
}
