//! ext_authz benchmark. Part 1: Check latency at saturation with sluice on one core, 1,000
//! routes with realistic policies and IdP-signed bearer tokens from 200 users (target: p99
//! under 1 ms), loaded by a gRPC client on the other core. Part 2: requests/s through one Envoy
//! with ext_authz on and off, same Envoy, same run (target ratio ≥ 0.6), loaded by wrk.
//! Part 3: the same Envoy routes with a Check service that allows at once without looking, on
//! the same HTTP/2 stack as sluice: the ceiling an ext_authz service can reach here. Both Envoys stay up and parts 2 and 3 run in
//! turn, round after round: this host drifts more between minutes than builds differ.
//! Part 1 runs twice on the same sluice: the users sign in with bearer tokens, then with the
//! sealed session cookies browser sign-in sets (target: within 10 % of the bearer figures).
//! Then the same client, requests and pinning against a do-nothing Check service in a child
//! process, on h2 driven directly as sluice serves Checks and on tonic: the floor of part 1
//! (the HTTP/2 stack, the sockets, the client itself), so sluice's p99 is printed beside what
//! no policy work at all costs on this machine today.
//! Run with `cargo bench --bench authz` (Envoy: `bash scripts/install-envoy.sh`; wrk: Debian's
//! `wrk`, installed by `bash scripts/install-bench-tools.sh`). `SKIP_CHECK_LATENCY=1` runs
//! parts 2 and 3 only, `SKIP_ENVOY_RATIO=1` part 1 only; `AUTHZ_BENCH_AB=<sluice binary>`
//! instead runs part 1 against another build side by side (see `check_ab`).

#[path = "../tests/integration/common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "fixtures/authz.rs"]
mod fixture;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::envoy::Envoy;
use common::idp::Idp;
use common::process::poll;
use common::sluice::{Ports, Sluice};
use common::upstream::Upstream;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use fixture::{Credential, ROUTES, USERS, config, requests, route_ids};
use serde_json::Value;

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
const CONCURRENCY: &[usize] = &[1, 2, 4, 8, 16, 32];

struct Run {
    latencies_us: Vec<u32>,
    elapsed: Duration,
    allowed: usize,
}

/// One connection of part 1's client. Envoy's own gRPC client is C++ and light; by default the
/// bench speaks h2 directly with each Check encoded before the run (a few µs of client CPU a
/// Check), so the client on its core is not what bounds the figures. `AUTHZ_BENCH_CLIENT=tonic`
/// uses tonic's generated client instead (as the bench did before 2026-12-08): its channel
/// hands each call to a worker task and encodes the message per call.
#[derive(Clone)]
enum Client {
    H2(h2::client::SendRequest<Bytes>),
    Tonic(AuthorizationClient<tonic::transport::Channel>),
}

/// The Checks of a run, as messages for tonic and as framed bodies for h2.
struct Requests {
    messages: Vec<CheckRequest>,
    framed: Vec<Bytes>,
}

impl Requests {
    fn new(messages: Vec<CheckRequest>) -> Arc<Self> {
        let framed = messages
            .iter()
            .map(|m| common::grpc::frame(&prost::Message::encode_to_vec(m)))
            .collect();
        Arc::new(Requests { messages, framed })
    }

    fn len(&self) -> usize {
        self.messages.len()
    }
}

impl Client {
    /// Sends Check `n` and waits for its answer; true when it allowed the request.
    async fn check(&mut self, requests: &Requests, n: usize) -> bool {
        let response = match self {
            Client::Tonic(client) => client
                .check(requests.messages[n].clone())
                .await
                .expect("Check")
                .into_inner(),
            Client::H2(sender) => h2_check(sender, requests.framed[n].clone()).await,
        };
        matches!(response.http_response, Some(HttpResponse::OkResponse(_)))
    }
}

/// One Check over h2 (anything but `grpc-status: 0` fails the bench).
async fn h2_check(
    sender: &mut h2::client::SendRequest<Bytes>,
    body: Bytes,
) -> envoy_types::ext_authz::v3::pb::CheckResponse {
    let (status, message) = common::grpc::h2_check(sender, vec![body]).await;
    assert_eq!(status.as_deref(), Some("0"), "grpc-status");
    prost::Message::decode(&message[5..]).expect("a CheckResponse")
}

async fn load(
    clients: &[Client],
    requests: Arc<Requests>,
    concurrency: usize,
    length: Duration,
) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let mut client = clients[w % clients.len()].clone();
        let requests = Arc::clone(&requests);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut allowed = 0;
            let mut n = w * 613;
            while start.elapsed() < length {
                let t = Instant::now();
                let allows = client.check(&requests, n % requests.len()).await;
                n += 1;
                latencies.push(t.elapsed().as_micros() as u32);
                allowed += usize::from(allows);
            }
            (latencies, allowed)
        }));
    }
    let mut run = Run {
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
        allowed: 0,
    };
    for t in tasks {
        let (l, a) = t.await.unwrap();
        run.latencies_us.extend(l);
        run.allowed += a;
    }
    run.elapsed = start.elapsed();
    run.latencies_us.sort_unstable();
    run
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// CPU seconds a process has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// CPU seconds a process has used, in user space and in the kernel.
fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (ticks(11), ticks(12))
}

fn pin(pid: u32, core: usize) {
    let ok = Command::new("taskset")
        .args(["-a", "-c", "-p", &core.to_string(), &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "taskset failed (util-linux): cannot pin pid {pid} to core {core}"
    );
}

fn check_latency(idp: &Idp, upstream: &Upstream) {
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, idp, upstream.port));
    pin(sluice.guard.pid(), 0);
    pin(std::process::id(), 1);
    let routes = route_ids(&sluice.config);
    assert_eq!(routes.len(), ROUTES, "one route id per config route");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clients = check_clients(&runtime, ports.grpc);
    let mut p99s = Vec::new();
    for (credential, label) in [
        (
            Credential::Bearer,
            "IdP-signed bearer tokens (ES256 and RS256)",
        ),
        (
            Credential::Cookie,
            "sealed session cookies (browser sign-in)",
        ),
    ] {
        let requests = Requests::new(requests(idp, &routes, credential));
        println!(
            "Check latency, sluice pinned to one core (TOKIO_WORKER_THREADS=1), {ROUTES} routes, {USERS} users' {label}, 10% anonymous:"
        );
        p99s.push(latency_table(
            &runtime,
            &clients,
            &requests,
            sluice.guard.pid(),
        ));
    }
    drop(sluice);
    let floor = floor_latency(
        &runtime,
        Requests::new(requests(idp, &routes, Credential::Bearer)),
    );
    println!("  sluice (bearer tokens) beside the h2 floor, same client, same run:");
    for ((c, b50, b99), (_, f50, f99)) in p99s[0].iter().zip(&floor) {
        println!(
            "  {c:>11} in flight: p50 {b50:.3} vs {f50:.3} ms, p99 {b99:.3} vs {f99:.3} ms (sluice adds {:.3} ms at p99)",
            b99 - f99
        );
    }
    println!("  cookie sessions / bearer tokens, same sluice, same run:");
    for ((c, b50, b99), (_, c50, c99)) in p99s[0].iter().zip(&p99s[1]) {
        println!(
            "  {c:>11} in flight: p50 {:.2}x, p99 {:.2}x",
            c50 / b50,
            c99 / b99
        );
    }
    // Unpin this process for part 2.
    let _ = Command::new("taskset")
        .args(["-a", "-c", "-p", "0,1", &std::process::id().to_string()])
        .output();
}

/// Rounds of the A/B mode, and each run's length.
const AB_ROUNDS: usize = 10;
const AB_RUN: Duration = Duration::from_secs(2);

/// `AUTHZ_BENCH_AB=<another sluice binary>`: this build and that one serve the same config side
/// by side, both pinned to one core, and the client loads them in turn (bearer tokens, 8 and 16
/// in flight, the order swapped each round), so host drift falls on both alike. Prints each
/// build's median checks/s, p99 and server CPU per Check, and this build's ratios.
fn check_ab(idp: &Idp, upstream: &Upstream, baseline: &std::path::Path) {
    let ports = [Ports::new(), Ports::new()];
    let this = Sluice::start(ports[0], &config(&ports[0], idp, upstream.port));
    let that = Sluice::start_binary(ports[1], &config(&ports[1], idp, upstream.port), baseline);
    for sluice in [&this, &that] {
        pin(sluice.guard.pid(), 0);
    }
    pin(std::process::id(), 1);
    let routes = route_ids(&this.config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clients = [
        check_clients(&runtime, ports[0].grpc),
        check_clients(&runtime, ports[1].grpc),
    ];
    let pids = [this.guard.pid(), that.guard.pid()];
    let requests = Requests::new(requests(idp, &routes, Credential::Bearer));
    println!(
        "Check A/B, this build against {}, {AB_ROUNDS} alternating rounds of {} s, bearer tokens, both pinned to one core:",
        baseline.display(),
        AB_RUN.as_secs()
    );
    for concurrency in [8, 16] {
        // [build][round] = (checks/s, p99 ms, CPU µs per check)
        let mut figures = [Vec::new(), Vec::new()];
        for round in 0..AB_ROUNDS {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for build in order {
                let load_for = |length| {
                    runtime.block_on(load(
                        &clients[build],
                        Arc::clone(&requests),
                        concurrency,
                        length,
                    ))
                };
                load_for(WARM_UP / 2);
                let cpu0 = cpu_seconds(pids[build]);
                let run = load_for(AB_RUN);
                let cpu = cpu_seconds(pids[build]) - cpu0;
                let checks = run.latencies_us.len() as f64;
                figures[build].push((
                    checks / run.elapsed.as_secs_f64(),
                    percentile(&run.latencies_us, 0.99),
                    cpu * 1e6 / checks,
                ));
            }
        }
        let med = |build: usize, pick: fn(&(f64, f64, f64)) -> f64| {
            let mut v: Vec<f64> = figures[build].iter().map(pick).collect();
            median(&mut v)
        };
        let row = |build: usize| {
            format!(
                "{:.0} checks/s, p99 {:.3} ms, {:.1} µs CPU a check",
                med(build, |f| f.0),
                med(build, |f| f.1),
                med(build, |f| f.2)
            )
        };
        println!(
            "  {concurrency:>2} in flight: this build {}; baseline {}; this / baseline: checks/s {:.2}x, p99 {:.2}x, CPU a check {:.2}x",
            row(0),
            row(1),
            med(0, |f| f.0) / med(1, |f| f.0),
            med(0, |f| f.1) / med(1, |f| f.1),
            med(0, |f| f.2) / med(1, |f| f.2)
        );
    }
}

/// The four connections part 1 loads its Check service through.
fn check_clients(runtime: &tokio::runtime::Runtime, port: u16) -> Vec<Client> {
    let tonic = std::env::var("AUTHZ_BENCH_CLIENT").as_deref() == Ok("tonic");
    (0..4)
        .map(|_| {
            runtime.block_on(async {
                if tonic {
                    let client = AuthorizationClient::connect(format!("http://127.0.0.1:{port}"));
                    return Client::Tonic(client.await.expect("connect"));
                }
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .expect("connect");
                tcp.set_nodelay(true).expect("TCP_NODELAY");
                let (sender, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
                tokio::spawn(connection);
                Client::H2(sender)
            })
        })
        .collect()
}

/// Prints one row per concurrency (checks/s, p50, p99, p99.9, allowed, the server's CPU) and
/// returns (concurrency, p50 ms, p99 ms) for each.
fn latency_table(
    runtime: &tokio::runtime::Runtime,
    clients: &[Client],
    requests: &Arc<Requests>,
    server_pid: u32,
) -> Vec<(usize, f64, f64)> {
    println!(
        "  {:>11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>13}",
        "concurrency",
        "checks/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "allowed",
        "server CPU",
        "CPU µs/check"
    );
    let mut figures = Vec::new();
    for &concurrency in CONCURRENCY {
        runtime.block_on(load(clients, Arc::clone(requests), concurrency, WARM_UP));
        let cpu0 = cpu_seconds(server_pid);
        let run = runtime.block_on(load(clients, Arc::clone(requests), concurrency, MEASURE));
        let cpu = (cpu_seconds(server_pid) - cpu0) / run.elapsed.as_secs_f64();
        let l = &run.latencies_us;
        println!(
            "  {concurrency:>11} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>8.0}% {:>9.0}% {:>13.1}",
            l.len() as f64 / run.elapsed.as_secs_f64(),
            percentile(l, 0.50),
            percentile(l, 0.99),
            percentile(l, 0.999),
            run.allowed as f64 * 100.0 / l.len() as f64,
            cpu * 100.0,
            cpu * 1e6 * run.elapsed.as_secs_f64() / l.len().max(1) as f64
        );
        figures.push((concurrency, percentile(l, 0.50), percentile(l, 0.99)));
    }
    figures
}

/// The environment variables that turn this bench binary into part 1's floor server, and
/// pick its HTTP/2 stack.
const FLOOR_PORT_ENV: &str = "AUTHZ_BENCH_FLOOR_PORT";
const FLOOR_STACK_ENV: &str = "AUTHZ_BENCH_FLOOR_STACK";

/// The two stacks a do-nothing Check service is measured on: h2 driven directly, answering in
/// the connection's task (how sluice serves Checks, and the ceiling's service in parts 2 and
/// 3), and tonic on hyper (how sluice served them before 2026-12-08).
#[derive(Clone, Copy, PartialEq)]
enum Stack {
    H2,
    Tonic,
}

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Stack::H2 => "h2",
            Stack::Tonic => "tonic",
        }
    }
}

/// Part 1 against a do-nothing Check service in a child process on sluice's core, same client
/// and requests, on each stack; returns the h2 stack's figures.
fn floor_latency(
    runtime: &tokio::runtime::Runtime,
    requests: Arc<Requests>,
) -> Vec<(usize, f64, f64)> {
    let h2 = floor_latency_on(runtime, Arc::clone(&requests), Stack::H2);
    floor_latency_on(runtime, requests, Stack::Tonic);
    h2
}

fn floor_latency_on(
    runtime: &tokio::runtime::Runtime,
    requests: Arc<Requests>,
    stack: Stack,
) -> Vec<(usize, f64, f64)> {
    let port = common::process::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(std::env::current_exe().expect("the bench binary"));
    command.env(FLOOR_PORT_ENV, port.to_string());
    command.env(FLOOR_STACK_ENV, stack.name());
    let floor = common::process::Guard::spawn("floor", command, &dir.path().join("floor.log"));
    pin(floor.pid(), 0);
    let up = poll(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "the floor Check service never listened");
    let how = match stack {
        Stack::H2 => "h2 driven directly, as sluice serves Checks",
        Stack::Tonic => "tonic on hyper, as sluice before 2026-12-08",
    };
    println!(
        "Check latency floor: a Check service that allows at once ({how}; one worker thread, pinned to the same core), same client and bearer requests:"
    );
    latency_table(
        runtime,
        &check_clients(runtime, port),
        &requests,
        floor.pid(),
    )
}

/// `AllowAll` over gRPC on `listener` until the process ends.
async fn serve_allow_all(listener: tokio::net::TcpListener) {
    // The builder's own `tcp_nodelay` only reaches sockets it binds itself: set it on these, or
    // Nagle's algorithm holds answers for the peer's delayed ACK (a 40 ms p99.9 in this floor).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(envoy_types::ext_authz::v3::pb::AuthorizationServer::new(
            AllowAll,
        ))
        .serve_with_incoming(incoming)
        .await
        .expect("the AllowAll server");
}

/// wrk's requests/s for one host, or None when wrk is missing.
fn wrk(port: u16, host: &str, script: &std::path::Path, seconds: u32) -> f64 {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{seconds}s"), "-s"])
        .arg(script)
        .args([
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .expect(
            "wrk is not installed: run `bash scripts/install-bench-tools.sh` (Debian package wrk)",
        );
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok());
    let non2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map(str::trim)
        .unwrap_or("0")
        .to_string();
    assert_eq!(non2xx, "0", "wrk saw failures against {host}:\n{text}");
    rps.unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

fn ratio_config(ports: &Ports, idp: &Idp, upstream: &Upstream) -> String {
    let to = upstream.url();
    format!(
        "{}{}bearer_token_format: idp_identity_token\nroutes:\n  - from: http://on.test\n    to: {to}\n    allowed_domains: [example.com]\n  - from: http://off.test\n    to: {to}\n    allow_public_unauthenticated_access: true\n",
        ports.globals(),
        idp.config()
    )
}

/// A Check service that allows everything at once: the cost of ext_authz itself.
struct AllowAll;

#[tonic::async_trait]
impl envoy_types::ext_authz::v3::pb::Authorization for AllowAll {
    async fn check(
        &self,
        _: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<envoy_types::ext_authz::v3::pb::CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(
            envoy_types::ext_authz::v3::pb::CheckResponse {
                status: Some(Default::default()),
                http_response: Some(HttpResponse::OkResponse(Default::default())),
                ..Default::default()
            },
        ))
    }
}

/// The same listener and routes from `sluice render` in a static Envoy, with ext_authz pointed
/// at the do-nothing Check service on sluice's HTTP/2 stack (`allow_all_h2`) on a one-worker
/// runtime of this process: the ceiling. Kept up beside sluice's Envoy so the two are measured
/// in alternating runs, minutes of host drift apart no more.
struct Ceiling {
    envoy: Envoy,
    listener: u16,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Ceiling {
    fn start(idp: &Idp, upstream: &Upstream, concurrency: usize) -> Self {
        let ports = Ports::new();
        let (runtime, listener) = common::one_worker_listener(ports.grpc);
        runtime.spawn(allow_all_h2::serve(listener));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(&file, ratio_config(&ports, idp, upstream)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["render", "--format", "json", "-c"])
            .arg(&file)
            .output()
            .unwrap();
        let bootstrap: Value = serde_json::from_slice(&out.stdout).expect("a rendered bootstrap");
        let envoy = Envoy::start_with("envoy-static", &bootstrap, ports.admin, concurrency);
        let ready = poll(Duration::from_secs(10), || {
            (common::http::get(ports.listener, "on.test", "/")
                .ok()?
                .status
                == 200)
                .then_some(())
        });
        assert!(
            ready.is_some(),
            "the static Envoy never allowed a request through AllowAll"
        );
        Ceiling {
            envoy,
            listener: ports.listener,
            _runtime: runtime,
            _dir: dir,
        }
    }
}

/// wrk runs per host per Envoy in part 2 and 3, interleaved.
const RATIO_ROUNDS: usize = 3;
const RATIO_RUN_SECS: u32 = 6;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn envoy_ratio(idp: &Idp, upstream: &Upstream) {
    let ports = Ports::new();
    let cfg = ratio_config(&ports, idp, upstream);
    let sluice = Sluice::start(ports, &cfg);
    let concurrency: usize = std::env::var("ENVOY_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let envoy = Envoy::start_with(
        "envoy",
        &sluice.bootstrap("bench", "delta", ports.admin),
        ports.admin,
        concurrency,
    );
    let ready = poll(Duration::from_secs(10), || {
        (common::http::get(ports.listener, "off.test", "/")
            .ok()?
            .status
            == 200)
            .then_some(())
    });
    assert!(ready.is_some(), "Envoy never served");
    let ceiling = Ceiling::start(idp, upstream, concurrency);
    // wrk rotates over 200 users' tokens, one per request.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tokens.lua");
    let tokens: Vec<String> = (0..USERS)
        .map(|u| {
            format!(
                "\"{}\"",
                idp.token(
                    &format!("user-{u}"),
                    &format!("user{u}@example.com"),
                    &["staff"]
                )
            )
        })
        .collect();
    std::fs::write(
        &script,
        format!("tokens = {{{}}}\ni = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(nil, nil, {{[\"Authorization\"] = \"Bearer \" .. tokens[(i % #tokens) + 1]}})\nend\n", tokens.join(",")),
    )
    .unwrap();
    let allowed = common::http::request(
        "GET",
        ports.listener,
        "on.test",
        "/",
        &[(
            "Authorization",
            &format!("Bearer {}", idp.token("u", "u@example.com", &[])),
        )],
    )
    .unwrap();
    assert_eq!(
        allowed.status, 200,
        "the ext_authz route allows a valid token"
    );
    let checks_before = sluice.status()["authz"]["checks"].as_u64().unwrap_or(0);
    println!(
        "Requests/s through one Envoy (--concurrency {concurrency}) to one upstream, wrk -t1 -c32, {RATIO_RUN_SECS} s per run; sluice's Envoy and the ceiling's (a static Envoy whose ext_authz is a Check service that allows at once without looking) are both up and run in turn, {RATIO_ROUNDS} rounds:"
    );
    let sluice_pids = [
        ("Envoy", envoy.guard.pid()),
        ("sluice", sluice.guard.pid()),
        ("upstream", std::process::id()),
    ];
    let ceiling_pids = [
        ("Envoy", ceiling.envoy.guard.pid()),
        ("AllowAll + upstream", std::process::id()),
    ];
    let run = |port: u16, host: &str, pids: &[(&str, u32)]| {
        let before: Vec<(f64, f64)> = pids.iter().map(|(_, p)| cpu_split(*p)).collect();
        let t = Instant::now();
        let rps = wrk(port, host, &script, RATIO_RUN_SECS);
        let secs = t.elapsed().as_secs_f64();
        let cpu: Vec<String> = pids
            .iter()
            .zip(before)
            .map(|((name, p), b)| {
                let (user, system) = cpu_split(*p);
                format!(
                    "{name} {:.0}% ({:.0}% kernel)",
                    (user + system - b.0 - b.1) / secs * 100.0,
                    (system - b.1) / secs * 100.0
                )
            })
            .collect();
        (rps, cpu.join(", "))
    };
    let (mut on_off, mut ceiling_on_off, mut versus, mut on_versus) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..RATIO_ROUNDS {
        let (off, off_cpu) = run(ports.listener, "off.test", &sluice_pids);
        let (on, on_cpu) = run(ports.listener, "on.test", &sluice_pids);
        let (c_off, c_off_cpu) = run(ceiling.listener, "off.test", &ceiling_pids);
        let (c_on, c_on_cpu) = run(ceiling.listener, "on.test", &ceiling_pids);
        println!(
            "  round {round}, sluice: ext_authz off {off:.0} req/s (CPU: {off_cpu}); on {on:.0} req/s (CPU: {on_cpu}); ratio {:.2}",
            on / off
        );
        println!(
            "  round {round}, ceiling: off {c_off:.0} req/s (CPU: {c_off_cpu}); on {c_on:.0} req/s (CPU: {c_on_cpu}); ratio {:.2}",
            c_on / c_off
        );
        on_off.push(on / off);
        ceiling_on_off.push(c_on / c_off);
        versus.push((on / off) / (c_on / c_off));
        on_versus.push(on / c_on);
    }
    let checks = sluice.status()["authz"]["checks"].as_u64().unwrap_or(0) - checks_before;
    assert!(
        checks > 0 && envoy.stat("http.ingress.ext_authz.ok") > 0,
        "the 'on' runs did call ext_authz"
    );
    assert!(
        ceiling.envoy.stat("http.ingress.ext_authz.ok") > 0,
        "AllowAll was called"
    );
    println!(
        "  medians of {RATIO_ROUNDS} rounds: sluice on / off {:.2} (target >= 0.6; sluice answered {checks} checks); ceiling on / off {:.2}",
        median(&mut on_off),
        median(&mut ceiling_on_off)
    );
    let spread = |v: &[f64]| format!("{:.2}–{:.2}", v[0], v[v.len() - 1]);
    let (v, ov) = (median(&mut versus), median(&mut on_versus));
    println!(
        "  sluice / ceiling: {v:.2} (on/off ratios, median of the rounds, {} across them; goal >= 0.95); ext_authz-on requests/s, sluice / ceiling: {ov:.2} ({})",
        spread(&versus),
        spread(&on_versus)
    );
}

fn main() {
    if let Ok(port) = std::env::var(FLOOR_PORT_ENV) {
        let (runtime, listener) = common::one_worker_listener(port.parse().expect("a port"));
        if std::env::var(FLOOR_STACK_ENV).as_deref() == Ok(Stack::H2.name()) {
            runtime.block_on(allow_all_h2::serve(listener));
        } else {
            runtime.block_on(serve_allow_all(listener));
        }
        return;
    }
    // sluice's runtime on one thread for part 1; per-request debug logs off (info keeps the
    // decision line, as in production). A `SLUICE_LOG` already set wins, for A/B runs.
    unsafe {
        std::env::set_var("TOKIO_WORKER_THREADS", "1");
        if std::env::var_os("SLUICE_LOG").is_none() {
            std::env::set_var("SLUICE_LOG", "sluice=info");
        }
    }
    let idp = Idp::start();
    let upstream = Upstream::start("bench");
    if let Some(baseline) = std::env::var_os("AUTHZ_BENCH_AB") {
        check_ab(&idp, &upstream, std::path::Path::new(&baseline));
        return;
    }
    if std::env::var("SKIP_CHECK_LATENCY").is_err() {
        check_latency(&idp, &upstream);
    }
    if std::env::var("SKIP_ENVOY_RATIO").is_ok() {
        return;
    }
    unsafe { std::env::remove_var("TOKIO_WORKER_THREADS") };
    envoy_ratio(&idp, &upstream);
}

/// The do-nothing Check service on h2 directly: each connection's streams are answered in its
/// own task, with the one encoded allow answer made at start.
mod allow_all_h2 {
    use bytes::{BufMut, Bytes, BytesMut};
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;
    use http::{HeaderMap, HeaderValue, Response};
    use prost::Message;

    pub async fn serve(listener: tokio::net::TcpListener) {
        let answer = allow_answer();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            tokio::spawn(connection(tcp, answer.clone()));
        }
    }

    fn allow_answer() -> Bytes {
        let message = envoy_types::ext_authz::v3::pb::CheckResponse {
            status: Some(Default::default()),
            http_response: Some(super::HttpResponse::OkResponse(Default::default())),
            ..Default::default()
        };
        let mut framed = BytesMut::new();
        framed.put_u8(0);
        framed.put_u32(message.encoded_len() as u32);
        message.encode(&mut framed).unwrap();
        framed.freeze()
    }

    async fn connection(tcp: tokio::net::TcpStream, answer: Bytes) {
        let Ok(mut connection) = h2::server::Builder::new()
            .max_concurrent_streams(65_536)
            .handshake::<_, Bytes>(tcp)
            .await
        else {
            return;
        };
        let mut streams = FuturesUnordered::new();
        loop {
            tokio::select! {
                biased;
                Some(()) = streams.next(), if !streams.is_empty() => {}
                accepted = connection.accept() => {
                    let Some(Ok((request, mut respond))) = accepted else {
                        return;
                    };
                    let answer = answer.clone();
                    streams.push(async move {
                        let mut body = request.into_body();
                        while let Some(Ok(data)) = body.data().await {
                            let _ = body.flow_control().release_capacity(data.len());
                        }
                        let mut head = Response::new(());
                        head.headers_mut()
                            .insert("content-type", HeaderValue::from_static("application/grpc"));
                        let Ok(mut stream) = respond.send_response(head, false) else {
                            return;
                        };
                        let _ = stream.send_data(answer, false);
                        let mut trailers = HeaderMap::new();
                        trailers.insert("grpc-status", HeaderValue::from_static("0"));
                        let _ = stream.send_trailers(trailers);
                    });
                }
            }
        }
    }
}
