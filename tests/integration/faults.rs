//! sluice under faults, through a real Envoy: killed with SIGKILL and restarted again and again
//! under `wrk` load (public traffic never fails, protected routes fail closed while sluice is
//! gone and recover when it returns, Envoy keeps its config and is sent nothing new); an Envoy
//! killed and started again (it converges to the same versions; a managed Envoy that dies is
//! reported and not restarted, see `managed`); and a config file that becomes unreadable or a
//! directory (the last good config keeps serving, the error is reported once).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::envoy::Envoy;
use crate::common::http;
use crate::common::idp::Idp;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

const KILLS: usize = 20;

fn config(ports: &Ports, idp: &Idp, upstream: &Upstream) -> String {
    let to = upstream.url();
    format!(
        "{}{}bearer_token_format: idp_identity_token\ngrpc_client_timeout: 1s\nroutes:\n  - from: http://public.test\n    to: {to}\n    allow_public_unauthenticated_access: true\n  - from: http://app.test\n    to: {to}\n    allowed_domains: [example.com]\n",
        ports.globals(),
        idp.config()
    )
}

fn status_of(ports: &Ports, host: &str, headers: &[(&str, &str)]) -> u16 {
    http::request("GET", ports.listener, host, "/", headers)
        .map(|r| r.status)
        .unwrap_or(0)
}

/// What `wrk` counted: requests, non-2xx answers and socket errors.
struct WrkSummary {
    requests: u64,
    failures: u64,
    text: String,
}

fn wrk_summary(text: &str) -> WrkSummary {
    let number_after = |marker: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.split_once(marker)
                    .map(|(_, rest)| rest.trim().to_string())
            })
            .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
            .and_then(|n| n.trim_end_matches(',').parse().ok())
            .unwrap_or(0)
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket: u64 = text
        .lines()
        .find(|l| l.contains("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    WrkSummary {
        requests,
        failures: number_after("Non-2xx or 3xx responses:") + socket,
        text: text.to_string(),
    }
}

#[test]
fn sluice_killed_twenty_times_under_load_never_fails_public_traffic() {
    assert!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "this test needs wrk: run bash scripts/install-bench-tools.sh (Debian package wrk)"
    );
    let idp = Idp::start();
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let mut sluice = Sluice::start(ports, &config(&ports, &idp, &upstream));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    let alice = format!(
        "Bearer {}",
        idp.token("alice", "alice@example.com", &["staff"])
    );
    let protected = [("Authorization", alice.as_str())];
    poll(Duration::from_secs(10), || {
        (status_of(&ports, "app.test", &protected) == 200).then_some(())
    })
    .expect("Envoy never served the protected route");
    let versions_before = sluice.status()["envoys"][0]["types"].clone();
    let updates = |envoy: &Envoy| {
        (
            envoy.stat("cluster_manager.cds.update_success"),
            envoy.stat("listener_manager.lds.update_success"),
        )
    };
    let updates_before = updates(&envoy);
    let acked = |types: &serde_json::Value| {
        types
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v["acked_version"].clone()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // Envoy asks for each type again as it reconnects; once it has, the versions it holds
    // are the ones it held before the first kill.
    let want = acked(&versions_before);
    assert!(want.iter().all(|(_, v)| v.is_string()), "{versions_before}");

    // Public traffic for the whole run, from another process.
    let wrk = Command::new("wrk")
        .args(["-t1", "-c8", "-d120s", "-H", "Host: public.test"])
        .arg(format!("http://127.0.0.1:{}/", ports.listener))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");

    let mut recoveries = Vec::with_capacity(KILLS);
    for kill in 0..KILLS {
        sluice.guard.signal("KILL");
        let closed = poll(Duration::from_secs(10), || {
            let s = status_of(&ports, "app.test", &protected);
            (s != 200).then_some(s)
        });
        assert_eq!(
            closed,
            Some(503),
            "kill {kill}: protected routes must fail closed"
        );
        sluice.restart();
        let back_at = Instant::now();
        poll(Duration::from_secs(10), || {
            (status_of(&ports, "app.test", &protected) == 200).then_some(())
        })
        .unwrap_or_else(|| panic!("kill {kill}: decisions did not resume"));
        recoveries.push(back_at.elapsed());
    }
    // Envoy's ADS stream comes back (its retries back off while sluice keeps dying), holding
    // what it held: nothing needs sending.
    let reconnected = poll(Duration::from_secs(60), || {
        let types = sluice.try_status()?["envoys"][0]["types"].clone();
        (acked(&types) == want).then_some(())
    });
    assert!(
        reconnected.is_some(),
        "Envoy did not come back with the same versions: before {versions_before}, now {}",
        sluice.status()["envoys"][0]["types"]
    );
    let _ = Command::new("kill")
        .args(["-INT", &wrk.id().to_string()])
        .status();
    let output = wrk.wait_with_output().expect("wrk output");
    let summary = wrk_summary(&String::from_utf8_lossy(&output.stdout));
    assert!(summary.requests > 1000, "wrk ran: {}", summary.text);
    assert_eq!(
        summary.failures, 0,
        "public requests failed while sluice restarted: {}",
        summary.text
    );

    // Envoy kept its config: no listener replaced or drained, nothing re-sent (the versions
    // are content hashes, the same after every restart).
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 0);
    assert_eq!(envoy.stat("listener_manager.total_listeners_draining"), 0);
    assert_eq!(
        updates(&envoy),
        updates_before,
        "Envoy was sent resources it already had (cds, lds update_success)"
    );
    recoveries.sort();
    println!(
        "{KILLS} SIGKILLs: {} public requests, 0 failed; protected routes back {:.0} ms (median) / {:.0} ms (max) after sluice answered",
        summary.requests,
        recoveries[KILLS / 2].as_secs_f64() * 1e3,
        recoveries[KILLS - 1].as_secs_f64() * 1e3
    );
    assert!(
        recoveries[KILLS - 1] < Duration::from_secs(1),
        "protected routes must recover within 1 s of sluice's return: {recoveries:?}"
    );
}

#[test]
fn an_unreadable_config_or_a_directory_in_its_place_keeps_the_last_good_one() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let idp = Idp::start();
    let sluice = Sluice::start(ports, &config(&ports, &idp, &upstream));
    let _envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    poll(Duration::from_secs(10), || {
        (status_of(&ports, "public.test", &[]) == 200).then_some(())
    })
    .expect("served");
    let failed = || sluice.status()["reload"]["failed"].as_u64().unwrap_or(0);

    // The config replaced by a directory (a botched ConfigMap mount, `mkdir` over the file).
    std::fs::remove_file(&sluice.config).expect("remove config");
    std::fs::create_dir(&sluice.config).expect("a directory in its place");
    poll(Duration::from_secs(10), || (failed() >= 1).then_some(()))
        .expect("the reload failure is reported");
    // Reported once: no retry loop.
    let reported = poll(Duration::from_millis(500), || (failed() > 1).then_some(()));
    assert!(
        reported.is_none(),
        "the same failure reported again and again"
    );
    assert_eq!(
        status_of(&ports, "public.test", &[]),
        200,
        "the last good config serves"
    );
    let log = sluice.guard.log_text();
    assert!(log.contains("still serving the last good config"), "{log}");

    // Back to a file, then unreadable (mode 000 means nothing to root, so a dangling symlink).
    std::fs::remove_dir(&sluice.config).expect("remove the directory");
    std::fs::write(&sluice.config, config(&ports, &idp, &upstream)).expect("restore");
    poll(Duration::from_secs(10), || {
        (sluice.status()["reload"]["last_error"].is_null()).then_some(())
    })
    .expect("a good file recovers");
    let before = failed();
    std::fs::remove_file(&sluice.config).expect("remove");
    std::os::unix::fs::symlink("/nonexistent/sluice-config.yaml", &sluice.config).expect("symlink");
    poll(Duration::from_secs(10), || {
        (failed() > before).then_some(())
    })
    .expect("the unreadable file is reported");
    let errors = sluice.status()["reload"]["last_error"].to_string();
    assert!(errors.contains("cannot read the config file"), "{errors}");
    assert_eq!(
        status_of(&ports, "public.test", &[]),
        200,
        "the last good config serves"
    );
}

#[test]
fn an_envoy_killed_and_started_again_converges() {
    let idp = Idp::start();
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, &idp, &upstream));
    let bootstrap = sluice.bootstrap("edge-1", "delta", ports.admin);
    let mut envoy = Envoy::start("envoy", &bootstrap, ports.admin);
    poll(Duration::from_secs(10), || {
        (status_of(&ports, "public.test", &[]) == 200).then_some(())
    })
    .expect("served");
    let before = sluice.envoy_status("edge-1").expect("connected")["types"].clone();

    envoy.guard.signal("KILL");
    envoy.guard.stop();
    // sluice notices the stream is gone and forgets the connection.
    poll(Duration::from_secs(10), || {
        sluice.envoy_status("edge-1").is_none().then_some(())
    })
    .unwrap_or_else(|| panic!("the dead Envoy is still listed: {}", sluice.status()));
    assert_eq!(
        status_of(&ports, "public.test", &[]),
        0,
        "nothing listens while Envoy is down"
    );

    let envoy = Envoy::start("envoy-again", &bootstrap, ports.admin);
    poll(Duration::from_secs(10), || {
        (status_of(&ports, "public.test", &[]) == 200).then_some(())
    })
    .expect("the new Envoy serves");
    let after = poll(Duration::from_secs(10), || {
        let types = sluice.envoy_status("edge-1")?["types"].clone();
        let same = ["CDS", "LDS", "RDS", "SRDS"]
            .iter()
            .all(|t| types[t]["acked_version"] == before[t]["acked_version"]);
        same.then_some(types)
    });
    assert!(
        after.is_some(),
        "the new Envoy did not converge to the same versions: before {before}, now {}",
        sluice.status()
    );
    assert_eq!(envoy.stat("listener_manager.total_listeners_active"), 1);
}
