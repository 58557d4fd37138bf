//! A listener-level change (here `codec_type`, which rebuilds the listener) with streams open,
//! through a real Envoy started with the flags `sluice envoy-flags` prints: open HTTP/1.1 and
//! HTTP/2 streams keep flowing until the drain window (`sluice_drain_time`) ends, the HTTP/2
//! client gets a GOAWAY and its next request must go to a new connection, and new connections
//! see the new listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::envoy::Envoy;
use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::sse::LiveSse;
use crate::common::tls::{self, Proto};
use crate::common::upstream::Upstream;

const HOST: &str = "app.example.com";
const DRAIN: Duration = Duration::from_secs(8);

fn config(ports: &Ports, idp: &Idp, upstream: &Upstream, codec: &str) -> String {
    format!(
        "{}{}bearer_token_format: idp_identity_token\ncodec_type: {codec}\nsluice_drain_time: {}s\nsluice_http2_drain_timeout: 1s\nroutes:\n  - from: https://{HOST}\n    to: {}\n    allowed_domains: [example.com]\n",
        tls::listener_globals(ports),
        idp.config(),
        DRAIN.as_secs(),
        upstream.url()
    )
}

/// `sluice envoy-flags` for the test's config.
fn envoy_flags(config: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["envoy-flags", "-c"])
        .arg(config)
        .output()
        .expect("run sluice envoy-flags");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// An HTTP/2 connection held by the test, with an SSE stream on it.
struct H2Stream {
    sender: h2::client::SendRequest<bytes::Bytes>,
    /// Arrival times of the stream's data frames.
    frames: Arc<Mutex<Vec<Instant>>>,
    ended: Arc<Mutex<Option<Instant>>>,
}

/// A TLS connection offering `alpn`; an HTTP/2 client on it when Envoy picked h2.
async fn h2_connect(
    port: u16,
    alpn: &[&[u8]],
) -> (Option<h2::client::SendRequest<bytes::Bytes>>, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(HOST).unwrap();
    let tls = tokio_rustls::TlsConnector::from(tls::client_config(alpn))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with Envoy");
    let negotiated = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    if negotiated != b"h2" {
        return (None, negotiated);
    }
    let (sender, connection) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    (Some(sender), negotiated)
}

fn get(path: &str, token: &str) -> http::Request<()> {
    http::Request::builder()
        .uri(format!("https://{HOST}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(())
        .unwrap()
}

async fn h2_stream(port: u16, token: &str) -> H2Stream {
    let (sender, alpn) = h2_connect(port, &[b"h2"]).await;
    assert_eq!(alpn, b"h2", "Envoy should speak HTTP/2 before the change");
    let mut sender = sender.unwrap().ready().await.expect("h2 ready");
    let (response, _) = sender
        .send_request(get("/sse?count=100000&every_ms=100", token), true)
        .expect("send the stream request");
    let response = response.await.expect("stream response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let frames: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let ended: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (f, e) = (Arc::clone(&frames), Arc::clone(&ended));
    tokio::spawn(async move {
        while let Some(Ok(data)) = body.data().await {
            let _ = body.flow_control().release_capacity(data.len());
            f.lock().unwrap().push(Instant::now());
        }
        *e.lock().unwrap() = Some(Instant::now());
    });
    H2Stream {
        sender,
        frames,
        ended,
    }
}

/// Whether the connection still takes a new request (false once Envoy's final GOAWAY came).
async fn takes_new_request(sender: &h2::client::SendRequest<bytes::Bytes>, token: &str) -> bool {
    let Ok(mut ready) = sender.clone().ready().await else {
        return false;
    };
    let Ok((response, _)) = ready.send_request(get("/", token), true) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), response).await,
        Ok(Ok(r)) if r.status() == 200
    )
}

#[test]
fn a_listener_change_drains_open_streams_gracefully() {
    let idp = Idp::start();
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, &idp, &upstream, "auto"));
    let flags = envoy_flags(&sluice.config);
    assert_eq!(
        flags,
        ["--drain-time-s", "8", "--drain-strategy", "immediate"]
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let bootstrap = sluice.bootstrap("edge-1", "delta", ports.admin);
    let envoy = Envoy::start_with_flags("envoy", &bootstrap, ports.admin, 1, &flags);
    let token = idp.token("alice", "alice@example.com", &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = format!("https://{HOST}:{}", ports.listener);
    let ready = poll(Duration::from_secs(15), || {
        let r = runtime.block_on(
            tls::https_client(Proto::Http1)
                .get(&url)
                .bearer_auth(&token)
                .send(),
        );
        (r.ok()?.status() == 200).then_some(())
    });
    assert!(ready.is_some(), "Envoy never served the route over TLS");
    let dump = envoy.config_dump("dynamic_listeners").to_string();
    assert!(
        dump.contains("\"drain_timeout\":\"1s\""),
        "sluice_http2_drain_timeout reaches the HCM"
    );

    // An HTTP/1.1 stream and an HTTP/2 stream, both flowing.
    let h1 = LiveSse::spawn(
        runtime.handle(),
        tls::https_client(Proto::Http1)
            .get(format!("{url}/sse?count=100000&every_ms=100"))
            .bearer_auth(&token),
    );
    let h2 = runtime.block_on(h2_stream(ports.listener, &token));
    assert!(
        h1.wait_events(3, Duration::from_secs(10)),
        "HTTP/1.1 stream: {:?}",
        h1.ended()
    );
    assert!(
        poll(Duration::from_secs(10), || (h2
            .frames
            .lock()
            .unwrap()
            .len()
            >= 3)
            .then_some(()))
        .is_some(),
        "HTTP/2 stream never flowed"
    );
    assert_eq!(h1.log.lock().unwrap().version, Some(http::Version::HTTP_11));
    assert!(runtime.block_on(takes_new_request(&h2.sender, &token)));

    // The change: HTTP/1.1 only, which rebuilds the listener.
    sluice.write_config(&config(&ports, &idp, &upstream, "http1"));
    let modified = poll(Duration::from_secs(10), || {
        (envoy.stat("listener_manager.listener_modified") >= 1).then(Instant::now)
    })
    .expect("the codec change reached Envoy as a listener change");
    // Only the filter chain changed, so Envoy drains that chain (a filter-chain-only update).
    let draining = || {
        envoy.stat("listener_manager.total_listeners_draining")
            + envoy.stat("listener_manager.total_filter_chains_draining")
    };
    assert!(draining() >= 1, "nothing is draining after the change");

    // HTTP/2: GOAWAY at once (immediate strategy), the final one after the 1 s grace; the old
    // connection then takes no new request.
    let refused = poll(Duration::from_secs(6), || {
        (!runtime.block_on(takes_new_request(&h2.sender, &token))).then(Instant::now)
    })
    .expect("the HTTP/2 connection never stopped taking requests (no GOAWAY)");
    assert!(
        refused.duration_since(modified) < DRAIN / 2,
        "GOAWAY came only {:?} into an {DRAIN:?} drain",
        refused.duration_since(modified)
    );
    assert!(envoy.stat("http.ingress.downstream_cx_drain_close") >= 1);
    // ... and a new connection reaches the new listener, which speaks HTTP/1.1 only.
    let (_, alpn) = runtime.block_on(h2_connect(ports.listener, &[b"h2", b"http/1.1"]));
    assert_eq!(
        alpn, b"http/1.1",
        "a new connection should see the new listener"
    );
    let fresh = runtime
        .block_on(
            tls::https_client(Proto::Http2)
                .get(&url)
                .bearer_auth(&token)
                .send(),
        )
        .expect("a request on a new connection");
    assert_eq!(
        (fresh.status().as_u16(), fresh.version()),
        (200, http::Version::HTTP_11)
    );

    // Both old streams keep flowing until the drain window ends, then Envoy closes them.
    let deadline = modified + DRAIN;
    let h1_end = poll(DRAIN + Duration::from_secs(10), || {
        let log = h1.log.lock().unwrap();
        log.ended.as_ref().map(|_| Instant::now())
    })
    .expect("the HTTP/1.1 stream was never closed after the drain window");
    let h2_end = poll(Duration::from_secs(10), || *h2.ended.lock().unwrap())
        .expect("the HTTP/2 stream was never closed after the drain window");
    let last_h1 = h1
        .log
        .lock()
        .unwrap()
        .events
        .last()
        .map(|e| e.arrived_us)
        .unwrap_or(0);
    let last_h2 = *h2.frames.lock().unwrap().last().unwrap();
    let margin = Duration::from_millis(1500);
    for (name, end, last) in [
        ("HTTP/1.1", h1_end, h1.log.lock().unwrap().events.len()),
        ("HTTP/2", h2_end, h2.frames.lock().unwrap().len()),
    ] {
        assert!(
            end + margin >= deadline,
            "the {name} stream ended {:?} before the drain deadline ({last} events)",
            deadline.saturating_duration_since(end)
        );
        assert!(
            end <= deadline + Duration::from_secs(5),
            "the {name} stream outlived the drain window by {:?}",
            end.duration_since(deadline)
        );
    }
    assert!(
        last_h2 + margin >= deadline,
        "HTTP/2 events stopped {:?} before the deadline",
        deadline.saturating_duration_since(last_h2)
    );
    let h1_gaps = {
        let log = h1.log.lock().unwrap();
        log.events
            .windows(2)
            .map(|w| w[1].arrived_us.saturating_sub(w[0].arrived_us))
            .max()
            .unwrap_or(0)
    };
    assert!(
        h1_gaps < 1_000_000,
        "the HTTP/1.1 stream stalled for {h1_gaps} µs while draining"
    );
    assert!(last_h1 > 0);
    assert!(
        poll(Duration::from_secs(10), || (draining() == 0).then_some(())).is_some(),
        "the old listener is gone after the drain"
    );
}
