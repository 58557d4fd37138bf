//! Issue "Streams never stall", end to end: a real Envoy 1.40 fed by sluice, real upstreams,
//! and ext_authz on every path (each route requires a signed-in user; clients carry bearer
//! tokens signed by the test IdP). Clients speak TLS to Envoy, HTTP/1.1 or HTTP/2 by ALPN.
//!
//! One minute-long test runs everything that must last at once (CI has two cores and the
//! rest of the suite takes about two minutes): timestamped SSE with heartbeats over both HTTP
//! versions, plain and with headers/identity/gzip, a WebSocket, a gRPC server stream over an
//! h2c upstream, a 200 MiB chunked download with memory sampling, a long poll, a stalled
//! ordinary request that must get its 504, and twenty route edits meanwhile. Each item is
//! then judged on its own and every failure is reported together. A shorter test covers
//! HTTP/2 upstreams (h2c and TLS) and an upstream that dies in the middle of a stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::envoy::Envoy;
use crate::common::grpc::{self, GrpcLog};
use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::sse::{LiveSse, SseLog};
use crate::common::timing::{Delays, ms, now_us};
use crate::common::tls::{self, Proto, https_client};
use crate::common::upstream::{CuttingUpstream, Upstream, download_byte};
use crate::common::wss::{Conversation, WsLog};

/// How long every stream of the minute-long test lasts: twice Pomerium's
/// default_upstream_timeout (30 s), which must bound only ordinary requests.
const STREAM_FOR: Duration = Duration::from_secs(60);
const EVERY_MS: u64 = 200;
const EVERY: Duration = Duration::from_millis(EVERY_MS);
const EVENTS: u64 = STREAM_FOR.as_millis() as u64 / EVERY_MS;
/// No event or message may arrive later than this after the upstream flushed it. Envoy adds
/// well under a millisecond (envoy-recipes.md); the rest is headroom for two busy cores.
const MAX_DELAY: Duration = Duration::from_millis(50);
const DOWNLOAD_BYTES: u64 = 200 * 1024 * 1024;
const DOWNLOAD_CHUNK: u64 = 64 * 1024;
/// How long the download is read slowly (a few KiB at a time) before full speed.
const SLOW_READ_FOR: Duration = Duration::from_secs(4);
/// Memory growth allowed in Envoy (allocated bytes) and in sluice (VmRSS) while the
/// download runs. Flow control keeps Envoy's share of one transfer to its buffer limits:
/// 32 KiB per connection on listener and cluster (DESIGN.md), an HTTP/2 window and TLS
/// records on top — well under 1 MiB. sluice is not on the data path at all. 32 MiB leaves
/// room for allocator slack and the route edits running at the same time, while buffering
/// even a sixth of the 200 MiB body would blow it.
const MEMORY_BOUND: u64 = 32 * 1024 * 1024;
const LONG_POLL_HOLD: Duration = Duration::from_secs(45);
const EDITS: usize = 20;
/// Shorter streams for the HTTP/2-upstream test, still past the 30 s default timeout.
const SHORT_STREAM_FOR: Duration = Duration::from_secs(35);
/// A stream lasting `d` has its last event at `d` minus one interval after the first; a
/// second of slack keeps the "still flowing at the end" check about the stream, not jitter.
const SECOND: Duration = Duration::from_secs(1);

/// Collects what went wrong, item by item, so one run reports every failure.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    fn check(&mut self, item: &str, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(format!("[{item}] {}", problem()));
        }
    }

    /// Panics with every failure and evidence from Envoy when anything failed.
    fn finish(self, envoy: &Envoy, figures: &str) {
        eprintln!("{figures}");
        if self.failures.is_empty() {
            return;
        }
        panic!(
            "{} check(s) failed:\n  {}\n\nfigures:\n{figures}\n\nEnvoy stats (non-zero, \
             streaming-relevant):\n{}\n\nEnvoy log (last lines):\n{}",
            self.failures.len(),
            self.failures.join("\n  "),
            evidence_stats(envoy),
            tail(&envoy.guard.log_text(), 30),
        );
    }
}

fn evidence_stats(envoy: &Envoy) -> String {
    let filter = "(timeout|reset|listener_manager\\.(listener_|total_)|ext_authz\\.|rq_5xx|\
                  rq_504|rds\\..*update_|cds\\.update_|memory_allocated|downstream_cx_destroy)";
    crate::common::http::get(
        envoy.admin,
        "admin",
        &format!("/stats?usedonly&filter={filter}"),
    )
    .map(|r| {
        r.body
            .lines()
            .filter(|l| !l.ends_with(": 0"))
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_else(|e| format!("  (admin unavailable: {e})"))
}

/// The sum of every stat whose name ends with `suffix` (one per cluster, say).
fn sum_stats(envoy: &Envoy, suffix: &str) -> u64 {
    crate::common::http::get(envoy.admin, "admin", &format!("/stats?filter={suffix}$"))
        .map(|r| {
            r.body
                .lines()
                .filter_map(|l| l.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn bearer(idp: &Idp) -> String {
    format!(
        "Bearer {}",
        idp.token("streamer", "streamer@example.com", &["staff"])
    )
}

fn base(host: &str, ports: &Ports) -> String {
    format!("https://{host}:{}", ports.listener)
}

/// Whether `GET base/` with the token answers 200 (one bounded request).
fn answers_200(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    base: &str,
    auth: &str,
) -> bool {
    rt.block_on(async {
        let reply = client
            .get(format!("{base}/"))
            .header("authorization", auth)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        reply.is_ok_and(|r| r.status() == 200)
    })
}

/// A plain-HTTP client for talking to upstreams directly.
fn direct_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// sluice's resident memory in bytes, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Judges one timestamped SSE stream that should have run `expected` events to a clean end,
/// lasting at least `lasting`.
/// For messages sent at `sent_us` that arrived late through Envoy: how late the direct
/// control stream (same upstream and client runtime, no Envoy) was at the same moments. A
/// matching stall there means the test machine stalled, not the proxy path.
fn direct_note(control: &SseLog, envoy_started_us: u64, late: &[(u64, Duration, u64)]) -> String {
    let notes: Vec<String> = late
        .iter()
        .take(5)
        .map(|(label, delay, sent)| {
            let near = control
                .events
                .iter()
                .filter(|e| e.sent_us.abs_diff(*sent) <= 150_000)
                .map(|e| Duration::from_micros(e.arrived_us.saturating_sub(e.sent_us)))
                .max();
            format!(
                "#{label} {} when Envoy had been up {:.2} s (direct stream within 150 ms of it: {})",
                ms(*delay),
                sent.saturating_sub(envoy_started_us) as f64 / 1e6,
                near.map(ms).unwrap_or("no event".into())
            )
        })
        .collect();
    notes.join("; ")
}

/// When a process started, in microseconds since the epoch (10 ms resolution), from
/// /proc: its start in clock ticks after boot, and boot time from the uptime.
fn started_us(pid: u32) -> u64 {
    let ticks: u64 = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(19)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let booted = now_us().saturating_sub((uptime * 1e6) as u64);
    // USER_HZ is 100 on every Linux ABI.
    booted + ticks * 10_000
}

/// What a late event is compared with: the direct stream and when Envoy started.
struct Baseline<'a> {
    control: &'a SseLog,
    envoy_started_us: u64,
}

fn judge_sse(
    v: &mut Verdict,
    item: &str,
    log: &SseLog,
    baseline: &Baseline,
    proto: Proto,
    expected: u64,
    lasting: Duration,
) -> Delays {
    let delays = log.delays();
    v.check(item, log.status == Some(200), || {
        format!("status {:?}, ended {:?}", log.status, log.ended)
    });
    v.check(item, log.version == Some(proto.version()), || {
        format!("spoke {:?} to Envoy, wanted {proto:?}", log.version)
    });
    if let Some(problem) = log.sequence_problem(expected) {
        v.check(item, false, || format!("{problem}; ended {:?}", log.ended));
    }
    v.check(item, log.malformed.is_empty(), || {
        format!(
            "unparseable blocks: {:?}",
            &log.malformed[..log.malformed.len().min(3)]
        )
    });
    v.check(item, log.heartbeats + 1 >= expected, || {
        format!(
            "{} heartbeat comments arrived, {} were sent",
            log.heartbeats,
            expected - 1
        )
    });
    let over = delays.over(MAX_DELAY);
    v.check(item, over.is_empty(), || {
        let late: Vec<(u64, Duration, u64)> = over
            .iter()
            .map(|(id, d)| {
                let sent = log.events.iter().find(|e| e.id == *id).map(|e| e.sent_us);
                (*id, *d, sent.unwrap_or(0))
            })
            .collect();
        format!(
            "{} of {} events arrived more than {} after the upstream flushed them: {}; late: {}",
            over.len(),
            delays.samples.len(),
            ms(MAX_DELAY),
            delays.summary(),
            direct_note(baseline.control, baseline.envoy_started_us, &late)
        )
    });
    v.check(item, log.ended.as_deref() == Some("end of stream"), || {
        format!("the stream ended with {:?}", log.ended)
    });
    // Still flowing past the 30 s default_upstream_timeout, to the end.
    v.check(item, log.span() >= lasting, || {
        format!(
            "the last event arrived {:.1} s after opening; the stream should last {:.0} s",
            log.span().as_secs_f64(),
            lasting.as_secs_f64()
        )
    });
    delays
}

/// Adds the control stream's figures, then judges every SSE stream and adds its figures;
/// `particular` runs the checks one test adds for each stream.
fn judge_streams(
    v: &mut Verdict,
    figures: &mut Vec<String>,
    baseline: &Baseline,
    streams: &[(&str, Proto, LiveSse)],
    expected: u64,
    lasting: Duration,
    particular: impl Fn(&mut Verdict, &str, &SseLog),
) {
    figures.push(format!(
        "  {:<38} {}",
        "0 direct SSE, no Envoy (control)",
        baseline.control.delays().summary()
    ));
    for (name, proto, stream) in streams {
        let log = stream.log.lock().unwrap();
        let delays = judge_sse(v, name, &log, baseline, *proto, expected, lasting);
        figures.push(format!("  {name:<38} {}", delays.summary()));
        particular(v, name, &log);
    }
}

// ---------------------------------------------------------------------------------------
// The minute-long test: items 1–5 at once.
// ---------------------------------------------------------------------------------------

/// The routes other than the ones edited during the test.
fn minute_routes(app: &Upstream) -> String {
    let to = app.url();
    let port = app.port;
    format!(
        "  # Items 1 and 3: no timeout keys, so Pomerium's defaults (default_upstream_timeout
  # 30 s) apply to ordinary requests; streams must outlive them.
  - from: https://sse.example.com
    to: {to}
    allow_any_authenticated_user: true
  # Item 2: a Backstage-style route with the headers people add for SSE behind proxies.
  - from: https://sse-headers.example.com
    to: {to}
    pass_identity_headers: true
    set_response_headers:
      X-Accel-Buffering: \"no\"
      Cache-Control: no-cache
    policy:
      allow:
        and:
          - authenticated_user: true
  - from: https://ws.example.com
    to: {to}
    allow_websockets: true
    allowed_domains: [example.com]
  - from: https://grpc.example.com
    to: h2c://127.0.0.1:{port}
    allowed_domains: [example.com]
  - from: https://download.example.com
    to: {to}
    allowed_domains: [example.com]
  # A long poll is an ordinary request (nothing in it says \"stream\"), so route timeouts
  # apply; a Pomerium user serving long polls raises the route's timeout above the hold
  # time, and so does this route.
  - from: https://longpoll.example.com
    to: {to}
    timeout: 60s
    allowed_domains: [example.com]
"
    )
}

/// The routes that twenty edits add, change and remove while the streams run.
#[derive(Clone, Default)]
struct Edited {
    added: Vec<usize>,
    tweak_header: usize,
    tweak_to_alt: bool,
}

impl Edited {
    fn routes(&self, app: &Upstream, alt: &Upstream) -> String {
        let mut out = format!(
            "  - from: https://tweak.example.com\n    to: {}\n    allowed_domains: [example.com]\n    set_response_headers:\n      X-Edit: \"{}\"\n",
            if self.tweak_to_alt {
                alt.url()
            } else {
                app.url()
            },
            self.tweak_header
        );
        for i in &self.added {
            out.push_str(&format!(
                "  - from: https://edit-{i}.example.com\n    to: {}\n    allowed_domains: [example.com]\n",
                app.url()
            ));
        }
        out
    }
}

/// What one edit changes and how to see that Envoy serves it.
enum Expect {
    Body { host: String, body: String },
    Header { host: String, value: String },
    Gone { host: String },
}

/// Edit `i`: add a route, change a header, move a route to another upstream (a new
/// cluster), remove a route added earlier; in turn.
fn edit(i: usize, state: &mut Edited) -> Expect {
    match i % 4 {
        0 => {
            state.added.push(i);
            Expect::Body {
                host: format!("edit-{i}.example.com"),
                body: "hello from app".into(),
            }
        }
        1 => {
            state.tweak_header = i;
            Expect::Header {
                host: "tweak.example.com".into(),
                value: i.to_string(),
            }
        }
        2 => {
            state.tweak_to_alt = !state.tweak_to_alt;
            Expect::Body {
                host: "tweak.example.com".into(),
                body: if state.tweak_to_alt {
                    "hello from alt".into()
                } else {
                    "hello from app".into()
                },
            }
        }
        _ => {
            let gone = state.added.remove(0);
            Expect::Gone {
                host: format!("edit-{gone}.example.com"),
            }
        }
    }
}

/// Whether Envoy serves what `expect` describes (one request, bounded).
async fn served(client: &reqwest::Client, ports: &Ports, auth: &str, expect: &Expect) -> bool {
    let host = match expect {
        Expect::Body { host, .. } | Expect::Header { host, .. } | Expect::Gone { host } => host,
    };
    let reply = client
        .get(format!("{}/", base(host, ports)))
        .header("authorization", auth)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    let Ok(reply) = reply else { return false };
    let status = reply.status().as_u16();
    let header = reply
        .headers()
        .get("x-edit")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = reply.text().await.unwrap_or_default();
    match expect {
        Expect::Body { body: want, .. } => status == 200 && body == *want,
        Expect::Header { value, .. } => status == 200 && header.as_deref() == Some(value),
        Expect::Gone { .. } => status == 404,
    }
}

#[derive(Debug, Default)]
struct DownloadLog {
    status: Option<u16>,
    transfer_encoding: Option<String>,
    content_length: Option<String>,
    bytes: u64,
    slow_bytes: u64,
    mismatch: Option<String>,
    ended: Option<String>,
    slow_for: Duration,
    took: Duration,
}

/// Reads the download: a chunk every 50 ms for `SLOW_READ_FOR` (Envoy must hold the
/// upstream back, not buffer for the client), then as fast as it comes.
async fn read_download(client: reqwest::Client, url: String, auth: String) -> DownloadLog {
    let mut log = DownloadLog::default();
    let started = Instant::now();
    let response = client
        .get(url)
        .header("authorization", auth)
        .timeout(Duration::from_secs(120))
        .send()
        .await;
    let mut response = match response {
        Ok(r) => r,
        Err(e) => {
            log.ended = Some(format!("error before headers: {e:?}"));
            return log;
        }
    };
    log.status = Some(response.status().as_u16());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_string())
    };
    log.transfer_encoding = header("transfer-encoding");
    log.content_length = header("content-length");
    // Pacing the reader is the point here (a slow consumer), not waiting for a condition.
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    loop {
        let slow = started.elapsed() < SLOW_READ_FOR;
        if slow {
            pace.tick().await;
        } else if log.slow_for.is_zero() {
            log.slow_for = started.elapsed();
            log.slow_bytes = log.bytes;
        }
        match response.chunk().await {
            Ok(Some(chunk)) => {
                // Spot checks keep a debug build fast: the first byte of every chunk and of
                // every block that starts inside it.
                let start = log.bytes;
                let end = start + chunk.len() as u64;
                let mut offset = start;
                while offset < end && log.mismatch.is_none() {
                    let got = chunk[(offset - start) as usize];
                    if got != download_byte(offset, DOWNLOAD_CHUNK) {
                        log.mismatch = Some(format!("byte {offset} is {got}"));
                    }
                    offset = (offset / DOWNLOAD_CHUNK + 1) * DOWNLOAD_CHUNK;
                }
                log.bytes = end;
            }
            Ok(None) => {
                log.ended = Some("end of stream".into());
                break;
            }
            Err(e) => {
                log.ended = Some(format!("error: {e:?}"));
                break;
            }
        }
    }
    log.took = started.elapsed();
    log
}

/// One memory reading. Envoy's `server.memory_allocated` gauge is refreshed only when stats
/// flush (every 5 s), so a download of a few seconds could slip between two refreshes; the
/// admin `/memory` endpoint reads the same allocator figure live. Both are kept, plus RSS.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    envoy_live: u64,
    envoy_stat: u64,
    envoy_rss: u64,
    sluice_rss: u64,
}

impl Memory {
    fn sample(admin: u16, envoy_pid: u32, sluice_pid: u32) -> Memory {
        let get = |path: &str| {
            crate::common::http::get(admin, "admin", path)
                .map(|r| r.body)
                .unwrap_or_default()
        };
        let live = serde_json::from_str::<serde_json::Value>(&get("/memory"))
            .ok()
            .and_then(|m| m["allocated"].as_str()?.parse().ok())
            .unwrap_or(0);
        let stat = get("/stats?filter=^server\\.memory_allocated$")
            .lines()
            .find_map(|l| l.strip_prefix("server.memory_allocated: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Memory {
            envoy_live: live,
            envoy_stat: stat,
            envoy_rss: rss_bytes(envoy_pid),
            sluice_rss: rss_bytes(sluice_pid),
        }
    }

    fn max(self, other: Memory) -> Memory {
        Memory {
            envoy_live: self.envoy_live.max(other.envoy_live),
            envoy_stat: self.envoy_stat.max(other.envoy_stat),
            envoy_rss: self.envoy_rss.max(other.envoy_rss),
            sluice_rss: self.sluice_rss.max(other.sluice_rss),
        }
    }

    /// `name before → peak (+growth)` for each figure, and the growths.
    fn describe(before: Memory, peak: Memory) -> String {
        let line = |name: &str, b: u64, p: u64| {
            format!(
                "{name} {} → {} (+{})",
                mib(b),
                mib(p),
                mib(p.saturating_sub(b))
            )
        };
        [
            line(
                "Envoy /memory allocated",
                before.envoy_live,
                peak.envoy_live,
            ),
            line(
                "server.memory_allocated",
                before.envoy_stat,
                peak.envoy_stat,
            ),
            line("Envoy RSS", before.envoy_rss, peak.envoy_rss),
            line("sluice RSS", before.sluice_rss, peak.sluice_rss),
        ]
        .join(", ")
    }
}

#[derive(Debug)]
struct Plain {
    status: Result<u16, String>,
    body: String,
    took: Duration,
}

async fn plain_get(client: reqwest::Client, url: String, auth: String, limit: Duration) -> Plain {
    let started = Instant::now();
    let reply = client
        .get(url)
        .header("authorization", auth)
        .timeout(limit)
        .send()
        .await;
    match reply {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            Plain {
                status: Ok(status),
                body,
                took: started.elapsed(),
            }
        }
        Err(e) => Plain {
            status: Err(format!("{e:?}")),
            body: String::new(),
            took: started.elapsed(),
        },
    }
}

#[test]
fn sse_websocket_grpc_download_and_long_poll_flow_for_a_minute_through_route_edits() {
    let idp = Idp::start();
    let app = Upstream::start_nodelay("app");
    let alt = Upstream::start_nodelay("alt");
    let ports = Ports::new();
    let config = |edited: &Edited| {
        format!(
            "{}{}bearer_token_format: idp_identity_token\nroutes:\n{}{}",
            tls::listener_globals(&ports),
            idp.config(),
            minute_routes(&app),
            edited.routes(&app, &alt)
        )
    };
    let mut edited = Edited::default();
    let sluice = Sluice::start(ports, &config(&edited));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-streams", "delta", ports.admin),
        ports.admin,
    );
    let envoy_started = started_us(envoy.guard.pid());
    let rt = client_runtime();
    let auth = bearer(&idp);
    let h2 = https_client(Proto::Http2);

    // Ready when the authenticated route answers; and ext_authz is on the path: without a
    // token the same request is refused before reaching the upstream.
    let ready = poll(Duration::from_secs(20), || {
        answers_200(&rt, &h2, &base("sse.example.com", &ports), &auth).then_some(())
    });
    assert!(
        ready.is_some(),
        "Envoy never served sse.example.com; sluice log:\n{}",
        tail(&sluice.guard.log_text(), 40)
    );
    let anonymous = rt
        .block_on(async {
            h2.get(format!(
                "{}/events?count=1",
                base("sse.example.com", &ports)
            ))
            .header("accept", "text/event-stream")
            .send()
            .await
        })
        .expect("anonymous request");
    // Pomerium's choice for an Accept that names no HTML is a sign-in redirect or a 401;
    // either way the upstream never sees it.
    assert!(
        [401].contains(&anonymous.status().as_u16()),
        "a stream without credentials must be refused by ext_authz, got {}",
        anonymous.status()
    );
    let authz_ok_before = envoy.stat("http.ingress.ext_authz.ok");
    let listeners_added = envoy.stat("listener_manager.listener_added");

    // Items 1 and 2: four SSE streams, a fresh connection each.
    let sse_path = format!("/events?count={EVENTS}&every_ms={EVERY_MS}");
    let open_sse = |host: &str, proto: Proto, gzip: bool| {
        let mut request = https_client(proto)
            .get(format!("{}{sse_path}", base(host, &ports)))
            .header("authorization", &auth);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        LiveSse::spawn(rt.handle(), request)
    };
    let sse = [
        (
            "1 SSE over HTTP/1.1",
            Proto::Http1,
            open_sse("sse.example.com", Proto::Http1, false),
        ),
        (
            "1 SSE over HTTP/2",
            Proto::Http2,
            open_sse("sse.example.com", Proto::Http2, false),
        ),
        (
            "2 SSE + headers + gzip over HTTP/1.1",
            Proto::Http1,
            open_sse("sse-headers.example.com", Proto::Http1, true),
        ),
        (
            "2 SSE + headers + gzip over HTTP/2",
            Proto::Http2,
            open_sse("sse-headers.example.com", Proto::Http2, true),
        ),
    ];
    // The control: the same stream straight from the upstream (no Envoy), read on the same
    // runtime. It tells a slow proxy path from a stalled test machine.
    let control = LiveSse::spawn(
        rt.handle(),
        direct_client().get(format!("{}{sse_path}", app.url())),
    );
    // Item 3: an ordinary request on the SSE route whose upstream stalls past the timeout.
    let stalled = rt.spawn(plain_get(
        https_client(Proto::Http1),
        format!("{}/slow?ms=90000", base("sse.example.com", &ports)),
        auth.clone(),
        Duration::from_secs(60),
    ));
    // Item 4: WebSocket, gRPC, long poll (the download starts below).
    let ws_log = Arc::new(Mutex::new(WsLog::default()));
    let ws = rt.spawn(
        Conversation {
            port: ports.listener,
            host: "ws.example.com".into(),
            path: "/ws".into(),
            headers: vec![("authorization".into(), auth.clone())],
            duration: STREAM_FOR,
            send_every: Duration::from_millis(500),
        }
        .run(Arc::clone(&ws_log)),
    );
    let grpc_log = Arc::new(Mutex::new(GrpcLog::default()));
    let grpc_call = rt.spawn(grpc::watch(
        https_client(Proto::Http2),
        base("grpc.example.com", &ports),
        vec![("authorization".into(), auth.clone())],
        EVENTS,
        EVERY_MS,
        Arc::clone(&grpc_log),
    ));
    let long_poll = rt.spawn(plain_get(
        https_client(Proto::Http1),
        format!(
            "{}/slow?ms={}",
            base("longpoll.example.com", &ports),
            LONG_POLL_HOLD.as_millis()
        ),
        auth.clone(),
        Duration::from_secs(70),
    ));
    let started = Instant::now();

    // The download gets a thread of its own (a full-speed TLS reader must not starve the
    // stream readers on the client runtime); memory is sampled alongside.
    let first = &sse[0].2;
    assert!(
        first.wait_events(10, Duration::from_secs(10)),
        "the first SSE stream did not start: {:?}",
        first.ended()
    );
    let pids = (envoy.admin, envoy.guard.pid(), sluice.guard.pid());
    let baseline = Memory::sample(pids.0, pids.1, pids.2);
    let downloading = Arc::new(AtomicBool::new(true));
    let download = {
        let (url, auth, flag) = (
            format!(
                "{}/download?bytes={DOWNLOAD_BYTES}&chunk={DOWNLOAD_CHUNK}",
                base("download.example.com", &ports)
            ),
            auth.clone(),
            Arc::clone(&downloading),
        );
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let log = rt.block_on(read_download(https_client(Proto::Http1), url, auth));
            flag.store(false, Ordering::SeqCst);
            log
        })
    };
    let sampler = {
        let flag = Arc::clone(&downloading);
        std::thread::spawn(move || {
            let mut peak = Memory::default();
            let mut samples = 0u32;
            poll(Duration::from_secs(150), || {
                peak = peak.max(Memory::sample(pids.0, pids.1, pids.2));
                samples += 1;
                (!flag.load(Ordering::SeqCst)).then_some(())
            });
            (peak, samples)
        })
    };

    // Item 5: twenty edits spread over the streams' lifetime (paced by the first stream's
    // progress), each waited for until Envoy serves it.
    let mut edit_times = Vec::new();
    let mut edit_failures = Vec::new();
    for i in 0..EDITS {
        let due = 15 + 12 * i;
        first.wait_events(due, Duration::from_secs(20));
        let expect = edit(i, &mut edited);
        let at = Instant::now();
        sluice.write_config(&config(&edited));
        let ok = poll(Duration::from_secs(10), || {
            rt.block_on(served(&h2, &ports, &auth, &expect))
                .then_some(())
        });
        match ok {
            Some(()) => edit_times.push(at.elapsed()),
            None => edit_failures.push(format!(
                "edit {i} was not served within 10 s (sluice status: {})",
                sluice.status()["reload"]
            )),
        }
    }
    let edits_done_at = started.elapsed();

    // Everything ends by itself a minute after it started; wait for that with a deadline.
    let deadline = STREAM_FOR + Duration::from_secs(30);
    let all_done = poll(deadline.saturating_sub(started.elapsed()), || {
        let tasks_done = sse.iter().all(|(_, _, s)| s.task.is_finished())
            && control.task.is_finished()
            && ws.is_finished()
            && grpc_call.is_finished()
            && long_poll.is_finished()
            && stalled.is_finished()
            && download.is_finished();
        tasks_done.then_some(())
    });
    let stalled = rt.block_on(async {
        if stalled.is_finished() {
            stalled.await.ok()
        } else {
            stalled.abort();
            None
        }
    });
    let long_poll = rt.block_on(async {
        if long_poll.is_finished() {
            long_poll.await.ok()
        } else {
            long_poll.abort();
            None
        }
    });
    downloading.store(false, Ordering::SeqCst);
    let download = if download.is_finished() {
        download.join().ok()
    } else {
        None
    };
    let (peak, samples) = sampler.join().expect("memory sampler");

    // Judge each item.
    let mut v = Verdict::default();
    let mut figures = vec![format!(
        "streams never stall — {} s of streams, {} events each every {EVERY_MS} ms",
        STREAM_FOR.as_secs(),
        EVENTS
    )];
    v.check("all", all_done.is_some(), || {
        format!(
            "not everything finished within {} s of starting",
            deadline.as_secs()
        )
    });
    let control = control.log.lock().unwrap();
    let against = Baseline {
        control: &control,
        envoy_started_us: envoy_started,
    };
    judge_streams(
        &mut v,
        &mut figures,
        &against,
        &sse,
        EVENTS,
        STREAM_FOR - SECOND,
        |v, name, log| {
            if name.starts_with('2') {
                v.check(name, log.header("x-accel-buffering") == Some("no"), || {
                    format!("X-Accel-Buffering is {:?}", log.header("x-accel-buffering"))
                });
                v.check(
                    name,
                    log.header("cache-control") == Some("no-cache"),
                    || format!("Cache-Control is {:?}", log.header("cache-control")),
                );
                v.check(
                    name,
                    log.header("x-upstream-saw-assertion") == Some("true"),
                    || "the upstream got no identity assertion (pass_identity_headers)".into(),
                );
                v.check(
                    name,
                    log.header("x-upstream-accept-encoding") == Some("gzip"),
                    || {
                        format!(
                            "the upstream was offered {:?}, not the client's gzip",
                            log.header("x-upstream-accept-encoding")
                        )
                    },
                );
                // Nothing on the path compresses (DESIGN.md: no compressor), so the events
                // arrive as sent; a compressor would have to flush per event, and this client
                // would then see gzip and no parseable events.
                v.check(name, log.header("content-encoding").is_none(), || {
                    format!(
                        "the stream came compressed ({:?})",
                        log.header("content-encoding")
                    )
                });
            }
        },
    );

    // Item 3.
    match &stalled {
        Some(Plain {
            status: Ok(status),
            took,
            ..
        }) => {
            figures.push(format!(
                "  3 stalled ordinary request              {status} after {:.1} s",
                took.as_secs_f64()
            ));
            v.check("3 stalled request", *status == 504, || {
                format!("status {status} after {took:?}, wanted 504 at the 30 s default timeout")
            });
            v.check(
                "3 stalled request",
                *took >= Duration::from_secs(29) && *took < Duration::from_secs(40),
                || format!("answered after {took:?}, wanted about 30 s"),
            );
        }
        other => v.check("3 stalled request", false, || {
            format!("no answer: {other:?}")
        }),
    }

    // Item 4: WebSocket.
    {
        let log = ws_log.lock().unwrap();
        let pushes: Vec<u64> = log.pushes.iter().map(|(n, _)| *n).collect();
        let sent = log.sent.clone();
        let echoed: Vec<String> = log.echoes.iter().map(|(t, _)| t.clone()).collect();
        let rtt = Delays {
            samples: log
                .echoes
                .iter()
                .enumerate()
                .map(|(i, (_, us))| (i as u64, Duration::from_micros(*us)))
                .collect(),
        };
        figures.push(format!(
            "  4 WebSocket: {} pushes, {} echoes; echo round trip {}",
            pushes.len(),
            echoed.len(),
            rtt.summary()
        ));
        let item = "4 WebSocket";
        v.check(
            item,
            log.handshake.as_deref() == Some("101 Switching Protocols"),
            || format!("handshake {:?}, {:?}", log.handshake, log.broken),
        );
        v.check(item, log.broken.is_none(), || {
            format!(
                "the conversation broke after {} pushes: {:?}",
                pushes.len(),
                log.broken
            )
        });
        let in_order = pushes.iter().enumerate().all(|(i, n)| *n == i as u64);
        v.check(item, in_order, || {
            let at = pushes
                .iter()
                .enumerate()
                .position(|(i, n)| *n != i as u64)
                .unwrap_or(0);
            format!(
                "server pushes lost, repeated or reordered near #{at}: {:?}",
                &pushes[at.saturating_sub(3)..(at + 3).min(pushes.len())]
            )
        });
        // One push every 100 ms for the whole minute.
        let want_pushes = (STREAM_FOR.as_millis() / 100) as usize * 9 / 10;
        v.check(item, pushes.len() >= want_pushes, || {
            format!(
                "{} pushes, wanted about {}",
                pushes.len(),
                want_pushes * 10 / 9
            )
        });
        v.check(item, echoed == sent, || {
            format!(
                "sent {} messages, {} echoes came back; first difference: {:?}",
                sent.len(),
                echoed.len(),
                sent.iter()
                    .zip(echoed.iter())
                    .position(|(a, b)| a != b)
                    .map(|i| (&sent[i], &echoed[i]))
            )
        });
        v.check(item, log.unexpected.is_empty(), || {
            format!("unexpected messages: {:?}", log.unexpected)
        });
    }

    // Item 4: gRPC server streaming through the h2c upstream.
    {
        let log = grpc_log.lock().unwrap();
        let item = "4 gRPC server stream";
        let delays = log.delays();
        figures.push(format!(
            "  {item:<38} {}; trailers after {}",
            delays.summary(),
            log.trailers_delay().map(ms).unwrap_or("-".into())
        ));
        v.check(item, log.status == Some(200), || {
            format!("status {:?}, ended {:?}", log.status, log.ended)
        });
        v.check(item, log.version == Some(http::Version::HTTP_2), || {
            format!("spoke {:?} to Envoy", log.version)
        });
        v.check(
            item,
            log.content_type.as_deref() == Some("application/grpc"),
            || format!("content-type {:?}", log.content_type),
        );
        let upstream = log.headers.get("x-upstream-version");
        v.check(item, upstream.is_some_and(|v| v == "HTTP/2.0"), || {
            format!("Envoy reached the h2c upstream over {upstream:?}, not HTTP/2")
        });
        let span = match (log.messages.first(), log.messages.last()) {
            (Some(first), Some(last)) => Duration::from_micros(last.2.saturating_sub(first.2)),
            _ => Duration::ZERO,
        };
        v.check(item, span >= STREAM_FOR - SECOND - EVERY, || {
            format!(
                "messages flowed for {:.1} s; the call should last {} s",
                span.as_secs_f64(),
                STREAM_FOR.as_secs()
            )
        });
        let seqs: Vec<u64> = log.messages.iter().map(|m| m.0).collect();
        v.check(
            item,
            seqs.iter().enumerate().all(|(i, s)| *s == i as u64) && seqs.len() as u64 == EVENTS,
            || {
                format!(
                    "{} messages (wanted {EVENTS}, in order); ended {:?}",
                    seqs.len(),
                    log.ended
                )
            },
        );
        let over = delays.over(MAX_DELAY);
        v.check(item, over.is_empty(), || {
            let late: Vec<(u64, Duration, u64)> = over
                .iter()
                .map(|(seq, d)| {
                    let sent = log.messages.iter().find(|m| m.0 == *seq).map(|m| m.1);
                    (*seq, *d, sent.unwrap_or(0))
                })
                .collect();
            format!(
                "{} messages arrived more than {} after they were sent: {}; late: {}",
                over.len(),
                ms(MAX_DELAY),
                delays.summary(),
                direct_note(&control, envoy_started, &late)
            )
        });
        v.check(
            item,
            log.trailer("grpc-status").as_deref() == Some("0"),
            || format!("trailers {:?}", log.trailers),
        );
        let last_message = log.messages.last().map(|m| m.2).unwrap_or(u64::MAX);
        v.check(
            item,
            log.trailers_arrived_us.is_some_and(|t| t >= last_message),
            || "the trailers did not come after the last message".into(),
        );
        v.check(
            item,
            log.trailers_delay().is_some_and(|d| d <= MAX_DELAY),
            || {
                format!(
                    "trailers arrived {:?} after they were sent",
                    log.trailers_delay()
                )
            },
        );
        v.check(
            item,
            log.ended.as_deref() == Some("end of stream")
                && log.undecodable.is_empty()
                && log.leftover_bytes == 0,
            || {
                format!(
                    "ended {:?}, undecodable {:?}, {} stray bytes",
                    log.ended, log.undecodable, log.leftover_bytes
                )
            },
        );
    }

    // Item 4: the download and memory.
    let paused_upstream = sum_stats(&envoy, "upstream_flow_control_paused_reading_total");
    figures.push(format!(
        "  4 Envoy paused reading upstreams {paused_upstream} times (flow control)"
    ));
    match &download {
        Some(d) => {
            let item = "4 200 MiB download";
            let growth = |before: u64, peak: u64| peak.saturating_sub(before);
            figures.push(format!(
                "  {item}: {} in {:.1} s ({} read slowly in the first {:.1} s); {}; {samples} samples",
                mib(d.bytes),
                d.took.as_secs_f64(),
                mib(d.slow_bytes),
                d.slow_for.as_secs_f64(),
                Memory::describe(baseline, peak),
            ));
            v.check(item, d.status == Some(200), || {
                format!("status {:?}", d.status)
            });
            v.check(
                item,
                d.transfer_encoding.as_deref() == Some("chunked") && d.content_length.is_none(),
                || {
                    format!(
                        "transfer-encoding {:?}, content-length {:?}",
                        d.transfer_encoding, d.content_length
                    )
                },
            );
            v.check(
                item,
                d.bytes == DOWNLOAD_BYTES && d.ended.as_deref() == Some("end of stream"),
                || format!("{} of {DOWNLOAD_BYTES} bytes, ended {:?}", d.bytes, d.ended),
            );
            v.check(item, d.mismatch.is_none(), || {
                format!("corrupted data: {:?}", d.mismatch)
            });
            v.check(item, d.slow_bytes < DOWNLOAD_BYTES / 4, || {
                format!(
                    "{} arrived during the slow phase: the reader was not slow",
                    mib(d.slow_bytes)
                )
            });
            // The slow reader must have made Envoy stop reading from the upstream (its
            // buffers filled) rather than keep reading into memory.
            v.check(item, paused_upstream > 0, || {
                "Envoy never paused reading from the download's upstream \
                 (cluster.*.upstream_flow_control_paused_reading_total is 0)"
                    .into()
            });
            v.check(item, samples >= 10 && baseline.envoy_live > 0, || {
                format!("memory was not sampled ({samples} samples, baseline {baseline:?})")
            });
            for (what, before, after) in [
                (
                    "Envoy's allocated memory (/memory)",
                    baseline.envoy_live,
                    peak.envoy_live,
                ),
                (
                    "Envoy's server.memory_allocated",
                    baseline.envoy_stat,
                    peak.envoy_stat,
                ),
                ("sluice's RSS", baseline.sluice_rss, peak.sluice_rss),
            ] {
                v.check(item, growth(before, after) < MEMORY_BOUND, || {
                    format!(
                        "{what} grew by {} during the download (bound {})",
                        mib(growth(before, after)),
                        mib(MEMORY_BOUND)
                    )
                });
            }
        }
        None => v.check("4 200 MiB download", false, || "did not finish".into()),
    }

    // Item 4: the long poll.
    match &long_poll {
        Some(Plain {
            status: Ok(status),
            body,
            took,
        }) => {
            figures.push(format!(
                "  4 long poll (timeout: 60s)               {status} after {:.1} s",
                took.as_secs_f64()
            ));
            v.check("4 long poll", *status == 200 && body == "slow done", || {
                format!("status {status} ({body:?}) after {took:?}")
            });
            v.check("4 long poll", *took >= LONG_POLL_HOLD, || {
                format!("answered after {took:?}, before the upstream's {LONG_POLL_HOLD:?}")
            });
        }
        other => v.check("4 long poll", false, || format!("no answer: {other:?}")),
    }

    // Item 5.
    let slowest_edit = edit_times.iter().max().copied().unwrap_or_default();
    figures.push(format!(
        "  5 route edits: {} of {EDITS} served, slowest after {}, all done {:.1} s into the streams",
        edit_times.len(),
        ms(slowest_edit),
        edits_done_at.as_secs_f64()
    ));
    for failure in &edit_failures {
        v.check("5 route edits", false, || failure.clone());
    }
    v.check("5 route edits", edits_done_at < STREAM_FOR, || {
        format!(
            "the edits ended {edits_done_at:?} into the test, after the streams: they did not \
                 overlap them"
        )
    });
    for (stat, want) in [
        ("listener_manager.listener_modified", 0),
        ("listener_manager.total_listeners_draining", 0),
        ("listener_manager.total_filter_chains_draining", 0),
        ("listener_manager.lds.update_rejected", 0),
        ("listener_manager.listener_added", listeners_added),
    ] {
        let got = envoy.stat(stat);
        v.check("5 route edits", got == want, || {
            format!("{stat} is {got}, wanted {want}")
        });
    }
    // Each host has its own table. Half the edits changed tweak.example.com's table, the other
    // half added or removed a host (a scope update each); Envoy applied every one over xDS.
    let tweaks = envoy.stat("http.ingress.rds.routes/ingress/tweak.example.com.update_success");
    let scopes = envoy.stat("http.ingress.scoped_rds.routes/ingress.update_success");
    let half = (EDITS / 2) as u64;
    v.check("5 route edits", tweaks > half && scopes > half, || {
        format!(
            "Envoy applied {tweaks} updates of tweak.example.com's table and {scopes} scope updates; wanted more than {half} of each"
        )
    });

    // ext_authz decided every stream (the SSE streams, WebSocket, gRPC, download, long
    // poll, stalled request and the edit checks).
    let authz_ok = envoy.stat("http.ingress.ext_authz.ok") - authz_ok_before;
    figures.push(format!(
        "  ext_authz allowed {authz_ok} requests during the test"
    ));
    v.check("ext_authz", authz_ok >= 9, || {
        format!("ext_authz allowed only {authz_ok} requests")
    });

    v.finish(&envoy, &figures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Item 7: HTTP/2 upstreams, and an upstream that dies mid-stream.
// ---------------------------------------------------------------------------------------

#[test]
fn sse_flows_through_h2c_and_tls_h2_upstreams_and_a_dying_upstream_ends_the_stream() {
    let idp = Idp::start();
    let h2c = Upstream::start_nodelay("h2c");
    let h2tls = Upstream::start_tls("tls");
    let cut = CuttingUpstream::start(3, Duration::from_millis(100));
    let ports = Ports::new();
    let config = format!(
        "{}{}bearer_token_format: idp_identity_token
routes:
  - from: https://sse-h2c.example.com
    to: h2c://127.0.0.1:{}
    allow_any_authenticated_user: true
  - from: https://sse-tls.example.com
    to: https://127.0.0.1:{}
    tls_custom_ca_file: {}
    tls_server_name: upstream.example.com
    allow_any_authenticated_user: true
  - from: https://cut.example.com
    to: http://127.0.0.1:{}
    allow_any_authenticated_user: true
",
        tls::listener_globals(&ports),
        idp.config(),
        h2c.port,
        h2tls.port,
        tls::ca_file().display(),
        cut.port,
    );
    let sluice = Sluice::start(ports, &config);
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-h2", "delta", ports.admin),
        ports.admin,
    );
    let envoy_started = started_us(envoy.guard.pid());
    let rt = client_runtime();
    let auth = bearer(&idp);
    let probe = https_client(Proto::Http2);
    for host in ["sse-h2c.example.com", "sse-tls.example.com"] {
        let ready = poll(Duration::from_secs(20), || {
            answers_200(&rt, &probe, &base(host, &ports), &auth).then_some(())
        });
        assert!(
            ready.is_some(),
            "Envoy never served {host}; Envoy log:\n{}",
            tail(&envoy.guard.log_text(), 30)
        );
    }

    let events = SHORT_STREAM_FOR.as_millis() as u64 / EVERY_MS;
    let open = |host: &str, path: &str, proto: Proto| {
        LiveSse::spawn(
            rt.handle(),
            https_client(proto)
                .get(format!("{}{path}", base(host, &ports)))
                .header("authorization", &auth),
        )
    };
    let path = format!("/events?count={events}&every_ms={EVERY_MS}");
    let streams = [
        (
            "7 h2c upstream, HTTP/1.1 client",
            Proto::Http1,
            open("sse-h2c.example.com", &path, Proto::Http1),
        ),
        (
            "7 h2c upstream, HTTP/2 client",
            Proto::Http2,
            open("sse-h2c.example.com", &path, Proto::Http2),
        ),
        (
            "7 TLS h2 upstream, HTTP/1.1 client",
            Proto::Http1,
            open("sse-tls.example.com", &path, Proto::Http1),
        ),
        (
            "7 TLS h2 upstream, HTTP/2 client",
            Proto::Http2,
            open("sse-tls.example.com", &path, Proto::Http2),
        ),
    ];
    let control = LiveSse::spawn(
        rt.handle(),
        direct_client().get(format!("{}{path}", h2c.url())),
    );
    let cuts = [
        (
            "7 dying upstream, HTTP/1.1 client",
            open("cut.example.com", "/", Proto::Http1),
        ),
        (
            "7 dying upstream, HTTP/2 client",
            open("cut.example.com", "/", Proto::Http2),
        ),
    ];

    // The dying upstream: three events, then its connection drops without ending the body.
    // The client must see its stream end (error or EOF) promptly instead of hanging.
    let mut v = Verdict::default();
    let mut figures = vec![format!(
        "HTTP/2 upstreams — {} s of streams, {events} events each",
        SHORT_STREAM_FOR.as_secs()
    )];
    for (name, stream) in &cuts {
        let ended = poll(Duration::from_secs(15), || stream.ended());
        let log = stream.log.lock().unwrap();
        let last = log
            .events
            .last()
            .map(|e| e.arrived_us)
            .unwrap_or(log.opened_us);
        let after = Duration::from_micros(log.ended_us.saturating_sub(last));
        figures.push(format!(
            "  {name:<38} {} events, then {:?} {} after the last one",
            log.events.len(),
            log.ended,
            ms(after)
        ));
        v.check(
            name,
            log.status == Some(200) && log.ids() == [0, 1, 2],
            || {
                format!(
                    "status {:?}, events {:?} (wanted 0, 1, 2), ended {:?}",
                    log.status,
                    log.ids(),
                    log.ended
                )
            },
        );
        v.check(name, ended.is_some(), || {
            "the stream never ended after the upstream dropped its connection: the client hangs"
                .into()
        });
        v.check(
            name,
            ended.is_none() || after < Duration::from_secs(3),
            || format!("the end reached the client {after:?} after the last event"),
        );
    }

    let all_done = poll(SHORT_STREAM_FOR + Duration::from_secs(20), || {
        (streams.iter().all(|(_, _, s)| s.task.is_finished()) && control.task.is_finished())
            .then_some(())
    });
    v.check("7", all_done.is_some(), || {
        "streams did not finish in time".into()
    });
    let control = control.log.lock().unwrap();
    let against = Baseline {
        control: &control,
        envoy_started_us: envoy_started,
    };
    judge_streams(
        &mut v,
        &mut figures,
        &against,
        &streams,
        events,
        SHORT_STREAM_FOR - SECOND,
        |v, name, log| {
            v.check(
                name,
                log.header("x-upstream-version") == Some("HTTP/2.0"),
                || {
                    format!(
                        "Envoy reached the upstream over {:?}, not HTTP/2",
                        log.header("x-upstream-version")
                    )
                },
            );
        },
    );
    v.finish(&envoy, &figures.join("\n"));
}
