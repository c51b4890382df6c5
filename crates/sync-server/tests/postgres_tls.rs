//! The Postgres store over TLS (`sslmode=require`, `sslrootcert`), offline:
//! a test proxy answers Postgres's `SSLRequest`, terminates TLS with a
//! certificate from a CA made here, and forwards the plain protocol to the
//! test database. The store must verify the certificate, refuse one that does
//! not verify, and refuse a server that offers no TLS (never a plaintext
//! fallback).

mod pg_support;
mod tls_proxy;

use pg_support::TestSchema;
use std::sync::atomic::Ordering;
use sync_core::TableConfig;
use sync_server::store::postgres::{DatabaseUrl, PgOptions, PostgresStore};
use sync_server::store::{Access, ChangesQuery, Store};
use tls_proxy::{make_certs, no_tls_server, tls_proxy, write_pem};

async fn connect(url: &str) -> Result<PostgresStore, sync_server::store::StoreError> {
    let options = PgOptions {
        pool_size: 2,
        statement_timeout: std::time::Duration::from_secs(5),
    };
    PostgresStore::connect(url, TableConfig::or3_chat(), options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_over_tls_verifies_the_server_and_works() {
    let schema = TestSchema::new().await;
    let certs = make_certs();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_pem(&dir, "ca.pem", &certs.ca_pem);
    let (_, upstream) = pg_support::with_host(&schema.url(), "127.0.0.1:1");
    let (proxy, handshakes) = tls_proxy(&certs, upstream).await;
    let (url, _) = pg_support::with_host(&schema.url(), &proxy.to_string());
    let url = format!("{url}&sslmode=require&sslrootcert={ca}");

    let store = connect(&url).await.expect("connects over TLS");
    assert!(
        handshakes.load(Ordering::SeqCst) >= 1,
        "the connection went through TLS"
    );
    let ws = sync_core::WorkspaceId::generate();
    store
        .create_workspace(&ws, "w", "alice", 1_800_000_000_000)
        .await
        .unwrap();
    let alice = Access::Member {
        user_id: "alice".into(),
    };
    let page = store
        .changes(
            &ws,
            &alice,
            ChangesQuery {
                cursor: 0,
                limit: 10,
                project_id: None,
                tables: None,
            },
        )
        .await
        .unwrap();
    assert!(page.changes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let schema = TestSchema::new().await;
    let certs = make_certs();
    let other = make_certs();
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = write_pem(&dir, "other-ca.pem", &other.ca_pem);
    let (_, upstream) = pg_support::with_host(&schema.url(), "127.0.0.1:1");
    let (proxy, handshakes) = tls_proxy(&certs, upstream).await;
    let (url, _) = pg_support::with_host(&schema.url(), &proxy.to_string());
    let url = format!("{url}&sslmode=require&sslrootcert={wrong_ca}");
    let Err(err) = connect(&url).await else {
        panic!("an untrusted certificate was accepted");
    };
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_never_falls_back_to_plaintext() {
    let server = no_tls_server().await;
    let (url, _) = pg_support::with_host(&pg_support::base_url(), &server.to_string());
    let Err(err) = connect(&format!("{url}?sslmode=require")).await else {
        panic!("connected to a server without TLS");
    };
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[test]
fn tls_settings_in_the_url_are_checked() {
    let base = "postgres://u@127.0.0.1:5432/db";
    let err = DatabaseUrl::parse(&format!("{base}?sslmode=allow")).unwrap_err();
    assert!(err.to_string().contains("sslmode `allow`"), "{err}");
    let err = DatabaseUrl::parse(&format!("{base}?sslrootcert=/x.pem")).unwrap_err();
    assert!(
        err.to_string().contains("sslrootcert needs sslmode"),
        "{err}"
    );
    let err =
        DatabaseUrl::parse(&format!("{base}?sslmode=require&sslrootcert=/nope.pem")).unwrap_err();
    assert!(err.to_string().contains("sslrootcert /nope.pem"), "{err}");
    assert!(matches!(
        DatabaseUrl::parse(base).unwrap().tls,
        sync_server::store::postgres::PgTls::None
    ));
    assert!(matches!(
        DatabaseUrl::parse(&format!("{base}?sslmode=verify-full"))
            .unwrap()
            .tls,
        sync_server::store::postgres::PgTls::Rustls(_)
    ));
}
