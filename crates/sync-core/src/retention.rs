//! Retention math (PROTOCOL.md section 5): which part of a workspace's change
//! log and which tombstone payloads may be purged, given device positions and
//! commit times. Pure: the store supplies the numbers and does the deleting.

use crate::ServerVersion;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// How long things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// A device not seen for this long no longer holds back log GC.
    pub device_ttl_ms: u64,
    /// Log entries younger than this always stay (never below one hour).
    pub min_retention_ms: u64,
    /// Tombstones older than this (and below the watermark) lose their payload.
    pub tombstone_retention_ms: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            device_ttl_ms: 30 * DAY_MS,
            min_retention_ms: 7 * DAY_MS,
            tombstone_retention_ms: 30 * DAY_MS,
        }
    }
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("min_retention must be at least one hour (got {0} ms)")]
pub struct MinRetentionTooShort(pub u64);

impl RetentionPolicy {
    /// Checks the policy: `min_retention` below one hour is refused, because a
    /// device that is merely reconnecting must never find its cursor expired.
    pub fn validated(self) -> Result<RetentionPolicy, MinRetentionTooShort> {
        if self.min_retention_ms < HOUR_MS {
            return Err(MinRetentionTooShort(self.min_retention_ms));
        }
        Ok(self)
    }
}

/// What one workspace's GC pass may purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgePlan {
    /// Log entries (and op-id records) with `server_version <=` this go.
    pub log_horizon: ServerVersion,
    /// Tombstones at or below this version, committed at or before
    /// `tombstone_cutoff_ms`, lose their payload (never their stamp).
    pub tombstone_horizon: ServerVersion,
    /// Commit-time cutoff for tombstone payloads.
    pub tombstone_cutoff_ms: u64,
}

/// The facts a GC pass plans from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkspaceLogState {
    /// Newest committed version.
    pub head: ServerVersion,
    /// Lowest position among devices seen within `device_ttl`; `None` when no
    /// device is active (then nothing but `min_retention` holds the log).
    pub watermark: Option<ServerVersion>,
    /// Newest version committed at or before `now - min_retention`, if any.
    pub newest_old_version: Option<ServerVersion>,
    /// Everything at or below this is already purged (`oldest_retained - 1`).
    pub purged_through: ServerVersion,
}

/// Plans a GC pass: the log is purged up to
/// `min(watermark, newest version older than min_retention)`.
pub fn plan_purge(state: WorkspaceLogState, policy: &RetentionPolicy, now_ms: u64) -> PurgePlan {
    let watermark = state.watermark.unwrap_or(state.head).min(state.head);
    let old_enough = state.newest_old_version.unwrap_or(0);
    PurgePlan {
        log_horizon: watermark.min(old_enough).max(state.purged_through),
        tombstone_horizon: watermark,
        tombstone_cutoff_ms: now_ms.saturating_sub(policy.tombstone_retention_ms),
    }
}

/// The newest version older than `min_retention` (for
/// [`WorkspaceLogState::newest_old_version`]), from the first log entry above
/// the purged ones that is too young to purge (`None`: every entry is old
/// enough). Commit times grow with versions, so that entry bounds the rest.
pub fn newest_old_version(
    first_young: Option<ServerVersion>,
    head: ServerVersion,
) -> Option<ServerVersion> {
    match first_young {
        Some(v) => v.checked_sub(1),
        None => Some(head),
    }
}

/// The cutoff time for a device to count as active.
pub fn device_active_since(policy: &RetentionPolicy, now_ms: u64) -> u64 {
    now_ms.saturating_sub(policy.device_ttl_ms)
}

/// The commit-time cutoff of `min_retention`.
pub fn min_retention_cutoff(policy: &RetentionPolicy, now_ms: u64) -> u64 {
    now_ms.saturating_sub(policy.min_retention_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_young_entry_bounds_the_old_ones() {
        assert_eq!(newest_old_version(Some(5), 9), Some(4));
        assert_eq!(newest_old_version(Some(0), 9), None);
        assert_eq!(newest_old_version(None, 9), Some(9));
    }

    fn state(head: u64, watermark: Option<u64>, old: Option<u64>) -> WorkspaceLogState {
        WorkspaceLogState {
            head,
            watermark,
            newest_old_version: old,
            purged_through: 0,
        }
    }

    #[test]
    fn log_is_kept_above_the_slowest_active_device() {
        let plan = plan_purge(
            state(100, Some(40), Some(90)),
            &RetentionPolicy::default(),
            0,
        );
        assert_eq!(plan.log_horizon, 40);
    }

    #[test]
    fn log_younger_than_min_retention_is_kept() {
        let plan = plan_purge(
            state(100, Some(95), Some(10)),
            &RetentionPolicy::default(),
            0,
        );
        assert_eq!(plan.log_horizon, 10);
        let none_old = plan_purge(state(100, Some(95), None), &RetentionPolicy::default(), 0);
        assert_eq!(none_old.log_horizon, 0);
    }

    #[test]
    fn with_no_active_device_only_min_retention_holds_the_log() {
        let plan = plan_purge(state(100, None, Some(70)), &RetentionPolicy::default(), 0);
        assert_eq!(plan.log_horizon, 70);
        assert_eq!(plan.tombstone_horizon, 100);
    }

    #[test]
    fn horizon_never_moves_backwards() {
        let mut s = state(100, Some(5), Some(90));
        s.purged_through = 30;
        assert_eq!(
            plan_purge(s, &RetentionPolicy::default(), 0).log_horizon,
            30
        );
    }

    #[test]
    fn min_retention_below_one_hour_is_refused() {
        let short = RetentionPolicy {
            min_retention_ms: HOUR_MS - 1,
            ..RetentionPolicy::default()
        };
        assert!(short.validated().is_err());
        assert!(RetentionPolicy::default().validated().is_ok());
    }
}
