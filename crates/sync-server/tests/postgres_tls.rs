//! The Postgres store over TLS (`sslmode=require`, `sslrootcert`), offline:
//! a test proxy answers Postgres's `SSLRequest`, terminates TLS with a
//! certificate from a CA made here, and forwards the plain protocol to the
//! test database. The store must verify the certificate, refuse one that does
//! not verify, and refuse a server that offers no TLS (never a plaintext
//! fallback).

mod pg_support;

use pg_support::TestSchema;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use sync_core::TableConfig;
use sync_server::store::postgres::{DatabaseUrl, PgOptions, PostgresStore};
use sync_server::store::{Access, ChangesQuery, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// The 8-byte `SSLRequest` a client sends before TLS.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A CA and a server certificate it signed for 127.0.0.1.
struct Certs {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn make_certs() -> Certs {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    Certs {
        ca_pem: ca.pem(),
        server_chain: vec![server.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    }
}

/// Starts the TLS-terminating proxy to `upstream`; answers its address and
/// a count of completed TLS handshakes.
async fn tls_proxy(certs: &Certs, upstream: String) -> (SocketAddr, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs.server_chain.clone(), certs.server_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let (acceptor, upstream, counted) =
                (acceptor.clone(), upstream.clone(), counted.clone());
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if inbound.read_exact(&mut request).await.is_err() || request != SSL_REQUEST {
                    return; // a client that does not ask for TLS gets nothing here
                }
                inbound.write_all(b"S").await.unwrap();
                let Ok(mut tls) = acceptor.accept(inbound).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut outbound = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
            });
        }
    });
    (addr, handshakes)
}

/// A server that answers every `SSLRequest` with `N` (no TLS here).
async fn no_tls_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if inbound.read_exact(&mut request).await.is_ok() {
                    let _ = inbound.write_all(b"N").await;
                    let mut rest = Vec::new();
                    let _ = inbound.read_to_end(&mut rest).await;
                }
            });
        }
    });
    addr
}

/// `url` with its `HOST:PORT` replaced by `addr`; also returns the old one.
fn via(url: &str, addr: SocketAddr) -> (String, String) {
    let at = url.find('@').expect("the test URL names a user") + 1;
    let end = at + url[at..].find('/').expect("the test URL names a database");
    (
        format!("{}{addr}{}", &url[..at], &url[end..]),
        url[at..end].to_owned(),
    )
}

fn write_pem(dir: &tempfile::TempDir, name: &str, pem: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

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
    let (_, upstream) = via(&schema.url(), "127.0.0.1:1".parse().unwrap());
    let (proxy, handshakes) = tls_proxy(&certs, upstream).await;
    let (url, _) = via(&schema.url(), proxy);
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
    let (_, upstream) = via(&schema.url(), "127.0.0.1:1".parse().unwrap());
    let (proxy, handshakes) = tls_proxy(&certs, upstream).await;
    let (url, _) = via(&schema.url(), proxy);
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
    let (url, _) = via(&pg_support::base_url(), server);
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
