//! Group commit on Postgres, per workspace.
//!
//! Postgres already shares WAL flushes between the commits of concurrent
//! connections, so pushes to different workspaces need nothing here. Pushes
//! to one workspace are another matter: each holds the workspace's counter
//! row from its reads to its commit, so they run one after another, each
//! waiting for the previous one's commit while holding a pooled connection.
//!
//! So the pushes of one workspace go through a queue: the first push that
//! finds no group running starts a drainer task, which takes every push
//! queued by then (up to [`MAX_GROUP_PUSHES`]) and runs them in one
//! transaction on one connection, each against the head the previous one
//! left (gap-free versions in queue order), then commits once and answers
//! them all; pushes that queued meanwhile make the next group. Each push
//! keeps its own all-or-nothing outcome: a group runs first as one plain
//! transaction, and only when one of its pushes fails is it rolled back and
//! run again with a `SAVEPOINT` per push, so the failure is that push's
//! alone (as the SQLite writer does). A lone push runs at once, in a plain
//! transaction of its own. No push is answered before its
//! group commits; if the commit fails, every push of the group gets the
//! error and none was acknowledged.

use super::push::push;
use super::{pg_error, PostgresStore};
use crate::store::{Access, PushOutcome, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use sync_core::{ValidOp, WorkspaceId};
use tokio::sync::oneshot;

/// At most this many pushes share one transaction.
const MAX_GROUP_PUSHES: usize = 64;

/// A push waiting for its group.
struct Pending {
    access: Access,
    ops: Vec<ValidOp>,
    now_ms: u64,
    reply: oneshot::Sender<Result<PushOutcome, StoreError>>,
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
                let take = queue.len().min(MAX_GROUP_PUSHES);
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

/// One transaction for the group; answers every push once it has committed.
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
        .with_client(async |client| {
            if jobs.len() > 1 {
                if let Some(answers) = run_plainly(client, tables, ws, jobs).await? {
                    return Ok(answers);
                }
            }
            let mut tx = client.transaction().await.map_err(pg_error)?;
            let mut answers = Vec::with_capacity(jobs.len());
            if let [job] = jobs.as_slice() {
                // A lone push: its transaction is its all-or-nothing.
                answers.push(Ok(
                    push(&tx, tables, ws, &job.access, &job.ops, job.now_ms).await?
                ));
            } else {
                for job in jobs {
                    let savepoint = tx.savepoint("push").await.map_err(pg_error)?;
                    let answer =
                        push(&savepoint, tables, ws, &job.access, &job.ops, job.now_ms).await;
                    match answer {
                        Ok(_) => savepoint.commit().await.map_err(pg_error)?,
                        Err(_) => savepoint.rollback().await.map_err(pg_error)?,
                    }
                    answers.push(answer);
                }
            }
            tx.commit().await.map_err(pg_error)?;
            Ok(answers)
        })
        .await;
    match answers {
        Ok(answers) => {
            for (job, answer) in group.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
        }
        Err(e) => {
            if group.len() > 1 {
                tracing::warn!(error = %e, pushes = group.len(), "a push group failed; none of its pushes was acknowledged");
            }
            let message = e.to_string();
            let mut group = group.into_iter();
            // The first gets the error itself (its kind decides the answer);
            // a group is all or nothing, so the others get it too.
            if let Some(first) = group.next() {
                let _ = first.reply.send(Err(e));
            }
            for job in group {
                let _ = job.reply.send(Err(same_kind(&message)));
            }
        }
    }
}

/// Runs a group as one plain transaction and commits it when every push
/// succeeded; `None`, with everything rolled back, when one failed (the
/// group then runs again with a savepoint per push, so that the failure is
/// that push's alone). A savepoint costs two more round trips and a
/// subtransaction per push, and a failed push is rare.
async fn run_plainly(
    client: &mut deadpool_postgres::Client,
    tables: &sync_core::TableConfig,
    ws: &WorkspaceId,
    jobs: &[Pending],
) -> Result<Option<Vec<Result<PushOutcome, StoreError>>>, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        match push(&tx, tables, ws, &job.access, &job.ops, job.now_ms).await {
            Ok(outcome) => answers.push(Ok(outcome)),
            Err(_) => {
                tx.rollback().await.map_err(pg_error)?;
                return Ok(None);
            }
        }
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(Some(answers))
}

/// The error the other pushes of a failed group get.
fn same_kind(message: &str) -> StoreError {
    StoreError::Unavailable(format!("the push group this push was in failed: {message}"))
}
