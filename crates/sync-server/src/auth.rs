//! Bearer-token authentication: Clerk-style RS256 session JWTs.
//!
//! The algorithm is pinned to RS256 (`none` and HMAC tokens are refused
//! before any key is looked at); `exp` and `nbf` are checked with 60 s of
//! leeway, `iss` against the configured issuer, and `azp` against the allowed
//! origins when any are configured. With no key configured the server runs
//! in dev-auth mode and signs its own tokens ([`DevIssuer`]).

use crate::error::ApiError;
use crate::error::ErrorCode;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds of clock leeway for `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`.
    pub user_id: String,
    /// Clerk's active organization id, if the token carries one.
    pub org_id: Option<String>,
    /// Clerk's role in that organization.
    pub org_role: Option<String>,
    /// Expiry, epoch seconds.
    pub expires_at: u64,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: u64,
    azp: Option<String>,
    org_id: Option<String>,
    org_role: Option<String>,
}

/// The keys tokens may be signed with.
#[derive(Clone)]
pub enum VerifyingKeys {
    /// One PEM public key; `kid` is not consulted.
    Single(DecodingKey),
    /// A JWKS: the key is picked by the token's `kid`.
    Set(HashMap<String, DecodingKey>),
    /// A JWKS fetched from a URL (Clerk's `/.well-known/jwks.json`), cached,
    /// and fetched again when a token names an unknown `kid`.
    Remote(Arc<RemoteJwks>),
}

/// A JWKS document behind a URL. Keys rotate without a restart: an unknown
/// `kid` triggers a refetch, at most once per `min_refresh`, so forged kids
/// cannot turn the server into a request amplifier.
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    min_refresh: Duration,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteJwks {
    /// A cache of the JWKS at `url`; nothing is fetched until [`RemoteJwks::refresh`] or a token needs it.
    pub fn new(url: &str, min_refresh: Duration) -> Result<RemoteJwks, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(RemoteJwks {
            url: url.to_owned(),
            http,
            min_refresh,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// Fetches the document now and replaces the cached keys.
    pub async fn refresh(&self) -> Result<usize, String> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        let body = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("fetching {}: {e}", self.url))?
            .bytes()
            .await
            .map_err(|e| format!("reading {}: {e}", self.url))?;
        let VerifyingKeys::Set(keys) = VerifyingKeys::from_jwks_json(&body)? else {
            return Err("unreachable: a JWKS parses to a key set".into());
        };
        let count = keys.len();
        if let Ok(mut cached) = self.keys.write() {
            *cached = keys;
        }
        Ok(count)
    }

    fn cached(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().ok()?;
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    async fn key(&self, kid: Option<&str>) -> Option<DecodingKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        {
            let last = self.last_fetch.lock().await;
            if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
                // Fetched recently (perhaps by a concurrent request): use what we have.
                drop(last);
                return self.cached(kid);
            }
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "JWKS refresh failed");
        }
        self.cached(kid)
    }
}

impl VerifyingKeys {
    /// Loads an RSA public key in PEM form.
    pub fn from_pem_file(path: &Path) -> Result<VerifyingKeys, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        DecodingKey::from_rsa_pem(&pem)
            .map(VerifyingKeys::Single)
            .map_err(|e| format!("{}: not an RSA public key: {e}", path.display()))
    }

    /// Loads a JWKS document (`{"keys": [...]}`); every key needs a `kid`.
    pub fn from_jwks_file(path: &Path) -> Result<VerifyingKeys, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        VerifyingKeys::from_jwks_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a JWKS document.
    pub fn from_jwks_json(json: &[u8]) -> Result<VerifyingKeys, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or("every JWKS key needs a kid")?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err("the JWKS has no keys".into());
        }
        Ok(VerifyingKeys::Set(keys))
    }

    async fn pick(&self, kid: Option<&str>) -> Result<DecodingKey, ApiError> {
        let unknown =
            || ApiError::unauthorized(ErrorCode::UnknownKey, "the token's kid is not a known key");
        match self {
            VerifyingKeys::Single(key) => Ok(key.clone()),
            VerifyingKeys::Set(keys) => match kid {
                Some(kid) => keys.get(kid),
                None if keys.len() == 1 => keys.values().next(),
                None => None,
            }
            .cloned()
            .ok_or_else(unknown),
            VerifyingKeys::Remote(remote) => remote.key(kid).await.ok_or_else(unknown),
        }
    }
}

/// Checks bearer tokens.
#[derive(Clone)]
pub struct Authenticator {
    keys: VerifyingKeys,
    validation: Validation,
    allowed_origins: Vec<String>,
    verified: Arc<Mutex<HashMap<String, Identity>>>,
}

/// Verified tokens remembered, so a client's steady stream of pulls does not
/// pay for an RSA check each time (it was ~9% of a pull's CPU). A token
/// stays valid until its `exp` either way; the cache forgets it then.
const VERIFIED_CACHE: usize = 10_000;

impl Authenticator {
    /// An authenticator for `keys`; `issuer` and `allowed_origins` are enforced when given.
    pub fn new(keys: VerifyingKeys, issuer: Option<&str>, allowed_origins: Vec<String>) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(issuer) = issuer {
            // Without `iss` in the required claims, a token that omits it would pass.
            validation.set_required_spec_claims(&["exp", "iss"]);
            validation.set_issuer(&[issuer]);
        }
        Authenticator {
            verified: Arc::default(),
            keys,
            validation,
            allowed_origins,
        }
    }

    /// Verifies a token and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(identity) = self
            .verified
            .lock()
            .ok()
            .and_then(|c| c.get(token).cloned())
        {
            if identity.expires_at + LEEWAY_SECS > now {
                return Ok(identity);
            }
        }
        let identity = self.verify_uncached(token).await?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE {
                cache.retain(|_, i| i.expires_at + LEEWAY_SECS > now);
                if cache.len() >= VERIFIED_CACHE {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), identity.clone());
        }
        Ok(identity)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Identity, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            ApiError::unauthorized(
                ErrorCode::InvalidToken,
                "the token is not a well-formed JWT",
            )
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(ApiError::unauthorized(
                ErrorCode::InvalidToken,
                "tokens must be signed with RS256",
            ));
        }
        let key = self.keys.pick(header.kid.as_deref()).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let (code, message) = match e.kind() {
                ErrorKind::ExpiredSignature => (ErrorCode::TokenExpired, "the token has expired"),
                ErrorKind::ImmatureSignature => {
                    (ErrorCode::TokenNotYetValid, "the token is not valid yet")
                }
                ErrorKind::InvalidIssuer => (
                    ErrorCode::InvalidIssuer,
                    "the token's issuer is not trusted",
                ),
                ErrorKind::InvalidSignature => (
                    ErrorCode::InvalidSignature,
                    "the token's signature does not verify",
                ),
                ErrorKind::MissingRequiredClaim(_) => {
                    (ErrorCode::InvalidToken, "the token lacks a required claim")
                }
                _ => (ErrorCode::InvalidToken, "the token is not valid"),
            };
            ApiError::unauthorized(code, message)
        })?;
        let claims = data.claims;
        if let Some(azp) = &claims.azp {
            if !self.allowed_origins.is_empty() && !self.allowed_origins.iter().any(|o| o == azp) {
                return Err(ApiError::unauthorized(
                    ErrorCode::InvalidAzp,
                    "the token's azp is not an allowed origin",
                ));
            }
        }
        let user_id = claims
            .sub
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| {
                ApiError::unauthorized(ErrorCode::InvalidToken, "the token has no usable sub")
            })?;
        Ok(Identity {
            user_id,
            org_id: claims.org_id,
            org_role: claims.org_role,
            expires_at: claims.exp,
        })
    }
}

/// The claims a dev token carries.
#[derive(Debug, Serialize)]
struct DevClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Dev-auth mode: a server-made RSA key that signs tokens for anyone who asks.
/// Only ever served on a loopback address.
#[derive(Clone)]
pub struct DevIssuer {
    encoding: EncodingKey,
    issuer: String,
}

/// The `kid` of dev-mode tokens.
pub const DEV_KID: &str = "or3-sync-dev";

impl DevIssuer {
    /// Loads the dev key from `path`, or makes one (and saves it there, so
    /// tokens survive a restart). Returns the issuer and the verifier for it.
    pub fn load_or_create(
        path: Option<&Path>,
        issuer: &str,
    ) -> Result<(DevIssuer, Authenticator), String> {
        use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
        let existing = path.and_then(|p| std::fs::read_to_string(p).ok());
        let private = match existing.as_deref().map(rsa::RsaPrivateKey::from_pkcs8_pem) {
            Some(Ok(key)) => key,
            _ => {
                let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                    .map_err(|e| format!("cannot make a dev key: {e}"))?;
                if let Some(path) = path {
                    let pem = key
                        .to_pkcs8_pem(LineEnding::LF)
                        .map_err(|e| format!("cannot encode the dev key: {e}"))?;
                    write_private_file(path, pem.as_bytes())?;
                }
                key
            }
        };
        let private_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the dev key: {e}"))?;
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the dev key: {e}"))?;
        let encoding =
            EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(|e| e.to_string())?;
        let decoding =
            DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(|e| e.to_string())?;
        let verifier =
            Authenticator::new(VerifyingKeys::Single(decoding), Some(issuer), Vec::new());
        Ok((
            DevIssuer {
                encoding,
                issuer: issuer.to_owned(),
            },
            verifier,
        ))
    }

    /// Signs a token for `user_id`, valid for `ttl_secs` from `now_secs`.
    pub fn issue(&self, user_id: &str, now_secs: u64, ttl_secs: u64) -> Result<String, ApiError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(DEV_KID.to_owned());
        let claims = DevClaims {
            sub: user_id,
            iss: &self.issuer,
            iat: now_secs,
            nbf: now_secs,
            exp: now_secs + ttl_secs,
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                format!("cannot sign a dev token: {e}"),
            )
        })
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot save the dev key to {}: {e}", path.display()))
}
