//! The storage contract of the gateway. A store owns the change log, the
//! current records, applied op ids, workspaces, members and device positions,
//! and assigns server versions inside its write transaction. SQLite
//! ([`sqlite::SqliteStore`]) is the embedded default; Postgres
//! ([`postgres::PostgresStore`]) is shared by several gateway nodes.

mod access;
pub(crate) mod gc;
mod group;
mod page;
pub mod postgres;
pub mod sqlite;

pub(crate) use access::{check_member_change, member_user, require_role, role_from};
pub(crate) use page::ChangesPage;

/// Log entries deleted per GC transaction, so a pass never holds a writer long.
pub const GC_BATCH: u64 = 2_000;
/// Most payload bytes one pull page carries (at least one change is always sent).
pub const MAX_PAGE_PAYLOAD_BYTES: usize = 4 << 20;
/// How many log entries a filtered pull examines at most.
pub const MAX_EXAMINED_ENTRIES: u64 = 10_000;

use async_trait::async_trait;
use sync_core::retention::RetentionPolicy;
use sync_core::wire::{Change, ChangeJson, ChangesArray, RecordVersion, WorkspaceInfo};
use sync_core::{Role, ServerVersion, ValidOp, WorkspaceId};

pub use sync_core::push::{LoggedChange, OpOutcome, StoredVersion};

/// Where a pull's changes go, one row at a time: built [`Change`]s
/// ([`Store::changes`]) or their JSON array ([`Store::changes_json`], written
/// from the row's borrowed columns without building anything).
pub(crate) trait ChangeSink: Default {
    /// Changes taken so far.
    fn count(&self) -> usize;
    /// Takes one change.
    fn take(&mut self, change: ChangeJson<'_>);
}

impl ChangeSink for Vec<Change> {
    fn count(&self) -> usize {
        self.len()
    }

    fn take(&mut self, change: ChangeJson<'_>) {
        self.push(change.to_change());
    }
}

impl ChangeSink for ChangesArray {
    fn count(&self) -> usize {
        self.len()
    }

    fn take(&mut self, change: ChangeJson<'_>) {
        self.push(change);
    }
}

/// A log row whose operation is neither `put` nor `delete`: a damaged row,
/// never taken for a put.
#[derive(Debug, thiserror::Error)]
#[error("stored operation `{0}` is not put or delete")]
pub(crate) struct BadStoredOperation(String);

impl From<BadStoredOperation> for StoreError {
    fn from(e: BadStoredOperation) -> StoreError {
        StoreError::Internal(e.to_string())
    }
}

/// A log row's stored operation.
pub(crate) fn stored_operation(
    text: &str,
) -> Result<sync_core::validate::Operation, BadStoredOperation> {
    sync_core::validate::Operation::parse(text).ok_or_else(|| BadStoredOperation(text.to_owned()))
}

/// Who is asking, and how their membership is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A user whose role is looked up in the member table, in the same
    /// transaction as the work.
    Member {
        /// The token's `sub`.
        user_id: String,
    },
    /// A user whose role comes from the token's organization claims
    /// (`--membership-from-claims`): the auth system is the source of truth.
    Claimed {
        /// The token's `sub`.
        user_id: String,
        /// The role the claims grant in this workspace.
        role: Role,
    },
    /// The operator, through the CLI on the server's machine: acts as owner.
    Admin,
}

/// Everything a store can fail with. Mapped once to the wire in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The workspace does not exist.
    #[error("unknown workspace")]
    UnknownWorkspace,
    /// The caller is not a member, or their role is too low.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The record does not exist.
    #[error("record not found")]
    RecordNotFound,
    /// The member does not exist.
    #[error("member not found")]
    MemberNotFound,
    /// The change would leave the workspace without an owner.
    #[error("a workspace must keep at least one owner")]
    LastOwner,
    /// The cursor is behind the retained log (or ahead of it).
    #[error("cursor expired")]
    CursorExpired {
        /// Lowest version still in the log.
        oldest_retained_version: ServerVersion,
    },
    /// A snapshot page token that does not belong to this request.
    #[error("{0}")]
    InvalidPageToken(&'static str),
    /// The database cannot be reached right now.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database reported.
    #[error("store error: {0}")]
    Internal(String),
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// One per op, in order.
    pub outcomes: Vec<OpOutcome>,
    /// The workspace head after the push.
    pub server_version: ServerVersion,
    /// The changes this push added to the log, for realtime fanout.
    pub changes: Vec<LoggedChange>,
}

/// A pull request.
#[derive(Debug, Clone)]
pub struct ChangesQuery {
    /// Versions after this one.
    pub cursor: ServerVersion,
    /// At most this many changes.
    pub limit: usize,
    /// Only this project's scoped records (plus workspace-wide ones).
    pub project_id: Option<String>,
}

/// A page of the change log.
#[derive(Debug, Clone)]
pub struct ChangesBatch<C = Vec<Change>> {
    /// Matching changes, ascending: built ([`Store::changes`]) or as a JSON
    /// array ([`Store::changes_json`]).
    pub changes: C,
    /// Highest version examined.
    pub cursor: ServerVersion,
    /// More entries follow.
    pub has_more: bool,
    /// Lowest version still in the log.
    pub oldest_retained_version: ServerVersion,
}

/// Where a snapshot page starts.
#[derive(Debug, Clone)]
pub struct SnapshotQuery {
    /// Records after this `(table_name, pk)`; `None` for the first page.
    pub after: Option<(String, String)>,
    /// The version fixed by the first page; `None` on the first page.
    pub snapshot_version: Option<ServerVersion>,
    /// Page size.
    pub limit: usize,
    /// Project scope.
    pub project_id: Option<String>,
}

/// A page of current records.
#[derive(Debug, Clone)]
pub struct SnapshotBatch {
    /// The snapshot's version.
    pub snapshot_version: ServerVersion,
    /// Records ordered by `(table_name, pk)`.
    pub items: Vec<RecordVersion>,
    /// True when more records follow the last item.
    pub has_more: bool,
}

/// The last position a device reported, for garbage collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePosition {
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Device id.
    pub device_id: String,
    /// Highest version the device has durably applied.
    pub cursor: ServerVersion,
    /// When it said so (epoch ms).
    pub seen_at_ms: u64,
}

/// What one GC pass over a workspace purged (or, dry, would purge).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// The workspace.
    pub workspace_id: String,
    /// Change-log entries purged.
    pub log_entries_purged: u64,
    /// Op-id records purged.
    pub op_ids_purged: u64,
    /// Tombstones whose payload was purged (their stamps stay).
    pub tombstone_payloads_purged: u64,
    /// Lowest version in the log after the pass.
    pub oldest_retained_version: ServerVersion,
    /// Entries left in the log.
    pub log_length: u64,
    /// Tombstones in the records table.
    pub tombstones: u64,
}

impl GcReport {
    /// The report of a pass that carried out (or, dry, would carry out) `plan`.
    pub fn of_pass(
        ws: &WorkspaceId,
        state: &sync_core::retention::WorkspaceLogState,
        plan: &sync_core::retention::PurgePlan,
        purged: (u64, u64, u64),
        tombstones: u64,
    ) -> GcReport {
        let oldest = plan.log_horizon + 1;
        GcReport {
            workspace_id: ws.to_string(),
            log_entries_purged: purged.0,
            op_ids_purged: purged.1,
            tombstone_payloads_purged: purged.2,
            oldest_retained_version: oldest,
            log_length: state.head + 1 - oldest,
            tombstones,
        }
    }
}

/// The gateway's storage. Every method that touches a workspace checks the
/// caller's access inside the same transaction as the work.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a workspace owned by `owner`.
    async fn create_workspace(
        &self,
        id: &WorkspaceId,
        name: &str,
        owner: &str,
        now_ms: u64,
    ) -> Result<WorkspaceInfo, StoreError>;

    /// Creates the workspace `id` (named after itself, with no members) if it
    /// does not exist; for membership from claims, where the auth system owns
    /// the list of workspaces.
    async fn ensure_workspace(&self, id: &WorkspaceId, now_ms: u64) -> Result<(), StoreError>;

    /// The workspaces `user_id` is a member of.
    async fn list_workspaces(&self, user_id: &str) -> Result<Vec<WorkspaceInfo>, StoreError>;

    /// Sets a member's role (owners only; the last owner cannot be demoted).
    async fn set_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
        role: Role,
    ) -> Result<(), StoreError>;

    /// Removes a member (owners only; the last owner cannot be removed).
    async fn remove_member(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        user_id: &str,
    ) -> Result<(), StoreError>;

    /// The caller's role in a workspace.
    async fn role_of(&self, ws: &WorkspaceId, access: &Access) -> Result<Role, StoreError>;

    /// Applies valid ops in one transaction (editors and owners only).
    async fn push(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        ops: Vec<ValidOp>,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError>;

    /// Reads the change log after a cursor.
    async fn changes(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<ChangesBatch, StoreError>;

    /// [`Store::changes`] with the changes written as their JSON array (the
    /// pull route's body), straight from the stored rows.
    async fn changes_json(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: ChangesQuery,
    ) -> Result<ChangesBatch<ChangesArray>, StoreError>;

    /// Reads a page of current records.
    async fn snapshot(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        query: SnapshotQuery,
    ) -> Result<SnapshotBatch, StoreError>;

    /// Reads one current record, tombstones included.
    async fn record(
        &self,
        ws: &WorkspaceId,
        access: &Access,
        table_name: &str,
        pk: &str,
    ) -> Result<RecordVersion, StoreError>;

    /// Stores device positions (newer positions replace older ones).
    async fn record_positions(&self, positions: Vec<DevicePosition>) -> Result<(), StoreError>;

    /// Log entries after `after` (at most `limit`), with their scope, and the
    /// workspace head. No access check: for the realtime hub, whose
    /// subscribers were checked when they connected.
    async fn log_since(
        &self,
        ws: &WorkspaceId,
        after: ServerVersion,
        limit: usize,
    ) -> Result<(Vec<LoggedChange>, ServerVersion), StoreError>;

    /// Every workspace id, for maintenance passes.
    async fn workspace_ids(&self) -> Result<Vec<WorkspaceId>, StoreError>;

    /// One garbage-collection pass over a workspace (PROTOCOL.md section 5).
    /// Deletes in small batches so pushes are never blocked for long; with
    /// `dry_run` only counts.
    async fn collect_garbage(
        &self,
        ws: &WorkspaceId,
        policy: &RetentionPolicy,
        now_ms: u64,
        dry_run: bool,
    ) -> Result<GcReport, StoreError>;

    /// The newest committed version of a workspace (0 when empty).
    async fn head(&self, ws: &WorkspaceId) -> Result<ServerVersion, StoreError>;
}
