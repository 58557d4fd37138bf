//! A burst of ext_authz checks on one HTTP/2 connection: Envoy sends every Check of a worker
//! over one connection to sluice, so a thousand clients connecting at once (a reconnect storm
//! of SSE clients) are a thousand concurrent streams there. sluice must take them all: a
//! server that caps concurrent streams (hyper's default is 200) refuses the rest, and Envoy
//! answers those clients 503.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::envoy::Envoy;
use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

const CLIENTS: usize = 800;

/// The status line's code of one HTTP/1.1 request, or the error as text.
async fn status_of(port: u16, token: String) -> Result<u16, String> {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: app.test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before a response".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not a response: {text:.80}"))
}

#[test]
fn a_burst_of_checks_on_one_connection_is_answered_in_full() {
    let idp = Idp::start();
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let config = format!(
        "{}{}bearer_token_format: idp_identity_token\ngrpc_client_timeout: 30s\nroutes:\n  - from: http://app.test\n    to: {}\n    allowed_domains: [example.com]\n",
        ports.globals(),
        idp.config(),
        upstream.url()
    );
    let sluice = Sluice::start(ports, &config);
    // One worker: one HTTP/2 connection to sluice carries every Check.
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("burst", "delta", ports.admin),
        ports.admin,
    );
    let token = idp.token("burst", "burst@example.com", &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ready = poll(Duration::from_secs(15), || {
        (runtime.block_on(status_of(ports.listener, token.clone())) == Ok(200)).then_some(())
    });
    assert!(ready.is_some(), "Envoy never allowed the signed-in user");

    // Freeze sluice so every Check of the burst is open at the same time, then let it go.
    sluice.guard.signal("STOP");
    let frozen = poll(Duration::from_secs(5), || {
        (sluice.guard.state() == Some('T')).then_some(())
    });
    assert!(frozen.is_some(), "sluice did not stop");
    let requests: Vec<_> = (0..CLIENTS)
        .map(|_| runtime.spawn(status_of(ports.listener, token.clone())))
        .collect();
    let active = "cluster.sluice/grpc.upstream_rq_active";
    let all_waiting = poll(Duration::from_secs(20), || {
        (envoy.stat(active) >= CLIENTS as u64).then_some(())
    });
    sluice.guard.signal("CONT");
    assert!(
        all_waiting.is_some(),
        "Envoy never had {CLIENTS} Checks open at once ({active}: {})",
        envoy.stat(active)
    );

    let mut refused = Vec::new();
    for request in requests {
        match runtime.block_on(request).expect("request task") {
            Ok(200) => {}
            other => refused.push(other),
        }
    }
    assert!(
        refused.is_empty(),
        "{} of {CLIENTS} clients were not let through (first: {:?}); Envoy saw {} stream resets from sluice and {} ext_authz errors",
        refused.len(),
        refused.first(),
        envoy.stat("cluster.sluice/grpc.http2.rx_reset"),
        envoy.stat("http.ingress.ext_authz.error"),
    );
    assert_eq!(envoy.stat("http.ingress.ext_authz.error"), 0);
}
