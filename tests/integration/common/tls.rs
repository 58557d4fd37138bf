//! TLS for the stream tests, all from `tests/testdata/certs`: an Envoy listener with the server
//! certificate, HTTPS clients that trust the test CA and send every host name to 127.0.0.1,
//! and a TLS listener (ALPN h2 + http/1.1) that an axum upstream serves on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::sluice::Ports;

pub fn certs() -> PathBuf {
    super::testdata().join("certs")
}

pub fn ca_file() -> PathBuf {
    certs().join("ca.pem")
}

/// Global config lines for a TLS listener on `ports` with the test server certificate
/// (SANs `*.example.com`, `localhost`, `127.0.0.1`); the codec stays `auto`, so ALPN offers
/// h2 and http/1.1.
pub fn listener_globals(ports: &Ports) -> String {
    let certs = certs();
    format!(
        "address: 127.0.0.1:{}\ngrpc_address: 127.0.0.1:{}\nenvoy_admin_address: 127.0.0.1:{}\ncertificates:\n  - cert: {}\n    key: {}\n",
        ports.listener,
        ports.grpc,
        ports.admin,
        certs.join("server.pem").display(),
        certs.join("server-key.pem").display(),
    )
}

/// Which HTTP version a client speaks to Envoy (over TLS, chosen by ALPN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Http1,
    Http2,
}

impl Proto {
    pub fn version(self) -> http::Version {
        match self {
            Proto::Http1 => http::Version::HTTP_11,
            Proto::Http2 => http::Version::HTTP_2,
        }
    }
}

/// Every name resolves to 127.0.0.1 (the port comes from the URL), so tests can use
/// `https://<anything>.example.com:<listener>/` and the certificate's SANs.
struct Loopback;

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            let addrs: reqwest::dns::Addrs =
                Box::new(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0))));
            Ok(addrs)
        })
    }
}

/// An HTTPS client trusting only the test CA. HTTP/1.1 is forced by ALPN; HTTP/2 is what
/// ALPN picks when both are offered (callers check the response version). Each client
/// keeps its own connections, so one client per stream means one connection per stream.
pub fn https_client(proto: Proto) -> reqwest::Client {
    let ca = std::fs::read(ca_file()).expect("read the test CA");
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .dns_resolver(Arc::new(Loopback))
        // A sign-in redirect is an answer to look at, not to follow.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    match proto {
        Proto::Http1 => builder.http1_only(),
        Proto::Http2 => builder,
    }
    .build()
    .expect("HTTPS client")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("certificates in {}: {e}", path.display()))
}

/// A server config with `cert`/`key` from the test certificates, offering `alpn`.
pub fn server_config(cert: &str, key: &str, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    let dir = certs();
    let key_pem = std::fs::read(dir.join(key)).expect("read key");
    let key = PrivateKeyDer::from_pem_slice(&key_pem).expect("private key PEM");
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(read_certs(&dir.join(cert)), key)
        .expect("server certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A client config trusting the test CA, offering `alpn`.
pub fn client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(&ca_file()) {
        roots.add(cert).expect("add CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to 127.0.0.1:`port` presenting `host` as SNI, offering HTTP/1.1 only
/// (what a WebSocket upgrade needs).
pub async fn connect_http1(
    port: u16,
    host: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host.to_string()).map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(client_config(&[b"http/1.1"]))
        .connect(name, tcp)
        .await
}

/// TLS connections accepted and handshaken in the background, handed to `axum::serve` one
/// by one (a slow handshake never holds up the others). Sockets get TCP_NODELAY, as Node
/// and Go servers set by default.
pub struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Must be called inside a tokio runtime.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> TlsListener {
        let addr = listener.local_addr().expect("local address");
        let (tx, incoming) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                // A loopback listener that cannot accept is broken: stop (the server then
                // ends and the test fails on it) rather than spin.
                let Ok((tcp, peer)) = listener.accept().await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    );
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener { incoming, addr }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// A client certificate (SAN `client.example.com`, like the test client's) signed by a CA
/// made for the call, so one the test CA does not trust: the "bad certificate" of mTLS tests.
/// Returns (certificate PEM, key PEM).
pub fn other_ca_client() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("client key");
    let params =
        CertificateParams::new(vec!["client.example.com".to_string()]).expect("client params");
    let cert = params.signed_by(&key, &issuer).expect("sign client");
    (cert.pem(), key.serialize_pem())
}

/// The certificate half of [`other_ca_client`].
pub fn other_ca_client_pem() -> String {
    other_ca_client().0
}

/// An HTTPS client (HTTP/1.1, trusting the test CA) that presents `identity`, a PEM
/// certificate followed by its key, when the server asks for one; `None` presents nothing.
pub fn mtls_client(identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(ca_file()).expect("read the test CA");
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .dns_resolver(Arc::new(Loopback))
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .no_proxy();
    if let Some(pem) = identity {
        builder =
            builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity PEM"));
    }
    builder.build().expect("mTLS client")
}

/// The test client certificate (signed by the test CA) and its key, as one PEM.
pub fn test_client_identity() -> String {
    let dir = certs();
    let cert = std::fs::read_to_string(dir.join("client.pem")).expect("client.pem");
    let key = std::fs::read_to_string(dir.join("client-key.pem")).expect("client-key.pem");
    format!("{cert}{key}")
}
