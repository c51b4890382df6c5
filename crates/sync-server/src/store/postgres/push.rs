//! A push on Postgres in four round trips, whatever the batch size:
//!
//! 1. `BEGIN` (`group.rs`: pushes to one workspace queued behind a commit
//!    share the next transaction, each in a `SAVEPOINT` of its own);
//! 2. pipelined: lock the workspace's counter row (with the access check),
//!    read the stored records of every op, the projects of the threads the
//!    batch's messages name, whether stored messages name the threads the
//!    batch writes, and which op ids were applied before;
//! 3. one statement that writes the log entries (which are also the record
//!    of applied op ids), the records (upsert) and the new head;
//! 4. `COMMIT` (`RELEASE` for a push in a group, which commits once).
//!
//! The counter row stays locked from step 2 to the commit, so pushes to one
//! workspace run one after another: versions are gap-free and in commit
//! order, and each push decides against the state the previous one left.
//! The decisions are `sync_core::push::plan_push`'s, over the rows read in
//! step 2.

use super::connect::{column_error, pg_error};
use super::text::{project_from_db, project_to_db, thread_to_db};
use crate::store::{member_user, require_role, role_from};
use crate::store::{Access, LoggedChange, PushOutcome, StoreError};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use sync_core::push::{plan_push, PushPlan, StoredRecord, StoredState};
use sync_core::scope::{table_scope, thread_id_of, TableScope};
use sync_core::{OpId, Role, ServerVersion, Stamp, TableConfig, ValidOp, WorkspaceId};
use tokio_postgres::types::ToSql;

/// What the database said before the batch is decided: the rows the batch
/// can need, read ahead in one round trip. Every key read ahead has an
/// entry (`None`: no such row), so a lookup the reads did not cover is told
/// apart from a row that does not exist: it is a [`ReadAheadMiss`], never a
/// silent `None` that would decide an op against a state nobody read.
#[derive(Debug, Default)]
struct BatchContext {
    /// Stored records of the batch's keys, by `(table_name, pk)`.
    records: HashMap<(String, String), Option<StoredRecord>>,
    /// Stored project of threads the batch's messages may name.
    thread_projects: HashMap<String, Option<String>>,
    /// Op ids of the batch, with the version each was applied at before.
    applied_ops: HashMap<String, Option<ServerVersion>>,
    /// How many stored messages name each thread the batch writes (capped
    /// above the batch size, which is all a decision needs).
    thread_messages: HashMap<String, u64>,
}

/// A lookup of `plan_push` that the read-ahead did not cover: the reads and
/// the planner disagree on what a batch needs (a bug, never bad input).
#[derive(Debug, thiserror::Error)]
#[error("the push read-ahead did not read the {0} `{1}`")]
struct ReadAheadMiss(&'static str, String);

impl From<ReadAheadMiss> for StoreError {
    fn from(e: ReadAheadMiss) -> StoreError {
        StoreError::Internal(e.to_string())
    }
}

impl StoredState for BatchContext {
    type Error = ReadAheadMiss;

    fn applied_version(&mut self, op_id: &OpId) -> Result<Option<ServerVersion>, ReadAheadMiss> {
        self.applied_ops
            .get(op_id.as_str())
            .copied()
            .ok_or_else(|| ReadAheadMiss("op id", op_id.as_str().to_owned()))
    }

    fn record(
        &mut self,
        table_name: &str,
        pk: &str,
    ) -> Result<Option<StoredRecord>, ReadAheadMiss> {
        self.records
            .get(&(table_name.to_owned(), pk.to_owned()))
            .cloned()
            .ok_or_else(|| ReadAheadMiss("record", format!("{table_name}/{pk}")))
    }

    fn thread_project(&mut self, thread_id: &str) -> Result<Option<String>, ReadAheadMiss> {
        if let Some(thread) = self
            .records
            .get(&("threads".to_owned(), thread_id.to_owned()))
        {
            return Ok(thread.as_ref().and_then(|t| t.project_id.clone()));
        }
        if thread_to_db(Some(thread_id)).is_none() {
            return Ok(None); // names no thread (`text.rs`)
        }
        self.thread_projects
            .get(thread_id)
            .cloned()
            .ok_or_else(|| ReadAheadMiss("thread", thread_id.to_owned()))
    }

    fn messages_naming(&mut self, thread_id: &str, at_most: u64) -> Result<u64, ReadAheadMiss> {
        self.thread_messages
            .get(thread_id)
            .map(|count| (*count).min(at_most))
            .ok_or_else(|| ReadAheadMiss("messages of thread", thread_id.to_owned()))
    }
}

const LOCK_WORKSPACE: &str = "SELECT w.head, m.role FROM workspaces w
     LEFT JOIN members m ON m.workspace_id = w.id AND m.user_id = $2
     WHERE w.id = $1 FOR NO KEY UPDATE OF w";

// The reads probe the primary keys one key at a time: `LATERAL ... LIMIT 1`
// keeps the planner from hashing a whole workspace when its statistics are
// stale (a fresh or fast-growing table), which would make a push cost grow
// with the workspace.

const READ_RECORDS: &str = "SELECT r.table_name, r.pk, r.clock, r.hlc, r.op_id, r.server_version,
         r.deleted, r.payload, r.project_id, r.thread_id
     FROM unnest($2::text[], $3::text[]) AS k(table_name, pk)
     CROSS JOIN LATERAL (
         SELECT * FROM records r
         WHERE r.workspace_id = $1 AND r.table_name = k.table_name AND r.pk = k.pk LIMIT 1
     ) r";

/// Threads named by the batch's message payloads ($2) or by the stored rows
/// of the batch's messages ($3): a superset of every thread whose project an
/// op of the batch may need.
const READ_THREAD_PROJECTS: &str = "SELECT t.pk, t.project_id
     FROM (
         SELECT unnest($2::text[])
         UNION
         SELECT m.thread_id FROM unnest($3::text[]) AS k(pk)
         CROSS JOIN LATERAL (
             SELECT thread_id FROM records m
             WHERE m.workspace_id = $1 AND m.table_name = 'messages' AND m.pk = k.pk LIMIT 1
         ) m
     ) AS named(thread_id)
     CROSS JOIN LATERAL (
         SELECT t.pk, t.project_id FROM records t
         WHERE t.workspace_id = $1 AND t.table_name = 'threads' AND t.pk = named.thread_id LIMIT 1
     ) t";

/// For each thread the batch writes ($2), how many stored messages name it,
/// counting no further than $3 (the batch size plus one).
const READ_THREAD_MESSAGES: &str = "SELECT t.thread,
         (SELECT count(*) FROM (
             SELECT 1 FROM records m
             WHERE m.workspace_id = $1 AND m.thread_id = t.thread AND m.table_name = 'messages'
             LIMIT $3) named)
     FROM unnest($2::text[]) AS t(thread)";

/// Op ids already in the log (see `migrations.rs`: the log is the record
/// of applied op ids).
const READ_APPLIED_OPS: &str = "SELECT a.op_id, a.server_version
     FROM unnest($2::text[]) AS k(op_id)
     CROSS JOIN LATERAL (
         SELECT op_id, server_version FROM change_log a
         WHERE a.workspace_id = $1 AND a.op_id = k.op_id LIMIT 1
     ) a";

/// Log entries (which also record the applied op ids), the final state of
/// each record and the head, in one statement. Records take their columns from the log entries of
/// their last write, so each payload crosses the wire once.
const WRITE_BATCH: &str = "WITH log AS (
         INSERT INTO change_log (workspace_id, server_version, table_name, pk, operation, payload,
             clock, hlc, op_id, device_id, scoped, project_id, prev_project_id, scope_change,
             committed_at)
         SELECT $1, e.*, $15 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bool[],
             $12::text[], $13::text[], $14::bool[]) AS e
         RETURNING server_version, table_name, pk, operation, payload, clock, hlc, op_id, project_id
     ), current AS (
         INSERT INTO records (workspace_id, table_name, pk, clock, hlc, op_id, server_version,
             deleted, payload, scope_kind, project_id, thread_id, committed_at)
         SELECT $1, l.table_name, l.pk, l.clock, l.hlc, l.op_id, l.server_version,
             l.operation = 'delete', l.payload, f.scope_kind, l.project_id, f.thread_id, $15
         FROM log l
         JOIN unnest($16::bigint[], $17::smallint[], $18::text[]) AS f(server_version, scope_kind, thread_id)
             USING (server_version)
         ON CONFLICT (workspace_id, table_name, pk) DO UPDATE SET
             clock = excluded.clock, hlc = excluded.hlc, op_id = excluded.op_id,
             server_version = excluded.server_version, deleted = excluded.deleted,
             payload = excluded.payload, scope_kind = excluded.scope_kind,
             project_id = excluded.project_id, thread_id = excluded.thread_id,
             committed_at = excluded.committed_at
     )
     UPDATE workspaces SET head = $19 WHERE id = $1";

/// Decides and writes one push inside `tx` (a savepoint of its workspace's
/// group transaction, `group.rs`, which commits it); editors and owners only.
pub(super) async fn push(
    tx: &deadpool_postgres::Transaction<'_>,
    tables: &TableConfig,
    ws: &WorkspaceId,
    access: &Access,
    ops: &[ValidOp],
    now_ms: u64,
) -> Result<PushOutcome, StoreError> {
    let mut keys = HashSet::new();
    let (mut key_tables, mut key_pks) = (Vec::new(), Vec::new());
    let (mut named_threads, mut message_pks, mut thread_pks) = (Vec::new(), Vec::new(), Vec::new());
    for op in ops {
        if keys.insert((op.table_name.as_str(), op.pk.as_str())) {
            key_tables.push(op.table_name.as_str());
            key_pks.push(op.pk.as_str());
            match table_scope(&op.table_name) {
                TableScope::ThreadProject => message_pks.push(op.pk.as_str()),
                TableScope::OwnProject => thread_pks.push(op.pk.as_str()),
                TableScope::Workspace => {}
            }
        }
        if table_scope(&op.table_name) == TableScope::ThreadProject {
            if let Some(thread) = thread_to_db(op.payload.as_ref().and_then(thread_id_of)) {
                named_threads.push(thread);
            }
        }
    }
    let op_ids: Vec<&str> = ops.iter().map(|op| op.op_id.as_str()).collect();
    let user = member_user(access);

    let lock = tx.prepare_cached(LOCK_WORKSPACE).await.map_err(pg_error)?;
    let read_records = tx.prepare_cached(READ_RECORDS).await.map_err(pg_error)?;
    let read_threads = tx
        .prepare_cached(READ_THREAD_PROJECTS)
        .await
        .map_err(pg_error)?;
    let read_ops = tx
        .prepare_cached(READ_APPLIED_OPS)
        .await
        .map_err(pg_error)?;
    let read_thread_messages = tx
        .prepare_cached(READ_THREAD_MESSAGES)
        .await
        .map_err(pg_error)?;
    let message_cap = ops.len() as i64 + 1;
    // Sent together; the server runs them in order, so the reads start
    // once the lock is held and see the previous push's commit.
    let ws_id = ws.as_str();
    let lock_params: [&(dyn ToSql + Sync); 2] = [&ws_id, &user];
    let record_params: [&(dyn ToSql + Sync); 3] = [&ws_id, &key_tables, &key_pks];
    let thread_params: [&(dyn ToSql + Sync); 3] = [&ws_id, &named_threads, &message_pks];
    let op_params: [&(dyn ToSql + Sync); 2] = [&ws_id, &op_ids];
    let thread_message_params: [&(dyn ToSql + Sync); 3] = [&ws_id, &thread_pks, &message_cap];
    let (locked, record_rows, thread_rows, op_rows, thread_message_rows) = futures_util::try_join!(
        tx.query_opt(&lock, &lock_params),
        tx.query(&read_records, &record_params),
        tx.query(&read_threads, &thread_params),
        tx.query(&read_ops, &op_params),
        tx.query(&read_thread_messages, &thread_message_params),
    )
    .map_err(pg_error)?;
    let locked = locked.ok_or(StoreError::UnknownWorkspace)?;
    let role: Option<String> = locked.try_get(1).map_err(column_error)?;
    require_role(role_from(access, role.as_deref())?, Role::Editor)?;

    let head = locked.try_get::<_, i64>(0).map_err(column_error)? as u64;
    let mut context = BatchContext::default();
    for (table, pk) in key_tables.iter().zip(&key_pks) {
        context
            .records
            .insert(((*table).to_owned(), (*pk).to_owned()), None);
    }
    for op_id in &op_ids {
        context.applied_ops.insert((*op_id).to_owned(), None);
    }
    for thread in &named_threads {
        context.thread_projects.insert((*thread).to_owned(), None);
    }
    for r in &record_rows {
        let key = (
            r.try_get(0).map_err(column_error)?,
            r.try_get(1).map_err(column_error)?,
        );
        let state = StoredRecord {
            stamp: Stamp {
                clock: r.try_get::<_, i64>(2).map_err(column_error)? as u64,
                hlc: r.try_get(3).map_err(column_error)?,
                op_id: r.try_get(4).map_err(column_error)?,
            },
            server_version: r.try_get::<_, i64>(5).map_err(column_error)? as u64,
            deleted: r.try_get(6).map_err(column_error)?,
            payload: r.try_get(7).map_err(column_error)?,
            project_id: r
                .try_get::<_, Option<String>>(8)
                .map_err(column_error)?
                .map(project_from_db),
            thread_id: r.try_get(9).map_err(column_error)?,
        };
        if let Some(thread) = state.thread_id.as_ref().filter(|_| key.0 == "messages") {
            // The stored thread of a message of the batch: read below too.
            context.thread_projects.insert(thread.clone(), None);
        }
        context.records.insert(key, Some(state));
    }
    for r in &thread_rows {
        context.thread_projects.insert(
            r.try_get(0).map_err(column_error)?,
            r.try_get::<_, Option<String>>(1)
                .map_err(column_error)?
                .map(project_from_db),
        );
    }
    for r in &op_rows {
        context.applied_ops.insert(
            r.try_get(0).map_err(column_error)?,
            Some(r.try_get::<_, i64>(1).map_err(column_error)? as u64),
        );
    }

    for r in &thread_message_rows {
        context.thread_messages.insert(
            r.try_get(0).map_err(column_error)?,
            r.try_get::<_, i64>(1).map_err(column_error)?.max(0) as u64,
        );
    }

    let plan = plan_push(ops, tables, head, &mut context)?;
    if !plan.changes.is_empty() {
        write_batch(tx, ws, &plan, now_ms).await?;
    }
    Ok(PushOutcome {
        outcomes: plan.outcomes,
        server_version: plan.head,
        changes: plan.changes,
    })
}

async fn write_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    ws: &WorkspaceId,
    plan: &PushPlan,
    now_ms: u64,
) -> Result<(), StoreError> {
    let changes = &plan.changes;
    let column = |f: fn(&LoggedChange) -> &str| changes.iter().map(f).collect::<Vec<&str>>();
    let versions: Vec<i64> = changes
        .iter()
        .map(|c| c.change.server_version as i64)
        .collect();
    let table_names = column(|c| &c.change.table_name);
    let pks = column(|c| &c.change.pk);
    let operations = column(|c| c.change.operation.as_str());
    let payloads = column(|c| c.change.payload.get());
    let clocks: Vec<i64> = changes.iter().map(|c| c.change.clock as i64).collect();
    let hlcs = column(|c| &c.change.hlc);
    let op_ids = column(|c| &c.change.op_id);
    let devices = column(|c| &c.change.device_id);
    let scoped: Vec<bool> = changes.iter().map(|c| c.scope.scoped).collect();
    let projects: Vec<Option<Cow<'_, str>>> = changes
        .iter()
        .map(|c| c.scope.project_id.as_deref().map(project_to_db))
        .collect();
    let prev_projects: Vec<Option<Cow<'_, str>>> = changes
        .iter()
        .map(|c| c.scope.prev_project_id.as_deref().map(project_to_db))
        .collect();
    let scope_changes: Vec<bool> = changes.iter().map(|c| c.scope.scope_change).collect();
    let final_versions: Vec<i64> = plan
        .records
        .iter()
        .map(|r| r.server_version as i64)
        .collect();
    let scope_kinds: Vec<i16> = plan.records.iter().map(|r| r.scope_kind as i16).collect();
    let thread_ids: Vec<Option<&str>> = plan
        .records
        .iter()
        .map(|r| thread_to_db(r.thread_id.as_deref()))
        .collect();
    let now = now_ms as i64;
    let head = plan.head as i64;
    let write = tx.prepare_cached(WRITE_BATCH).await.map_err(pg_error)?;
    tx.execute(
        &write,
        &[
            &ws.as_str(),
            &versions,
            &table_names,
            &pks,
            &operations,
            &payloads,
            &clocks,
            &hlcs,
            &op_ids,
            &devices,
            &scoped,
            &projects,
            &prev_projects,
            &scope_changes,
            &now,
            &final_versions,
            &scope_kinds,
            &thread_ids,
            &head,
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}
