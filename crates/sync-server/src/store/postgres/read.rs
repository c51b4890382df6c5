//! Reads: pull pages, the realtime hub's log tail, snapshot pages, each on
//! one `REPEATABLE READ` snapshot.

use super::connect::{column_error, pg_error};
use super::members::{require, Lock};
use super::text::{project_from_db, project_to_db};
use super::{read_tx, u64_at, workspace_head};
use crate::store::{
    stored_operation, Access, ChangeSink, ChangesBatch, ChangesPage, ChangesQuery, LoggedChange,
    SnapshotBatch, SnapshotQuery, StoreError, MAX_PAGE_PAYLOAD_BYTES,
};
use deadpool_postgres::Client;
use sync_core::scope::LoggedScope;
use sync_core::wire::{stored_json, ChangeJson, RecordVersion};
use sync_core::{Role, ServerVersion, WorkspaceId};
use tokio_postgres::Row;

/// The columns every change read selects, in [`change_json_from_row`]'s order.
pub(super) const CHANGE_COLUMNS: &str =
    "server_version, table_name, pk, operation, payload, clock, hlc, op_id, device_id, scope_change,
     committed_at";

/// One row of [`CHANGE_COLUMNS`], borrowed (the payload as the text it was stored as).
pub(super) fn change_json_from_row(r: &Row) -> Result<ChangeJson<'_>, StoreError> {
    let text = |i: usize| -> Result<&str, StoreError> { r.try_get(i).map_err(column_error) };
    Ok(ChangeJson {
        server_version: u64_at(r, 0)?,
        table_name: text(1)?,
        pk: text(2)?,
        operation: stored_operation(text(3)?)?,
        payload: r
            .try_get::<_, Option<&str>>(4)
            .map_err(column_error)?
            .map(str::as_bytes),
        clock: u64_at(r, 5)?,
        hlc: text(6)?,
        op_id: text(7)?,
        device_id: text(8)?,
        scope_change: r.try_get(9).map_err(column_error)?,
        committed_at: u64_at(r, 10)?,
    })
}

/// The columns every record read selects, in [`record_from_row`]'s order.
pub(super) const RECORD_COLUMNS: &str =
    "r.table_name, r.pk, r.payload, r.deleted, r.clock, r.hlc, r.op_id, r.server_version,
     r.committed_at";

pub(super) fn record_from_row(r: &Row) -> Result<RecordVersion, StoreError> {
    Ok(RecordVersion {
        table_name: r.try_get(0).map_err(column_error)?,
        pk: r.try_get(1).map_err(column_error)?,
        payload: stored_json(r.try_get(2).map_err(column_error)?),
        deleted: r.try_get(3).map_err(column_error)?,
        clock: u64_at(r, 4)?,
        hlc: r.try_get(5).map_err(column_error)?,
        op_id: r.try_get(6).map_err(column_error)?,
        server_version: u64_at(r, 7)?,
        committed_at: u64_at(r, 8)?,
    })
}

/// A pull page. The 4 MiB rule is computed by the server: each row carries
/// the payload bytes of the rows before it (`before`), and rows past the
/// limit come without payload, so a page never ships much more than it
/// returns. `before` counts a missing payload as the 4 bytes of `null`, as
/// the SQLite store does.
pub(super) async fn read_changes<C: ChangeSink>(
    client: &mut Client,
    ws: &WorkspaceId,
    access: &Access,
    query: &ChangesQuery,
) -> Result<ChangesBatch<C>, StoreError> {
    let tx = read_tx(client).await?;
    let positions = require(&tx, ws, access, Role::Viewer, Lock::None).await?;
    let mut page =
        ChangesPage::<C>::open(query, positions.head, positions.oldest_retained_version)?;
    let stmt = tx
        .prepare_cached(
            "SELECT server_version, table_name, pk, operation,
                 CASE WHEN n = 1 OR before < $6 THEN payload END,
                 clock, hlc, op_id, device_id, scope_change, committed_at, before
             FROM (
                 SELECT c.*, row_number() OVER w AS n,
                     coalesce(sum(coalesce(octet_length(c.payload), 4))
                         OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                 FROM (
                     SELECT server_version, table_name, pk, operation, payload, clock, hlc, op_id,
                         device_id, scope_change, committed_at
                     FROM change_log
                     WHERE workspace_id = $1 AND server_version > $2 AND server_version <= $3
                       AND ($4::text IS NULL OR NOT scoped OR project_id = $4 OR prev_project_id = $4)
                       AND ($7::text[] IS NULL OR table_name = ANY($7))
                     ORDER BY server_version LIMIT $5
                 ) c
                 WINDOW w AS (ORDER BY c.server_version)
             ) x
             ORDER BY server_version",
        )
        .await
        .map_err(pg_error)?;
    let rows = tx
        .query(
            &stmt,
            &[
                &ws.as_str(),
                &(query.cursor as i64),
                &(page.window_end() as i64),
                &query.project_id.as_deref().map(project_to_db),
                &page.row_limit(),
                &(MAX_PAGE_PAYLOAD_BYTES as i64),
                &query.tables,
            ],
        )
        .await
        .map_err(pg_error)?;
    for r in &rows {
        let before: i64 = r.try_get(11).map_err(column_error)?;
        if !page.offer(change_json_from_row(r)?, before.max(0) as usize) {
            break;
        }
    }
    Ok(page.finish())
}

pub(super) async fn read_snapshot(
    client: &mut Client,
    ws: &WorkspaceId,
    access: &Access,
    query: &SnapshotQuery,
) -> Result<SnapshotBatch, StoreError> {
    let tx = read_tx(client).await?;
    let positions = require(&tx, ws, access, Role::Viewer, Lock::None).await?;
    let snapshot_version = query.snapshot_version.unwrap_or(positions.head);
    let (after_table, after_pk) = query.after.clone().unwrap_or_default();
    // Table names and keys never hold NUL; Postgres text cannot either.
    if after_table.contains('\0') || after_pk.contains('\0') {
        return Err(StoreError::InvalidPageToken("the page token is malformed"));
    }
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records r
             WHERE r.workspace_id = $1 AND (r.table_name, r.pk) > ($2, $3)
               AND ($4::text IS NULL OR r.scope_kind = 0
                    OR (r.scope_kind = 1 AND r.project_id = $4)
                    OR (r.scope_kind = 2 AND EXISTS (
                        SELECT 1 FROM records t WHERE t.workspace_id = r.workspace_id
                          AND t.table_name = 'threads' AND t.pk = r.thread_id AND t.project_id = $4)))
               AND ($6::text[] IS NULL OR r.table_name = ANY($6))
             ORDER BY r.table_name, r.pk LIMIT $5"
        ))
        .await
        .map_err(pg_error)?;
    let rows = tx
        .query(
            &stmt,
            &[
                &ws.as_str(),
                &after_table,
                &after_pk,
                &query.project_id.as_deref().map(project_to_db),
                &(query.limit as i64 + 1),
                &query.tables,
            ],
        )
        .await
        .map_err(pg_error)?;
    let has_more = rows.len() > query.limit;
    let items = rows
        .iter()
        .take(query.limit)
        .map(record_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SnapshotBatch {
        snapshot_version,
        items,
        has_more,
    })
}

pub(super) async fn read_log_since(
    client: &mut Client,
    ws: &WorkspaceId,
    after: ServerVersion,
    limit: usize,
) -> Result<(Vec<LoggedChange>, ServerVersion), StoreError> {
    let tx = read_tx(client).await?;
    let head = workspace_head(&tx, ws).await?;
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS}, scoped, project_id, prev_project_id FROM change_log
             WHERE workspace_id = $1 AND server_version > $2 ORDER BY server_version LIMIT $3"
        ))
        .await
        .map_err(pg_error)?;
    let rows = tx
        .query(&stmt, &[&ws.as_str(), &(after as i64), &(limit as i64)])
        .await
        .map_err(pg_error)?;
    let entries = rows
        .iter()
        .map(|r| {
            let change = change_json_from_row(r)?.to_change();
            Ok(LoggedChange {
                scope: LoggedScope {
                    scoped: r.try_get(11).map_err(column_error)?,
                    project_id: r
                        .try_get::<_, Option<String>>(12)
                        .map_err(column_error)?
                        .map(project_from_db),
                    prev_project_id: r
                        .try_get::<_, Option<String>>(13)
                        .map_err(column_error)?
                        .map(project_from_db),
                    scope_change: change.scope_change,
                },
                change,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((entries, head))
}
