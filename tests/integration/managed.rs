//! `sluice serve` with a managed Envoy (the test's Envoy 1.40 through `SLUICE_ENVOY`): traffic
//! flows through the Envoy sluice started, Envoy's log comes out through sluice's with its
//! level, `/healthz` and `/readyz` report it, a dead Envoy stops sluice, and SIGTERM drains
//! Envoy while an open stream finishes, leaving no process behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::envoy;
use crate::common::http;
use crate::common::process::{Guard, poll};
use crate::common::sluice::{Ports, Sluice};

const BODY: &str = "served by the managed Envoy";

fn config(ports: &Ports) -> String {
    format!(
        "{globals}sluice_drain_time: 5s
sluice_stream_probe: public
# The assertions read sluice's human-readable lines (JSON is the default off a terminal).
log_format: pretty
routes:
  - from: http://ok.test
    response:
      status: 200
      body: \"{BODY}\"
    allow_public_unauthenticated_access: true
",
        globals = ports.globals()
    )
}

/// A sluice with a managed Envoy, ready (its `/readyz` said 200).
struct Managed {
    guard: Guard,
    ports: Ports,
    _dir: tempfile::TempDir,
}

impl Managed {
    fn start() -> Managed {
        let ports = Ports::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config(&ports)).expect("write config");
        let binary = envoy::binary();
        let guard = Sluice::spawn_with(
            &dir,
            &path,
            &["--envoy", "managed"],
            &[("SLUICE_ENVOY", binary.as_os_str())],
        );
        let managed = Managed {
            guard,
            ports,
            _dir: dir,
        };
        let ready = poll(Duration::from_secs(30), || {
            let r = http::get(managed.ports.grpc, "sluice", "/readyz").ok()?;
            (r.status == 200).then_some(r)
        });
        assert!(
            ready.is_some(),
            "sluice with a managed Envoy never became ready; log:\n{}",
            managed.log()
        );
        managed
    }

    /// sluice's log without colour codes.
    fn log(&self) -> String {
        plain(&self.guard.log_text())
    }

    /// The managed Envoy's pid, from sluice's log line announcing it.
    fn envoy_pid(&self) -> u32 {
        let log = self.log();
        log.lines()
            .find(|l| l.contains("started managed Envoy"))
            .and_then(|l| l.split("pid=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no managed Envoy pid in the log:\n{log}"))
    }

    /// Waits for sluice to exit and returns its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.guard.child.as_mut().expect("sluice runs");
        let status = poll(limit, || child.try_wait().ok().flatten());
        let status = status.unwrap_or_else(|| panic!("sluice did not exit; log:\n{}", self.log()));
        self.guard.child = None;
        status.code()
    }
}

/// Removes ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|state| !state.starts_with('Z'))
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn managed_envoy_serves_logs_through_sluice_and_reports_ready() {
    let sluice = Managed::start();
    let p = sluice.ports;

    let envoy_pid = sluice.envoy_pid();
    assert_eq!(
        parent_of(envoy_pid),
        Some(sluice.guard.pid()),
        "Envoy is sluice's child"
    );
    let reply = http::get(p.listener, "ok.test", "/").expect("request through Envoy");
    assert_eq!((reply.status, reply.body.as_str()), (200, BODY));
    assert_eq!(reply.header("server"), Some("envoy"));

    let health = http::get(p.grpc, "sluice", "/healthz").expect("healthz");
    assert_eq!(health.status, 200);
    let ready = http::get(p.grpc, "sluice", "/readyz").expect("readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let body: Value = serde_json::from_str(&ready.body).expect("readyz JSON");
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["envoy"]["mode"], "managed", "{body}");
    // Ready only once Envoy's own admin says LIVE and its ADS stream ACKed what it was sent.
    assert_eq!(body["envoy"]["state"], "LIVE", "{body}");
    let acked = body["envoy"]["acked"].as_object().expect("acked per type");
    for ty in ["CDS", "LDS"] {
        assert_eq!(acked.get(ty), Some(&Value::Bool(true)), "{body}");
    }
    assert!(acked.values().all(|v| v == true), "{body}");

    // Envoy's lines, re-emitted with the level parsed from its format and its logger's name.
    let log = sluice.log();
    let forwarded = log.lines().find(|l| {
        l.contains(" INFO sluice::envoy:")
            && l.contains("starting workers")
            && l.contains("logger=\"config\"")
            && l.contains("envoy_level=\"info\"")
    });
    assert!(forwarded.is_some(), "no Envoy line with its level:\n{log}");
    assert!(
        !log.lines().any(|l| l.starts_with('[')),
        "raw Envoy lines reached sluice's log:\n{log}"
    );
}

#[test]
fn sluice_exits_non_zero_when_its_envoy_dies() {
    let mut sluice = Managed::start();
    let envoy_pid = sluice.envoy_pid();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &envoy_pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let code = sluice.wait_exit(Duration::from_secs(10));
    assert!(matches!(code, Some(c) if c != 0), "exit code {code:?}");
    let log = sluice.log();
    assert!(
        log.contains("managed Envoy exited (signal 9)"),
        "the log names the exit:\n{log}"
    );
    // No restart: nothing else took its place.
    assert_eq!(log.matches("started managed Envoy").count(), 1, "{log}");
}

/// An SSE stream read over a raw HTTP/1.1 connection: event names with their arrival times.
struct Stream {
    events: Arc<Mutex<Vec<(Instant, String)>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Stream {
    fn open(port: u16, host: &str, path: &str) -> Stream {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect to Envoy");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let reader = std::thread::spawn(move || {
            let reader = BufReader::new(tcp);
            // Bounded by the read timeout and the `done` event the probe ends with.
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if let Some(name) = line.strip_prefix("event: ") {
                    seen.lock()
                        .unwrap()
                        .push((Instant::now(), name.to_string()));
                    if name == "done" {
                        return; // closes the connection, as a client at the end of a stream
                    }
                }
            }
        });
        Stream { events, reader }
    }

    fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

/// One keep-alive request (no `Connection: close` from the client): the response head, or
/// None when Envoy refused or closed the connection.
fn keep_alive_request(port: u16, host: &str) -> Option<String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(tcp, "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").ok()?;
    let mut buf = [0u8; 4096];
    let n = tcp.read(&mut buf).ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase())
}

#[test]
fn sigterm_drains_envoy_while_an_open_stream_finishes() {
    let mut sluice = Managed::start();
    let p = sluice.ports;
    let envoy_pid = sluice.envoy_pid();
    let before = keep_alive_request(p.listener, "ok.test").expect("a response");
    assert!(!before.contains("connection: close"), "{before}");

    // 10 events 300 ms apart: the stream outlives the signal by about 2 s, within the 5 s window.
    let stream = Stream::open(
        p.listener,
        "ok.test",
        "/.sluice/stream-probe?events=10&interval_ms=300",
    );
    assert!(
        poll(Duration::from_secs(10), || (stream.count() >= 2)
            .then_some(()))
        .is_some(),
        "the stream did not start; log:\n{}",
        sluice.log()
    );
    let signalled = Instant::now();
    sluice.guard.signal("TERM");

    // New requests are told to go (Connection: close) or refused, as Envoy drains.
    let told = poll(Duration::from_secs(5), || {
        match keep_alive_request(p.listener, "ok.test") {
            None => Some("refused".to_string()),
            Some(head) if head.contains("connection: close") => Some(head),
            Some(_) => None,
        }
    });
    assert!(
        told.is_some(),
        "new requests were neither closed nor refused during the drain; log:\n{}",
        sluice.log()
    );

    let code = sluice.wait_exit(Duration::from_secs(15));
    let exited = Instant::now();
    stream.reader.join().expect("stream reader");
    let events = stream.events.lock().unwrap().clone();
    let names: Vec<&str> = events.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names.last(),
        Some(&"done"),
        "the stream ran to its end during the drain: {names:?}\n{}",
        sluice.log()
    );
    let after_signal = events.iter().filter(|(t, _)| *t > signalled).count();
    assert!(
        after_signal >= 5,
        "events kept flowing after SIGTERM: {after_signal}"
    );
    let done_at = events.last().unwrap().0;
    assert!(exited >= done_at, "sluice stopped before the stream ended");
    assert_eq!(code, Some(0), "log:\n{}", sluice.log());
    assert!(!alive(envoy_pid), "Envoy {envoy_pid} was left behind");
    let log = sluice.log();
    for step in [
        "Envoy is draining its listeners",
        "asking Envoy to quit",
        "Envoy stopped",
    ] {
        assert!(log.contains(step), "missing step {step:?}:\n{log}");
    }
}

#[test]
fn managed_mode_without_an_envoy_is_an_error_and_external_mode_is_ready_alone() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config(&ports)).expect("write config");
    let missing = Path::new("/nonexistent/envoy");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--envoy", "managed", "-c"])
        .arg(&path)
        .env("SLUICE_ENVOY", missing)
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SLUICE_ENVOY") && stderr.contains("/nonexistent/envoy"),
        "{stderr}"
    );

    // External: ready with the snapshot alone, and no Envoy of its own.
    let sluice = Sluice::start(ports, &config(&ports));
    let ready = http::get(ports.grpc, "sluice", "/readyz").expect("readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let body: Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(body["envoy"]["mode"], "external", "{body}");
    assert!(!plain(&sluice.guard.log_text()).contains("started managed Envoy"));
}

#[test]
fn envoy_stops_when_sluice_is_killed() {
    let mut sluice = Managed::start();
    let envoy_pid = sluice.envoy_pid();
    sluice.guard.signal("KILL");
    let code = sluice.wait_exit(Duration::from_secs(5));
    assert_eq!(code, None, "killed by a signal");
    // The parent-death signal reaches Envoy although sluice could not clean up.
    let gone = poll(Duration::from_secs(10), || {
        (!alive(envoy_pid)).then_some(())
    });
    assert!(gone.is_some(), "Envoy {envoy_pid} outlived a killed sluice");
}
