//! A push on SQLite, inside its savepoint of the writer's group transaction
//! (`writer.rs`): the
//! batch is decided by `sync_core::push::plan_push`, whose lookups of the
//! state before the batch are prepared statements on the transaction, then
//! written: per applied op a log entry and an applied op id, per record
//! written one upsert with its last write.

use super::internal;
use crate::store::{stored_operation, PushOutcome, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use sync_core::push::{plan_push, AppliedOp, OpContent, StoredRecord, StoredState};
use sync_core::{OpId, ServerVersion, Stamp, TableConfig, ValidOp, WorkspaceId};

/// The committed state of one workspace, read through the push transaction.
struct Committed<'t> {
    tx: &'t Connection,
    ws: &'t str,
}

impl StoredState for Committed<'_> {
    type Error = StoreError;

    fn applied_op(&mut self, op_id: &OpId) -> Result<Option<AppliedOp>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT a.server_version, l.table_name, l.pk, l.operation, l.clock, l.hlc, l.device_id
                 FROM applied_ops a LEFT JOIN change_log l
                     ON l.workspace_id = a.workspace_id AND l.server_version = a.server_version
                 WHERE a.workspace_id = ?1 AND a.op_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row([self.ws, op_id.as_str()], |r| {
                    let content = match r.get::<_, Option<String>>(1)? {
                        Some(table_name) => Some((
                            table_name,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)? as u64,
                            r.get::<_, String>(5)?,
                            r.get::<_, String>(6)?,
                        )),
                        None => None,
                    };
                    Ok((r.get::<_, i64>(0)? as u64, content))
                })
                .optional()
            })
            .map_err(internal)?
            .map(|(server_version, content)| {
                let content = match content {
                    Some((table_name, pk, operation, clock, hlc, device_id)) => Some(OpContent {
                        table_name,
                        pk,
                        operation: stored_operation(&operation)?,
                        clock,
                        hlc,
                        device_id,
                    }),
                    None => None,
                };
                Ok::<_, StoreError>(AppliedOp {
                    server_version,
                    content,
                })
            })
            .transpose()
    }

    fn record(&mut self, table_name: &str, pk: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT clock, hlc, op_id, server_version, deleted, payload, project_id, thread_id
                 FROM records WHERE workspace_id = ?1 AND table_name = ?2 AND pk = ?3",
            )
            .and_then(|mut s| {
                s.query_row([self.ws, table_name, pk], |r| {
                    Ok(StoredRecord {
                        stamp: Stamp {
                            clock: r.get::<_, i64>(0)? as u64,
                            hlc: r.get(1)?,
                            op_id: r.get(2)?,
                        },
                        server_version: r.get::<_, i64>(3)? as u64,
                        deleted: r.get(4)?,
                        payload: r.get(5)?,
                        project_id: r.get(6)?,
                        thread_id: r.get(7)?,
                    })
                })
                .optional()
            })
            .map_err(internal)
    }

    fn thread_project(&mut self, thread_id: &str) -> Result<Option<String>, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT project_id FROM records
                 WHERE workspace_id = ?1 AND table_name = 'threads' AND pk = ?2",
            )
            .and_then(|mut s| {
                s.query_row([self.ws, thread_id], |r| r.get::<_, Option<String>>(0))
                    .optional()
            })
            .map(Option::flatten)
            .map_err(internal)
    }

    fn messages_naming(&mut self, thread_id: &str, at_most: u64) -> Result<u64, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM records
                 WHERE workspace_id = ?1 AND thread_id = ?2 AND table_name = 'messages' LIMIT ?3)",
            )
            .and_then(|mut s| {
                s.query_row(params![self.ws, thread_id, at_most as i64], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map(|n| n.max(0) as u64)
            .map_err(internal)
    }
}

/// Decides and writes a batch inside the caller's transaction (a savepoint
/// of the writer's group, `writer.rs`), which commits it.
pub(super) fn push(
    tx: &Connection,
    tables: &TableConfig,
    ws: &WorkspaceId,
    head: ServerVersion,
    ops: &[ValidOp],
    now_ms: u64,
) -> Result<PushOutcome, StoreError> {
    let ws = ws.as_str();
    let plan = plan_push(ops, tables, head, now_ms, &mut Committed { tx, ws })?;
    if plan.changes.is_empty() {
        return Ok(PushOutcome {
            outcomes: plan.outcomes,
            server_version: plan.head,
            changes: plan.changes,
        });
    }
    let now = now_ms as i64;
    for logged in &plan.changes {
        let (change, scope) = (&logged.change, &logged.scope);
        let version = change.server_version as i64;
        tx.prepare_cached(
            "INSERT INTO change_log (workspace_id, server_version, table_name, pk, operation, payload,
                 clock, hlc, op_id, device_id, scoped, project_id, prev_project_id, scope_change, committed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .and_then(|mut s| {
            s.execute(params![
                ws,
                version,
                change.table_name,
                change.pk,
                change.operation.as_str(),
                change.payload.get(),
                change.clock as i64,
                change.hlc,
                change.op_id,
                change.device_id,
                scope.scoped,
                scope.project_id,
                scope.prev_project_id,
                scope.scope_change,
                now,
            ])
        })
        .map_err(internal)?;
        tx.prepare_cached(
            "INSERT INTO applied_ops (workspace_id, op_id, server_version, committed_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![ws, change.op_id, version, now]))
        .map_err(internal)?;
    }
    for (logged, record) in plan.record_writes() {
        let change = &logged.change;
        tx.prepare_cached(
            "INSERT INTO records (workspace_id, table_name, pk, clock, hlc, op_id, server_version, deleted,
                 payload, scope_kind, project_id, thread_id, committed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (workspace_id, table_name, pk) DO UPDATE SET
                 clock = excluded.clock, hlc = excluded.hlc, op_id = excluded.op_id,
                 server_version = excluded.server_version, deleted = excluded.deleted,
                 payload = excluded.payload, scope_kind = excluded.scope_kind,
                 project_id = excluded.project_id, thread_id = excluded.thread_id,
                 committed_at = excluded.committed_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                ws,
                change.table_name,
                change.pk,
                change.clock as i64,
                change.hlc,
                change.op_id,
                change.server_version as i64,
                change.operation == sync_core::validate::Operation::Delete,
                change.payload.get(),
                record.scope_kind as i64,
                logged.scope.project_id,
                record.thread_id,
                now,
            ])
        })
        .map_err(internal)?;
    }
    tx.execute(
        "UPDATE workspaces SET head = ?2 WHERE id = ?1",
        params![ws, plan.head as i64],
    )
    .map_err(internal)?;
    Ok(PushOutcome {
        outcomes: plan.outcomes,
        server_version: plan.head,
        changes: plan.changes,
    })
}
