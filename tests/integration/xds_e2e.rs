//! sluice serving real Envoy 1.40 processes over ADS: convergence, traffic, route edits that
//! never touch the listener while streams flow, bad edits, NACKs, restarts, both ADS flavours.

use std::time::{Duration, Instant};

use crate::common::envoy::Envoy;
use crate::common::http;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::streams::{SseWatch, WsWatch, consecutive};
use crate::common::upstream::Upstream;

fn public_route(host: &str, upstream: &Upstream, extra: &str) -> String {
    format!(
        "  - from: http://{host}\n    to: {}\n    allow_public_unauthenticated_access: true\n{extra}",
        upstream.url()
    )
}

fn config(ports: &Ports, routes: &[String]) -> String {
    format!("{}routes:\n{}", ports.globals(), routes.concat())
}

/// Status code of `GET /` for `host` through Envoy, or 0 when the connection failed.
fn code(ports: &Ports, host: &str) -> u16 {
    http::get(ports.listener, host, "/")
        .map(|r| r.status)
        .unwrap_or(0)
}

fn wait_code(ports: &Ports, host: &str, want: u16, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    poll(limit, || {
        (code(ports, host) == want).then(|| start.elapsed())
    })
}

/// Envoy took its whole config from sluice and proxies to a real upstream; sluice's status
/// shows every type sent and acknowledged.
fn converges_and_proxies(flavour: &str) {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let sluice = Sluice::start(
        ports,
        &config(&ports, &[public_route("app.test", &upstream, "")]),
    );
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", flavour, ports.admin),
        ports.admin,
    );
    assert!(
        wait_code(&ports, "app.test", 200, Duration::from_secs(10)).is_some(),
        "no 200 through Envoy"
    );
    let reply = http::get(ports.listener, "app.test", "/").unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "hello from app"),
        "headers: {:?}",
        reply.headers
    );
    assert!(
        reply.header("x-request-id").is_some(),
        "Envoy sets the request id on every response"
    );
    assert_eq!(code(&ports, "unknown.test"), 404);
    let acked = poll(Duration::from_secs(5), || {
        let e = sluice.envoy_status("edge-1")?;
        let types = e["types"].as_object()?.clone();
        let all = ["CDS", "LDS", "RDS"].iter().all(|t| {
            types.get(*t).is_some_and(|s| {
                s["acked_version"] == s["sent_version"] && !s["acked_version"].is_null()
            })
        });
        all.then_some(e)
    })
    .unwrap_or_else(|| panic!("not all types ACKed: {}", sluice.status()));
    assert_eq!(acked["flavour"], flavour);
    assert_eq!(envoy.stat("listener_manager.lds.update_rejected"), 0);
}

#[test]
fn delta_envoy_converges_and_proxies() {
    converges_and_proxies("delta");
}

#[test]
fn sotw_envoy_converges_and_proxies() {
    converges_and_proxies("sotw");
}

/// Twenty route edits while an SSE stream and a WebSocket stay open: every edit serves within
/// a second, no event is lost or repeated, and Envoy never modifies or drains the listener.
#[test]
fn route_edits_leave_the_listener_and_open_streams_alone() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let stream_route = public_route("stream.test", &upstream, "    allow_websockets: true\n");
    let mut routes = vec![stream_route];
    let sluice = Sluice::start(ports, &config(&ports, &routes));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    assert!(wait_code(&ports, "stream.test", 200, Duration::from_secs(10)).is_some());

    let sse = SseWatch::open(
        ports.listener,
        "stream.test",
        "/sse?count=100000&every_ms=50",
    );
    assert!(
        sse.wait_for(3, Duration::from_secs(10)),
        "SSE did not start: {:?}",
        sse.ended()
    );
    let ws = WsWatch::open(ports.listener, "stream.test", "/ws");
    assert!(
        poll(Duration::from_secs(10), || (ws.pushes().len() >= 3)
            .then_some(()))
        .is_some(),
        "no WebSocket pushes"
    );
    let added = envoy.stat("listener_manager.listener_added");

    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        routes.push(public_route(&format!("edit-{i}.test"), &upstream, ""));
        sluice.write_config(&config(&ports, &routes));
        ws.send(&format!("m{i}"));
        let took = wait_code(
            &ports,
            &format!("edit-{i}.test"),
            200,
            Duration::from_secs(1),
        )
        .unwrap_or_else(|| {
            let t = Instant::now();
            let last = http::get(ports.listener, &format!("edit-{i}.test"), "/");
            panic!(
                "edit {i} did not serve within 1 s (now: {:?} after {:?}); sluice log:\n{}",
                last.map(|r| (r.status, r.body)),
                t.elapsed(),
                sluice.guard.log_text()
            )
        });
        slowest = slowest.max(took);
    }
    let before = sse.ids().len();
    assert!(
        sse.wait_for(before + 3, Duration::from_secs(5)),
        "SSE stopped after the edits: {:?}",
        sse.ended()
    );
    assert!(
        poll(Duration::from_secs(5), || (ws.echoes().len() == 20)
            .then_some(()))
        .is_some(),
        "echoes: {:?}",
        ws.echoes()
    );

    let ids = sse.ids();
    assert!(consecutive(&ids), "SSE events lost or repeated: {ids:?}");
    assert_eq!(sse.ended(), None, "the SSE stream ended");
    assert!(
        consecutive(&ws.pushes()),
        "WebSocket pushes lost or repeated: {:?}",
        ws.pushes()
    );
    assert_eq!(
        ws.echoes(),
        (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(ws.ended(), None, "the WebSocket closed");

    assert_eq!(envoy.stat("listener_manager.listener_modified"), 0);
    assert_eq!(envoy.stat("listener_manager.listener_added"), added);
    assert_eq!(
        envoy.stat("listener_manager.total_filter_chains_draining"),
        0
    );
    assert_eq!(envoy.stat("listener_manager.total_listeners_draining"), 0);
    // Every edit added a host: a new scope and that host's own table. The streams' host kept
    // the table it was first sent; Envoy never rebuilt it.
    let scope_updates = envoy.stat("http.ingress.scoped_rds.routes/ingress.update_success");
    assert!(scope_updates >= 21, "scope updates: {scope_updates}");
    assert_eq!(
        envoy.stat("http.ingress.rds.routes/ingress/stream.test.update_success"),
        1
    );
    eprintln!("slowest edit served after {slowest:?}");
}

/// A broken edit publishes nothing: the old routes keep serving, status names every problem
/// with its line; fixing the file recovers.
#[test]
fn a_bad_edit_keeps_the_last_good_config() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let good = config(&ports, &[public_route("a.test", &upstream, "")]);
    let sluice = Sluice::start(ports, &good);
    let _envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    assert!(wait_code(&ports, "a.test", 200, Duration::from_secs(10)).is_some());
    let generation = sluice.generation();

    sluice.write_config(&format!(
        "{good}  - from: b.test\n    to: http://127.0.0.1:1,0\n    alowed_users: [x]\n"
    ));
    let failed = poll(Duration::from_secs(5), || {
        let s = sluice.status();
        (s["reload"]["failed"].as_u64() >= Some(1)).then_some(s)
    })
    .expect("the bad edit was not noticed");
    let errors = failed["reload"]["last_error"].to_string();
    assert!(
        errors.contains("config.yaml:9:11: error: routes[1].from"),
        "{errors}"
    );
    assert!(
        errors.contains("routes[1].to: zero load balancing weight"),
        "{errors}"
    );
    assert!(errors.contains("did you mean `allowed_users`?"), "{errors}");
    assert_eq!(sluice.generation(), generation, "nothing was published");
    assert_eq!(
        code(&ports, "a.test"),
        200,
        "the old routes stopped serving"
    );
    let metrics = http::get(ports.grpc, "sluice", "/metrics").unwrap().body;
    assert!(
        metrics.contains("sluice_config_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );

    sluice.write_config(&config(
        &ports,
        &[
            public_route("a.test", &upstream, ""),
            public_route("b.test", &upstream, ""),
        ],
    ));
    assert!(
        wait_code(&ports, "b.test", 200, Duration::from_secs(5)).is_some(),
        "the fix did not recover"
    );
    assert_eq!(
        sluice.status()["reload"]["last_error"],
        serde_json::Value::Null
    );
}

/// A route table Envoy itself rejects: the NACK is shown with Envoy's own words, Envoy keeps its
/// last good routes, and other resources (a new cluster) still update.
#[test]
fn a_nack_is_reported_and_does_not_block_other_resources() {
    let (first, second) = (Upstream::start("first"), Upstream::start("second"));
    let ports = Ports::new();
    let sluice = Sluice::start(
        ports,
        &config(&ports, &[public_route("good.test", &first, "")]),
    );
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "sotw", ports.admin),
        ports.admin,
    );
    assert!(wait_code(&ports, "good.test", 200, Duration::from_secs(10)).is_some());

    // A regex flag only Rust's engine knows (`(?R)`, CRLF mode): sluice's check does not
    // refuse it yet, RE2 does, so Envoy NACKs the route table. (Any config that reaches a
    // NACK is a gap in validation; this one is rare in real configs.)
    let rejected = format!(
        "  - from: http://bad.test\n    regex: \"(?R)^/a$\"\n    to: {}\n    allow_public_unauthenticated_access: true\n",
        second.url()
    );
    sluice.write_config(&config(
        &ports,
        &[public_route("good.test", &first, ""), rejected.clone()],
    ));
    let nack = poll(Duration::from_secs(10), || {
        let e = sluice.envoy_status("edge-1")?;
        let n = e["types"]["RDS"]["last_nack"].clone();
        (!n.is_null()).then_some(n)
    })
    .unwrap_or_else(|| panic!("no NACK recorded: {}", sluice.status()));
    assert!(
        nack["error"]
            .as_str()
            .unwrap_or("")
            .contains("invalid perl operator"),
        "{nack}"
    );
    // The new cluster (for `second`) was accepted although the route table was not.
    let second_port = format!("\"port_value\": {}", second.port);
    assert!(
        poll(Duration::from_secs(5), || envoy
            .config_dump("dynamic_active_clusters")
            .to_string()
            .replace(':', ": ")
            .contains(&second_port)
            .then_some(()))
        .is_some(),
        "the new cluster did not arrive"
    );
    assert!(envoy.stat("cluster_manager.cds.update_rejected") == 0);
    assert!(
        !envoy.routes_mention("bad.test"),
        "Envoy applied the rejected route table"
    );
    assert_eq!(
        code(&ports, "good.test"),
        200,
        "Envoy lost its last good routes"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["status", "-c"])
        .arg(&sluice.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("edge-1") && text.contains("invalid perl operator"),
        "sluice status shows the NACK:\n{text}"
    );

    // Fixing the route lets RDS through again.
    sluice.write_config(&config(
        &ports,
        &[
            public_route("good.test", &first, ""),
            public_route("fixed.test", &second, ""),
        ],
    ));
    assert!(wait_code(&ports, "fixed.test", 200, Duration::from_secs(5)).is_some());
    let rds = poll(Duration::from_secs(5), || {
        let t = sluice.envoy_status("edge-1")?["types"]["RDS"].clone();
        (t["acked_version"] == t["sent_version"]).then_some(t)
    });
    assert!(
        rds.is_some(),
        "RDS not acknowledged after the fix: {}",
        sluice.status()
    );
}

/// Two Envoys at once, one of each ADS flavour, both converge and both follow an edit.
#[test]
fn two_envoys_of_both_flavours_follow_the_same_config() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let sluice = Sluice::start(
        ports,
        &config(&ports, &[public_route("a.test", &upstream, "")]),
    );
    let second_admin = crate::common::process::free_port();
    // Both bind the same listener port (Envoy sets SO_REUSEPORT).
    let one = Envoy::start(
        "envoy-delta",
        &sluice.bootstrap("edge-delta", "delta", ports.admin),
        ports.admin,
    );
    let two = Envoy::start(
        "envoy-sotw",
        &sluice.bootstrap("edge-sotw", "sotw", second_admin),
        second_admin,
    );
    sluice.write_config(&config(
        &ports,
        &[
            public_route("a.test", &upstream, ""),
            public_route("b.test", &upstream, ""),
        ],
    ));
    for envoy in [&one, &two] {
        assert!(
            poll(Duration::from_secs(5), || envoy
                .routes_mention("b.test")
                .then_some(()))
            .is_some(),
            "{} did not receive the edit",
            envoy.guard.name
        );
    }
    let status = sluice.status();
    let flavours: Vec<&str> = status["envoys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["flavour"].as_str())
        .collect();
    assert!(
        flavours.contains(&"delta") && flavours.contains(&"sotw"),
        "{status}"
    );
    assert!(wait_code(&ports, "b.test", 200, Duration::from_secs(5)).is_some());
}

/// sluice goes away and comes back: Envoy keeps serving during the outage, reconnects, and
/// converges to the same config without replacing its listener.
#[test]
fn envoy_keeps_serving_while_sluice_restarts() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let mut sluice = Sluice::start(
        ports,
        &config(&ports, &[public_route("a.test", &upstream, "")]),
    );
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    assert!(wait_code(&ports, "a.test", 200, Duration::from_secs(10)).is_some());

    sluice.guard.stop();
    // Envoy holds its config; this public route needs no decision from sluice, so traffic
    // keeps flowing while sluice is away.
    for _ in 0..20 {
        assert_eq!(
            code(&ports, "a.test"),
            200,
            "traffic stopped while sluice was down"
        );
    }
    assert_eq!(envoy.stat("listener_manager.listener_removed"), 0);
    sluice.restart();
    let back = poll(Duration::from_secs(20), || sluice.envoy_status("edge-1"));
    assert!(
        back.is_some(),
        "Envoy did not reconnect: {}",
        sluice.status()
    );
    assert!(
        wait_code(&ports, "a.test", 200, Duration::from_secs(10)).is_some(),
        "traffic did not recover"
    );
    assert_eq!(
        envoy.stat("listener_manager.listener_modified"),
        0,
        "the listener was replaced on reconnect"
    );
    assert_eq!(envoy.stat("listener_manager.total_listeners_draining"), 0);
}

/// Each host has its own route table: an edit to one host's route sends Envoy that host's
/// table alone (state of the world too), the other hosts' tables are never rebuilt, and the
/// host is found whatever port the client names.
#[test]
fn an_edit_to_one_host_rebuilds_only_that_hosts_table() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let edited = |value: &str| {
        config(
            &ports,
            &[
                public_route(
                    "a.test",
                    &upstream,
                    &format!("    set_response_headers:\n      X-Edit: \"{value}\"\n"),
                ),
                public_route("b.test", &upstream, ""),
            ],
        )
    };
    let sluice = Sluice::start(ports, &edited("0"));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "sotw", ports.admin),
        ports.admin,
    );
    assert!(wait_code(&ports, "b.test", 200, Duration::from_secs(10)).is_some());
    let a_header = || {
        http::get(ports.listener, "a.test", "/")
            .ok()
            .and_then(|r| r.header("x-edit").map(String::from))
    };
    assert_eq!(a_header().as_deref(), Some("0"));

    for round in 1..=3 {
        let value = round.to_string();
        sluice.write_config(&edited(&value));
        assert!(
            poll(Duration::from_secs(5), || (a_header().as_deref()
                == Some(value.as_str()))
            .then_some(()))
            .is_some(),
            "edit {round} did not reach a.test"
        );
    }
    for host in ["b.test", "b.test:8443", "a.test:1"] {
        let reply = http::get(ports.listener, host, "/").expect("request through Envoy");
        assert_eq!(reply.status, 200, "Host: {host}");
    }
    assert_eq!(
        envoy.stat("http.ingress.rds.routes/ingress/a.test.update_success"),
        4
    );
    assert_eq!(
        envoy.stat("http.ingress.rds.routes/ingress/b.test.update_success"),
        1,
        "b.test's table was rebuilt by edits to a.test"
    );
    assert_eq!(code(&ports, "c.test"), 404, "an unknown host has no table");
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 0);
}

/// One exact host (`a.test`) served through one Envoy, and a wildcard route ready to add:
/// the start of the tests that switch between per-host tables and one table.
struct Switching {
    upstream: Upstream,
    ports: Ports,
    exact: String,
    wildcard: String,
    sluice: Sluice,
    envoy: Envoy,
}

impl Switching {
    fn start(flavour: &str) -> Self {
        let upstream = Upstream::start("app");
        let ports = Ports::new();
        let exact = public_route("a.test", &upstream, "");
        let wildcard = public_route("*.wild.test", &upstream, "");
        let sluice = Sluice::start(ports, &config(&ports, std::slice::from_ref(&exact)));
        let envoy = Envoy::start(
            "envoy",
            &sluice.bootstrap("edge-1", flavour, ports.admin),
            ports.admin,
        );
        assert!(wait_code(&ports, "a.test", 200, Duration::from_secs(10)).is_some());
        Switching {
            upstream,
            ports,
            exact,
            wildcard,
            sluice,
            envoy,
        }
    }
}

/// A route for many hosts (`*.example.com`) needs one table for all: the first one switches
/// the listener to a single table (a listener change, announced in the log, with a graceful
/// drain), and removing the last one switches back. Every host serves throughout.
#[test]
fn a_wildcard_route_switches_to_one_table_and_back() {
    let Switching {
        upstream: _upstream,
        ports,
        exact,
        wildcard,
        sluice,
        envoy,
    } = Switching::start("delta");

    sluice.write_config(&config(&ports, &[exact.clone(), wildcard]));
    assert!(wait_code(&ports, "x.wild.test", 200, Duration::from_secs(10)).is_some());
    assert_eq!(code(&ports, "deep.x.wild.test:80"), 200);
    assert_eq!(code(&ports, "a.test"), 200);
    assert!(envoy.routes_mention("\"routes/ingress\""));
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 1);
    let announced = sluice.wait_log("listener settings changed");
    let log = sluice.guard.log_text();
    assert!(
        announced && log.contains("listener/ingress"),
        "the switch is not announced:\n{log}"
    );

    sluice.write_config(&config(&ports, std::slice::from_ref(&exact)));
    assert!(wait_code(&ports, "x.wild.test", 404, Duration::from_secs(10)).is_some());
    assert_eq!(code(&ports, "a.test"), 200);
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 2);
}

/// A connection opened before a switch between one table and per-host tables stays with the
/// old listener while it drains, and that listener still routes what it routed: sluice does
/// not take away the route tables or scopes it reads until Envoy lets go of them. (Removing
/// them at once emptied the old listener's routes: every request on it got 404.)
fn an_open_connection_keeps_its_routes_across_table_switches(flavour: &str) {
    let Switching {
        upstream: _upstream,
        ports,
        exact,
        wildcard,
        sluice,
        envoy,
    } = Switching::start(flavour);
    for (step, routes) in [
        ("to one table", vec![exact.clone(), wildcard]),
        ("back to a table per host", vec![exact.clone()]),
    ] {
        let mut old = http::KeepAlive::open(ports.listener).expect("connect");
        assert_eq!(old.get("a.test", "/").expect("a.test").status, 200);
        let modified = envoy.stat("listener_manager.listener_modified");
        sluice.write_config(&config(&ports, &routes));
        let replaced = poll(Duration::from_secs(10), || {
            (envoy.stat("listener_manager.listener_modified") > modified
                && envoy.stat("listener_manager.total_listeners_warming") == 0)
                .then_some(())
        });
        assert!(replaced.is_some(), "{step}: the listener was not replaced");
        let want = if routes.len() == 2 { 200 } else { 404 };
        assert!(
            wait_code(&ports, "x.wild.test", want, Duration::from_secs(10)).is_some(),
            "{step}: new connections never saw the new table"
        );
        // Whatever sluice sent since, the draining listener answers as it did.
        let reply = old
            .get("a.test", "/")
            .expect("a.test on the open connection");
        assert_eq!(
            reply.status, 200,
            "{step}: the open connection lost its route"
        );
        assert_eq!(code(&ports, "a.test"), 200, "{step}: a new connection");
    }
}

#[test]
fn an_open_connection_keeps_its_routes_across_table_switches_delta() {
    an_open_connection_keeps_its_routes_across_table_switches("delta");
}

#[test]
fn an_open_connection_keeps_its_routes_across_table_switches_sotw() {
    an_open_connection_keeps_its_routes_across_table_switches("sotw");
}
