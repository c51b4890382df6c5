//! The writer thread and group commit.
//!
//! One thread owns the SQLite write connection; every write reaches it as a
//! job on a channel. Pushes are committed in groups: when the thread takes a
//! push it also takes every push already queued behind it (any workspace, up
//! to [`CAPS`]) and runs them in
//! one `BEGIN IMMEDIATE` transaction, so they share one commit and its one
//! fsync. A lone push is never held back: the thread starts its transaction
//! as soon as it takes the push, and only pushes that arrived while the
//! previous commit was on its way to the disk share the next one.
//!
//! Each push reads the workspace head afresh and keeps its own
//! all-or-nothing outcome; the group runs as `store/group.rs` says (plain
//! first, a savepoint per push only after a failure, one answer for every
//! push of a group whose transaction fails). Versions stay gap-free and in
//! commit order. Answers go out in the group's order, so the hub sees each
//! workspace's commits in version order (it reorders anything that arrives
//! early anyway).
//!
//! Other writes (members, positions, GC steps) are jobs of their own, run
//! between groups in arrival order. WAL checkpoints do not run here but on
//! the checkpointer's thread (`checkpoint.rs`), which the writer nudges when
//! a commit has grown the WAL past its threshold. If the thread is gone, writes fail with
//! [`StoreError::Unavailable`]; a job that panics is answered with
//! [`StoreError::Internal`], its transaction is rolled back, and the thread
//! goes on with the next job.

use super::checkpoint::{self, Checkpointer};
use super::{internal, push, require, unavailable, workspace_positions};
use crate::store::group::{self, AfterPlain, Answer, Attempt, Caps};
use crate::store::{Access, PushOutcome, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;
use sync_core::{Role, TableConfig, ValidOp, WorkspaceId};
use tokio::sync::oneshot;

/// At most 256 pushes, or 20,000 ops, share one commit.
const CAPS: Caps = Caps {
    pushes: 256,
    ops: 20_000,
};

type Work = Box<dyn FnOnce(&mut Connection, &TableConfig) + Send>;

/// A push waiting for its group.
pub(super) struct PushJob {
    pub ws: WorkspaceId,
    pub access: Access,
    pub ops: Vec<ValidOp>,
    pub now_ms: u64,
    pub reply: oneshot::Sender<Answer>,
}

enum Job {
    Push(PushJob),
    Other(Work),
}

/// The handle the store keeps: a channel to the writer thread, which ends
/// (closing its connection) when the handle is dropped.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<GroupStats>,
    checkpoints: Arc<Checkpointer>,
}

/// Counters of the pushes the writer has committed.
#[derive(Default)]
struct GroupStats {
    groups: AtomicU64,
    pushes: AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `conn` (a connection to `path` without
    /// automatic checkpoints) and the checkpointer beside it.
    pub fn start(conn: Connection, path: &Path, tables: TableConfig) -> Result<Writer, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let stats = Arc::new(GroupStats::default());
        let counters = stats.clone();
        let checkpoints = Arc::new(Checkpointer::start(path)?);
        // The writer's commits report the frames their WAL holds (`after_write` reads them).
        checkpoint::count_wal_frames(&conn);
        let checkpointer = checkpoints.clone();
        let thread = std::thread::Builder::new()
            .name("or3-sqlite-writer".into())
            .spawn(move || run(conn, tables, queue, &counters, &checkpointer))
            .map_err(|e| StoreError::Internal(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            stats,
            checkpoints,
        })
    }

    /// How many group transactions have run so far, and how many pushes they held.
    pub fn groups(&self) -> (u64, u64) {
        (
            self.stats.groups.load(Ordering::Relaxed),
            self.stats.pushes.load(Ordering::Relaxed),
        )
    }

    /// How many WAL checkpoints have run so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.checkpoints()
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Unavailable("the SQLite writer has stopped".into()))
    }

    /// Queues a push for the next group and waits for its answer.
    pub async fn push(
        &self,
        ws: WorkspaceId,
        access: Access,
        ops: Vec<ValidOp>,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Push(PushJob {
            ws,
            access,
            ops,
            now_ms,
            reply,
        }))?;
        answer.await.unwrap_or_else(|_| Err(dropped()))
    }

    /// Runs `work` on the writer connection, between groups.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &TableConfig) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Other(Box::new(move |conn, tables| {
            let _ = reply.send(work(conn, tables));
        })))?;
        answer.await.unwrap_or_else(|_| Err(dropped()))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once the queue is empty.
        drop(self.jobs.take());
        // (Never join from the writer itself: a job may hold the last handle.)
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The answer of a job the writer dropped without answering (it panicked).
fn dropped() -> StoreError {
    StoreError::Internal("the SQLite writer failed while running this request".into())
}

/// The writer thread: takes jobs until the channel closes.
fn run(
    mut conn: Connection,
    tables: TableConfig,
    queue: mpsc::Receiver<Job>,
    stats: &GroupStats,
    checkpoints: &Checkpointer,
) {
    let mut held: Option<Job> = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let group = match job {
            Job::Other(work) => {
                guarded(&mut conn, |conn| work(conn, &tables));
                checkpoints.after_write(&conn);
                continue;
            }
            Job::Push(first) => {
                let mut ops = first.ops.len();
                let mut group = VecDeque::from([first]);
                while !CAPS.is_full(group.len(), ops) {
                    match queue.try_recv() {
                        Ok(Job::Push(next)) => {
                            ops += next.ops.len();
                            group.push_back(next);
                        }
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                group
            }
        };
        let size = group.len();
        let started = Instant::now();
        let mut answers = None;
        guarded(&mut conn, |conn| {
            answers = Some(commit_group(conn, &tables, &group))
        });
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats.pushes.fetch_add(size as u64, Ordering::Relaxed);
        metrics::histogram!("or3_sqlite_group_pushes").record(size as f64);
        metrics::histogram!("or3_sqlite_group_commit_seconds").record(started.elapsed());
        checkpoints.after_write(&conn);
        // A panic leaves `answers` empty: dropping the replies answers each
        // push with `dropped()`.
        if let Some(answers) = answers {
            for (job, answer) in group.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
        }
    }
}

/// Runs `work`, and after a panic rolls back whatever transaction it left open.
fn guarded(conn: &mut Connection, work: impl FnOnce(&mut Connection)) {
    if catch_unwind(AssertUnwindSafe(|| work(conn))).is_err() {
        tracing::error!("a write on the SQLite writer panicked; its transaction is rolled back");
        roll_back_leftover(conn);
    }
}

/// Commits a group (`store/group.rs`): one answer per push, in order.
fn commit_group(
    conn: &mut Connection,
    tables: &TableConfig,
    group: &VecDeque<PushJob>,
) -> Vec<Answer> {
    match group::after_plain_attempt(commit_plainly(conn, tables, group), group.len()) {
        AfterPlain::Answer(answers) => return answers,
        AfterPlain::RunWithSavepoints => {}
    }
    let mut answers = Vec::with_capacity(group.len());
    let committed = (|| {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        for job in group {
            answers.push(push_in_savepoint(&mut tx, tables, job)?);
        }
        tx.commit().map_err(unavailable)
    })();
    roll_back_leftover(conn);
    group::after_savepoint_run(committed.map(|()| answers), group.len())
}

/// The group in one transaction without savepoints.
fn commit_plainly(
    conn: &mut Connection,
    tables: &TableConfig,
    group: &VecDeque<PushJob>,
) -> Attempt {
    let attempt = (|| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Attempt::GroupFailed(unavailable(e)))?;
        let mut outcomes = Vec::with_capacity(group.len());
        for job in group {
            outcomes.push(check_access_and_write(&tx, tables, job).map_err(Attempt::PushFailed)?);
        }
        tx.commit()
            .map_err(|e| Attempt::GroupFailed(unavailable(e)))?;
        Ok(outcomes)
    })();
    roll_back_leftover(conn);
    attempt.map_or_else(|failed| failed, Attempt::Committed)
}

/// Rolls back a transaction a failed attempt left open (a failed `COMMIT`
/// leaves it open).
fn roll_back_leftover(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// One push of a group, all or nothing inside its savepoint. The outer error
/// is one the group cannot go on after (a savepoint that cannot be rolled
/// back); the inner one is this push's own answer.
fn push_in_savepoint(
    tx: &mut rusqlite::Transaction<'_>,
    tables: &TableConfig,
    job: &PushJob,
) -> Result<Result<PushOutcome, StoreError>, StoreError> {
    let mut savepoint = tx.savepoint().map_err(internal)?;
    let answer = check_access_and_write(&savepoint, tables, job);
    if answer.is_err() {
        savepoint.rollback().map_err(internal)?;
    }
    savepoint.commit().map_err(internal)?;
    Ok(answer)
}

/// Checks the caller's access, reads the head, and has the push planned
/// (`sync_core::push`) and written, in the caller's transaction or savepoint.
fn check_access_and_write(
    conn: &Connection,
    tables: &TableConfig,
    job: &PushJob,
) -> Result<PushOutcome, StoreError> {
    require(conn, &job.ws, &job.access, Role::Editor)?;
    let (head, _) = workspace_positions(conn, job.ws.as_str())?;
    push::push(conn, tables, &job.ws, head, &job.ops, job.now_ms)
}
