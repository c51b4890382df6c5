//! What every benchmark is given: the server launcher, a scratch folder,
//! the sizes of this run, and a place for notes that end up in RESULTS.md.

use crate::server::ServerLauncher;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How big each benchmark is.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// P1: ops pushed to one workspace (and in all to the parallel ones).
    pub push_ops: usize,
    /// P1: ops per push.
    pub push_batch: usize,
    /// P1: rounds, alternating server and raw inserts.
    pub push_rounds: usize,
    /// P1: workspaces pushed in parallel.
    pub parallel_workspaces: usize,
    /// P2: passes over the whole log, interleaved with raw scans.
    pub pull_passes: usize,
    /// P2: page size.
    pub pull_page: usize,
    /// P3: WebSocket subscribers.
    pub fanout_subscribers: usize,
    /// P3: single-op pushes timed for latency.
    pub fanout_pushes: usize,
    /// P3: time between the latency pushes.
    pub fanout_interval: Duration,
    /// P3: single-op pushes sent back to back for deliveries/s (below the
    /// server's subscriber queue of 256 commits, so nobody is poked).
    pub burst_pushes: usize,
    /// P6: the small log.
    pub depth_small: u64,
    /// P6: the large log.
    pub depth_large: u64,
    /// P6: pages timed on each log.
    pub depth_requests: usize,
    /// P7: idle subscribers.
    pub idle_subscribers: usize,
    /// P8: clients pushing at once, one device each.
    pub concurrent_clients: usize,
    /// P8: the workspaces they push to (clients spread evenly).
    pub concurrent_workspaces: usize,
    /// P8: load before the timed rounds (connections, caches), not counted.
    pub concurrent_warmup: Duration,
    /// P8: timed rounds, each followed by the baseline for as long.
    pub concurrent_rounds: usize,
    /// P8: how long the clients push in each round.
    pub concurrent_round: Duration,
}

impl Sizes {
    /// The sizes the goals are stated for.
    pub fn full() -> Sizes {
        Sizes {
            push_ops: 100_000,
            push_batch: 100,
            push_rounds: 10,
            parallel_workspaces: 8,
            pull_passes: 3,
            pull_page: 1000,
            fanout_subscribers: 1000,
            fanout_pushes: 1000,
            fanout_interval: Duration::from_millis(10),
            burst_pushes: 200,
            depth_small: 10_000,
            depth_large: 1_000_000,
            depth_requests: 300,
            idle_subscribers: 5000,
            concurrent_clients: 200,
            concurrent_workspaces: 20,
            concurrent_warmup: Duration::from_secs(10),
            concurrent_rounds: 3,
            concurrent_round: Duration::from_secs(8),
        }
    }

    /// A smoke run of a few seconds: every code path, tiny sizes.
    pub fn quick() -> Sizes {
        Sizes {
            push_ops: 1_600,
            push_batch: 100,
            push_rounds: 2,
            parallel_workspaces: 8,
            pull_passes: 1,
            pull_page: 1000,
            fanout_subscribers: 20,
            fanout_pushes: 20,
            fanout_interval: Duration::from_millis(2),
            burst_pushes: 10,
            depth_small: 4_000,
            depth_large: 8_000,
            depth_requests: 10,
            idle_subscribers: 50,
            concurrent_clients: 20,
            concurrent_workspaces: 4,
            concurrent_warmup: Duration::from_millis(300),
            concurrent_rounds: 2,
            concurrent_round: Duration::from_millis(500),
        }
    }
}

/// Shared by the benchmarks of one run.
pub struct RunContext {
    /// Starts `or3-sync` servers.
    pub launcher: ServerLauncher,
    /// Scratch folder for databases (removed at the end).
    pub dir: PathBuf,
    /// Sizes of this run.
    pub sizes: Sizes,
    /// This process's open-file limit after raising it.
    pub open_file_limit: u64,
    notes: Mutex<Vec<String>>,
}

impl RunContext {
    /// A context for one run.
    pub fn new(
        launcher: ServerLauncher,
        dir: PathBuf,
        sizes: Sizes,
        open_file_limit: u64,
    ) -> RunContext {
        RunContext {
            launcher,
            dir,
            sizes,
            open_file_limit,
            notes: Mutex::new(Vec::new()),
        }
    }

    /// Prints a note now and keeps it for RESULTS.md.
    pub fn note(&self, text: impl Into<String>) {
        let text = text.into();
        println!("    note: {text}");
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text);
    }

    /// Every note so far.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
