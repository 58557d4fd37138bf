//! xDS benchmark with real Envoys: 10,000 routes served to 10 connected Envoy 1.40 processes.
//! Prints how long a file edit takes until sluice has sent it to every Envoy and until every
//! Envoy has acknowledged it (median of 5 edits; target with 10 Envoys: under 120 ms), sluice's
//! memory (targets: settled RSS under 64 MiB, peak under 100 MiB), and the bytes a no-op
//! reload sends (target: 0).
//! Run with `cargo bench --bench xds` (Envoy from `bash scripts/install-envoy.sh`).

#[path = "../tests/integration/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::envoy::Envoy;
use common::process::{free_port, poll};
use common::sluice::{Ports, Sluice};
use serde_json::Value;

const ROUTES: usize = 10_000;
const ENVOYS: usize = 10;
const EDITS: usize = 5;

/// The translate bench's shape, with every upstream on loopback.
fn config(ports: &Ports, timeout_minutes: usize) -> String {
    let mut out = format!("{}routes:\n", ports.globals());
    for i in 0..ROUTES {
        let host = i / 5;
        let path = ["/api/", "/static/", "/events", "/ws", "/"][i % 5];
        out.push_str(&format!(
            "  - from: https://app{host}.example.com\n    prefix: {path}\n"
        ));
        match i % 4 {
            0 => out.push_str(&format!(
                "    to: http://127.{}.{}.{}:8080\n",
                1 + ((i >> 16) & 255),
                (i >> 8) & 255,
                i & 255
            )),
            1 => out.push_str(&format!(
                "    to:\n      - http://127.0.{}.{}:80,3\n      - http://127.0.{}.{}:81,1\n",
                (host >> 8) & 255,
                host & 255,
                (host >> 8) & 255,
                host & 255
            )),
            2 => out.push_str(&format!(
                "    to: http://127.0.{}.{}:8080\n    allow_websockets: true\n",
                (host >> 8) & 255,
                host & 255
            )),
            _ => {
                // The first such route carries the timeout each edit changes.
                let minutes = if i == 3 { timeout_minutes } else { 2 };
                out.push_str(&format!("    to: http://127.2.{}.{}:9000\n    timeout: {minutes}m\n    idle_timeout: 10m\n", (i >> 8) & 255, i & 255));
            }
        }
        match i % 3 {
            0 => out.push_str("    allowed_domains: [example.com]\n    allowed_users: [alice@example.com, bob@example.com]\n"),
            1 => out.push_str("    policy:\n      allow:\n        and:\n          - email: {ends_with: '@example.com'}\n          - claim/groups: {has: engineering}\n      deny:\n        or:\n          - http_path: {starts_with: /admin}\n"),
            _ => out.push_str("    allow_any_authenticated_user: true\n    set_request_headers:\n      X-Team: platform\n    set_response_headers:\n      Cache-Control: no-store\n    remove_request_headers: [X-Debug]\n"),
        }
    }
    out
}

fn rds(envoy: &Value) -> (Value, Value) {
    let t = &envoy["types"]["RDS"];
    (t["sent_version"].clone(), t["acked_version"].clone())
}

/// Envoys whose route table sluice has sent past `before`, and those that also ACKed it.
fn progress(status: &Value, before: &Value) -> (usize, usize) {
    let envoys = status["envoys"].as_array().cloned().unwrap_or_default();
    let sent = envoys.iter().filter(|e| rds(e).0 != *before).count();
    let acked = envoys
        .iter()
        .filter(|e| {
            let (s, a) = rds(e);
            s != *before && s == a
        })
        .count();
    (sent, acked)
}

fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let ports = Ports::new();
    let start = Instant::now();
    let sluice = Sluice::start(ports, &config(&ports, 3));
    println!(
        "sluice serving {ROUTES} routes after {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let mut envoys = Vec::new();
    let mut timeout = 3;
    for round in [1, ENVOYS] {
        while envoys.len() < round {
            let n = envoys.len();
            let admin = free_port();
            let flavour = if n % 2 == 0 { "delta" } else { "sotw" };
            let bootstrap = sluice.bootstrap(&format!("bench-{n}"), flavour, admin);
            envoys.push(Envoy::start(&format!("envoy-{n}"), &bootstrap, admin));
        }
        let converged = poll(Duration::from_secs(300), || {
            let (_, acked) = progress(&sluice.try_status()?, &Value::Null);
            (acked == round).then_some(())
        });
        assert!(
            converged.is_some(),
            "not every Envoy converged: {}",
            sluice.status()
        );
        println!(
            "{round} Envoy(s) connected (alternating delta and SotW), converged after {:.1} s",
            start.elapsed().as_secs_f64()
        );
        let (mut to_sent, mut to_acked) = (Vec::new(), Vec::new());
        for edit in 0..EDITS {
            let before = rds(&sluice.status()["envoys"][0]).0;
            timeout += 1;
            let t0 = Instant::now();
            sluice.write_config(&config(&ports, timeout));
            let mut sent_at = None;
            let done = poll(Duration::from_secs(60), || {
                let (sent, acked) = progress(&sluice.try_status()?, &before);
                if sent == round && sent_at.is_none() {
                    sent_at = Some(t0.elapsed());
                }
                (acked == round).then(|| t0.elapsed())
            })
            .expect("every Envoy acknowledged the edit");
            let sent = sent_at.unwrap_or(done);
            println!(
                "  edit {edit}: sent to all after {:.0} ms, all ACKed after {:.0} ms",
                sent.as_secs_f64() * 1000.0,
                done.as_secs_f64() * 1000.0
            );
            to_sent.push(sent);
            to_acked.push(done);
        }
        println!(
            "{round} Envoy(s): file edit -> sent to every Envoy: median {:.0} ms",
            median(to_sent)
        );
        println!(
            "{round} Envoy(s): file edit -> every Envoy ACKed:   median {:.0} ms (target < 120 ms with 10)",
            median(to_acked)
        );
    }

    let (just_after, peak) = memory(sluice.guard.pid());
    // Right after an edit the previous generation may still be on its way out; settled is
    // when two readings a second apart agree within 1 MiB (at most 10 s).
    let mut last = just_after;
    let settled = poll(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_secs(1));
        let (now, _) = memory(sluice.guard.pid());
        let stable = (now - last).abs() < 1.0;
        last = now;
        stable.then_some(now)
    })
    .unwrap_or(last);
    println!(
        "sluice memory with {ROUTES} routes and {ENVOYS} Envoys: {settled:.1} MiB RSS settled ({just_after:.1} MiB right after the last edit), {peak:.1} MiB peak RSS (targets: settled < 64 MiB, peak < 100 MiB)"
    );

    let before = sluice.status();
    sluice.write_config(&format!(
        "# touched, same meaning\n{}",
        config(&ports, timeout)
    ));
    poll(Duration::from_secs(30), || {
        (sluice.try_status()?["reload"]["unchanged"].as_u64()?
            > before["reload"]["unchanged"].as_u64()?)
        .then_some(())
    })
    .expect("the no-op reload happened");
    let after = sluice.status();
    let sent = after["counters"]["bytes_sent"].as_u64().unwrap_or(0)
        - before["counters"]["bytes_sent"].as_u64().unwrap_or(0);
    println!("no-op reload: {sent} bytes sent (target 0)");
    drop(envoys);
}
