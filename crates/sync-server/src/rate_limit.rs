//! The rate-limit middleware: each request is counted by the limiter of its
//! caller and route class ([`crate::limiter`]). Every
//! limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; a refusal is 429 `rate_limited` with `Retry-After`.
//!
//! The middleware verifies the bearer token once and leaves the identity in
//! the request's extensions, where the [`crate::extract::Caller`] extractor
//! picks it up, so a token is not checked twice.

use crate::auth::Identity;
use crate::extract::bearer_token;
use crate::limiter::RouteClass;
use crate::listener::ClientAddr;
use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
            ip.and_then(|ip| state.rate_limits.for_ip(ip))
        }
    };
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    let Some(decision) = decision else {
        return next.run(request).await;
    };
    let mut response = match decision.refusal(class) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    };
    decision.write_headers(response.headers_mut());
    response
}
