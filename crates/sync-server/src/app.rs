//! The gateway's HTTP application: shared state, request extractors and the
//! router. Each route lives in its own file under `routes/`.

use crate::auth::{Authenticator, DevIssuer, Identity};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::positions::PositionBuffer;
use crate::rate_limit::RateLimits;
use crate::realtime::bus::Bus;
use crate::realtime::hub::Hub;
use crate::routes;
use crate::store::{Access, Store};
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Instant;
use sync_core::{Role, WorkspaceId};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Everything a request handler may use.
#[derive(Clone)]
pub struct AppState {
    /// The change log and records.
    pub store: Arc<dyn Store>,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// Present only in dev-auth mode.
    pub dev_issuer: Option<Arc<DevIssuer>>,
    /// Wall time.
    pub clock: Arc<dyn Clock>,
    /// Limits.
    pub config: Arc<ServerConfig>,
    /// Device positions waiting to be written.
    pub positions: Arc<PositionBuffer>,
    /// Realtime fanout.
    pub hub: Arc<Hub>,
    /// Rate limiters.
    pub rate_limits: Arc<RateLimits>,
    /// Set when shutdown begins: new pushes get 503 while in-flight ones finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Workspaces known to exist (membership-from-claims mode creates them).
    known_workspaces: Arc<std::sync::Mutex<std::collections::HashSet<WorkspaceId>>>,
}

impl AppState {
    /// State for a gateway over `store`; `bus` carries commits between nodes
    /// ([`crate::realtime::bus::LocalBus`] for one node).
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        auth: Authenticator,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> AppState {
        AppState {
            hub: Arc::new(Hub::new(store.clone(), bus, config.subscriber_queue)),
            rate_limits: Arc::new(RateLimits::new(config.rate_limits)),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            known_workspaces: Arc::default(),
            store,
            auth: Arc::new(auth),
            dev_issuer: None,
            clock,
            config: Arc::new(config),
            positions: Arc::new(PositionBuffer::default()),
        }
    }

    /// Turns on dev-auth mode (`POST /v1/dev/token`).
    pub fn with_dev_issuer(mut self, issuer: DevIssuer) -> AppState {
        self.dev_issuer = Some(Arc::new(issuer));
        self
    }

    /// How the store should check this caller's membership of `ws`. With
    /// membership from claims, the token's organization must be `ws`, and the
    /// workspace is created on first use.
    pub async fn access(&self, identity: &Identity, ws: &WorkspaceId) -> Result<Access, ApiError> {
        if !self.config.membership_from_claims {
            return Ok(Access::Member {
                user_id: identity.user_id.clone(),
            });
        }
        let role = match (&identity.org_id, &identity.org_role) {
            (Some(org), Some(role)) if org == ws.as_str() => Role::from_clerk_org_role(role),
            _ => {
                return Err(ApiError::forbidden(
                    "the token's organization is not this workspace",
                ))
            }
        };
        let known = self
            .known_workspaces
            .lock()
            .map(|k| k.contains(ws))
            .unwrap_or(false);
        if !known {
            self.store.ensure_workspace(ws, self.clock.now_ms()).await?;
            if let Ok(mut k) = self.known_workspaces.lock() {
                k.insert(ws.clone());
            }
        }
        Ok(Access::Claimed {
            user_id: identity.user_id.clone(),
            role,
        })
    }
}

/// The authenticated caller of a request.
pub struct Caller(pub Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate-limit middleware has usually verified the token already.
        if let Some(identity) = parts.extensions.get::<Identity>() {
            return Ok(Caller(identity.clone()));
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "an Authorization: Bearer token is required",
                )
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "the Authorization header must be `Bearer <jwt>`",
                )
            })?;
        let identity = state.auth.verify(token).await.inspect_err(|e| {
            metrics::counter!("or3_auth_failures_total", "reason" => e.code).increment(1);
        })?;
        Ok(Caller(identity))
    }
}

/// Parses a workspace id from the path.
pub fn parse_workspace_id(raw: &str) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(raw).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_workspace_id",
            "workspace_id",
            "a workspace id is 1 to 128 characters of A-Z, a-z, 0-9, `_` and `-`",
        )
    })
}

/// Reads and parses a JSON body within the configured size and depth limits.
pub async fn read_json<T: DeserializeOwned>(
    body: axum::body::Body,
    config: &ServerConfig,
) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, config.max_body_bytes)
        .await
        .map_err(|e| {
            if crate::body_deadline::timed_out(&e) {
                return crate::body_deadline::timeout_error(&config.timeouts);
            }
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body is larger than {} bytes",
                    config.max_body_bytes
                ),
            )
            .with_field("body")
        })?;
    if json_depth_exceeds(&bytes, config.max_json_depth) {
        return Err(ApiError::bad_request(
            "json_too_deep",
            "body",
            format!("JSON nesting deeper than {} levels", config.max_json_depth),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_request",
            _ => "invalid_json",
        };
        ApiError::bad_request(code, "body", e.to_string())
    })
}

/// True when the JSON text nests arrays and objects deeper than `max`.
/// A cheap byte scan, so a hostile body is refused before it is parsed.
fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a URL query string into `T`, naming the bad parameter in `field`
/// (an unknown, repeated or malformed one).
pub fn parse_query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let raw = raw.unwrap_or("").as_bytes();
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) =
        form_urlencoded::parse(raw).find(|(name, _)| !seen.insert(name.clone()))
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            &name,
            format!("`{name}` is given more than once"),
        ));
    }
    let parameters = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw));
    serde_path_to_error::deserialize(parameters).map_err(|e| {
        let field = e.path().to_string();
        let message = format!("bad query parameter `{field}`: {}", e.inner());
        ApiError::bad_request("invalid_query", &field, message)
    })
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("or3_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("or3_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// CORS for the configured origins only; with none, browsers may call the
/// API from its own origin alone.
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-device-id"),
        ])
        .expose_headers([
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            header::RETRY_AFTER,
            header::DATE,
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// The tracing span of a request: its id, method and path; never tokens or
/// payloads.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", id, method = %request.method(), path = %request.uri().path())
}

static REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    // Install the recorder before the first request records anything.
    let _ = routes::health::prometheus();
    let workspace = Router::new()
        .route("/push", post(routes::push::push))
        .route("/changes", get(routes::changes::changes))
        .route("/snapshot", get(routes::snapshot::snapshot))
        .route("/records/{table_name}/{pk}", get(routes::records::record))
        .route("/subscribe", get(crate::realtime::ws::subscribe))
        .route("/events", get(crate::realtime::sse::events))
        .route(
            "/members/{user_id}",
            put(routes::members::set_member).delete(routes::members::remove_member),
        );
    let mut api = Router::new()
        .route("/v1/health", get(routes::health::health))
        .route(
            "/v1/workspaces",
            post(routes::workspaces::create).get(routes::workspaces::list),
        )
        .nest("/v1/workspaces/{workspace_id}", workspace)
        .route("/metrics", get(routes::health::metrics));
    if state.dev_issuer.is_some() {
        api = api.route("/v1/dev/token", post(routes::dev_token::dev_token));
    }
    // API paths always answer in the API's error shape; anything else may be
    // the web app (a single-page app: unknown paths get its index.html).
    api = api.route("/v1/{*rest}", axum::routing::any(routes::health::not_found));
    let api = match &state.config.static_dir {
        Some(dir) => {
            let files = routes::web_app::files(dir);
            api.fallback(move |request: Request| routes::web_app::serve(files.clone(), request))
        }
        None => api.fallback(routes::health::not_found),
    };
    let cors = cors_layer(&state.config.allowed_origins);
    api.layer(crate::body_deadline::layer(state.config.timeouts))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::rate_limit::limit,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(cors)
        // An `x-request-id` on every request and response (kept when the client
        // sends one), named by the request's tracing span.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::json_depth_exceeds;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        assert!(!json_depth_exceeds(br#"{"a":[[1]]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[[[1]]]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[\"[["}"#, 1));
    }
}
