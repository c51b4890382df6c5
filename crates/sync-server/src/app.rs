//! The gateway's HTTP application: the router and its layers. The state is
//! in `state.rs`, the extractors in `extract.rs`, each route in its own file
//! under `routes/`.

use crate::routes;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

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
        .route("/v1/config", get(routes::config::config))
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
