//! A deadline on request bodies with a minimum rate: a body may take
//! `Timeouts::body`, plus a second for every `min_body_bytes_per_sec` bytes
//! received. A steady upload at the minimum rate never runs out of time;
//! a body that stalls (or trickles a byte now and then) fails with
//! [`BodyTimeout`], which the handler answers with 408 `body_timeout`, and
//! hyper closes the connection since the body was not read to its end.
//! tower-http's `RequestBodyTimeout` resets on each frame, so a trickle
//! would hold the connection forever; hence this wrapper.

use crate::config::Timeouts;
use crate::error::ApiError;
use crate::error::ErrorCode;
use axum::body::{Body, Bytes};
use http_body::Frame;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The error a body fails with when it is late.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// Wraps every request body of a router in the deadline.
pub fn layer(
    timeouts: Timeouts,
) -> tower_http::map_request_body::MapRequestBodyLayer<impl Fn(Body) -> Body + Clone> {
    tower_http::map_request_body::MapRequestBodyLayer::new(move |body| {
        Body::new(DeadlineBody::new(body, timeouts))
    })
}

/// True when reading a body failed because of its deadline.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// 408 `body_timeout`, for a body that failed with [`BodyTimeout`].
pub fn timeout_error(timeouts: &Timeouts) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        ErrorCode::BodyTimeout,
        format!(
            "the request body must arrive within {} s plus 1 s per {} bytes",
            timeouts.body.as_secs_f64(),
            timeouts.min_body_bytes_per_sec
        ),
    )
    .with_field("body")
}

/// A body that fails once it falls behind its deadline. The clock starts
/// when the handler first reads it, so time spent before (checking a token)
/// is not the client's.
struct DeadlineBody {
    inner: Body,
    timeouts: Timeouts,
    received: u64,
    /// When the handler first read the body, and the deadline since; a
    /// body never read costs no timer.
    clock: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl DeadlineBody {
    fn new(inner: Body, timeouts: Timeouts) -> DeadlineBody {
        DeadlineBody {
            inner,
            timeouts,
            received: 0,
            clock: None,
        }
    }
}

/// The time a body may take once `received` bytes are in: `body`, plus a
/// second per `min_body_bytes_per_sec` bytes.
fn allowed(timeouts: Timeouts, received: u64) -> Duration {
    let earned = match timeouts.min_body_bytes_per_sec {
        0 => Duration::ZERO,
        rate => Duration::from_secs_f64(received as f64 / rate as f64),
    };
    timeouts.body + earned
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let body = this.timeouts.body;
        let (started, deadline) = this
            .clock
            .get_or_insert_with(|| (Instant::now(), Box::pin(tokio::time::sleep(body))));
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let until = *started + allowed(this.timeouts, this.received);
                    deadline.as_mut().reset(until);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if deadline.as_mut().poll(cx).is_ready() {
                    metrics::counter!("or3_connections_closed_total", "reason" => "body_timeout")
                        .increment(1);
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))));
                }
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
