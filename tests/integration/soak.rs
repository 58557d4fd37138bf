//! The soak: 1,000 route edits (routes added, removed, their timeouts, policies and headers
//! changed) while 50 SSE streams, 10 WebSockets and a gRPC stream stay open through a real
//! Envoy and `wrk` loads a public route. Nothing may be cut, lost, repeated or failed; no
//! listener may change or drain; sluice's memory must stay flat. Long (about half a minute
//! here) and timing-sensitive, so `scripts/test.sh` skips it in the parallel run and runs it on
//! its own afterwards: `cargo test --test integration soak:: -- --nocapture`. `SOAK_EDITS` sets
//! the count.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::envoy::Envoy;
use crate::common::grpc::{self, GrpcLog};
use crate::common::http;
use crate::common::process::{poll, rss_mib};
use crate::common::sluice::{Ports, Sluice};
use crate::common::streams::{SseWatch, WsWatch, consecutive};
use crate::common::upstream::Upstream;

const SSE_STREAMS: usize = 50;
const WEBSOCKETS: usize = 10;

/// The routes that stay, then the edited ones: `edit` decides which exist and how they look.
fn config(ports: &Ports, upstream: &Upstream, edit: usize) -> String {
    let to = upstream.url();
    let grpc_port = to.rsplit(':').next().unwrap_or_default();
    let mut out = format!(
        "{}routes:\n  - from: http://stream.test\n    to: {to}\n    allow_websockets: true\n    allow_public_unauthenticated_access: true\n  - from: http://grpc.test\n    to: h2c://127.0.0.1:{grpc_port}\n    allow_public_unauthenticated_access: true\n  - from: http://load.test\n    to: {to}\n    allow_public_unauthenticated_access: true\n",
        ports.globals()
    );
    // Twenty slots; each edit changes one of them (round robin) in one of four ways, so routes
    // come and go and the others get new timeouts, policies and headers.
    for slot in 0..20 {
        let version = if edit == 0 {
            0
        } else {
            (edit - 1) / 20 + usize::from(slot < (edit - 1) % 20 + 1)
        };
        let host = format!("edit-{slot}.test");
        match version % 4 {
            // Removed (every fourth version of a slot).
            3 => {}
            0 => out.push_str(&format!(
                "  - from: http://{host}\n    to: {to}\n    timeout: {}s\n    allow_public_unauthenticated_access: true\n",
                10 + version
            )),
            1 => out.push_str(&format!(
                "  - from: http://{host}\n    to: {to}\n    policy:\n      allow:\n        or:\n          - email: {{is: user{version}@example.com}}\n"
            )),
            _ => out.push_str(&format!(
                "  - from: http://{host}\n    to: {to}\n    allow_public_unauthenticated_access: true\n    set_request_headers:\n      X-Version: \"{version}\"\n"
            )),
        }
    }
    out
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[test]
fn soak_1000_edits_with_streams_open_and_traffic_flowing() {
    let edits: usize = std::env::var("SOAK_EDITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    assert!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "the soak needs wrk: run bash scripts/install-bench-tools.sh (Debian package wrk)"
    );
    let upstream = Upstream::start_nodelay("app");
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, &upstream, 0));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-soak", "delta", ports.admin),
        ports.admin,
    );
    poll(Duration::from_secs(10), || {
        let r = http::get(ports.listener, "stream.test", "/").ok()?;
        (r.status == 200).then_some(())
    })
    .expect("Envoy serves");

    let sse: Vec<SseWatch> = (0..SSE_STREAMS)
        .map(|_| {
            SseWatch::open(
                ports.listener,
                "stream.test",
                "/sse?count=1000000&every_ms=100",
            )
        })
        .collect();
    let ws: Vec<WsWatch> = (0..WEBSOCKETS)
        .map(|_| WsWatch::open(ports.listener, "stream.test", "/ws"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let grpc_log = Arc::new(Mutex::new(GrpcLog::default()));
    let grpc_client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve(
            "grpc.test",
            std::net::SocketAddr::from(([127, 0, 0, 1], ports.listener)),
        )
        .build()
        .expect("h2c client");
    let _grpc = rt.spawn(grpc::watch(
        grpc_client,
        format!("http://grpc.test:{}", ports.listener),
        Vec::new(),
        1_000_000,
        100,
        Arc::clone(&grpc_log),
    ));
    for (i, s) in sse.iter().enumerate() {
        assert!(
            s.wait_for(2, Duration::from_secs(20)),
            "SSE {i} did not start: {:?}",
            s.ended()
        );
    }
    for (i, w) in ws.iter().enumerate() {
        assert!(
            poll(Duration::from_secs(20), || (w.pushes().len() >= 2)
                .then_some(()))
            .is_some(),
            "WebSocket {i} did not start"
        );
    }
    assert!(
        poll(Duration::from_secs(20), || (grpc_log
            .lock()
            .unwrap()
            .messages
            .len()
            >= 2)
            .then_some(()))
        .is_some(),
        "the gRPC stream did not start: {:?}",
        grpc_log.lock().unwrap().ended
    );
    let wrk = Command::new("wrk")
        .args(["-t1", "-c4", "-d600s", "-H", "Host: load.test"])
        .arg(format!("http://127.0.0.1:{}/", ports.listener))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");
    let listeners_added = envoy.stat("listener_manager.listener_added");

    let started = Instant::now();
    let mut rss = Vec::with_capacity(edits);
    let mut generation = sluice.generation();
    for edit in 1..=edits {
        sluice.write_config(&config(&ports, &upstream, edit));
        if edit % 5 == 0 {
            ws[edit % WEBSOCKETS].send(&format!("e{edit}"));
        }
        let published = poll(Duration::from_secs(10), || {
            let g = sluice.try_status()?["reload"]["generation"].as_u64()?;
            (g > generation).then_some(g)
        })
        .unwrap_or_else(|| {
            panic!(
                "edit {edit} was not published: {}",
                sluice.status()["reload"]
            )
        });
        generation = published;
        rss.push(rss_mib(sluice.guard.pid()));
    }
    // Every Envoy has the last edit.
    poll(Duration::from_secs(10), || {
        let types = sluice.envoy_status("edge-soak")?["types"].clone();
        let settled = ["CDS", "LDS", "RDS", "SRDS"]
            .iter()
            .all(|t| types[t]["sent_version"] == types[t]["acked_version"]);
        settled.then_some(())
    })
    .expect("Envoy acknowledged the last edit");
    let took = started.elapsed();

    let _ = Command::new("kill")
        .args(["-INT", &wrk.id().to_string()])
        .status();
    let wrk_out =
        String::from_utf8_lossy(&wrk.wait_with_output().expect("wrk").stdout).into_owned();
    let requests: u64 = wrk_out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(requests > 1000, "wrk ran: {wrk_out}");
    assert!(
        !wrk_out.contains("Non-2xx"),
        "failed requests during the soak: {wrk_out}"
    );
    assert!(
        !wrk_out.contains("Socket errors"),
        "socket errors during the soak: {wrk_out}"
    );

    // Streams: still open, nothing lost or repeated.
    for (i, s) in sse.iter().enumerate() {
        let before = s.ids().len();
        assert!(
            s.wait_for(before + 1, Duration::from_secs(10)),
            "SSE {i} stopped: {:?}",
            s.ended()
        );
        assert_eq!(s.ended(), None, "SSE {i} was cut");
        assert!(consecutive(&s.ids()), "SSE {i} lost or repeated events");
    }
    for (i, w) in ws.iter().enumerate() {
        assert_eq!(w.ended(), None, "WebSocket {i} was cut");
        assert!(
            consecutive(&w.pushes()),
            "WebSocket {i} lost or repeated pushes"
        );
    }
    let echoes: usize = ws.iter().map(|w| w.echoes().len()).sum();
    assert!(
        poll(Duration::from_secs(10), || (ws
            .iter()
            .map(|w| w.echoes().len())
            .sum::<usize>()
            == edits / 5)
            .then_some(()))
        .is_some(),
        "WebSocket echoes: {echoes} of {}",
        edits / 5
    );
    {
        let log = grpc_log.lock().unwrap();
        assert_eq!(log.ended, None, "the gRPC stream was cut");
        let seqs: Vec<u64> = log.messages.iter().map(|m| m.0).collect();
        assert!(consecutive(&seqs), "gRPC messages lost or repeated");
    }
    let sse_events: usize = sse.iter().map(|s| s.ids().len()).sum();

    // Envoy never replaced or drained a listener.
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 0);
    assert_eq!(
        envoy.stat("listener_manager.listener_added"),
        listeners_added
    );
    assert_eq!(envoy.stat("listener_manager.total_listeners_draining"), 0);
    assert_eq!(
        envoy.stat("listener_manager.total_filter_chains_draining"),
        0
    );

    let window = (edits / 10).clamp(1, 100);
    let (first, last) = (mean(&rss[..window]), mean(&rss[rss.len() - window..]));
    println!(
        "soak: {edits} edits in {:.1} s ({:.0} ms each); {SSE_STREAMS} SSE streams ({sse_events} events), {WEBSOCKETS} WebSockets, 1 gRPC stream: 0 cut, 0 lost or repeated; wrk {requests} requests, 0 failed; listener_modified 0, drains 0; sluice RSS {first:.1} MiB over the first {window} edits, {last:.1} MiB over the last {window}",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / edits as f64
    );
    assert!(
        last < first * 1.25 + 4.0,
        "sluice's memory grew during the soak: {first:.1} -> {last:.1} MiB"
    );
}
