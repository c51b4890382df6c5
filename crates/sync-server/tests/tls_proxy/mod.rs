//! A TLS-terminating proxy in front of the test Postgres, with a CA made on
//! the spot: answers Postgres's `SSLRequest`, does the TLS handshake, then
//! forwards the plain protocol. Used to test the store over TLS offline.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// The 8-byte `SSLRequest` a client sends before TLS.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A CA and a server certificate it signed for 127.0.0.1.
pub struct Certs {
    pub ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

pub fn make_certs() -> Certs {
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
pub async fn tls_proxy(certs: &Certs, upstream: String) -> (SocketAddr, Arc<AtomicUsize>) {
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
pub async fn no_tls_server() -> SocketAddr {
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

/// Writes `pem` to `name` in `dir`; returns the path.
pub fn write_pem(dir: &tempfile::TempDir, name: &str, pem: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}
