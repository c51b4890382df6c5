//! The rate limiters, per user and route class (push, pull, subscribe) and
//! per IP for requests without a valid token, with governor's GCRA
//! limiters. `AppState` holds them; the middleware that applies them to
//! requests is [`crate::rate_limit`].

use crate::config::RateLimitConfig;
use crate::error::{ApiError, ErrorCode};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::Serialize;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The route classes limited separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// `POST …/push`.
    Push,
    /// Reads and management calls.
    Pull,
    /// `…/subscribe` and `…/events`.
    Subscribe,
}

impl RouteClass {
    /// The class of a route, from its matched path.
    pub fn of(path: &str) -> RouteClass {
        if path.ends_with("/push") {
            RouteClass::Push
        } else if path.ends_with("/subscribe") || path.ends_with("/events") {
            RouteClass::Subscribe
        } else {
            RouteClass::Pull
        }
    }

    /// The class's name in metrics and messages.
    pub fn label(self) -> &'static str {
        match self {
            RouteClass::Push => "push",
            RouteClass::Pull => "pull",
            RouteClass::Subscribe => "subscribe",
        }
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

struct Limiter<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    per_minute: u32,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(per_minute: u32) -> Option<Limiter<K>> {
        let n = NonZeroU32::new(per_minute)?;
        Some(Limiter {
            limiter: RateLimiter::keyed(Quota::per_minute(n)).with_middleware(),
            per_minute,
        })
    }

    fn check(&self, key: &K) -> Decision {
        let limit = self.per_minute;
        let per_token = 60.0 / f64::from(limit);
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    hint: RateLimitHint {
                        limit,
                        remaining,
                        reset: (f64::from(limit - remaining.min(limit)) * per_token).ceil() as u64,
                    },
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    hint: RateLimitHint {
                        limit,
                        remaining: 0,
                        reset: (f64::from(limit) * per_token).ceil() as u64,
                    },
                    retry_after_secs: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                }
            }
        }
    }
}

/// What a limited answer tells the client of its budget, so it can slow down
/// before it is refused: the `RateLimit-*` headers of an HTTP answer, the
/// `rate_limit` object of a push answered on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimitHint {
    /// Requests of the class per minute.
    pub limit: u32,
    /// Requests left before one is refused.
    pub remaining: u32,
    /// Seconds until the whole budget is back.
    pub reset: u64,
}

/// One limiter's answer for one request.
pub struct Decision {
    /// The budget left after this request.
    pub hint: RateLimitHint,
    /// Set when the request is refused: seconds until it may be retried.
    pub retry_after_secs: Option<u64>,
}

impl Decision {
    /// 429 `rate_limited` with `Retry-After` when this decision refuses a
    /// request of `class` (counted in `or3_rate_limited_total`): what an HTTP
    /// request and a push on the socket are both answered.
    pub fn refusal(&self, class: RouteClass) -> Option<ApiError> {
        let secs = self.retry_after_secs?;
        metrics::counter!("or3_rate_limited_total", "class" => class.label()).increment(1);
        Some(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("too many {} requests; retry in {secs} s", class.label()),
            )
            .with_retry_after(secs),
        )
    }

    /// Writes `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.hint.limit));
        headers.insert(
            "ratelimit-remaining",
            HeaderValue::from(self.hint.remaining),
        );
        headers.insert("ratelimit-reset", HeaderValue::from(self.hint.reset));
    }
}

/// The limiters of one server.
pub struct RateLimits {
    push: Option<Limiter<String>>,
    pull: Option<Limiter<String>>,
    subscribe: Option<Limiter<String>>,
    anonymous: Option<Limiter<IpAddr>>,
}

impl RateLimits {
    /// Limiters for `config`.
    pub fn new(config: RateLimitConfig) -> RateLimits {
        RateLimits {
            push: Limiter::new(config.push_per_minute),
            pull: Limiter::new(config.pull_per_minute),
            subscribe: Limiter::new(config.subscribe_per_minute),
            anonymous: Limiter::new(config.anonymous_per_minute),
        }
    }

    /// Counts a request of `user` in `class`; `None` when the class is not limited.
    pub fn for_user(&self, class: RouteClass, user: &str) -> Option<Decision> {
        let limiter = match class {
            RouteClass::Push => self.push.as_ref(),
            RouteClass::Pull => self.pull.as_ref(),
            RouteClass::Subscribe => self.subscribe.as_ref(),
        }?;
        Some(limiter.check(&user.to_owned()))
    }

    /// Counts a request without a valid token from `ip`; `None` when such
    /// requests are not limited.
    pub fn for_ip(&self, ip: IpAddr) -> Option<Decision> {
        Some(self.anonymous.as_ref()?.check(&ip))
    }

    /// Forgets idle keys, so memory stays bounded by active users.
    pub fn forget_idle(&self) {
        for limiter in [&self.push, &self.pull, &self.subscribe]
            .into_iter()
            .flatten()
        {
            limiter.limiter.retain_recent();
        }
        if let Some(anonymous) = &self.anonymous {
            anonymous.limiter.retain_recent();
        }
    }
}

/// Forgets idle limiter keys every minute for as long as the process lives.
pub fn spawn_janitor(limits: std::sync::Arc<RateLimits>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.forget_idle();
        }
    });
}
