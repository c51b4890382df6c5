//! Reads: pull pages, the realtime hub's log tail, snapshot pages, all on a
//! reader connection in one read transaction each.

use super::members::require;
use super::{internal, workspace_positions};
use crate::store::{
    stored_operation, Access, ChangeSink, ChangesBatch, ChangesPage, ChangesQuery, LoggedChange,
    SnapshotBatch, SnapshotQuery, StoreError,
};
use rusqlite::{params, Connection};
use sync_core::scope::LoggedScope;
use sync_core::wire::{stored_json, ChangeJson, RecordVersion};
use sync_core::{Role, ServerVersion, WorkspaceId};

/// The columns every record read selects (from `records r`), in
/// [`record_from_row`]'s order.
pub(super) const RECORD_COLUMNS: &str =
    "r.table_name, r.pk, r.payload, r.deleted, r.clock, r.hlc, r.op_id, r.server_version,
     r.committed_at";

pub(super) fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordVersion> {
    Ok(RecordVersion {
        table_name: r.get(0)?,
        pk: r.get(1)?,
        payload: stored_json(r.get(2)?),
        deleted: r.get(3)?,
        clock: r.get::<_, i64>(4)? as u64,
        hlc: r.get(5)?,
        op_id: r.get(6)?,
        server_version: r.get::<_, i64>(7)? as u64,
        committed_at: r.get::<_, i64>(8)?.max(0) as u64,
    })
}

/// The columns every change read selects, in [`change_json_from_row`]'s order.
pub(super) const CHANGE_COLUMNS: &str =
    "server_version, table_name, pk, operation, payload, clock, hlc, op_id, device_id, scope_change,
     committed_at";

/// One row of [`CHANGE_COLUMNS`], borrowed. The payload is JSON this server
/// validated and stored: its bytes are taken as they are, not checked again.
pub(super) fn change_json_from_row<'r>(
    r: &'r rusqlite::Row<'_>,
) -> rusqlite::Result<ChangeJson<'r>> {
    let text = |i: usize| -> rusqlite::Result<&'r str> {
        r.get_ref(i)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let payload = match r.get_ref(4)? {
        rusqlite::types::ValueRef::Null => None,
        rusqlite::types::ValueRef::Text(bytes) => Some(bytes),
        _ => Some(text(4)?.as_bytes()),
    };
    Ok(ChangeJson {
        server_version: r.get::<_, i64>(0)? as u64,
        table_name: text(1)?,
        pk: text(2)?,
        operation: stored_operation(text(3)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        payload,
        clock: r.get::<_, i64>(5)? as u64,
        hlc: text(6)?,
        op_id: text(7)?,
        device_id: text(8)?,
        scope_change: r.get(9)?,
        committed_at: r.get::<_, i64>(10)?.max(0) as u64,
    })
}

/// A table filter as the JSON array `json_each` reads; `None`: no filter.
fn tables_json(tables: &Option<Vec<String>>) -> Option<String> {
    tables
        .as_ref()
        .map(|t| serde_json::Value::from(t.clone()).to_string())
}

pub(super) fn read_log_since(
    conn: &mut Connection,
    ws: &str,
    after: ServerVersion,
    limit: usize,
) -> Result<(Vec<LoggedChange>, ServerVersion), StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let (head, _) = workspace_positions(&tx, ws)?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS}, scoped, project_id, prev_project_id FROM change_log
             WHERE workspace_id = ?1 AND server_version > ?2 ORDER BY server_version LIMIT ?3"
        ))
        .map_err(internal)?;
    let entries = stmt
        .query_map(params![ws, after as i64, limit as i64], |r| {
            let change = change_json_from_row(r)?.to_change();
            Ok(LoggedChange {
                scope: LoggedScope {
                    scoped: r.get(11)?,
                    project_id: r.get(12)?,
                    prev_project_id: r.get(13)?,
                    scope_change: change.scope_change,
                },
                change,
            })
        })
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    Ok((entries, head))
}

pub(super) fn read_changes<C: ChangeSink>(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
    query: &ChangesQuery,
) -> Result<ChangesBatch<C>, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    require(&tx, ws, access, Role::Viewer)?;
    let (head, oldest) = workspace_positions(&tx, ws.as_str())?;
    let mut page = ChangesPage::<C>::open(query, head, oldest)?;
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM change_log
             WHERE workspace_id = ?1 AND server_version > ?2 AND server_version <= ?3
               AND (?4 IS NULL OR scoped = 0 OR project_id = ?4 OR prev_project_id = ?4)
               AND (?6 IS NULL OR table_name IN (SELECT value FROM json_each(?6)))
             ORDER BY server_version LIMIT ?5"
        ))
        .map_err(internal)?;
    let mut rows = stmt
        .query(params![
            ws.as_str(),
            query.cursor as i64,
            page.window_end() as i64,
            query.project_id,
            page.row_limit(),
            tables_json(&query.tables),
        ])
        .map_err(internal)?;
    while let Some(r) = rows.next().map_err(internal)? {
        let bytes_before = page.bytes();
        if !page.offer(change_json_from_row(r).map_err(internal)?, bytes_before) {
            break;
        }
    }
    Ok(page.finish())
}

pub(super) fn read_snapshot(
    conn: &mut Connection,
    ws: &WorkspaceId,
    access: &Access,
    query: &SnapshotQuery,
) -> Result<SnapshotBatch, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    require(&tx, ws, access, Role::Viewer)?;
    let snapshot_version = match query.snapshot_version {
        Some(version) => version,
        None => workspace_positions(&tx, ws.as_str())?.0,
    };
    let (after_table, after_pk) = query.after.clone().unwrap_or_default();
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records r
             WHERE r.workspace_id = ?1 AND (r.table_name, r.pk) > (?2, ?3)
               AND (?4 IS NULL OR r.scope_kind = 0
                    OR (r.scope_kind = 1 AND r.project_id = ?4)
                    OR (r.scope_kind = 2 AND EXISTS (
                        SELECT 1 FROM records t WHERE t.workspace_id = r.workspace_id
                          AND t.table_name = 'threads' AND t.pk = r.thread_id AND t.project_id = ?4)))
               AND (?6 IS NULL OR r.table_name IN (SELECT value FROM json_each(?6)))
             ORDER BY r.table_name, r.pk LIMIT ?5"
        ))
        .map_err(internal)?;
    let mut items = stmt
        .query_map(
            params![
                ws.as_str(),
                after_table,
                after_pk,
                query.project_id,
                query.limit as i64 + 1,
                tables_json(&query.tables),
            ],
            record_from_row,
        )
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    let has_more = items.len() > query.limit;
    items.truncate(query.limit);
    Ok(SnapshotBatch {
        snapshot_version,
        items,
        has_more,
    })
}
