//! One subscription, independent of its transport: `hello` starts it at a
//! cursor; the session sends the backlog from the store in frames that
//! chain, then each live commit from the hub, trimmed to what the client
//! has not seen and filtered to its project. It pokes and goes quiet when
//! the client falls behind the hub's queue, refreshes its token on `auth`,
//! re-checks membership, pings, and closes with an error frame when it must.
//! Over a WebSocket it also takes pushes (after an accepted `hello`): each
//! runs in a task of its own, so changes keep flowing while it commits, and
//! its answer goes out between frames, before or after the changes frame
//! that carries its versions.

use super::frames::ClientFrame;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::check_project_id;
use crate::fanout::frames::{
    changes_frame, error_frame, poke_frame, push_error_frame, push_result_frame,
};
use crate::fanout::hub::Commit;
use crate::limiter::{RateLimitHint, RouteClass};
use crate::push::{apply_push, refuse_while_draining};
use crate::state::AppState;
use crate::store::{Access, ChangesQuery, DevicePosition, LoggedChange, StoreError};
use axum::extract::ws::Utf8Bytes;
use axum::http::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use sync_core::wire::PushRequest;
use sync_core::{ServerVersion, WorkspaceId};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How often membership is checked again while connected.
pub const MEMBERSHIP_RECHECK: Duration = Duration::from_secs(30);
/// Entries per backlog read.
const BACKLOG_PAGE: usize = 1000;
/// Pushes one session may have unanswered; one more is refused 429 (a
/// client engine has one push in flight).
pub const MAX_PUSHES_IN_FLIGHT: usize = 8;

/// Where a session writes. Every method returns `false` once the peer is gone.
pub trait Outbound: Send {
    /// Sends one text frame.
    fn send(&mut self, frame: Utf8Bytes) -> impl std::future::Future<Output = bool> + Send;
    /// Sends a keep-alive.
    fn ping(&mut self) -> impl std::future::Future<Output = bool> + Send;
    /// Closes the stream (`going_away` on shutdown, else a policy close).
    fn close(&mut self, going_away: bool) -> impl std::future::Future<Output = ()> + Send;
}

/// What ends a session, or keeps it waiting for the next `hello`.
enum Next {
    Continue,
    AwaitHello,
    Close,
}

/// The state of one subscription.
pub struct Session {
    state: AppState,
    ws: WorkspaceId,
    identity: Identity,
    /// Sessions over SSE cannot receive a new `hello`: they end where a
    /// WebSocket session would wait for one.
    can_rehello: bool,
    live: Option<broadcast::Receiver<Arc<Commit>>>,
    project_id: Option<String>,
    /// Highest version examined for this client.
    examined: ServerVersion,
    /// `to` of the last frame sent: the next frame's `from`.
    announced: ServerVersion,
    /// Set once a `hello` passed its checks: pushes are taken from then on.
    hello_accepted: bool,
    /// Permits of the pushes in flight.
    pushes: Arc<Semaphore>,
    /// Where a push's task leaves its answer frame for the session to send.
    answers: mpsc::Sender<Utf8Bytes>,
    answers_rx: Option<mpsc::Receiver<Utf8Bytes>>,
}

impl Session {
    /// A session for an authenticated member of `ws`.
    pub fn new(state: AppState, ws: WorkspaceId, identity: Identity, can_rehello: bool) -> Session {
        let (answers, answers_rx) = mpsc::channel(MAX_PUSHES_IN_FLIGHT);
        Session {
            state,
            ws,
            identity,
            can_rehello,
            live: None,
            project_id: None,
            examined: 0,
            announced: 0,
            hello_accepted: false,
            pushes: Arc::new(Semaphore::new(MAX_PUSHES_IN_FLIGHT)),
            answers,
            answers_rx: Some(answers_rx),
        }
    }

    /// The caller's access; `Forbidden` when claims no longer name this workspace.
    async fn access(&self) -> Result<Access, StoreError> {
        self.state
            .access(&self.identity, &self.ws)
            .await
            .map_err(|_| StoreError::Forbidden("the token's organization is not this workspace"))
    }

    /// Runs until the client leaves, the server shuts down, or access ends.
    /// `first` is a `hello` the transport already has (SSE's query string).
    pub async fn run<O: Outbound>(
        mut self,
        first: Option<ClientFrame>,
        mut client: mpsc::Receiver<Result<ClientFrame, ApiError>>,
        out: &mut O,
    ) {
        let mut answers = self.answers_rx.take();
        let hub = self.state.hub.clone();
        let mut shutdown = hub.shutdown_signal();
        let mut revocations = hub.revocations();
        let timeouts = self.state.config.timeouts;
        let every = timeouts.ping_interval();
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        // A WebSocket client must start with `hello`; until then it holds a
        // connection for nothing. (SSE's hello is its query string.)
        let hello_deadline = tokio::time::sleep(timeouts.hello);
        tokio::pin!(hello_deadline);
        let mut awaiting_first_hello = first.is_none();
        let mut recheck =
            tokio::time::interval_at(Instant::now() + MEMBERSHIP_RECHECK, MEMBERSHIP_RECHECK);
        metrics::gauge!("or3_subscribers").increment(1.0);
        // The expiry timer is armed once per token, not once per frame (a frame per commit
        // re-registering it showed in the fan-out profile).
        let mut armed_for = self.identity.expires_at;
        let expiry = tokio::time::sleep_until(expiry_instant(armed_for, self.state.clock.now_ms()));
        tokio::pin!(expiry);
        let mut first = first;
        loop {
            if let Some(frame) = first.take() {
                match self.on_client_frame(frame, out).await {
                    Next::Continue => continue,
                    _ => {
                        out.close(false).await;
                        break;
                    }
                }
            }
            if self.identity.expires_at != armed_for {
                armed_for = self.identity.expires_at;
                expiry
                    .as_mut()
                    .reset(expiry_instant(armed_for, self.state.clock.now_ms()));
            }
            let next = tokio::select! {
                frame = client.recv() => match frame {
                    Some(Ok(frame)) => {
                        awaiting_first_hello &= !matches!(frame, ClientFrame::Hello { .. });
                        self.on_client_frame(frame, out).await
                    }
                    Some(Err(refusal)) => {
                        send_error(out, refusal.code, &refusal.message, None).await;
                        Next::Close
                    }
                    None => Next::Close,
                },
                Some(answer) = recv_answer(&mut answers) => {
                    if out.send(answer).await { Next::Continue } else { Next::Close }
                }
                commit = recv_live(&mut self.live) => self.on_live(commit, out).await,
                _ = &mut hello_deadline, if awaiting_first_hello => {
                    metrics::counter!("or3_connections_closed_total", "reason" => "hello_timeout").increment(1);
                    let why = format!("send a hello frame within {} s of connecting", timeouts.hello.as_secs_f64());
                    send_error(out, ErrorCode::HelloTimeout, &why, None).await;
                    Next::Close
                }
                _ = ping.tick() => if out.ping().await { Next::Continue } else { Next::Close },
                _ = recheck.tick() => self.recheck_membership(out).await,
                _ = &mut expiry => {
                    send_error(out, ErrorCode::TokenExpired, "the token expired; send an auth frame with a fresh one before expiry", None).await;
                    Next::Close
                }
                Ok(revoked) = revocations.recv() => match revoked.user_id {
                    _ if revoked.workspace_id != self.ws => Next::Continue,
                    None => {
                        send_error(out, ErrorCode::UnknownWorkspace, "the workspace was deleted", None).await;
                        Next::Close
                    }
                    Some(user) if user == self.identity.user_id => {
                        send_error(out, ErrorCode::Forbidden, "membership was revoked", None).await;
                        Next::Close
                    }
                    Some(_) => Next::Continue,
                },
                _ = shutdown.changed() => {
                    send_error(out, ErrorCode::ShuttingDown, "the server is shutting down; reconnect", None).await;
                    out.close(true).await;
                    break;
                }
            };
            match next {
                Next::Continue => {}
                Next::AwaitHello if self.can_rehello => self.live = None,
                Next::AwaitHello | Next::Close => {
                    out.close(false).await;
                    break;
                }
            }
        }
        metrics::gauge!("or3_subscribers").decrement(1.0);
    }

    async fn on_client_frame<O: Outbound>(&mut self, frame: ClientFrame, out: &mut O) -> Next {
        match frame {
            ClientFrame::Hello {
                cursor,
                device_id,
                project_id,
            } => self.hello(cursor, device_id, project_id, out).await,
            ClientFrame::Auth { token } => match self.state.auth.verify(&token).await {
                Ok(fresh) if fresh.user_id == self.identity.user_id => {
                    self.identity = fresh;
                    Next::Continue
                }
                Ok(_) => {
                    send_error(
                        out,
                        ErrorCode::Forbidden,
                        "the new token names another user",
                        None,
                    )
                    .await;
                    Next::Close
                }
                Err(e) => {
                    send_error(out, e.code, &e.message, None).await;
                    Next::Close
                }
            },
            ClientFrame::Push { id, request } => {
                let (rate_limit, admitted) = self.admit_push(request);
                let answer = match admitted {
                    Ok((request, permit)) => {
                        self.spawn_push(id, request, permit, rate_limit);
                        return Next::Continue;
                    }
                    Err(refusal) => push_error_frame(&id, &refusal, rate_limit),
                };
                if out.send(answer.into()).await {
                    Next::Continue
                } else {
                    Next::Close
                }
            }
        }
    }

    /// What must hold before a push on the socket is applied, checked in the
    /// order an HTTP push meets them (the session's `hello` first): a token
    /// still valid, the push rate limit, a server not draining, a frame within
    /// the body limits; and a free slot among the session's pushes in flight.
    /// With it, the push rate limit's budget once it counted the push, which
    /// the answer carries as an HTTP answer carries its `RateLimit-*` headers.
    fn admit_push(
        &self,
        request: Result<PushRequest, ApiError>,
    ) -> (
        Option<RateLimitHint>,
        Result<(PushRequest, OwnedSemaphorePermit), ApiError>,
    ) {
        if let Err(refusal) = self.may_push() {
            return (None, Err(refusal));
        }
        let decision = self
            .state
            .rate_limits
            .for_user(RouteClass::Push, &self.identity.user_id);
        let rate_limit = decision.as_ref().map(|d| d.hint);
        if let Some(refusal) = decision.and_then(|d| d.refusal(RouteClass::Push)) {
            return (rate_limit, Err(refusal));
        }
        (rate_limit, self.take_push_slot(request))
    }

    /// The checks before the push rate limit: an accepted `hello`, a token
    /// still valid.
    fn may_push(&self) -> Result<(), ApiError> {
        if !self.hello_accepted {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidFrame,
                "type",
                "send a hello frame (and let it be accepted) before pushing on the socket",
            ));
        }
        let expires_ms = (self.identity.expires_at + crate::auth::LEEWAY_SECS) * 1000;
        if self.state.clock.now_ms() >= expires_ms {
            return Err(ApiError::unauthorized(
                ErrorCode::TokenExpired,
                "the token expired; send an auth frame with a fresh one",
            ));
        }
        Ok(())
    }

    /// The checks after the push rate limit: a server not draining, a frame
    /// within the body limits, a free slot among the pushes in flight.
    fn take_push_slot(
        &self,
        request: Result<PushRequest, ApiError>,
    ) -> Result<(PushRequest, OwnedSemaphorePermit), ApiError> {
        refuse_while_draining(&self.state)?;
        let request = request?;
        let permit = self.pushes.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("at most {MAX_PUSHES_IN_FLIGHT} pushes in flight on one socket"),
            )
            .with_retry_after(1)
        })?;
        Ok((request, permit))
    }

    /// Applies a push in a task of its own, as the HTTP route does, and
    /// leaves its answer for the session loop to send.
    fn spawn_push(
        &self,
        id: String,
        request: PushRequest,
        permit: OwnedSemaphorePermit,
        rate_limit: Option<RateLimitHint>,
    ) {
        let (state, identity, ws) = (self.state.clone(), self.identity.clone(), self.ws.clone());
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (answer, status) = match apply_push(&state, &identity, ws, request).await {
                Ok(response) => (
                    push_result_frame(&id, &response, rate_limit),
                    StatusCode::OK,
                ),
                Err(refusal) => (push_error_frame(&id, &refusal, rate_limit), refusal.status),
            };
            metrics::histogram!("or3_ws_push_seconds", "status" => status.as_u16().to_string())
                .record(started.elapsed().as_secs_f64());
            // The session may have ended: the push is committed all the same,
            // and the client's retry (same op ids) answers `duplicate`.
            let _ = answers.send(answer.into()).await;
            drop(permit);
        });
    }

    /// Starts at `cursor`: subscribe to live commits first, then send the
    /// backlog, so nothing committed in between is missed.
    async fn hello<O: Outbound>(
        &mut self,
        cursor: ServerVersion,
        device_id: Option<String>,
        project_id: Option<String>,
        out: &mut O,
    ) -> Next {
        let project_id = match check_project_id(project_id) {
            Ok(project_id) => project_id,
            Err(e) => {
                send_error(out, e.code, &e.message, None).await;
                return Next::AwaitHello;
            }
        };
        let device_id = match device_id.map(|d| sync_core::DeviceId::parse(&d)) {
            Some(None) => {
                send_error(
                    out,
                    ErrorCode::InvalidDeviceId,
                    "device_id must be 16 to 64 lowercase hex characters",
                    None,
                )
                .await;
                return Next::AwaitHello;
            }
            other => other.flatten(),
        };
        self.live = Some(self.state.hub.subscribe(&self.ws));
        self.hello_accepted = true;
        self.project_id = project_id;
        self.examined = cursor;
        self.announced = cursor;
        if let Some(device) = device_id {
            self.state.positions.report(DevicePosition {
                workspace_id: self.ws.clone(),
                device_id: device.as_str().to_owned(),
                cursor,
                seen_at_ms: self.state.clock.now_ms(),
            });
        }
        loop {
            let access = match self.access().await {
                Ok(access) => access,
                Err(e) => return self.store_failure(e, out).await,
            };
            let page = self
                .state
                .store
                .changes(
                    &self.ws,
                    &access,
                    ChangesQuery {
                        cursor: self.examined,
                        limit: BACKLOG_PAGE,
                        project_id: self.project_id.clone(),
                        tables: None,
                    },
                )
                .await;
            match page {
                Ok(page) => {
                    let more = page.has_more;
                    if !page.changes.is_empty() {
                        let frame = changes_frame(self.announced, page.cursor, &page.changes);
                        if !out.send(frame.into()).await {
                            return Next::Close;
                        }
                        self.announced = page.cursor;
                    }
                    self.examined = page.cursor;
                    if !more {
                        return Next::Continue;
                    }
                }
                Err(e) => return self.store_failure(e, out).await,
            }
        }
    }

    async fn store_failure<O: Outbound>(&mut self, e: StoreError, out: &mut O) -> Next {
        let error = ApiError::from(e);
        send_error(
            out,
            error.code,
            &error.message,
            error.oldest_retained_version,
        )
        .await;
        match error.code {
            ErrorCode::CursorExpired => Next::AwaitHello,
            _ => Next::Close,
        }
    }

    async fn on_live<O: Outbound>(
        &mut self,
        commit: Result<Arc<Commit>, RecvError>,
        out: &mut O,
    ) -> Next {
        let commit = match commit {
            Ok(commit) => commit,
            Err(RecvError::Lagged(_)) => {
                let head = self
                    .state
                    .store
                    .head(&self.ws)
                    .await
                    .unwrap_or(self.examined);
                if !out.send(poke_frame(head).into()).await {
                    return Next::Close;
                }
                return Next::AwaitHello;
            }
            Err(RecvError::Closed) => return Next::Close,
        };
        if commit.to <= self.examined {
            return Next::Continue;
        }
        if commit.from > self.examined {
            // A commit this hub never saw (or saw late): read the gap.
            if let Next::Close = self.fill_gap(commit.from, out).await {
                return Next::Close;
            }
        }
        let whole = self.project_id.is_none()
            && commit.from == self.examined
            && self.announced == self.examined;
        let sent = if whole {
            out.send(commit.frame.clone()).await
        } else {
            let fresh = in_view(
                &commit.changes,
                self.examined,
                commit.to,
                self.project_id.as_deref(),
            );
            if fresh.is_empty() {
                self.examined = commit.to;
                return Next::Continue;
            }
            out.send(changes_frame(self.announced, commit.to, fresh).into())
                .await
        };
        if !sent {
            return Next::Close;
        }
        self.examined = commit.to;
        self.announced = commit.to;
        Next::Continue
    }

    async fn fill_gap<O: Outbound>(&mut self, until: ServerVersion, out: &mut O) -> Next {
        while self.examined < until {
            let read = self
                .state
                .store
                .log_since(&self.ws, self.examined, BACKLOG_PAGE)
                .await;
            let entries = match read {
                Ok((entries, _)) if !entries.is_empty() => entries,
                Ok(_) => return Next::Continue,
                Err(e) => return self.store_failure(e, out).await,
            };
            // The log is gap-free, so a first entry past the next version means GC purged what
            // this client has not seen: it must rescan, as a pull from here would be told. A
            // frame over the hole would move its cursor past changes it never got.
            let first = entries[0].change.server_version;
            if first > self.examined + 1 {
                let expired = StoreError::CursorExpired {
                    oldest_retained_version: first,
                };
                return self.store_failure(expired, out).await;
            }
            let to = entries
                .last()
                .map_or(until, |e| e.change.server_version)
                .min(until);
            let fresh = in_view(&entries, self.examined, to, self.project_id.as_deref());
            if !fresh.is_empty() {
                if !out
                    .send(changes_frame(self.announced, to, fresh).into())
                    .await
                {
                    return Next::Close;
                }
                self.announced = to;
            }
            self.examined = to;
        }
        Next::Continue
    }

    async fn recheck_membership<O: Outbound>(&mut self, out: &mut O) -> Next {
        let access = match self.access().await {
            Ok(access) => access,
            Err(e) => return self.store_failure(e, out).await,
        };
        match self.state.store.role_of(&self.ws, &access).await {
            Ok(_) => Next::Continue,
            Err(StoreError::Unavailable(_)) => Next::Continue,
            Err(e) => {
                let error = ApiError::from(e);
                send_error(out, error.code, "membership was revoked", None).await;
                Next::Close
            }
        }
    }
}

/// The entries in `(after, to]` that a subscriber of `project_id` sees.
fn in_view<'a>(
    entries: &'a [LoggedChange],
    after: ServerVersion,
    to: ServerVersion,
    project_id: Option<&str>,
) -> Vec<&'a sync_core::wire::Change> {
    entries
        .iter()
        .filter(|c| c.change.server_version > after && c.change.server_version <= to)
        .filter(|c| c.in_scope(project_id))
        .map(|c| &c.change)
        .collect()
}

async fn send_error<O: Outbound>(
    out: &mut O,
    code: ErrorCode,
    message: &str,
    oldest: Option<ServerVersion>,
) {
    let _ = out.send(error_frame(code, message, oldest).into()).await;
}

async fn recv_answer(answers: &mut Option<mpsc::Receiver<Utf8Bytes>>) -> Option<Utf8Bytes> {
    match answers {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_live(
    live: &mut Option<broadcast::Receiver<Arc<Commit>>>,
) -> Result<Arc<Commit>, RecvError> {
    match live {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// When a token that expires at `expires_at` (epoch seconds, plus the
/// verifier's leeway) stops being valid, as a timer deadline.
fn expiry_instant(expires_at: u64, now_ms: u64) -> Instant {
    let deadline_ms = (expires_at + crate::auth::LEEWAY_SECS) * 1000;
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
