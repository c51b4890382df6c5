//! Rate limits per user and route class (push, pull, subscribe), and per IP
//! for requests without a valid token, with governor's GCRA limiters. Every
//! limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; a refusal is 429 `rate_limited` with `Retry-After`.
//!
//! The middleware verifies the bearer token once and leaves the identity in
//! the request's extensions, where the [`crate::extract::Caller`] extractor
//! picks it up, so a token is not checked twice.

use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::bearer_token;
use crate::listener::ClientAddr;
use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Requests per minute for each class; 0 turns a class's limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Pushes per user.
    pub push_per_minute: u32,
    /// Pulls, snapshots, record reads and other authenticated calls per user.
    pub pull_per_minute: u32,
    /// Subscription connects (WebSocket and SSE) per user.
    pub subscribe_per_minute: u32,
    /// Requests without a valid token, per client IP.
    pub anonymous_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            push_per_minute: 600,
            pull_per_minute: 1200,
            subscribe_per_minute: 60,
            anonymous_per_minute: 120,
        }
    }
}

impl RateLimitConfig {
    /// No limits at all.
    pub fn off() -> RateLimitConfig {
        RateLimitConfig {
            push_per_minute: 0,
            pull_per_minute: 0,
            subscribe_per_minute: 0,
            anonymous_per_minute: 0,
        }
    }
}

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
    fn of(path: &str) -> RouteClass {
        if path.ends_with("/push") {
            RouteClass::Push
        } else if path.ends_with("/subscribe") || path.ends_with("/events") {
            RouteClass::Subscribe
        } else {
            RouteClass::Pull
        }
    }

    fn label(self) -> &'static str {
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
                    limit,
                    remaining,
                    reset_secs: (f64::from(limit - remaining.min(limit)) * per_token).ceil() as u64,
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    limit,
                    remaining: 0,
                    reset_secs: (f64::from(limit) * per_token).ceil() as u64,
                    retry_after_secs: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                }
            }
        }
    }
}

struct Decision {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
    retry_after_secs: Option<u64>,
}

impl Decision {
    fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
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

    fn for_user(&self, class: RouteClass, user: &str) -> Option<Decision> {
        let limiter = match class {
            RouteClass::Push => self.push.as_ref(),
            RouteClass::Pull => self.pull.as_ref(),
            RouteClass::Subscribe => self.subscribe.as_ref(),
        }?;
        Some(limiter.check(&user.to_owned()))
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

/// Paths never limited: liveness and metrics scrapes.
fn exempt(path: &str) -> bool {
    path == "/v1/health" || path == "/metrics" || !path.starts_with("/v1/")
}

/// The middleware: identify the caller, check their class's limiter.
pub async fn limit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if exempt(&path) {
        return next.run(request).await;
    }
    let class = RouteClass::of(
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or(path.as_str(), MatchedPath::as_str),
    );
    let identity: Option<Identity> = match bearer_token(request.headers()) {
        Some(token) => state.auth.verify(&token).await.ok(),
        None => None,
    };
    let decision = match &identity {
        Some(identity) => state.rate_limits.for_user(class, &identity.user_id),
        None => {
            let ip = request
                .extensions()
                .get::<ConnectInfo<ClientAddr>>()
                .map(|c| c.0 .0.ip());
            match (&state.rate_limits.anonymous, ip) {
                (Some(limiter), Some(ip)) => Some(limiter.check(&ip)),
                _ => None,
            }
        }
    };
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    let Some(decision) = decision else {
        return next.run(request).await;
    };
    let mut response = match decision.retry_after_secs {
        Some(secs) => {
            metrics::counter!("or3_rate_limited_total", "class" => class.label()).increment(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many {} requests; retry in {secs} s", class.label()),
            )
            .with_retry_after(secs)
            .into_response()
        }
        None => next.run(request).await,
    };
    decision.write_headers(response.headers_mut());
    response
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
