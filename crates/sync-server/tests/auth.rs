//! Authentication and membership: every refusal with its exact status and code.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sync_server::auth::{Authenticator, RemoteJwks, VerifyingKeys};
use sync_server::error::ErrorCode;

async fn with_token(s: &TestServer, ws: &str, token: &str) -> (StatusCode, Value) {
    let res = s
        .http
        .get(format!("{}/v1/workspaces/{ws}/changes", s.base))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

async fn assert_401(s: &TestServer, ws: &str, token: &str, code: &str) {
    let (status, body) = with_token(s, ws, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

#[tokio::test]
async fn no_token_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let (status, body) = s
        .request(
            reqwest::Method::GET,
            &format!("/v1/workspaces/{ws}/changes"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "missing_token");
}

/// A token for alice with some claims changed (`null` removes a claim).
fn alice_with(changes: Value) -> String {
    let mut c = claims("alice");
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    key().sign(&c, Some("test"))
}

#[tokio::test]
async fn expired_token_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_secs();
    assert_401(
        &s,
        &ws,
        &alice_with(json!({"exp": t - 120, "nbf": t - 600})),
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn token_expired_within_leeway_is_accepted() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_secs();
    let recent = alice_with(json!({"exp": t - 30, "nbf": t - 600}));
    assert_eq!(with_token(&s, &ws, &recent).await.0, StatusCode::OK);
}

#[tokio::test]
async fn token_not_yet_valid_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_secs();
    assert_401(
        &s,
        &ws,
        &alice_with(json!({"nbf": t + 600, "exp": t + 3600})),
        "token_not_yet_valid",
    )
    .await;
}

#[tokio::test]
async fn token_without_exp_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    assert_401(&s, &ws, &alice_with(json!({"exp": null})), "invalid_token").await;
}

#[tokio::test]
async fn token_signed_by_another_key_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let forged = TestKey::generate().sign(&claims("alice"), Some("test"));
    assert_401(&s, &ws, &forged, "invalid_signature").await;
}

#[tokio::test]
async fn token_from_another_issuer_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    assert_401(
        &s,
        &ws,
        &alice_with(json!({"iss": "https://evil.example"})),
        "invalid_issuer",
    )
    .await;
    assert_401(&s, &ws, &alice_with(json!({"iss": null})), "invalid_token").await;
}

#[tokio::test]
async fn token_for_another_origin_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    assert_401(
        &s,
        &ws,
        &alice_with(json!({"azp": "https://evil.example"})),
        "invalid_azp",
    )
    .await;
    let no_azp = alice_with(json!({"azp": null}));
    assert_eq!(
        with_token(&s, &ws, &no_azp).await.0,
        StatusCode::OK,
        "azp is checked only when present"
    );
}

#[tokio::test]
async fn token_without_sub_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    assert_401(&s, &ws, &alice_with(json!({"sub": null})), "invalid_token").await;
    assert_401(&s, &ws, &alice_with(json!({"sub": ""})), "invalid_token").await;
}

fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn hs256_token_is_401_even_when_keyed_with_the_public_key() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let claims = json!({"sub": "alice", "iss": ISSUER, "exp": now_secs() + 600});
    assert_401(&s, &ws, &sign_hs256(&claims, b"secret"), "invalid_token").await;
    assert_401(
        &s,
        &ws,
        &sign_hs256(&claims, b"-----BEGIN PUBLIC KEY-----"),
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn alg_none_token_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD
        .encode(json!({"sub": "alice", "iss": ISSUER, "exp": now_secs() + 600}).to_string());
    assert_401(&s, &ws, &format!("{header}.{claims}."), "invalid_token").await;
}

#[tokio::test]
async fn garbage_token_is_401() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    assert_401(&s, &ws, "not-a-jwt", "invalid_token").await;
}

#[tokio::test]
async fn non_member_is_403_on_every_route() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    let t = now_ms();
    s.push_ok(
        &ws,
        "alice",
        vec![put("messages", "m1", 1, &hlc(t, 0, DEVICE_A), json!({}))],
    )
    .await;
    let (status, body) = s
        .push(
            &ws,
            "mallory",
            vec![put("messages", "m2", 1, &hlc(t, 1, DEVICE_A), json!({}))],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    for path in ["changes", "snapshot", "records/messages/m1"] {
        let (status, body) = s
            .get(&format!("/v1/workspaces/{ws}/{path}"), "mallory")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let listed = s.get("/v1/workspaces", "mallory").await.1;
    assert_eq!(listed["workspaces"], json!([]));
}

#[tokio::test]
async fn viewer_may_pull_but_not_push() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "victor", "viewer").await;
    assert_eq!(
        s.get(&format!("/v1/workspaces/{ws}/changes"), "victor")
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = s
        .push(
            &ws,
            "victor",
            vec![put(
                "messages",
                "m1",
                1,
                &hlc(now_ms(), 0, DEVICE_A),
                json!({}),
            )],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let changes = s.pull_all(&ws, "alice", 0, 10).await;
    assert!(changes.is_empty(), "the viewer's op was not applied");
}

#[tokio::test]
async fn removed_member_is_refused_with_an_old_token() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "editor").await;
    let bob_token = token("bob");
    assert_eq!(with_token(&s, &ws, &bob_token).await.0, StatusCode::OK);
    let (status, _) = s
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/workspaces/{ws}/members/bob"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        with_token(&s, &ws, &bob_token).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn only_owners_manage_members_and_one_owner_always_remains() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "editor").await;
    let (status, _) = s
        .request(
            reqwest::Method::PUT,
            &format!("/v1/workspaces/{ws}/members/carol"),
            Some("bob"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an editor cannot add members"
    );
    let (status, body) = s
        .request(
            reqwest::Method::PUT,
            &format!("/v1/workspaces/{ws}/members/alice"),
            Some("alice"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "last_owner");
    let (status, _) = s
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/workspaces/{ws}/members/alice"),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .request(
            reqwest::Method::PUT,
            &format!("/v1/workspaces/{ws}/members/bob"),
            Some("alice"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn workspaces_are_listed_with_the_callers_role() {
    let s = start().await;
    let ws = s.workspace("alice").await;
    s.add_member(&ws, "alice", "bob", "viewer").await;
    let listed = s.get("/v1/workspaces", "bob").await.1;
    assert_eq!(listed["workspaces"][0]["workspace_id"], ws.as_str());
    assert_eq!(listed["workspaces"][0]["role"], "viewer");
    assert_eq!(listed["workspaces"][0]["name"], "test");
}

/// The public half of a test key as a JWK with `kid`.
fn jwk(key: &TestKey, kid: &str) -> Value {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let public = rsa::RsaPublicKey::from_public_key_pem(&key.public_pem).unwrap();
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
           "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
           "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())})
}

/// A JWKS endpoint on loopback whose document the test can swap; counts fetches.
struct JwksServer {
    url: String,
    document: std::sync::Arc<std::sync::Mutex<Value>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn jwks_server(document: Value) -> JwksServer {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let document = std::sync::Arc::new(std::sync::Mutex::new(document));
    let fetches = std::sync::Arc::new(AtomicUsize::new(0));
    let (doc, count) = (document.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let (doc, count) = (doc.clone(), count.clone());
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                axum::Json(doc.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer {
        url,
        document,
        fetches,
    }
}

fn remote_authenticator(
    url: &str,
    min_refresh: std::time::Duration,
) -> (Authenticator, std::sync::Arc<RemoteJwks>) {
    let remote = std::sync::Arc::new(RemoteJwks::new(url, min_refresh).unwrap());
    let auth = Authenticator::new(VerifyingKeys::Remote(remote.clone()), Some(ISSUER), vec![]);
    (auth, remote)
}

#[tokio::test]
async fn jwks_url_key_rotation_works_without_a_restart() {
    let old_key = TestKey::generate();
    let new_key = TestKey::generate();
    let jwks = jwks_server(json!({"keys": [jwk(&old_key, "k1")]})).await;
    let (auth, remote) = remote_authenticator(&jwks.url, std::time::Duration::ZERO);
    remote.refresh().await.unwrap();
    assert!(auth
        .verify(&old_key.sign(&claims("alice"), Some("k1")))
        .await
        .is_ok());
    let rotated = new_key.sign(&claims("alice"), Some("k2"));
    assert_eq!(
        auth.verify(&rotated).await.unwrap_err().code,
        ErrorCode::UnknownKey,
        "not published yet"
    );
    *jwks.document.lock().unwrap() = json!({"keys": [jwk(&old_key, "k1"), jwk(&new_key, "k2")]});
    let identity = auth
        .verify(&rotated)
        .await
        .expect("an unknown kid refetches the JWKS");
    assert_eq!(identity.user_id, "alice");
    let forged = old_key.sign(&claims("alice"), Some("k2"));
    assert_eq!(
        auth.verify(&forged).await.unwrap_err().code,
        ErrorCode::InvalidSignature,
        "kid k2 is the new key"
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    use std::sync::atomic::Ordering;
    let key = TestKey::generate();
    let jwks = jwks_server(json!({"keys": [jwk(&key, "k1")]})).await;
    let (auth, remote) = remote_authenticator(&jwks.url, std::time::Duration::from_secs(60));
    remote.refresh().await.unwrap();
    for i in 0..20 {
        let forged = key.sign(&claims("alice"), Some(&format!("nope-{i}")));
        assert_eq!(
            auth.verify(&forged).await.unwrap_err().code,
            ErrorCode::UnknownKey
        );
    }
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "forged kids cannot make the server hammer the JWKS"
    );
}

#[tokio::test]
async fn jwks_file_picks_the_key_by_kid() {
    let a = TestKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(
        &path,
        json!({"keys": [jwk(key(), "main"), jwk(&a, "other")]}).to_string(),
    )
    .unwrap();
    let auth = Authenticator::new(
        VerifyingKeys::from_jwks_file(&path).unwrap(),
        Some(ISSUER),
        vec![],
    );
    assert!(auth
        .verify(&key().sign(&claims("alice"), Some("main")))
        .await
        .is_ok());
    assert!(auth
        .verify(&a.sign(&claims("alice"), Some("other")))
        .await
        .is_ok());
    assert_eq!(
        auth.verify(&a.sign(&claims("alice"), Some("main")))
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidSignature
    );
    assert_eq!(
        auth.verify(&a.sign(&claims("alice"), None))
            .await
            .unwrap_err()
            .code,
        ErrorCode::UnknownKey
    );
}
