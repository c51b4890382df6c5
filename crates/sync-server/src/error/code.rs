//! Every code the gateway answers a failed request or ends a stream with:
//! one closed list, the one `docs/ERRORS.md` documents (a test in
//! `tests/errors.rs` checks the two against each other). Per-op rejection
//! codes are `sync_core::validate::RejectCode`.

/// Declares [`ErrorCode`] with its wire names and [`ErrorCode::ALL`].
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $wire:literal,)*) => {
        /// A machine-readable error code, as on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON (or not UTF-8).
    InvalidJson = "invalid_json",
    /// JSON of the wrong shape.
    InvalidRequest = "invalid_request",
    /// Nesting deeper than 64.
    JsonTooDeep = "json_too_deep",
    /// An unknown, repeated or malformed query parameter.
    InvalidQuery = "invalid_query",
    /// A `limit` out of range.
    InvalidLimit = "invalid_limit",
    /// A `cursor` out of range.
    InvalidCursor = "invalid_cursor",
    /// A malformed `project_id`.
    InvalidProjectId = "invalid_project_id",
    /// A malformed workspace id in the path.
    InvalidWorkspaceId = "invalid_workspace_id",
    /// A path that does not parse.
    InvalidPath = "invalid_path",
    /// A malformed record key in the path.
    InvalidPk = "invalid_pk",
    /// A malformed user id in the path.
    InvalidUserId = "invalid_user_id",
    /// A workspace name that is empty or too long.
    InvalidName = "invalid_name",
    /// A table the server does not sync.
    UnknownTable = "unknown_table",
    /// `X-Device-Id` (or a hello's `device_id`) is not 16–64 lowercase hex.
    InvalidDeviceId = "invalid_device_id",
    /// A snapshot page token that does not belong to this request.
    InvalidPageToken = "invalid_page_token",
    /// No bearer token.
    MissingToken = "missing_token",
    /// A token that does not parse or lacks a claim.
    InvalidToken = "invalid_token",
    /// A token whose signature does not verify.
    InvalidSignature = "invalid_signature",
    /// A token signed by a key the server does not know.
    UnknownKey = "unknown_key",
    /// An expired token.
    TokenExpired = "token_expired",
    /// A token not valid yet.
    TokenNotYetValid = "token_not_yet_valid",
    /// A token from an issuer the server does not trust.
    InvalidIssuer = "invalid_issuer",
    /// A token whose `azp` is not an allowed origin.
    InvalidAzp = "invalid_azp",
    /// Not a member, or the role is too low.
    Forbidden = "forbidden",
    /// No such workspace.
    UnknownWorkspace = "unknown_workspace",
    /// No such record, member or route.
    NotFound = "not_found",
    /// The body did not arrive in time.
    BodyTimeout = "body_timeout",
    /// The change would leave the workspace without an owner.
    LastOwner = "last_owner",
    /// Managing members while the auth system owns membership.
    MembershipFromClaims = "membership_from_claims",
    /// The cursor is outside the retained log.
    CursorExpired = "cursor_expired",
    /// The body is larger than the limit.
    BodyTooLarge = "body_too_large",
    /// A push with more ops than the limit.
    TooManyOps = "too_many_ops",
    /// A route-class rate limit.
    RateLimited = "rate_limited",
    /// Too many open streams for one user.
    TooManySubscriptions = "too_many_subscriptions",
    /// A fault of the server (a store error that is not an outage).
    Internal = "internal",
    /// The database cannot be reached.
    StoreUnavailable = "store_unavailable",
    /// The metrics recorder is not installed.
    MetricsUnavailable = "metrics_unavailable",
    /// The server is shutting down and takes no more pushes.
    Draining = "draining",
    /// Over the connection caps (answered by the listener).
    TooManyConnections = "too_many_connections",
    /// A stream frame that is not a hello or auth object.
    InvalidFrame = "invalid_frame",
    /// A WebSocket sent no hello in time.
    HelloTimeout = "hello_timeout",
    /// The server is stopping; the stream closes.
    ShuttingDown = "shutting_down",
}
