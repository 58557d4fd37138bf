//! The stream probe end to end: `/.sluice/stream-probe` served by sluice on a route host through
//! a real Envoy under the route's policy (or public, or off), and `sluice probe` telling a
//! streaming path from a buffering one — directly, through Envoy, and through a buffering
//! proxy in front, which is how a user finds the hop that buffers.

use std::process::{Command, Output};
use std::time::Duration;

use crate::common::envoy::Envoy;
use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

fn config(ports: &Ports, idp: &Idp, upstream: &Upstream, probe: &str) -> String {
    format!(
        "{}{}bearer_token_format: idp_identity_token\nsluice_stream_probe: {probe}\nroutes:\n  - from: http://app.test\n    to: {}\n    allowed_domains: [example.com]\n",
        ports.globals(),
        idp.config(),
        upstream.url()
    )
}

fn probe(url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "probe",
            url,
            "--events",
            "5",
            "--interval-ms",
            "150",
            "--timeout-s",
            "20",
        ])
        .args(extra)
        .output()
        .expect("run sluice probe")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A proxy that reads a whole response before passing it on, as a misconfigured load
/// balancer in front of Envoy would.
struct BufferingProxy {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl BufferingProxy {
    fn start(envoy_port: u16) -> BufferingProxy {
        use axum::extract::Request;
        let (runtime, listener) = crate::common::one_worker_listener(0);
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(move |request: Request| async move {
            let client = reqwest::Client::new();
            let mut forward = client.get(format!(
                "http://127.0.0.1:{envoy_port}{}",
                request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            ));
            for (name, value) in request.headers() {
                forward = forward.header(name, value);
            }
            let response = forward.send().await.expect("through Envoy");
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default();
            (status, [("content-type", "text/event-stream")], body)
        });
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        BufferingProxy {
            port,
            _runtime: runtime,
        }
    }
}

#[test]
fn the_probe_streams_through_envoy_and_exposes_a_buffering_hop() {
    let idp = Idp::start();
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, &idp, &upstream, "policy"));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    let token = idp.token("alice", "alice@example.com", &[]);
    let auth = format!("Authorization: Bearer {token}");
    let through_envoy = format!("http://app.test:{}/.sluice/stream-probe", ports.listener);
    let resolve = format!("app.test:{}:127.0.0.1", ports.listener);
    let ready = poll(Duration::from_secs(15), || {
        let r = crate::common::http::request(
            "GET",
            ports.listener,
            "app.test",
            "/",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .ok()?;
        (r.status == 200).then_some(())
    });
    assert!(ready.is_some(), "Envoy never served app.test");

    // Hop 1: sluice itself.
    let direct = probe(
        &format!("http://127.0.0.1:{}/.sluice/stream-probe", ports.grpc),
        &[],
    );
    assert_eq!(direct.status.code(), Some(0), "{}", text(&direct));
    assert!(
        text(&direct).contains("verdict: streaming (5 events"),
        "{}",
        text(&direct)
    );

    // Hop 2: through Envoy, under the route's policy.
    let streamed = probe(&through_envoy, &["--resolve", &resolve, "--header", &auth]);
    assert_eq!(streamed.status.code(), Some(0), "{}", text(&streamed));
    assert!(
        text(&streamed).contains("verdict: streaming (5 events"),
        "{}",
        text(&streamed)
    );
    let refused = probe(&through_envoy, &["--resolve", &resolve]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("401"), "{}", text(&refused));
    assert!(envoy.stat("http.ingress.ext_authz.ok") >= 1);

    // Hop 3: a buffering proxy in front of Envoy: every event arrives at the end.
    let proxy = BufferingProxy::start(ports.listener);
    let buffered = probe(
        &format!("http://app.test:{}/.sluice/stream-probe", proxy.port),
        &[
            "--resolve",
            &format!("app.test:{}:127.0.0.1", proxy.port),
            "--header",
            &auth,
        ],
    );
    assert_eq!(buffered.status.code(), Some(1), "{}", text(&buffered));
    assert!(
        text(&buffered).contains("verdict: buffered: 5 events arrived together after"),
        "{}",
        text(&buffered)
    );

    // Public, then off.
    sluice.write_config(&config(&ports, &idp, &upstream, "public"));
    let public = poll(Duration::from_secs(10), || {
        let out = probe(&through_envoy, &["--resolve", &resolve]);
        (out.status.code() == Some(0)).then_some(out)
    });
    assert!(
        public.is_some(),
        "the public probe never answered without a token"
    );
    sluice.write_config(&config(&ports, &idp, &upstream, "off"));
    // Off: the path is the application's like any other (the test upstream answers every
    // path with plain text), so there is no stream.
    let off = poll(Duration::from_secs(10), || {
        let out = probe(&through_envoy, &["--resolve", &resolve, "--header", &auth]);
        text(&out)
            .contains("content-type: text/plain")
            .then_some(out)
    });
    let off = off.expect("with the probe off the path should reach the application");
    assert_eq!(off.status.code(), Some(2), "{}", text(&off));
    assert!(
        text(&off).contains("verdict: no events arrived"),
        "{}",
        text(&off)
    );
}
