//! The group-commit policy both stores follow: SQLite's writer thread
//! (`sqlite/writer.rs`, any workspaces) and Postgres's per-workspace queues
//! (`postgres/group.rs`). The stores run the transactions; this module says
//! how big a group is and how its answers follow from its attempts.
//!
//! - **Size.** A group takes queued pushes in arrival order until it holds
//!   [`Caps::pushes`] pushes or [`Caps::ops`] ops (it always takes at least
//!   one push, whatever its size).
//! - **Plain first.** A group first runs as one plain transaction: a
//!   savepoint costs SQLite a second journal of every page it touches and
//!   Postgres two round trips and a subtransaction per push, and a push
//!   almost never fails in the store (a viewer's push, a workspace deleted
//!   meanwhile, a write the database refuses).
//! - **Savepoints after a failure.** If a push fails in that attempt, the
//!   attempt is rolled back. A lone push's transaction is its
//!   all-or-nothing, so its error is its answer; a larger group runs again
//!   with a `SAVEPOINT` per push, so the failure stays that push's own
//!   while the others commit.
//! - **A failed group.** No push is answered before its group commits. If
//!   the group's transaction cannot begin or commit, or breaks off midway
//!   (a lost connection, a time limit), nothing of it was written and every
//!   push gets the same answer, on both stores: [`StoreError::Unavailable`]
//!   naming the cause (503 `store_unavailable` with `Retry-After`). The
//!   failure belongs to no single push, and a retry is safe: op ids make it
//!   idempotent.

use super::{PushOutcome, StoreError};

/// One push's answer.
pub(crate) type Answer = Result<PushOutcome, StoreError>;

/// The most a group takes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Pushes.
    pub pushes: usize,
    /// Ops, over all its pushes.
    pub ops: usize,
}

impl Caps {
    /// True when a group of `pushes` pushes holding `ops` ops takes no more.
    pub fn is_full(&self, pushes: usize, ops: usize) -> bool {
        pushes >= self.pushes || ops >= self.ops
    }

    /// How many of the queued pushes (their op counts, in queue order) the
    /// next group takes: at least one when any is queued.
    pub fn take(&self, queued: impl IntoIterator<Item = usize>) -> usize {
        let (mut pushes, mut ops) = (0, 0);
        for size in queued {
            if pushes > 0 && self.is_full(pushes, ops) {
                break;
            }
            pushes += 1;
            ops += size;
        }
        pushes
    }
}

/// How a group's attempt without savepoints ended.
pub(crate) enum Attempt {
    /// Every push succeeded and the transaction committed: their outcomes.
    Committed(Vec<PushOutcome>),
    /// A push failed (its error); the attempt was rolled back.
    PushFailed(StoreError),
    /// The transaction could not begin or commit, or broke off.
    GroupFailed(StoreError),
}

/// What follows a plain attempt.
pub(crate) enum AfterPlain {
    /// These are the answers, one per push.
    Answer(Vec<Answer>),
    /// Run the group again with a savepoint per push.
    RunWithSavepoints,
}

/// What follows the plain attempt of a group of `pushes` pushes.
pub(crate) fn after_plain_attempt(attempt: Attempt, pushes: usize) -> AfterPlain {
    match attempt {
        Attempt::Committed(outcomes) => AfterPlain::Answer(outcomes.into_iter().map(Ok).collect()),
        Attempt::PushFailed(e) if pushes == 1 => AfterPlain::Answer(vec![Err(e)]),
        Attempt::PushFailed(_) => AfterPlain::RunWithSavepoints,
        Attempt::GroupFailed(e) => AfterPlain::Answer(failed_group(&e, pushes)),
    }
}

/// The answers of a run with a savepoint per push: each push's own once the
/// transaction committed, else the failed group's.
pub(crate) fn after_savepoint_run(
    run: Result<Vec<Answer>, StoreError>,
    pushes: usize,
) -> Vec<Answer> {
    run.unwrap_or_else(|e| failed_group(&e, pushes))
}

/// Every push's answer when its group's transaction failed.
fn failed_group(cause: &StoreError, pushes: usize) -> Vec<Answer> {
    tracing::warn!(error = %cause, pushes, "a group commit failed; none of its pushes was written");
    let message = format!("the commit of this push's group failed, nothing was written: {cause}");
    (0..pushes)
        .map(|_| Err(StoreError::Unavailable(message.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps { pushes: 3, ops: 10 };

    fn outcome() -> PushOutcome {
        PushOutcome {
            outcomes: Vec::new(),
            server_version: 1,
            changes: Vec::new(),
        }
    }

    #[test]
    fn a_group_stops_at_its_push_cap() {
        assert_eq!(CAPS.take([1, 1, 1, 1, 1]), 3);
    }

    #[test]
    fn a_group_stops_once_it_holds_its_op_cap() {
        assert_eq!(CAPS.take([4, 4, 4, 1]), 3);
        assert_eq!(CAPS.take([6, 4, 1]), 2);
    }

    #[test]
    fn a_group_always_takes_one_push_whatever_its_size() {
        assert_eq!(CAPS.take([50, 1]), 1);
        assert_eq!(CAPS.take([]), 0);
    }

    #[test]
    fn a_lone_push_that_fails_is_answered_with_its_own_error() {
        let after = after_plain_attempt(Attempt::PushFailed(StoreError::UnknownWorkspace), 1);
        assert!(matches!(
            after,
            AfterPlain::Answer(answers) if matches!(answers[..], [Err(StoreError::UnknownWorkspace)])
        ));
    }

    #[test]
    fn a_push_failing_in_a_larger_group_reruns_it_with_savepoints() {
        let after = after_plain_attempt(Attempt::PushFailed(StoreError::UnknownWorkspace), 2);
        assert!(matches!(after, AfterPlain::RunWithSavepoints));
    }

    #[test]
    fn a_committed_group_answers_each_push_its_outcome() {
        let after = after_plain_attempt(Attempt::Committed(vec![outcome(), outcome()]), 2);
        assert!(
            matches!(after, AfterPlain::Answer(a) if a.len() == 2 && a.iter().all(Result::is_ok))
        );
    }

    #[test]
    fn every_push_of_a_failed_group_is_answered_unavailable_whatever_the_cause() {
        for cause in [
            StoreError::Internal("deferred constraint".into()),
            StoreError::Unavailable("connection lost".into()),
        ] {
            let answers = after_savepoint_run(Err(cause), 3);
            assert_eq!(answers.len(), 3);
            assert!(answers
                .iter()
                .all(|a| matches!(a, Err(StoreError::Unavailable(m)) if m.contains("nothing was written"))));
        }
        let AfterPlain::Answer(answers) =
            after_plain_attempt(Attempt::GroupFailed(StoreError::Internal("x".into())), 1)
        else {
            panic!("a failed group is answered at once");
        };
        assert!(matches!(answers[..], [Err(StoreError::Unavailable(_))]));
    }
}
