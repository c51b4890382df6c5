//! How gateway nodes learn of each other's commits.

use async_trait::async_trait;
use sync_core::{ServerVersion, WorkspaceId};

/// Carries commit announcements between gateway nodes that share a store.
///
/// Contract: after a push commits, the node calls [`Bus::announce`] with the
/// workspace and its new head (never the data). Every *other* node that hears
/// it calls [`crate::fanout::hub::Hub::catch_up`] with the same pair; the
/// hub reads the new entries from the store once and fans them out to that
/// node's subscribers. An announcement may be lost (a listen connection
/// dropped): an implementation that reconnects must call `catch_up` for the
/// workspaces it knows of, so no subscriber misses a change; `catch_up` with
/// an old head is a no-op, so duplicates are harmless.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Tells the other nodes that `ws` now has head `version`.
    async fn announce(&self, ws: &WorkspaceId, version: ServerVersion);
}

/// One node (SQLite): the hub hears of every commit directly.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalBus;

#[async_trait]
impl Bus for LocalBus {
    async fn announce(&self, _ws: &WorkspaceId, _version: ServerVersion) {}
}
