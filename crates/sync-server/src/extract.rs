//! What a request carries, parsed and checked once: the caller (its bearer
//! token verified), path ids, JSON bodies and query strings within their
//! limits, and the ids the API takes. Every rejection is an [`ApiError`].

use crate::auth::Identity;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use sync_core::WorkspaceId;

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
                    ErrorCode::MissingToken,
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
                    ErrorCode::MissingToken,
                    "the Authorization header must be `Bearer <jwt>`",
                )
            })?;
        let identity = state.auth.verify(token).await.inspect_err(|e| {
            metrics::counter!("or3_auth_failures_total", "reason" => e.code.as_str()).increment(1);
        })?;
        Ok(Caller(identity))
    }
}

/// Parses a workspace id from the path.
pub fn parse_workspace_id(raw: &str) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(raw).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidWorkspaceId,
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
            body_too_large(config)
        })?;
    parse_json(&bytes, config)
}

/// 413 `body_too_large`: a request (or a WebSocket push frame) over `--max-body-bytes`.
pub fn body_too_large(config: &ServerConfig) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BodyTooLarge,
        format!(
            "the request body is larger than {} bytes",
            config.max_body_bytes
        ),
    )
    .with_field("body")
}

/// Parses JSON text already within the size limit: 400 `json_too_deep` past
/// the depth limit, `invalid_json` for text that is not JSON, `invalid_request`
/// for JSON of the wrong shape (all with `field` `body`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], config: &ServerConfig) -> Result<T, ApiError> {
    if json_depth_exceeds(bytes, config.max_json_depth) {
        return Err(ApiError::bad_request(
            ErrorCode::JsonTooDeep,
            "body",
            format!("JSON nesting deeper than {} levels", config.max_json_depth),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidRequest,
            _ => ErrorCode::InvalidJson,
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
            ErrorCode::InvalidQuery,
            &name,
            format!("`{name}` is given more than once"),
        ));
    }
    let parameters = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw));
    serde_path_to_error::deserialize(parameters).map_err(|e| {
        let field = e.path().to_string();
        let message = format!("bad query parameter `{field}`: {}", e.inner());
        ApiError::bad_request(ErrorCode::InvalidQuery, &field, message)
    })
}

/// Unwraps path parameters, turning a bad path into a 400 with a code.
pub fn path_params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidPath, "path", e.body_text()))
}

/// The workspace id of a `/v1/workspaces/{workspace_id}/...` route.
pub fn workspace_param(
    path: Result<Path<std::collections::HashMap<String, String>>, PathRejection>,
) -> Result<(WorkspaceId, std::collections::HashMap<String, String>), ApiError> {
    let params = path_params(path)?;
    let ws = parse_workspace_id(params.get("workspace_id").map_or("", String::as_str))?;
    Ok((ws, params))
}

/// A user id (a token's `sub`): 1 to 256 characters without control characters.
pub fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    sync_core::validate::check_pk(user_id).map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidUserId,
            "user_id",
            "user_id must be 1 to 256 characters without control characters",
        )
    })
}

/// Validates an `X-Device-Id` header when present.
pub fn device_id_header(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get("x-device-id")
        .map(|value| check_device_id(value.to_str().unwrap_or_default(), "X-Device-Id"))
        .transpose()
}

/// A device id (header or path segment `field`): 16 to 64 lowercase hex
/// characters, else 400 `invalid_device_id`.
pub fn check_device_id(text: &str, field: &str) -> Result<String, ApiError> {
    sync_core::DeviceId::parse(text)
        .map(|d| d.as_str().to_owned())
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidDeviceId,
                field,
                format!("{field} must be 16 to 64 lowercase hex characters"),
            )
        })
}

/// The bearer token of a request: the `bearer.<jwt>` WebSocket subprotocol
/// first, then the `Authorization` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let from_protocols = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
        .map(str::to_owned);
    from_protocols.or_else(|| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
    })
}

/// A project filter: 1 to 256 characters without control characters.
pub fn check_project_id(project_id: Option<String>) -> Result<Option<String>, ApiError> {
    match project_id {
        None => Ok(None),
        Some(p) if sync_core::validate::check_pk(&p).is_ok() => Ok(Some(p)),
        Some(_) => Err(ApiError::bad_request(
            ErrorCode::InvalidProjectId,
            "project_id",
            "project_id must be 1 to 256 characters without control characters",
        )),
    }
}

/// A workspace name, trimmed: 1 to 200 characters without control
/// characters, else 400 `invalid_name` (field `name`).
pub fn check_workspace_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidName,
            "name",
            "name must be 1 to 200 characters without control characters",
        ));
    }
    Ok(name)
}

/// The `tables` query parameter: comma-separated synced table names, as a
/// sorted list (a filter is a set); `None` when absent. An empty or repeated
/// name is `invalid_query`, a name that is not synced `unknown_table`, both
/// with field `tables`.
pub fn check_tables(
    tables: Option<String>,
    synced: &sync_core::TableConfig,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = tables else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for name in list.split(',') {
        if name.is_empty() {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "tables",
                "tables must be comma-separated table names, none empty",
            ));
        }
        if synced.pk_field(name).is_none() {
            return Err(ApiError::bad_request(
                ErrorCode::UnknownTable,
                "tables",
                format!("`{name}` is not a synced table"),
            ));
        }
        names.push(name.to_owned());
    }
    names.sort_unstable();
    if names.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "tables",
            "tables names a table more than once",
        ));
    }
    Ok(Some(names))
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
