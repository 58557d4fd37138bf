//! Streaming benchmark with a real Envoy 1.40 and sluice's ext_authz on the path.
//! Part 1: the delay each SSE event picks up through Envoy + ext_authz, against the same
//! upstream read directly, in the same run (p50 and p99 of each, and the difference).
//! Part 2: how many concurrent SSE streams one Envoy + sluice hold with no event later than
//! 100 ms after the upstream wrote it (target: 5,000), stepping the count up. All streams of a
//! level open at once (a reconnect storm); events sent before the last one is open are
//! reported apart, and the verdict is about the streams being held.
//! Run with `cargo bench --bench streams` (Envoy: `bash scripts/install-envoy.sh`).

#[path = "../tests/integration/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::get;
use common::envoy::Envoy;
use common::idp::Idp;
use common::process::poll;
use common::sluice::{Ports, Sluice};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Part 1: streams per side, event spacing, and length.
const DELAY_STREAMS: usize = 50;
const DELAY_EVERY: Duration = Duration::from_millis(100);
const DELAY_LENGTH: Duration = Duration::from_secs(20);
/// Part 2: the stream counts tried, each held this long with one event per stream per second.
const LEVELS: &[usize] = &[1_000, 2_500, 5_000, 7_500];
const HOLD: Duration = Duration::from_secs(20);
const LATE: Duration = Duration::from_millis(100);

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `GET /sse?every_ms=M&offset_ms=O&count=N`: after `offset_ms`, an event every `every_ms`,
/// each carrying the microsecond it was written. Offsets spread many streams' events evenly.
async fn sse(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    let n = |k: &str, d: u64| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (every, offset, count) = (n("every_ms", 1000), n("offset_ms", 0), n("count", u64::MAX));
    let body = async_stream(every, offset, count);
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        axum::body::Body::from_stream(body),
    )
}

fn async_stream(
    every: u64,
    offset: u64,
    count: u64,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> {
    let start = tokio::time::Instant::now() + Duration::from_millis(offset);
    futures_util::stream::unfold(0u64, move |i| async move {
        if i >= count {
            return None;
        }
        tokio::time::sleep_until(start + Duration::from_millis(every * i)).await;
        let text = format!("id: {i}\ndata: {i} {}\n\n", unix_us());
        Some((Ok(bytes::Bytes::from(text)), i + 1))
    })
}

struct Upstream {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

fn upstream() -> Upstream {
    let (runtime, listener) = common::one_worker_listener(0);
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        let _ = axum::serve(listener, Router::new().route("/sse", get(sse))).await;
    });
    Upstream {
        port,
        _runtime: runtime,
    }
}

/// What all streams of one run received.
#[derive(Default)]
struct Tally {
    /// Microseconds from the upstream's write to arrival here, per event, once every stream
    /// of the run is open (the streams being held).
    delays: std::sync::Mutex<Vec<u64>>,
    late: AtomicU64,
    events: AtomicU64,
    /// Streams that have their response head, and when the last one got it (0: not yet).
    opened: AtomicU64,
    all_open_us: AtomicU64,
    /// Events that arrived while streams were still opening: everyone connecting at once
    /// (a reconnect storm), reported apart from the streams being held.
    opening_events: AtomicU64,
    opening_late: AtomicU64,
    opening_max_us: AtomicU64,
}

impl Tally {
    fn stream_opened(&self, streams: usize) {
        if self.opened.fetch_add(1, Ordering::Relaxed) + 1 == streams as u64 {
            self.all_open_us.store(unix_us(), Ordering::Relaxed);
        }
    }

    fn event(&self, arrived_us: u64, sent_us: u64) {
        let delay = arrived_us.saturating_sub(sent_us);
        let late = delay > LATE.as_micros() as u64;
        let all_open = self.all_open_us.load(Ordering::Relaxed);
        if all_open == 0 || sent_us < all_open {
            self.opening_events.fetch_add(1, Ordering::Relaxed);
            self.opening_late.fetch_add(late as u64, Ordering::Relaxed);
            self.opening_max_us.fetch_max(delay, Ordering::Relaxed);
            return;
        }
        self.events.fetch_add(1, Ordering::Relaxed);
        self.late.fetch_add(late as u64, Ordering::Relaxed);
        self.delays.lock().unwrap().push(delay);
    }
}

/// Reads one stream over plain HTTP/1.1 until `until`, adding every event to `tally`.
async fn read_stream(
    port: u16,
    request: String,
    until: Instant,
    tally: Arc<Tally>,
    streams: usize,
) -> Result<(), String> {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    socket.set_nodelay(true).ok();
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut head_seen = false;
    loop {
        let remaining = until.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(());
        }
        let n = match tokio::time::timeout(remaining, socket.read(&mut chunk)).await {
            Err(_) => return Ok(()),
            Ok(Ok(0)) => return Err("the stream ended early".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.to_string()),
        };
        let now = unix_us();
        buffer.extend_from_slice(&chunk[..n]);
        if !head_seen {
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            if !head.starts_with("HTTP/1.1 200") {
                let body = String::from_utf8_lossy(&buffer[end + 4..]);
                return Err(format!("{} {body:.200}", head.replace("\r\n", "; ")));
            }
            buffer.drain(..end + 4);
            head_seen = true;
            tally.stream_opened(streams);
        }
        // Every `data: <seq> <sent>` line in what arrived; chunk framing lines are skipped.
        let text = String::from_utf8_lossy(&buffer).to_string();
        let keep_from = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
        for line in text[..keep_from].lines() {
            if let Some(sent) = line
                .strip_prefix("data: ")
                .and_then(|d| d.split(' ').nth(1))
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                tally.event(now, sent);
            }
        }
        buffer.drain(..keep_from);
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

struct Outcome {
    delays: Vec<u64>,
    late: u64,
    events: u64,
    failures: Vec<String>,
    /// How long until every stream was open, and the events of that phase.
    opening: Duration,
    opening_events: u64,
    opening_late: u64,
    opening_max_ms: f64,
}

/// Opens `streams` streams (paths from `path_of`), holds them until `until`, and collects.
fn run_streams(
    runtime: &tokio::runtime::Runtime,
    port: u16,
    host: &str,
    streams: usize,
    path_of: impl Fn(usize) -> String,
    token: Option<&str>,
    length: Duration,
) -> Outcome {
    let tally = Arc::new(Tally::default());
    let started_us = unix_us();
    let until = Instant::now() + length;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n{auth}\r\n",
                path_of(i)
            );
            runtime.spawn(read_stream(
                port,
                request,
                until,
                Arc::clone(&tally),
                streams,
            ))
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        if let Ok(Err(e)) = runtime.block_on(t) {
            failures.push(e);
        }
    }
    let mut delays = std::mem::take(&mut *tally.delays.lock().unwrap());
    delays.sort_unstable();
    let all_open_us = tally.all_open_us.load(Ordering::Relaxed);
    Outcome {
        delays,
        late: tally.late.load(Ordering::Relaxed),
        events: tally.events.load(Ordering::Relaxed),
        failures,
        opening: Duration::from_micros(all_open_us.saturating_sub(started_us)),
        opening_events: tally.opening_events.load(Ordering::Relaxed),
        opening_late: tally.opening_late.load(Ordering::Relaxed),
        opening_max_ms: tally.opening_max_us.load(Ordering::Relaxed) as f64 / 1000.0,
    }
}

fn main() {
    unsafe { std::env::set_var("SLUICE_LOG", "sluice=info") };
    let idp = Idp::start();
    let up = upstream();
    let ports = Ports::new();
    let config = format!(
        "{}{}bearer_token_format: idp_identity_token\nroutes:\n  - from: http://events.test\n    to: http://127.0.0.1:{}\n    allowed_domains: [example.com]\n    pass_identity_headers: true\n",
        ports.globals(),
        idp.config(),
        up.port
    );
    let sluice = Sluice::start(ports, &config);
    let envoy = Envoy::start_with(
        "envoy",
        &sluice.bootstrap("bench", "delta", ports.admin),
        ports.admin,
        2,
    );
    let token = idp.token("bench", "bench@example.com", &[]);
    let ready = poll(Duration::from_secs(15), || {
        let r = common::http::request(
            "GET",
            ports.listener,
            "events.test",
            "/sse?count=1",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .ok()?;
        (r.status == 200).then_some(())
    });
    assert!(ready.is_some(), "Envoy never served the SSE route");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // Part 1: direct and through Envoy at the same time, so both see the same machine.
    println!(
        "Per-event delay, {DELAY_STREAMS} SSE streams each way, an event every {} ms for {} s, through Envoy (ext_authz with a bearer token at stream open) and straight to the upstream, same run:",
        DELAY_EVERY.as_millis(),
        DELAY_LENGTH.as_secs()
    );
    let every = DELAY_EVERY.as_millis() as usize;
    let path = move |i: usize| format!("/sse?every_ms={every}&offset_ms={}", (i * 7) % every);
    let direct = {
        let port = up.port;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            run_streams(
                &rt,
                port,
                "upstream",
                DELAY_STREAMS,
                path,
                None,
                DELAY_LENGTH,
            )
        })
    };
    let through = run_streams(
        &runtime,
        ports.listener,
        "events.test",
        DELAY_STREAMS,
        path,
        Some(&token),
        DELAY_LENGTH,
    );
    let direct = direct.join().unwrap();
    for (name, o) in [("direct", &direct), ("through Envoy + ext_authz", &through)] {
        assert!(
            o.failures.is_empty(),
            "{name}: {:?}",
            &o.failures[..o.failures.len().min(3)]
        );
        println!(
            "  {name:<26} {:>6} events  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            o.events,
            percentile(&o.delays, 0.5),
            percentile(&o.delays, 0.99),
            percentile(&o.delays, 1.0)
        );
    }
    println!(
        "  added by Envoy + ext_authz: p50 {:+.2} ms, p99 {:+.2} ms",
        percentile(&through.delays, 0.5) - percentile(&direct.delays, 0.5),
        percentile(&through.delays, 0.99) - percentile(&direct.delays, 0.99)
    );

    // Part 2: step the stream count up.
    println!(
        "Concurrent SSE streams through one Envoy (--concurrency 2) + sluice, an event per stream per second, spread evenly, {} s per level; an event is late after {} ms:",
        HOLD.as_secs(),
        LATE.as_millis()
    );
    // STREAM_LEVELS=2500,5000 tries other counts.
    let levels: Vec<usize> = std::env::var("STREAM_LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| LEVELS.to_vec());
    let mut held = 0;
    for streams in levels {
        let checks_before = sluice.status()["authz"]["checks"].as_u64().unwrap_or(0);
        let o = run_streams(
            &runtime,
            ports.listener,
            "events.test",
            streams,
            |i| format!("/sse?every_ms=1000&offset_ms={}", (i * 997) % 1000),
            Some(&token),
            HOLD,
        );
        let checks = sluice.status()["authz"]["checks"].as_u64().unwrap_or(0) - checks_before;
        let rss = std::fs::read_to_string(format!("/proc/{}/status", envoy.guard.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
            .unwrap_or_default();
        println!(
            "  {streams:>5} streams: {} failed to open; all open after {:.1} s ({checks} ext_authz checks; {} events meanwhile, {} late, max {:.1} ms); held: {} events, {} late, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; Envoy RSS {rss}",
            o.failures.len(),
            o.opening.as_secs_f64(),
            o.opening_events,
            o.opening_late,
            o.opening_max_ms,
            o.events,
            o.late,
            percentile(&o.delays, 0.5),
            percentile(&o.delays, 0.99),
            percentile(&o.delays, 1.0),
        );
        if o.failures.is_empty() && o.late == 0 && o.events > 0 {
            held = streams;
        } else {
            if let Some(f) = o.failures.first() {
                println!("    first failure: {f}");
            }
            let stats = common::http::get(ports.admin, "admin", "/stats")
                .map(|r| r.body)
                .unwrap_or_default();
            for line in stats.lines().filter(|l| {
                (l.contains("overflow")
                    || l.contains("ext_authz")
                    || l.contains("cx_connect_fail")
                    || l.contains("rq_timeout")
                    || l.contains("5xx")
                    || l.contains("rq_pending_failure")
                    || l.contains("reset"))
                    && !l.ends_with(": 0")
            }) {
                println!("    envoy: {line}");
            }
            break;
        }
    }
    println!("held with no late event: {held} concurrent streams (target 5,000)");
}
