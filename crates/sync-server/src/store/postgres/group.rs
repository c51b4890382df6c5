//! Group commit on Postgres, per workspace.
//!
//! Postgres already shares WAL flushes between the commits of concurrent
//! connections, so pushes to different workspaces need nothing here. Pushes
//! to one workspace are another matter: each holds the workspace's counter
//! row from its reads to its commit, so they run one after another, each
//! waiting for the previous one's commit while holding a pooled connection.
//!
//! So the pushes of one workspace go through a queue: the first push that
//! finds no group running starts a drainer task, which takes the pushes
//! queued by then (up to [`CAPS`]) and runs them in one transaction on one
//! connection, each against the head the previous one left (gap-free
//! versions in queue order), then commits once and answers them all; pushes
//! that queued meanwhile make the next group. The group runs as
//! `store/group.rs` says, as on SQLite: plain first, a `SAVEPOINT` per push
//! only after a failure, one answer for every push of a failed group. Each
//! push (and each `BEGIN` and `COMMIT`) gets the store's whole call time
//! limit of its own, so a group of many pushes is not cut short by a limit
//! sized for one.

use super::push::push;
use super::{pg_error, PostgresStore, StepBudget};
use crate::store::group::{self, AfterPlain, Answer, Attempt, Caps};
use crate::store::{Access, PushOutcome, StoreError};
use deadpool_postgres::Client;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use sync_core::{ValidOp, WorkspaceId};
use tokio::sync::oneshot;

/// At most 64 pushes, or 20,000 ops, share one transaction.
const CAPS: Caps = Caps {
    pushes: 64,
    ops: 20_000,
};

/// A push waiting for its group.
struct Pending {
    access: Access,
    ops: Vec<ValidOp>,
    now_ms: u64,
    reply: oneshot::Sender<Answer>,
}

/// The queued pushes of each workspace with a group running.
#[derive(Default)]
pub(super) struct Groups {
    queues: Mutex<HashMap<WorkspaceId, Vec<Pending>>>,
    groups: AtomicU64,
    pushes: AtomicU64,
}

impl Groups {
    /// How many group transactions have run, and how many pushes they held.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.groups.load(Ordering::Relaxed),
            self.pushes.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, Vec<Pending>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Queues a push behind its workspace's running group (starting one when
/// there is none) and waits for its answer.
pub(super) async fn push_in_group(
    store: &PostgresStore,
    ws: &WorkspaceId,
    access: &Access,
    ops: Vec<ValidOp>,
    now_ms: u64,
) -> Result<PushOutcome, StoreError> {
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        access: access.clone(),
        ops,
        now_ms,
        reply,
    };
    let start = {
        let mut queues = store.inner.groups.lock();
        match queues.get_mut(ws) {
            Some(queue) => {
                queue.push(pending);
                None
            }
            None => {
                queues.insert(ws.clone(), Vec::new());
                Some(pending)
            }
        }
    };
    if let Some(first) = start {
        // A task of its own, so a caller that goes away never strands the
        // pushes queued behind it.
        tokio::spawn(drain(store.clone(), ws.clone(), first));
    }
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Internal(
            "the push group ended without an answer".into(),
        ))
    })
}

/// Runs groups for `ws` until its queue is empty.
async fn drain(store: PostgresStore, ws: WorkspaceId, first: Pending) {
    // If this task ends early (a panic), the workspace's queue is closed and
    // its pushes answered with an internal error rather than left waiting.
    let mut closing = Closing {
        store: &store,
        ws: &ws,
        done: false,
    };
    let mut group = vec![first];
    loop {
        run_group(&store, &ws, group).await;
        let mut queues = store.inner.groups.lock();
        match queues.get_mut(&ws) {
            Some(queue) if !queue.is_empty() => {
                let take = CAPS.take(queue.iter().map(|p| p.ops.len()));
                group = queue.drain(..take).collect();
            }
            _ => {
                // Removed under the lock: the next push starts a new group.
                queues.remove(&ws);
                closing.done = true;
                return;
            }
        }
    }
}

/// Closes a workspace's queue when its drainer ends without emptying it.
struct Closing<'a> {
    store: &'a PostgresStore,
    ws: &'a WorkspaceId,
    done: bool,
}

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Dropping the queued replies answers them (see `push_in_group`).
            self.store.inner.groups.lock().remove(self.ws);
        }
    }
}

/// Runs a group (`store/group.rs`) and answers every push once it has
/// committed.
async fn run_group(store: &PostgresStore, ws: &WorkspaceId, group: Vec<Pending>) {
    let counts = &store.inner.groups;
    counts.groups.fetch_add(1, Ordering::Relaxed);
    counts
        .pushes
        .fetch_add(group.len() as u64, Ordering::Relaxed);
    metrics::histogram!("or3_pg_group_pushes").record(group.len() as f64);
    let tables = &store.inner.tables;
    let jobs = &group;
    let answers = store
        .with_client_in_steps(async |client, budget| {
            let plain = run_plainly(client, budget, tables, ws, jobs).await;
            Ok(match group::after_plain_attempt(plain, jobs.len()) {
                AfterPlain::Answer(answers) => answers,
                AfterPlain::RunWithSavepoints => {
                    let run = run_with_savepoints(client, budget, tables, ws, jobs).await;
                    group::after_savepoint_run(run, jobs.len())
                }
            })
        })
        .await;
    // Only the checkout fails here: a group without a connection failed.
    let answers = group::after_savepoint_run(answers, group.len());
    for (job, answer) in group.into_iter().zip(answers) {
        let _ = job.reply.send(answer);
    }
}

/// The group as one plain transaction, committed when every push succeeded.
async fn run_plainly(
    client: &mut Client,
    budget: &StepBudget,
    tables: &sync_core::TableConfig,
    ws: &WorkspaceId,
    jobs: &[Pending],
) -> Attempt {
    let tx = match budget
        .run(async { client.transaction().await.map_err(pg_error) })
        .await
    {
        Ok(tx) => tx,
        Err(e) => return Attempt::GroupFailed(e),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        match budget
            .run(push(&tx, tables, ws, &job.access, &job.ops, job.now_ms))
            .await
        {
            Ok(outcome) => outcomes.push(outcome),
            // Dropping the transaction rolls it back.
            Err(e) => return Attempt::PushFailed(e),
        }
    }
    match budget
        .run(async { tx.commit().await.map_err(pg_error) })
        .await
    {
        Ok(()) => Attempt::Committed(outcomes),
        Err(e) => Attempt::GroupFailed(e),
    }
}

/// The group again, with a savepoint per push: each push's own answer, or
/// the error the transaction failed with.
async fn run_with_savepoints(
    client: &mut Client,
    budget: &StepBudget,
    tables: &sync_core::TableConfig,
    ws: &WorkspaceId,
    jobs: &[Pending],
) -> Result<Vec<Answer>, StoreError> {
    let mut tx = budget
        .run(async { client.transaction().await.map_err(pg_error) })
        .await?;
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let answer = budget
            .run(async {
                let savepoint = tx.savepoint("push").await.map_err(pg_error)?;
                let answer = push(&savepoint, tables, ws, &job.access, &job.ops, job.now_ms).await;
                match answer {
                    Ok(_) => savepoint.commit().await.map_err(pg_error)?,
                    Err(_) => savepoint.rollback().await.map_err(pg_error)?,
                }
                Ok(answer)
            })
            .await?;
        answers.push(answer);
    }
    budget
        .run(async { tx.commit().await.map_err(pg_error) })
        .await?;
    Ok(answers)
}
