//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that pushes the WAL
//! past 1,000 pages, on the connection that commits: here the writer thread,
//! which then copies about 4 MB into the database file and fsyncs it while
//! every push queued behind it waits (a quarter of the writer's time under
//! P8's load). So the writer turns it off (`wal_autocheckpoint=0`) and this
//! thread, with a connection of its own, runs `PRAGMA wal_checkpoint(PASSIVE)`
//! whenever the writer says the WAL has grown past [`CHECKPOINT_FRAMES`]. A
//! passive checkpoint never blocks the writer or readers: it copies what no
//! reader still needs, and once it has copied everything the writer's next
//! transaction starts the WAL over from its beginning.
//!
//! Durability is unchanged: a commit is on disk (in the WAL) when it is
//! acknowledged, whoever checkpoints it later. The WAL starts over only when
//! a checkpoint has copied all of it before the writer's next transaction,
//! which a checkpointer that trails a steady stream of commits may never do;
//! so past [`WRITER_CHECKPOINT_FRAMES`] (256 MB) the writer checkpoints itself
//! between two transactions, and the WAL starts over: it stays bounded either
//! way. The bound is high on purpose: with it at 16 or 64 MB, P1's burst of
//! 100,000 ops had the writer checkpointing again and lost the whole gain
//! (ratio 0.71-0.80 against 0.96-1.19); after a burst the checkpointer
//! catches up and the WAL starts over at the next write.
//!
//! Both thresholds count the frames the WAL holds, as SQLite reports them
//! after each commit (`sqlite3_wal_hook`), not the size of its file: SQLite
//! reuses a WAL file without shrinking it, so after one burst past 256 MB a
//! size would have had the writer checkpoint after every commit until the
//! server restarted. The file keeps the size of the largest WAL since the
//! server started, at most [`WAL_SIZE_LIMIT`] (256 MB, `journal_size_limit`,
//! the writer's own bound): cut back lower, it is grown again by the next
//! burst, and growing costs every commit (the fsync of a growing file writes
//! its metadata too). With the limit at 2 MB, below the checkpointer's
//! threshold, P1 fell by 12-18% (P1's burst grows the WAL to about 220 MB).

use super::{internal, unavailable};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// WAL frames past which the checkpointer runs (SQLite's own default: 1,000 pages of 4 KiB).
pub(super) const CHECKPOINT_FRAMES: u32 = 1000;
/// WAL frames past which the writer checkpoints itself (the WAL did not start over): 256 MB.
pub(super) const WRITER_CHECKPOINT_FRAMES: u32 = 64 * CHECKPOINT_FRAMES;
/// The size the WAL file is cut back to when it starts over (`journal_size_limit`): the
/// writer's own bound, 256 MB, so the file never stays larger than what the WAL may hold.
pub(super) const WAL_SIZE_LIMIT: u64 = WRITER_CHECKPOINT_FRAMES as u64 * 4096;

thread_local! {
    /// The frames in the WAL of the connection that committed last on this thread (the
    /// writer's), as SQLite's WAL hook reported them after its commit.
    static WAL_FRAMES: Cell<u32> = const { Cell::new(0) };
}

/// Makes `conn`'s commits report the frames their WAL holds to [`frames_after_commit`] (on the
/// thread that commits). Set after `wal_autocheckpoint`, which would replace it.
pub(super) fn count_wal_frames(conn: &Connection) {
    fn note(_wal: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
        WAL_FRAMES.with(|f| f.set(u32::try_from(frames).unwrap_or(0)));
        Ok(())
    }
    conn.wal_hook(Some(note));
}

/// The frames the WAL held after the last commit on this thread.
pub(super) fn frames_after_commit() -> u32 {
    WAL_FRAMES.with(Cell::get)
}

/// What the writer and the checkpointer share.
#[derive(Default)]
struct Shared {
    /// The frames the WAL held after the writer's last commit.
    frames: AtomicU32,
    /// Checkpoints run so far, by either thread.
    checkpoints: AtomicU64,
}

/// The checkpointer thread's handle: nudged after commits, stopped when dropped.
pub(super) struct Checkpointer {
    nudges: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared::default());
        // One nudge waiting is enough: the thread looks at the WAL's frames when it wakes.
        let (nudges, wakes) = mpsc::sync_channel(1);
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("or3-sqlite-checkpoint".into())
                .spawn(move || run(conn, &shared, wakes))
                .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?
        };
        Ok(Checkpointer {
            nudges: Some(nudges),
            thread: Some(thread),
            shared,
        })
    }

    /// After a write on the writer's connection (on its thread): nudges the
    /// checkpointer when the WAL holds [`CHECKPOINT_FRAMES`] or more, or
    /// checkpoints on `conn` when it holds [`WRITER_CHECKPOINT_FRAMES`] (it
    /// did not start over).
    pub fn after_write(&self, conn: &Connection) {
        let frames = frames_after_commit();
        self.shared.frames.store(frames, Ordering::Relaxed);
        if frames >= WRITER_CHECKPOINT_FRAMES {
            match checkpoint(conn) {
                Ok(()) => {
                    self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, "WAL checkpoint on the writer did not run"),
            }
        } else if frames >= CHECKPOINT_FRAMES {
            if let Some(nudges) = &self.nudges {
                let _ = nudges.try_send(());
            }
        }
    }

    /// Checkpoints run so far (by the checkpointer or the writer).
    pub fn checkpoints(&self) -> u64 {
        self.shared.checkpoints.load(Ordering::Relaxed)
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

fn run(conn: Connection, shared: &Shared, wakes: mpsc::Receiver<()>) {
    while wakes.recv().is_ok() {
        // A nudge left from before the WAL started over.
        if shared.frames.load(Ordering::Relaxed) < CHECKPOINT_FRAMES {
            continue;
        }
        let started = std::time::Instant::now();
        match checkpoint(&conn) {
            Ok(()) => {
                shared.checkpoints.fetch_add(1, Ordering::Relaxed);
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
