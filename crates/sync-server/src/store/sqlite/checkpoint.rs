//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that pushes the WAL
//! past 1,000 pages, on the connection that commits: here the writer thread,
//! which then copies about 4 MB into the database file and fsyncs it while
//! every push queued behind it waits (a quarter of the writer's time under
//! P8's load). So the writer turns it off (`wal_autocheckpoint=0`) and this
//! thread, with a connection of its own, runs `PRAGMA wal_checkpoint(PASSIVE)`
//! whenever the writer says the WAL has grown past [`CHECKPOINT_BYTES`]. A
//! passive checkpoint never blocks the writer or readers: it copies what no
//! reader still needs, and once it has copied everything the writer's next
//! transaction starts the WAL over from its beginning.
//!
//! Durability is unchanged: a commit is on disk (in the WAL) when it is
//! acknowledged, whoever checkpoints it later. The WAL starts over only when
//! a checkpoint has copied all of it before the writer's next transaction,
//! which a checkpointer that trails a steady stream of commits may never do;
//! so past [`WRITER_CHECKPOINT_BYTES`] (256 MB) the writer checkpoints itself
//! between two transactions, and the WAL starts over: it stays bounded either
//! way. The bound is high on purpose: with it at 16 or 64 MB, P1's burst of
//! 100,000 ops had the writer checkpointing again and lost the whole gain
//! (ratio 0.71-0.80 against 0.96-1.19); after a burst the checkpointer
//! catches up and the WAL starts over at the next write, its file cut back
//! to [`WAL_SIZE_LIMIT`] (so its size says how much the WAL holds).

use super::{internal, unavailable};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// WAL size past which the checkpointer runs (SQLite's own default: 1,000 pages of 4 KiB).
pub(super) const CHECKPOINT_BYTES: u64 = 1000 * 4096;
/// WAL size past which the writer checkpoints itself (the WAL did not start over).
pub(super) const WRITER_CHECKPOINT_BYTES: u64 = 64 * CHECKPOINT_BYTES;
/// The size the WAL file is cut back to when it starts over (`journal_size_limit`).
/// SQLite reuses a WAL file without shrinking it, so without this the file keeps
/// the size of the largest burst it ever held: both thresholds above compare the
/// file's size, and after one burst past 256 MB the writer would checkpoint
/// after every commit until the server restarted.
pub(super) const WAL_SIZE_LIMIT: u64 = CHECKPOINT_BYTES / 2;

/// The path of `db`'s write-ahead log.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The size of the WAL file (0 when there is none).
pub(super) fn wal_bytes(wal: &Path) -> u64 {
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// The checkpointer thread's handle: nudged after commits, stopped when dropped.
pub(super) struct Checkpointer {
    nudges: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own read-write connection to `db`.
    pub fn start(db: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(internal)?;
        // The checkpoint fsyncs the WAL before it copies and the database after.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(internal)?;
        let wal = wal_path(db);
        // One nudge waiting is enough: the thread looks at the WAL's size when it wakes.
        let (nudges, wakes) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("or3-sqlite-checkpoint".into())
            .spawn(move || run(conn, &wal, wakes))
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            nudges: Some(nudges),
            thread: Some(thread),
        })
    }

    /// Tells the thread the WAL has grown past [`CHECKPOINT_BYTES`]; never blocks.
    pub fn nudge(&self) {
        if let Some(nudges) = &self.nudges {
            let _ = nudges.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.nudges.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, wal: &Path, wakes: mpsc::Receiver<()>) {
    while wakes.recv().is_ok() {
        if wal_bytes(wal) < CHECKPOINT_BYTES {
            continue;
        }
        let started = std::time::Instant::now();
        match checkpoint(&conn) {
            Ok(()) => {
                metrics::histogram!("or3_sqlite_checkpoint_seconds").record(started.elapsed())
            }
            // Busy: the writer is checkpointing itself; the next nudge tries again.
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint did not run"),
        }
    }
}

/// One passive checkpoint on `conn`.
pub(super) fn checkpoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
