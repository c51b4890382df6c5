//! The web app served beside the API (`--static-dir`): a single-page app,
//! so an unknown path gets its `index.html`, except paths that look like an
//! API or a probe (`/v2/…`, `/api/…`, `/health`, `/healthz`, `/metricsz`, …):
//! a monitor or a client that calls one of them must get the JSON 404, not a
//! 200 with the app's HTML that looks like success.

use crate::error::ApiError;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The files of a web app folder, with its `index.html` for client-side routes.
pub type Files = ServeDir<ServeFile>;

/// The files of `dir`.
pub fn files(dir: &Path) -> Files {
    ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))
}

/// Answers a request no API route matched: from `files`, or the JSON 404
/// for an API-looking path.
pub async fn serve(files: Files, request: Request) -> Response {
    if looks_like_api(request.uri().path()) {
        return ApiError::no_such_route().into_response();
    }
    match files.oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// True for a path whose first segment names an API version (`v1`, `v2`,
/// …), `api`, or a health or metrics probe.
fn looks_like_api(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let version = first
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    version
        || first == "api"
        || ["health", "metrics", "ready", "live", "status"]
            .iter()
            .any(|probe| first.starts_with(probe))
}

#[cfg(test)]
mod tests {
    use super::looks_like_api;

    #[test]
    fn api_and_probe_paths_are_told_from_app_routes() {
        for path in [
            "/v1/x",
            "/v2",
            "/api/a",
            "/health",
            "/healthz",
            "/metrics2",
            "/readyz",
            "/livez",
            "/status",
        ] {
            assert!(looks_like_api(path), "{path}");
        }
        for path in ["/", "/w/123", "/app.js", "/assets/v1.css", "/video", "/vx"] {
            assert!(!looks_like_api(path), "{path}");
        }
    }
}
