//! sluice under faults, through a real Envoy: killed with SIGKILL and restarted again and again
//! under `wrk` load (public traffic never fails, protected routes fail closed while sluice is
//! gone and recover when it returns, Envoy keeps its config and is sent nothing new); an Envoy
//! killed and started again (it converges to the same versions; a managed Envoy that dies is
//! reported and not restarted, see `managed`); a config file that becomes unreadable or a
//! directory (the last good config keeps serving, the error is reported once); and a full disk,
//! a real one (a tmpfs filled to ENOSPC), under the certificate files sluice writes and under
//! the config file itself (the reload is rejected once, the last good config keeps serving,
//! nothing half-written is left, and the first save after space is freed is published).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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

// ---------------------------------------------------------------------------------------
// A full disk: under the files sluice writes for Envoy, and under the config file itself.
// ---------------------------------------------------------------------------------------

/// A tmpfs of `size` mounted for one test: a filesystem that can really be filled. Unmounted
/// when dropped, also when the test panics (lazily if something still holds it).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("a mount point");
        let options = format!("size={size},mode=0700");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Tmpfs { dir },
            other => panic!(
                "this test needs a filesystem it can fill up, and makes one with `mount -t tmpfs -o {options} tmpfs {}`, \
                 which takes root (or CAP_SYS_ADMIN) and util-linux `mount`; it failed: {}",
                dir.path().display(),
                match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                }
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the filesystem answers ENOSPC, checks that not one more byte
    /// fits in a new file, and returns the filler's path (delete it to free the space).
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("create the filler");
        let chunk = [0u8; 4096];
        // A small tmpfs: bounded far above what it holds.
        let full = (0..100_000).find_map(|_| match file.write(&chunk) {
            Ok(0) => panic!("a write of the filler wrote nothing"),
            Ok(_) => None,
            Err(e) => Some(e),
        });
        let full = full.expect("the tmpfs never filled up");
        assert_eq!(full.raw_os_error(), Some(libc::ENOSPC), "filling: {full}");
        drop(file);
        let probe = self.path().join("probe");
        let error = std::fs::write(&probe, b"x").expect_err("the filesystem is full");
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
        std::fs::remove_file(&probe).expect("remove the probe");
        filler
    }

    /// The names of the files in it, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .expect("list the tmpfs")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// `sluice serve` with its config file at `config` (written first) and its generated files in
/// `runtime` (`SLUICE_RUNTIME_DIR`); its log goes to a temporary folder on the ordinary disk.
fn sluice_on(ports: Ports, config: PathBuf, text: &str, runtime: &Tmpfs) -> Sluice {
    std::fs::write(&config, text).expect("write the config");
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = Sluice::spawn_with(
        &dir,
        &config,
        &["--envoy", "external"],
        &[("SLUICE_RUNTIME_DIR", runtime.path().as_os_str())],
    );
    let sluice = Sluice {
        guard,
        dir,
        config,
        ports,
    };
    sluice.wait_ready();
    sluice
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn test_cert(name: &str) -> String {
    std::fs::read_to_string(crate::common::tls::certs().join(name))
        .unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// `base` with a route to the TLS upstream whose CA, client certificate and client key are
/// inline (base64), as Pomerium allows: a reload must write each to a file for Envoy.
fn with_tls_route(base: &str, tls: &Upstream, ca_pem: &str) -> String {
    format!(
        "{base}  - from: http://tls.test\n    to: https://127.0.0.1:{}\n    tls_server_name: upstream.example.com\n    tls_custom_ca: {}\n    tls_client_cert: {}\n    tls_client_key: {}\n    allow_public_unauthenticated_access: true\n",
        tls.port,
        base64(ca_pem.as_bytes()),
        base64(test_cert("client.pem").as_bytes()),
        base64(test_cert("client-key.pem").as_bytes()),
    )
}

/// Where a failure count stood before a change to the config.
struct Counts {
    failed: u64,
    generation: u64,
    logged: usize,
}

fn counts(sluice: &Sluice) -> Counts {
    let status = sluice.status();
    Counts {
        failed: status["reload"]["failed"].as_u64().unwrap_or(0),
        generation: status["reload"]["generation"].as_u64().unwrap_or(0),
        logged: logged_failures(sluice),
    }
}

fn logged_failures(sluice: &Sluice) -> usize {
    sluice
        .guard
        .log_text()
        .matches("config reload failed; still serving the last good config")
        .count()
}

/// Waits for the reload of a bad change to fail, checks that it failed once (no second failure
/// within 500 ms, one log line), that nothing was published, and returns the reported error.
fn rejected_once(sluice: &Sluice, before: &Counts, what: &str) -> String {
    let failed = || sluice.status()["reload"]["failed"].as_u64().unwrap_or(0);
    poll(Duration::from_secs(10), || {
        (failed() > before.failed).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: no reload failure reported; status {}\nlog:\n{}",
            sluice.status(),
            sluice.guard.log_text()
        )
    });
    let again = poll(Duration::from_millis(500), || {
        (failed() > before.failed + 1).then_some(())
    });
    assert!(
        again.is_none(),
        "{what}: the failure was reported again and again: {}",
        sluice.status()
    );
    let status = sluice.status();
    assert_eq!(
        status["reload"]["generation"].as_u64(),
        Some(before.generation),
        "{what}: nothing may be published: {status}"
    );
    // The log line is written before the status changes.
    assert_eq!(
        logged_failures(sluice),
        before.logged + 1,
        "{what}: one failure, one log line:\n{}",
        sluice.guard.log_text()
    );
    let errors = status["reload"]["last_error"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: last_error lists the diagnostics: {status}"))
        .iter()
        .map(|e| e.as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    assert!(!errors.is_empty(), "{what}: {status}");
    errors.join("\n")
}

/// No part of the test client key (PEM body or its base64) in `text`.
fn assert_no_key_material(text: &str, what: &str) {
    let key = test_cert("client-key.pem");
    let encoded = base64(key.as_bytes());
    assert!(!text.contains("PRIVATE KEY"), "{what} shows a key: {text}");
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "{what} shows key bytes: {text}");
    }
    for piece in encoded.as_bytes().chunks(24).skip(2) {
        let piece = std::str::from_utf8(piece).expect("base64 is ASCII");
        assert!(
            piece.len() < 24 || !text.contains(piece),
            "{what} shows the inline key: {text}"
        );
    }
}

/// `text` cut in the middle of a line near its half, as a write that ran out of room leaves it.
fn first_half(text: &str) -> &str {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut)
        || text[..cut].ends_with('\n')
        || text[cut..].starts_with('\n')
    {
        cut += 1;
    }
    &text[..cut]
}

#[test]
fn a_full_disk_rejects_the_reload_once_and_keeps_the_last_good_config() {
    // Declared first, dropped (unmounted) last, after sluice and Envoy are gone.
    let runtime = Tmpfs::mount("256k");
    let config_disk = Tmpfs::mount("64k");
    let upstream = Upstream::start("app");
    let tls = Upstream::start_tls("tls");
    let ports = Ports::new();
    let idp = Idp::start();
    let good = config(&ports, &idp, &upstream);
    let sluice = sluice_on(
        ports,
        config_disk.path().join("config.yaml"),
        &good,
        &runtime,
    );
    let _envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    poll(Duration::from_secs(10), || {
        (status_of(&ports, "public.test", &[]) == 200).then_some(())
    })
    .expect("served");
    assert_eq!(status_of(&ports, "tls.test", &[]), 404, "no such route yet");
    let serves = |host: &str, what: &str| {
        assert_eq!(
            status_of(&ports, host, &[]),
            200,
            "{what}: the last good config serves {host}"
        );
    };

    // 1. The runtime folder full: a reload that has to write a new certificate file fails.
    let filler = runtime.fill();
    let with_tls = with_tls_route(&good, &tls, &test_cert("ca.pem"));
    let before = counts(&sluice);
    sluice.write_config(&with_tls);
    let errors = rejected_once(&sluice, &before, "runtime folder full");
    let named = format!("cannot write {}/route-custom-ca-", runtime.path().display());
    assert!(
        errors.contains(&named) && errors.contains("No space left on device"),
        "the error names the file and the reason: {errors}"
    );
    assert!(
        errors.contains("tls_custom_ca"),
        "and the setting: {errors}"
    );
    assert_no_key_material(&errors, "the reported error");
    serves("public.test", "runtime folder full");
    assert_eq!(
        status_of(&ports, "tls.test", &[]),
        404,
        "nothing new is served"
    );
    assert_eq!(
        runtime.names(),
        ["filler"],
        "no half-written or temporary file is left behind"
    );

    // Room again: the next save publishes, and Envoy reaches the upstream with the CA written.
    std::fs::remove_file(&filler).expect("free the space");
    let before = counts(&sluice);
    sluice.write_config(&with_tls);
    poll(Duration::from_secs(10), || {
        let status = sluice.status();
        (status["reload"]["last_error"].is_null()
            && status["reload"]["generation"].as_u64() > Some(before.generation))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the save after freeing space is not published: {}",
            sluice.status()
        )
    });
    poll(Duration::from_secs(10), || {
        (status_of(&ports, "tls.test", &[]) == 200).then_some(())
    })
    .expect("the new route serves through the CA file written once there was room");
    let names = runtime.names();
    assert_eq!(
        names.len(),
        3,
        "the CA, the client certificate and key: {names:?}"
    );
    for (name, label) in names.iter().zip([
        "route-client-cert-",
        "route-client-key-",
        "route-custom-ca-",
    ]) {
        assert!(
            name.starts_with(label) && name.ends_with(".pem"),
            "{names:?}"
        );
        let mode = std::fs::metadata(runtime.path().join(name))
            .expect("generated file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is private");
    }
    serves("public.test", "after recovery");

    // 2. The config file's own disk full: an editor's save of a bigger file (the CA grown into
    // a bundle) stops where the space ends and leaves the file cut short.
    let bundle = [
        test_cert("ca.pem"),
        test_cert("server.pem"),
        test_cert("upstream.pem"),
        test_cert("client.pem"),
        crate::common::tls::other_ca_client_pem(),
        crate::common::tls::other_ca_client_pem(),
    ]
    .concat();
    let with_bundle = with_tls_route(&good, &tls, &bundle);
    let config_filler = config_disk.fill();
    let before = counts(&sluice);
    let saved = std::fs::write(&sluice.config, &with_bundle);
    let error = saved.expect_err("the save runs out of space");
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    let on_disk = std::fs::read_to_string(&sluice.config).expect("read back");
    assert!(
        !on_disk.is_empty()
            && on_disk.len() < with_bundle.len()
            && with_bundle.starts_with(&on_disk),
        "the file is cut short: {} of {} bytes",
        on_disk.len(),
        with_bundle.len()
    );
    let cut_line = on_disk.lines().count();
    let errors = rejected_once(&sluice, &before, "config cut short by a full disk");
    println!(
        "a save on a full disk kept {} of {} bytes (cut in line {cut_line}); rejected: {errors}",
        on_disk.len(),
        with_bundle.len()
    );
    assert_no_key_material(&errors, "the reported error");
    serves("public.test", "config cut short");
    serves("tls.test", "config cut short");

    // The same on a full disk, as other writers leave it: empty, and cut in the middle of a
    // line near half; and cut inside the inline CA after a whole base64 quantum, so the value
    // still decodes, to a PEM without its END line.
    let value = with_tls.find("tls_custom_ca: ").expect("the CA line") + "tls_custom_ca: ".len();
    let in_the_ca = &with_tls[..value + 400];
    assert!(
        !in_the_ca[value..].contains('\n'),
        "the cut is inside the value"
    );
    let cases = [
        ("an empty config", "", Some("the config file is empty")),
        ("the first half of the config", first_half(&with_tls), None),
        (
            "a config cut inside its inline CA",
            in_the_ca,
            Some("tls_custom_ca"),
        ),
    ];
    for (what, text, expected) in cases {
        let before = counts(&sluice);
        sluice.write_config(text);
        let errors = rejected_once(&sluice, &before, what);
        println!("{what} ({} bytes): rejected: {errors}", text.len());
        if let Some(expected) = expected {
            assert!(errors.contains(expected), "{what}: {errors}");
        }
        assert_no_key_material(&errors, "the reported error");
        serves("public.test", what);
        serves("tls.test", what);
    }
    let log = sluice.guard.log_text();
    assert_no_key_material(&log, "sluice's log");

    // Room again: the next save publishes the bundle.
    std::fs::remove_file(&config_filler).expect("free the config's disk");
    let before = counts(&sluice);
    sluice.write_config(&with_bundle);
    poll(Duration::from_secs(10), || {
        let status = sluice.status();
        (status["reload"]["last_error"].is_null()
            && status["reload"]["generation"].as_u64() > Some(before.generation))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the save after freeing space is not published: {}",
            sluice.status()
        )
    });
    // Envoy took the cluster with the bundle (acknowledged what sluice sent), and serves.
    poll(Duration::from_secs(10), || {
        let cds = sluice.envoy_status("edge-1")?["types"]["CDS"].clone();
        (cds["acked_version"] == cds["sent_version"] && cds["nacks"] == 0).then_some(())
    })
    .unwrap_or_else(|| panic!("Envoy did not take the bundle: {}", sluice.status()));
    serves("public.test", "the bundle published");
    serves("tls.test", "the bundle published");
    assert!(
        runtime.names().iter().all(|n| !n.contains(".tmp")),
        "{:?}",
        runtime.names()
    );
}

#[test]
fn a_self_signed_certificate_that_did_not_fit_is_made_once_there_is_room() {
    let runtime = Tmpfs::mount("256k");
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let idp = Idp::start();
    let plain = config(&ports, &idp, &upstream);
    let dir = tempfile::tempdir().expect("temp dir");
    let sluice = sluice_on(ports, dir.path().join("config.yaml"), &plain, &runtime);
    // TLS without a certificate: sluice generates a self-signed one and writes it for Envoy.
    let tls = plain.replacen("insecure_server: true\n", "", 1);
    assert_ne!(tls, plain);

    let filler = runtime.fill();
    let before = counts(&sluice);
    sluice.write_config(&tls);
    let errors = rejected_once(&sluice, &before, "no room for the self-signed certificate");
    let named = format!("cannot write {}/self-signed-", runtime.path().display());
    assert!(
        errors.contains(&named) && errors.contains("No space left on device"),
        "the error names the file and the reason: {errors}"
    );
    assert_eq!(runtime.names(), ["filler"], "nothing half-written is left");

    // Room again: the next save generates the certificate (the failure was not kept).
    std::fs::remove_file(&filler).expect("free the space");
    let before = counts(&sluice);
    sluice.write_config(&tls);
    poll(Duration::from_secs(10), || {
        let status = sluice.status();
        (status["reload"]["last_error"].is_null()
            && status["reload"]["generation"].as_u64() > Some(before.generation))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the save after freeing space is not published: {}",
            sluice.status()
        )
    });
    let names = runtime.names();
    assert!(
        names.len() == 2
            && names[0].starts_with("self-signed-")
            && names[1].starts_with("self-signed-key-"),
        "{names:?}"
    );
    // sluice's own socket stays plain: its status answers as before.
    assert!(sluice.try_status().is_some());
    drop(dir);
}
