//! Device positions reported by pulls and snapshots, buffered in memory and
//! written in batches, so reads never wait on a disk sync. Losing a buffered
//! position in a crash is safe: the stored one is older, which only makes
//! garbage collection more careful.

use crate::store::{DevicePosition, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sync_core::WorkspaceId;

/// Pending positions, keyed by workspace and device.
#[derive(Default)]
pub struct PositionBuffer {
    pending: Mutex<HashMap<(WorkspaceId, String), DevicePosition>>,
}

impl PositionBuffer {
    /// Remembers a device's latest position.
    pub fn report(&self, position: DevicePosition) {
        if let Ok(mut pending) = self.pending.lock() {
            let key = (position.workspace_id.clone(), position.device_id.clone());
            pending.insert(key, position);
        }
    }

    /// Writes every pending position to the store.
    pub async fn flush(&self, store: &dyn Store) {
        let batch: Vec<DevicePosition> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().map(|(_, p)| p).collect(),
            Err(_) => return,
        };
        if let Err(e) = store.record_positions(batch).await {
            tracing::warn!(error = %e, "could not record device positions");
        }
    }

    /// Flushes every `interval` until the process ends.
    pub fn spawn_flusher(self: &Arc<Self>, store: Arc<dyn Store>, interval: Duration) {
        let buffer = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                buffer.flush(store.as_ref()).await;
            }
        });
    }
}
