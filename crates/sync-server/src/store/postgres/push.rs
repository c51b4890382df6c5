//! A push on Postgres in four round trips, whatever the batch size:
//!
//! 1. `BEGIN`;
//! 2. pipelined: lock the workspace's counter row (with the access check),
//!    read the stored records of every op, the projects of the threads the
//!    batch's messages name, whether stored messages name the threads the
//!    batch writes, and which op ids were applied before;
//! 3. one statement that writes the log entries (which are also the record
//!    of applied op ids), the records (upsert) and the new head;
//! 4. `COMMIT`.
//!
//! The counter row stays locked from step 2 to the commit, so pushes to one
//! workspace run one after another: versions are gap-free and in commit
//! order, and each push decides against the state the previous one left.
//! The decisions are made in Rust by [`plan_push`], which applies the ops to
//! an in-memory view, so an op sees the effect of earlier ops of its batch
//! (two ops on one record, a repeated op id).

use super::connect::{column_error, pg_error};
use super::text::{project_from_db, project_to_db, thread_to_db};
use super::{check_role, member_user};
use crate::store::{Access, LoggedChange, OpOutcome, PushOutcome, StoreError, StoredVersion};
use deadpool_postgres::Client;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use sync_core::commit::committed_row;
use sync_core::scope::{logged_scope, project_id_of, table_scope, thread_id_of, TableScope};
use sync_core::validate::Operation;
use sync_core::wire::stored_json;
use sync_core::wire::Change;
use sync_core::{Role, ServerVersion, Stamp, TableConfig, ValidOp, WorkspaceId};
use tokio_postgres::types::ToSql;

/// A record's stored state, as the push decides against it.
#[derive(Debug, Clone)]
pub(super) struct RecordState {
    stamp: Stamp,
    server_version: ServerVersion,
    deleted: bool,
    payload: Option<String>,
    project_id: Option<String>,
    thread_id: Option<String>,
}

impl RecordState {
    fn stored_version(&self) -> StoredVersion {
        StoredVersion {
            stamp: self.stamp.clone(),
            server_version: self.server_version,
            deleted: self.deleted,
            payload: stored_json(self.payload.clone()),
        }
    }
}

/// What the database said before the batch is decided.
#[derive(Debug, Default)]
pub(super) struct BatchContext {
    /// Stored records of the batch's keys, by `(table_name, pk)`.
    pub records: HashMap<(String, String), RecordState>,
    /// Stored project of threads the batch's messages may name.
    pub thread_projects: HashMap<String, Option<String>>,
    /// Op ids of the batch that were applied before, with their versions.
    pub applied_ops: HashMap<String, ServerVersion>,
    /// How many stored messages name each thread the batch writes (capped
    /// above the batch size, which is all a decision needs).
    pub thread_messages: HashMap<String, u64>,
    /// The workspace head.
    pub head: ServerVersion,
}

/// The record columns that are not in the log entry of its final write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordColumns {
    server_version: ServerVersion,
    scope_kind: TableScope,
    thread_id: Option<String>,
}

/// The decided batch.
#[derive(Debug)]
pub(super) struct PushPlan {
    /// One per op, in order.
    pub outcomes: Vec<OpOutcome>,
    /// The new log entries, ascending.
    pub changes: Vec<LoggedChange>,
    /// For each record written, its last write in the batch.
    pub records: Vec<RecordColumns>,
    /// The head after the batch.
    pub head: ServerVersion,
}

/// Decides every op of a batch against `context`, in order, exactly as the
/// SQLite store does op by op: duplicate by op id, then LWW against the
/// stored stamp (equal stamp: duplicate), then the committed row and its
/// project scope resolved now.
pub(super) fn plan_push(
    ops: &[ValidOp],
    tables: &TableConfig,
    mut context: BatchContext,
) -> Result<PushPlan, StoreError> {
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut changes = Vec::new();
    let mut finals: HashMap<(String, String), RecordColumns> = HashMap::new();
    let mut batch_messages = BatchMessages::default();
    let mut head = context.head;
    for op in ops {
        if let Some(version) = context.applied_ops.get(op.op_id.as_str()) {
            outcomes.push(OpOutcome::Duplicate(Some(*version)));
            continue;
        }
        let key = (op.table_name.clone(), op.pk.clone());
        let current = context.records.get(&key);
        if let Some(current) = current {
            match op.stamp().compare(&current.stamp) {
                Ordering::Equal => {
                    outcomes.push(OpOutcome::Duplicate(Some(current.server_version)));
                    continue;
                }
                Ordering::Less => {
                    outcomes.push(OpOutcome::Superseded(current.stored_version()));
                    continue;
                }
                Ordering::Greater => {}
            }
        }

        let pk_field = tables.pk_field(&op.table_name).unwrap_or("id");
        // Only a delete without payload keeps the previous row.
        let previous_row = match op.payload {
            Some(_) => None,
            None => current
                .and_then(|c| c.payload.as_deref())
                .and_then(|t| serde_json::from_str::<Map<String, Value>>(t).ok()),
        };
        let row = committed_row(op, previous_row, pk_field);
        let scope_kind = table_scope(&op.table_name);
        let thread_id = match scope_kind {
            TableScope::ThreadProject => thread_id_of(&row).map(str::to_owned),
            _ => None,
        };
        let project_id = match scope_kind {
            TableScope::Workspace => None,
            TableScope::OwnProject => project_id_of(&row).map(str::to_owned),
            TableScope::ThreadProject => match &thread_id {
                Some(thread) => thread_project(&context, thread),
                None => None,
            },
        };
        // A new thread whose messages arrived first was outside every
        // project until now: log it as moving in, so its project's clients
        // rescan.
        let previous_project = match (current, scope_kind) {
            (Some(c), _) => Some(c.project_id.as_deref()),
            (None, TableScope::OwnProject) if batch_messages.name(&context, &op.pk) => Some(None),
            _ => None,
        };
        let scope = logged_scope(scope_kind, project_id.as_deref(), previous_project);
        let record_thread_id = thread_id.or_else(|| current.and_then(|c| c.thread_id.clone()));
        if scope_kind == TableScope::ThreadProject {
            batch_messages.write(&op.pk, current, record_thread_id.clone());
        }
        let payload = serde_json::value::to_raw_value(&Value::Object(row))
            .map_err(|e| StoreError::Internal(format!("committed row: {e}")))?;
        let stored_payload = payload.get().to_owned();
        let deleted = op.is_tombstone();
        head += 1;

        context
            .applied_ops
            .insert(op.op_id.as_str().to_owned(), head);
        finals.insert(
            key.clone(),
            RecordColumns {
                server_version: head,
                scope_kind,
                thread_id: record_thread_id.clone(),
            },
        );
        changes.push(LoggedChange {
            change: Change {
                server_version: head,
                table_name: op.table_name.clone(),
                pk: op.pk.clone(),
                operation: if deleted {
                    Operation::Delete
                } else {
                    Operation::Put
                },
                payload,
                clock: op.clock,
                hlc: op.hlc.to_string(),
                op_id: op.op_id.as_str().to_owned(),
                device_id: op.device_id.as_str().to_owned(),
                scope_change: scope.scope_change,
            },
            scope,
        });
        context.records.insert(
            key,
            RecordState {
                stamp: op.stamp(),
                server_version: head,
                deleted,
                payload: Some(stored_payload),
                project_id,
                thread_id: record_thread_id,
            },
        );
        outcomes.push(OpOutcome::Applied(head));
    }
    let mut records: Vec<RecordColumns> = finals.into_values().collect();
    records.sort_by_key(|r| r.server_version);
    Ok(PushPlan {
        outcomes,
        changes,
        records,
        head,
    })
}

/// The threads of the messages written so far in a batch: where each was
/// stored before the batch, and where it is now.
#[derive(Default)]
struct BatchMessages {
    threads: HashMap<String, (Option<String>, Option<String>)>,
}

impl BatchMessages {
    fn write(&mut self, pk: &str, stored: Option<&RecordState>, thread: Option<String>) {
        let before = stored.and_then(|s| s.thread_id.clone());
        self.threads
            .entry(pk.to_owned())
            .and_modify(|(_, now)| *now = thread.clone())
            .or_insert((before, thread));
    }

    /// True when some message names `thread` at this point of the batch
    /// (stored messages that the batch moved elsewhere do not count).
    fn name(&self, context: &BatchContext, thread: &str) -> bool {
        let is = |t: &Option<String>| t.as_deref() == Some(thread);
        if self.threads.values().any(|(_, now)| is(now)) {
            return true;
        }
        let moved_away = self
            .threads
            .values()
            .filter(|(before, _)| is(before))
            .count();
        context.thread_messages.get(thread).copied().unwrap_or(0) > moved_away as u64
    }
}

/// A thread's project as of this point of the batch: written earlier in the
/// batch, else as stored.
fn thread_project(context: &BatchContext, thread: &str) -> Option<String> {
    match context
        .records
        .get(&("threads".to_owned(), thread.to_owned()))
    {
        Some(stored) => stored.project_id.clone(),
        None => context.thread_projects.get(thread).cloned().flatten(),
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

/// Applies valid ops in one transaction (editors and owners only).
pub(super) async fn push(
    client: &mut Client,
    tables: &TableConfig,
    ws: &WorkspaceId,
    access: &Access,
    ops: Vec<ValidOp>,
    now_ms: u64,
) -> Result<PushOutcome, StoreError> {
    let mut keys = HashSet::new();
    let (mut key_tables, mut key_pks) = (Vec::new(), Vec::new());
    let (mut named_threads, mut message_pks, mut thread_pks) = (Vec::new(), Vec::new(), Vec::new());
    for op in &ops {
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

    let tx = client.transaction().await.map_err(pg_error)?;
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
    check_role(access, role, Role::Editor)?;

    let mut context = BatchContext {
        head: locked.try_get::<_, i64>(0).map_err(column_error)? as u64,
        ..BatchContext::default()
    };
    for r in &record_rows {
        let key = (
            r.try_get(0).map_err(column_error)?,
            r.try_get(1).map_err(column_error)?,
        );
        let state = RecordState {
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
        context.records.insert(key, state);
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
            r.try_get::<_, i64>(1).map_err(column_error)? as u64,
        );
    }

    for r in &thread_message_rows {
        context.thread_messages.insert(
            r.try_get(0).map_err(column_error)?,
            r.try_get::<_, i64>(1).map_err(column_error)?.max(0) as u64,
        );
    }

    let plan = plan_push(&ops, tables, context)?;
    if !plan.changes.is_empty() {
        write_batch(&tx, ws, &plan, now_ms).await?;
        tx.commit().await.map_err(pg_error)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sync_core::validate::{validate_op, ValidationLimits};

    const T: u64 = 1_800_000_000_000;

    fn op(table: &str, pk: &str, clock: u64, counter: u32, data: Value) -> ValidOp {
        let mut payload = json!({ "id": pk });
        for (k, v) in data.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let raw = json!({
            "op_id": uuid::Uuid::new_v4().to_string(), "table_name": table, "operation": "put",
            "pk": pk, "payload": payload, "clock": clock,
            "hlc": format!("{T:013}-{counter:06}-abcdefabcdefabcd"), "device_id": "abcdefabcdefabcd",
        });
        validate_op(
            &raw,
            &TableConfig::or3_chat(),
            &ValidationLimits::default(),
            T,
        )
        .unwrap()
    }

    fn plan(ops: &[ValidOp], context: BatchContext) -> PushPlan {
        plan_push(ops, &TableConfig::or3_chat(), context).unwrap()
    }

    #[test]
    fn a_record_written_twice_in_a_batch_is_upserted_once_with_its_last_write() {
        let ops = [
            op("messages", "m1", 1, 0, json!({"thread_id": "t1"})),
            op("messages", "m1", 2, 1, json!({"thread_id": "t2"})),
        ];
        let plan = plan(&ops, BatchContext::default());
        assert_eq!(plan.changes.len(), 2, "both writes are logged");
        assert_eq!(
            plan.records,
            [RecordColumns {
                server_version: 2,
                scope_kind: TableScope::ThreadProject,
                thread_id: Some("t2".into()),
            }],
            "one row per record: an upsert may touch a row once"
        );
    }

    #[test]
    fn a_message_takes_the_project_of_its_thread_at_this_point_of_the_batch() {
        let context = BatchContext {
            thread_projects: HashMap::from([("t1".to_owned(), Some("stored".to_owned()))]),
            head: 7,
            ..BatchContext::default()
        };
        let ops = [
            op("messages", "m1", 1, 0, json!({"thread_id": "t1"})),
            op("threads", "t1", 5, 1, json!({"project_id": "moved"})),
            op("messages", "m2", 1, 2, json!({"thread_id": "t1"})),
        ];
        let plan = plan(&ops, context);
        let projects: Vec<Option<&str>> = plan
            .changes
            .iter()
            .map(|c| c.scope.project_id.as_deref())
            .collect();
        assert_eq!(projects, [Some("stored"), Some("moved"), Some("moved")]);
        assert_eq!(plan.head, 10);
    }

    #[test]
    fn a_new_thread_is_a_scope_change_when_messages_name_it_at_that_point() {
        let stored_m1 = RecordState {
            stamp: Stamp {
                clock: 1,
                hlc: format!("{T:013}-000000-abcdefabcdefabcd"),
                op_id: "x".into(),
            },
            server_version: 1,
            deleted: false,
            payload: None,
            project_id: None,
            thread_id: Some("t1".into()),
        };
        let context = || BatchContext {
            records: HashMap::from([(("messages".into(), "m1".into()), stored_m1.clone())]),
            thread_messages: HashMap::from([("t1".into(), 1)]),
            head: 1,
            ..BatchContext::default()
        };
        let thread = |pk: &str, counter| op("threads", pk, 1, counter, json!({"project_id": "p"}));
        // m1 (stored) names t1; m2, earlier in the batch, names t2.
        let ops = [
            op("messages", "m2", 1, 1, json!({"thread_id": "t2"})),
            thread("t1", 2),
            thread("t2", 3),
            thread("t3", 4),
        ];
        let changes: Vec<bool> = plan(&ops, context())
            .changes
            .iter()
            .map(|c| c.change.scope_change)
            .collect();
        assert_eq!(changes, [false, true, true, false]);
        // The batch moves m1 to t9 first: then nothing names t1.
        let ops = [
            op("messages", "m1", 2, 5, json!({"thread_id": "t9"})),
            thread("t1", 6),
        ];
        assert!(!plan(&ops, context()).changes[1].change.scope_change);
    }

    #[test]
    fn known_op_ids_are_duplicates_with_their_versions() {
        let first = op("kv", "k1", 1, 0, json!({}));
        let context = BatchContext {
            applied_ops: HashMap::from([(first.op_id.as_str().to_owned(), 3)]),
            head: 3,
            ..BatchContext::default()
        };
        let plan = plan(&[first.clone(), first], context);
        assert!(plan
            .outcomes
            .iter()
            .all(|o| matches!(o, OpOutcome::Duplicate(Some(3)))));
        assert!(plan.changes.is_empty() && plan.records.is_empty());
    }
}
