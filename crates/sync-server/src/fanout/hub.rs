//! The in-process fanout hub. Each workspace with subscribers has a
//! broadcast channel of commits; a commit's frame is serialized once and
//! shared by every subscriber that wants it whole. The channel is bounded: a
//! subscriber that falls behind it gets a poke instead of slowing anyone.
//! Commits are published in version order; one that arrives early waits for
//! the ones before it, and a subscriber that still meets a gap reads it from
//! the store.

use super::bus::Bus;
use super::frames::changes_frame;
use crate::store::{LoggedChange, Store};
use axum::extract::ws::Utf8Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use sync_core::{ServerVersion, WorkspaceId};
use tokio::sync::{broadcast, watch};

/// Early commits held back while an earlier one is still being published.
const MAX_PENDING: usize = 64;
/// How far back the first catch-up of a channel reads.
const FIRST_CATCH_UP: u64 = 64;
/// Most entries read from the store per catch-up query.
const CATCH_UP_PAGE: usize = 1000;

/// One commit: the versions `(from, to]` and their entries.
#[derive(Debug)]
pub struct Commit {
    /// Head before the commit.
    pub from: ServerVersion,
    /// Head after it.
    pub to: ServerVersion,
    /// The entries, in version order.
    pub changes: Vec<LoggedChange>,
    /// The whole commit as a `changes` frame, serialized once.
    pub frame: Utf8Bytes,
}

struct Channel {
    sender: broadcast::Sender<Arc<Commit>>,
    order: Mutex<Order>,
    catching_up: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Order {
    published: Option<ServerVersion>,
    pending: BTreeMap<ServerVersion, Arc<Commit>>,
}

/// Why a subscriber's stream must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The member who lost access; `None`: everyone (the workspace was deleted).
    pub user_id: Option<String>,
}

/// Fans commits out to the subscribers of this node.
pub struct Hub {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    queue: usize,
    channels: Mutex<HashMap<WorkspaceId, Arc<Channel>>>,
    revocations: broadcast::Sender<Revocation>,
    shutdown: watch::Sender<bool>,
    per_user: Arc<Mutex<HashMap<String, usize>>>,
}

/// A counted subscription of one user; dropping it frees the slot.
pub struct SubscriptionSlot {
    per_user: Arc<Mutex<HashMap<String, usize>>>,
    user_id: String,
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        let mut counts = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

impl Hub {
    /// A hub over `store`, announcing local commits on `bus`.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, queue: usize) -> Hub {
        Hub {
            store,
            bus,
            queue: queue.max(1),
            channels: Mutex::new(HashMap::new()),
            revocations: broadcast::channel(64).0,
            shutdown: watch::channel(false).0,
            per_user: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes one of `user_id`'s `max` subscription slots, if one is free.
    pub fn take_slot(&self, user_id: &str, max: usize) -> Option<SubscriptionSlot> {
        let mut counts = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(user_id.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SubscriptionSlot {
            per_user: self.per_user.clone(),
            user_id: user_id.to_owned(),
        })
    }

    /// The store subscribers read backlogs and gaps from.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Receives the commits of `ws` from now on.
    pub fn subscribe(&self, ws: &WorkspaceId) -> broadcast::Receiver<Arc<Commit>> {
        self.channel(ws).sender.subscribe()
    }

    fn channel(&self, ws: &WorkspaceId) -> Arc<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, c| c.sender.receiver_count() > 0);
        channels
            .entry(ws.clone())
            .or_insert_with(|| {
                Arc::new(Channel {
                    sender: broadcast::channel(self.queue).0,
                    order: Mutex::new(Order::default()),
                    catching_up: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    fn existing_channel(&self, ws: &WorkspaceId) -> Option<Arc<Channel>> {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .get(ws)
            .filter(|c| c.sender.receiver_count() > 0)
            .cloned()
    }

    /// The workspaces that have subscribers on this node: what a bus that
    /// may have missed announcements catches up.
    pub fn subscribed_workspaces(&self) -> Vec<WorkspaceId> {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .iter()
            .filter(|(_, c)| c.sender.receiver_count() > 0)
            .map(|(ws, _)| ws.clone())
            .collect()
    }

    /// Publishes a commit made on this node and announces it to the others.
    pub async fn publish_local(&self, ws: &WorkspaceId, changes: Vec<LoggedChange>) {
        let Some(to) = changes.last().map(|c| c.change.server_version) else {
            return;
        };
        let from = to - changes.len() as u64;
        self.publish(ws, from, changes);
        self.bus.announce(ws, to).await;
    }

    fn publish(&self, ws: &WorkspaceId, from: ServerVersion, changes: Vec<LoggedChange>) {
        self.publish_in_order(ws, from, changes, false);
    }

    /// Publishes entries read after a hole in the log (GC purged what this hub had not
    /// published): nothing can fill the hole, so the commit is not held back for it.
    fn publish_past_hole(&self, ws: &WorkspaceId, from: ServerVersion, changes: Vec<LoggedChange>) {
        self.publish_in_order(ws, from, changes, true);
    }

    fn publish_in_order(
        &self,
        ws: &WorkspaceId,
        from: ServerVersion,
        changes: Vec<LoggedChange>,
        past_hole: bool,
    ) {
        let Some(channel) = self.existing_channel(ws) else {
            return;
        };
        let to = from + changes.len() as u64;
        let frame = Utf8Bytes::from(changes_frame(from, to, changes.iter().map(|c| &c.change)));
        let commit = Arc::new(Commit {
            from,
            to,
            changes,
            frame,
        });
        let mut order = channel.order.lock().unwrap_or_else(|e| e.into_inner());
        match order.published {
            Some(p) if commit.to <= p => return,
            Some(p) if commit.from > p && !past_hole && order.pending.len() < MAX_PENDING => {
                order.pending.insert(commit.from, commit);
                return;
            }
            _ => {}
        }
        send_in_order(&channel.sender, &mut order, commit);
        // Release held-back commits that are now next in line.
        while let Some(first) = order.pending.keys().next().copied() {
            let published = order.published.unwrap_or(0);
            if first > published && order.pending.len() < MAX_PENDING {
                break;
            }
            if let Some(next) = order.pending.remove(&first) {
                if next.to > published {
                    send_in_order(&channel.sender, &mut order, next);
                }
            }
        }
    }

    /// Another node committed: read what this node has not published yet, up
    /// to `head`, and fan it out. A no-op without subscribers or for an old head.
    pub async fn catch_up(&self, ws: &WorkspaceId, head: ServerVersion) {
        let Some(channel) = self.existing_channel(ws) else {
            return;
        };
        let _one_reader = channel.catching_up.lock().await;
        loop {
            let published = channel
                .order
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .published;
            let after = match published {
                Some(p) if p >= head => return,
                Some(p) => p,
                // Nothing published yet: read a little before `head`.
                // Subscribers skip what they have and read any gap themselves.
                None => head.saturating_sub(FIRST_CATCH_UP),
            };
            match self.store.log_since(ws, after, CATCH_UP_PAGE).await {
                Ok((entries, _)) if !entries.is_empty() => {
                    // Past a hole GC left (the log below was purged), the entries are a commit of
                    // their own range: published as such, never as `(after, after + n]`, so a
                    // subscriber behind the hole reads the gap and is told its cursor expired.
                    let from = entries[0].change.server_version - 1;
                    if from > after {
                        self.publish_past_hole(ws, from, entries);
                    } else {
                        self.publish(ws, after, entries);
                    }
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(workspace = %ws, error = %e, "realtime catch-up failed");
                    return;
                }
            }
        }
    }

    /// Ends the streams of `user_id` in `ws` (membership removed).
    pub fn revoke(&self, ws: &WorkspaceId, user_id: &str) {
        let _ = self.revocations.send(Revocation {
            workspace_id: ws.clone(),
            user_id: Some(user_id.to_owned()),
        });
    }

    /// Ends every stream of `ws` (the workspace was deleted).
    pub fn close_workspace(&self, ws: &WorkspaceId) {
        let _ = self.revocations.send(Revocation {
            workspace_id: ws.clone(),
            user_id: None,
        });
    }

    /// Receives revocations.
    pub fn revocations(&self) -> broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    /// Tells every stream to close (server shutdown).
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Resolves when the server shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

fn send_in_order(sender: &broadcast::Sender<Arc<Commit>>, order: &mut Order, commit: Arc<Commit>) {
    order.published = Some(order.published.map_or(commit.to, |p| p.max(commit.to)));
    // No receivers is not an error: the last subscriber just left.
    let _ = sender.send(commit);
}
