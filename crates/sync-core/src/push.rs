//! The push decision (PROTOCOL.md section 4), made once for every store:
//! each valid op of a batch, in order, is a duplicate by op id (or, with
//! other content under an applied op id, rejected `op_id_reused`), else loses or
//! ties last-writer-wins against the record's current version, else is
//! applied with the next server version, its committed row and the project
//! scope resolved at this point of the batch.
//!
//! [`plan_push`] reads the state from before the batch through a
//! [`StoredState`] (live queries inside the store's transaction, or rows the
//! store read ahead) and keeps the batch's own writes in memory, so an op sees
//! the earlier ops of its batch (two ops on one record, a repeated op id, a
//! thread written before its messages). The store then writes the plan:
//! nothing here does I/O.

use crate::commit::committed_row;
use crate::scope::{
    logged_scope, project_id_of, table_scope, thread_id_of, LoggedScope, TableScope,
};
use crate::validate::{Operation, Rejection};
use crate::wire::{stored_json, Change};
use crate::{OpId, ServerVersion, Stamp, TableConfig, ValidOp};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

/// A record as stored before the batch, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The stamp of the write that made this version.
    pub stamp: Stamp,
    /// Its log position.
    pub server_version: ServerVersion,
    /// Tombstone flag.
    pub deleted: bool,
    /// The row as JSON text; `None` once a tombstone's payload is purged.
    pub payload: Option<String>,
    /// The project the record was committed under (threads and messages).
    pub project_id: Option<String>,
    /// A message's thread.
    pub thread_id: Option<String>,
}

impl StoredRecord {
    fn stored_version(&self) -> StoredVersion {
        StoredVersion {
            stamp: self.stamp.clone(),
            server_version: self.server_version,
            deleted: self.deleted,
            payload: stored_json(self.payload.clone()),
        }
    }
}

/// What identifies an op's write apart from its id and payload: two ops with
/// one op id must agree on all of it to be the same op (PROTOCOL.md section 4,
/// `op_id_reused`). The operation is the logged one (a put whose payload says
/// `deleted: true` is logged as a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpContent {
    /// Table.
    pub table_name: String,
    /// Record key.
    pub pk: String,
    /// Logged operation.
    pub operation: Operation,
    /// Record clock.
    pub clock: u64,
    /// Write hlc.
    pub hlc: String,
    /// Writing device.
    pub device_id: String,
}

impl OpContent {
    /// The content of a valid op as it would be logged.
    pub fn of(op: &ValidOp) -> OpContent {
        OpContent {
            table_name: op.table_name.clone(),
            pk: op.pk.clone(),
            operation: logged_operation(op),
            clock: op.clock,
            hlc: op.hlc.to_string(),
            device_id: op.device_id.as_str().to_owned(),
        }
    }
}

/// An op id applied before: its version and, while its log entry is kept,
/// what it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedOp {
    /// The version it was applied at.
    pub server_version: ServerVersion,
    /// Its logged content; `None` when the entry is gone (then a repeat of
    /// the id is taken for the same op).
    pub content: Option<OpContent>,
}

/// The workspace as it was before the batch. Every answer describes the
/// committed state: the planner itself accounts for the batch's writes.
pub trait StoredState {
    /// What a lookup can fail with (a database error).
    type Error;
    /// The version an op id was applied at and what it wrote, if it was.
    fn applied_op(&mut self, op_id: &OpId) -> Result<Option<AppliedOp>, Self::Error>;
    /// The current version of a record, tombstones included.
    fn record(&mut self, table_name: &str, pk: &str) -> Result<Option<StoredRecord>, Self::Error>;
    /// The project of a stored thread (`None`: no such thread, or no project).
    fn thread_project(&mut self, thread_id: &str) -> Result<Option<String>, Self::Error>;
    /// How many stored messages name `thread_id`, counting no further than
    /// `at_most`.
    fn messages_naming(&mut self, thread_id: &str, at_most: u64) -> Result<u64, Self::Error>;
}

/// A stored record version, as returned in a `superseded` winner.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// Stamp of the stored write.
    pub stamp: Stamp,
    /// Its log position.
    pub server_version: ServerVersion,
    /// Tombstone flag.
    pub deleted: bool,
    /// The row as JSON text; `null` once a tombstone's payload is purged.
    pub payload: Box<RawValue>,
}

/// The outcome of one valid op.
#[derive(Debug, Clone)]
pub enum OpOutcome {
    /// Entered the log at this version.
    Applied(ServerVersion),
    /// Seen before; the original version when still known.
    Duplicate(Option<ServerVersion>),
    /// Lost to the stored version.
    Superseded(StoredVersion),
    /// Refused by the stored state (`op_id_reused`); nothing written.
    Rejected(Rejection),
}

/// A log entry with the project scope it was committed under, so realtime
/// fanout can filter by project without another read.
#[derive(Debug, Clone)]
pub struct LoggedChange {
    /// The entry as clients see it.
    pub change: Change,
    /// Its project columns.
    pub scope: LoggedScope,
}

impl LoggedChange {
    /// True when a subscriber of `project_id` (or of the whole workspace) gets it.
    pub fn in_scope(&self, project_id: Option<&str>) -> bool {
        match project_id {
            None => true,
            Some(p) => {
                !self.scope.scoped
                    || self.scope.project_id.as_deref() == Some(p)
                    || self.scope.prev_project_id.as_deref() == Some(p)
            }
        }
    }
}

/// The record columns that are not in the log entry of the record's last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordColumns {
    /// The version of the record's last write in the batch.
    pub server_version: ServerVersion,
    /// The table's scope rule.
    pub scope_kind: TableScope,
    /// A message's thread (kept from the stored row when the write names none).
    pub thread_id: Option<String>,
}

/// The decided batch, for the store to write.
#[derive(Debug)]
pub struct PushPlan {
    /// One per op, in order.
    pub outcomes: Vec<OpOutcome>,
    /// The new log entries, ascending and gap-free from the old head + 1.
    pub changes: Vec<LoggedChange>,
    /// One per record written, its last write in the batch, ascending.
    pub records: Vec<RecordColumns>,
    /// The head after the batch.
    pub head: ServerVersion,
}

impl PushPlan {
    /// Each record to upsert with the log entry of its last write.
    pub fn record_writes(&self) -> impl Iterator<Item = (&LoggedChange, &RecordColumns)> {
        let first = self.changes.first().map_or(0, |c| c.change.server_version);
        self.records.iter().map(move |r| {
            // Versions are consecutive from `first` (see `changes`).
            (&self.changes[(r.server_version - first) as usize], r)
        })
    }
}

/// Decides every op of a batch, in order, against the state before the batch
/// (`stored`, at version `head`) and the batch's own earlier writes; the log
/// entries carry the commit time `committed_at` (epoch ms).
pub fn plan_push<S: StoredState>(
    ops: &[ValidOp],
    tables: &TableConfig,
    head: ServerVersion,
    committed_at: u64,
    stored: &mut S,
) -> Result<PushPlan, S::Error> {
    let mut batch = Batch {
        stored,
        message_cap: ops.len() as u64 + 1,
        records: HashMap::new(),
        applied: HashMap::new(),
        message_threads: HashMap::new(),
    };
    let mut outcomes = Vec::with_capacity(ops.len());
    let mut changes = Vec::new();
    let mut finals: HashMap<(String, String), RecordColumns> = HashMap::new();
    let mut head = head;
    for op in ops {
        if let Some(applied) = batch.applied_op(&op.op_id)? {
            outcomes.push(match applied.content {
                Some(content) if content != OpContent::of(op) => {
                    OpOutcome::Rejected(Rejection::op_id_reused(applied.server_version))
                }
                _ => OpOutcome::Duplicate(Some(applied.server_version)),
            });
            continue;
        }
        let key = (op.table_name.clone(), op.pk.clone());
        let current = batch.record(&key)?;
        if let Some(current) = &current {
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
                .as_ref()
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
                Some(thread) => batch.thread_project(thread)?,
                None => None,
            },
        };
        // A new thread whose messages arrived first was outside every project
        // until now: log it as moving in, so its project's clients rescan.
        let previous_project = match (&current, scope_kind) {
            (Some(c), _) => Some(c.project_id.as_deref()),
            (None, TableScope::OwnProject) if batch.messages_name(&op.pk)? => Some(None),
            _ => None,
        };
        let scope = logged_scope(scope_kind, project_id.as_deref(), previous_project);
        let record_thread_id =
            thread_id.or_else(|| current.as_ref().and_then(|c| c.thread_id.clone()));
        if scope_kind == TableScope::ThreadProject {
            batch.message_written(&op.pk, current.as_ref(), record_thread_id.clone());
        }
        let payload_text = Value::Object(row).to_string();
        let deleted = op.is_tombstone();
        head += 1;

        batch.applied.insert(
            op.op_id.clone(),
            AppliedOp {
                server_version: head,
                content: Some(OpContent::of(op)),
            },
        );
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
                operation: logged_operation(op),
                payload: stored_json(Some(payload_text.clone())),
                clock: op.clock,
                hlc: op.hlc.to_string(),
                op_id: op.op_id.as_str().to_owned(),
                device_id: op.device_id.as_str().to_owned(),
                scope_change: scope.scope_change,
                committed_at,
            },
            scope,
        });
        batch.records.insert(
            key,
            Some(StoredRecord {
                stamp: op.stamp(),
                server_version: head,
                deleted,
                payload: Some(payload_text),
                project_id,
                thread_id: record_thread_id,
            }),
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

/// The operation an op is logged with: a tombstone is a delete.
fn logged_operation(op: &ValidOp) -> Operation {
    if op.is_tombstone() {
        Operation::Delete
    } else {
        Operation::Put
    }
}

/// The state as an op of the batch sees it: the stored state under the
/// batch's earlier writes. Stored lookups are made once per key.
struct Batch<'s, S> {
    stored: &'s mut S,
    /// Above the number of messages a batch can move away from a thread.
    message_cap: u64,
    /// Records looked up or written so far, by `(table_name, pk)`.
    records: HashMap<(String, String), Option<StoredRecord>>,
    /// Op ids applied earlier in the batch.
    applied: HashMap<OpId, AppliedOp>,
    /// Messages written so far: their thread before the batch, and now.
    message_threads: HashMap<String, (Option<String>, Option<String>)>,
}

impl<S: StoredState> Batch<'_, S> {
    fn applied_op(&mut self, op_id: &OpId) -> Result<Option<AppliedOp>, S::Error> {
        match self.applied.get(op_id) {
            Some(applied) => Ok(Some(applied.clone())),
            None => self.stored.applied_op(op_id),
        }
    }

    fn record(&mut self, key: &(String, String)) -> Result<Option<StoredRecord>, S::Error> {
        if let Some(known) = self.records.get(key) {
            return Ok(known.clone());
        }
        let stored = self.stored.record(&key.0, &key.1)?;
        self.records.insert(key.clone(), stored.clone());
        Ok(stored)
    }

    /// A thread's project as of this point of the batch: written (or read)
    /// earlier in the batch, else as stored.
    fn thread_project(&mut self, thread: &str) -> Result<Option<String>, S::Error> {
        match self.records.get(&("threads".to_owned(), thread.to_owned())) {
            Some(known) => Ok(known.as_ref().and_then(|t| t.project_id.clone())),
            None => self.stored.thread_project(thread),
        }
    }

    fn message_written(&mut self, pk: &str, stored: Option<&StoredRecord>, thread: Option<String>) {
        let before = stored.and_then(|s| s.thread_id.clone());
        self.message_threads
            .entry(pk.to_owned())
            .and_modify(|(_, now)| *now = thread.clone())
            .or_insert((before, thread));
    }

    /// True when some message names `thread` at this point of the batch
    /// (stored messages that the batch moved elsewhere do not count).
    fn messages_name(&mut self, thread: &str) -> Result<bool, S::Error> {
        let is = |t: &Option<String>| t.as_deref() == Some(thread);
        if self.message_threads.values().any(|(_, now)| is(now)) {
            return Ok(true);
        }
        let moved_away = self
            .message_threads
            .values()
            .filter(|(before, _)| is(before))
            .count() as u64;
        Ok(self.stored.messages_naming(thread, self.message_cap)? > moved_away)
    }
}
