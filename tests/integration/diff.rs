//! `sluice diff OLD NEW`: what a config change would do to Envoy, checked on route edits, new
//! hosts, certificate lists and contents, `codec_type`, the first wildcard route and removals,
//! and against a real Envoy (a route edit never modifies the listener, a codec change does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::envoy::Envoy;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::tls;
use crate::common::upstream::Upstream;

struct Diff {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn diff(old: &Path, new: &Path, extra: &[&str]) -> Diff {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("diff")
        .arg(old)
        .arg(new)
        .args(extra)
        .output()
        .expect("run sluice diff");
    Diff {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A TLS config with two hosts; `extra_globals` goes before `routes:`, `extra_routes` after.
fn config(extra_globals: &str, a_route: &str, extra_routes: &str) -> String {
    let certs = tls::certs();
    format!(
        "address: 127.0.0.1:8443\ngrpc_address: 127.0.0.1:5443\ncertificates:\n  - cert: {}\n    key: {}\n{extra_globals}routes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:9000\n    allowed_domains: [example.com]\n    set_request_headers:\n      X-Api-Key: hunter2-request-secret\n{a_route}  - from: https://b.example.com\n    to: http://127.0.0.1:9001\n    allow_public_unauthenticated_access: true\n{extra_routes}",
        certs.join("server.pem").display(),
        certs.join("server-key.pem").display(),
    )
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }
}

/// Key material and confidential values that must never be printed.
fn assert_no_secrets(d: &Diff) {
    let key = std::fs::read_to_string(tls::certs().join("server-key.pem")).unwrap();
    let key_line = key
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 20)
        .expect("a base64 line in the key");
    let all = format!("{}{}", d.stdout, d.stderr);
    for secret in [key_line, "PRIVATE KEY", "hunter2"] {
        assert!(
            !all.contains(secret),
            "diff printed a secret ({secret}):\n{all}"
        );
    }
}

/// Runs the diff both ways (text and JSON) and checks the exit code, that the JSON report
/// agrees, and that nothing confidential is printed.
fn run(old: &Path, new: &Path, expected: i32) -> Diff {
    let text = diff(old, new, &[]);
    assert_eq!(
        text.code,
        Some(expected),
        "stdout:\n{}\nstderr:\n{}",
        text.stdout,
        text.stderr
    );
    assert_no_secrets(&text);
    let json = diff(old, new, &["--format", "json"]);
    assert_eq!(json.code, Some(expected), "{}", json.stderr);
    assert_no_secrets(&json);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON report");
    assert_eq!(report["exit_code"], expected);
    assert_eq!(report["drain"].is_null(), expected != 2, "{report:#}");
    text
}

/// The report's lines about one resource.
fn line<'a>(d: &'a Diff, start: &str) -> &'a str {
    d.stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{}", d.stdout))
}

#[test]
fn identical_configs_have_no_changes() {
    let f = Files::new();
    let old = f.write("old.yaml", &config("", "", ""));
    // Formatting and comments are not changes.
    let new = f.write("new.yaml", &format!("# edited\n{}\n\n", config("", "", "")));
    let d = run(&old, &new, 0);
    assert_eq!(d.stdout.trim(), "no changes: Envoy would be sent nothing");
}

#[test]
fn a_route_edit_changes_its_table_and_drains_nothing() {
    let f = Files::new();
    let old = f.write("old.yaml", &config("", "", ""));
    let new = f.write("new.yaml", &config("", "    timeout: 45s\n", ""));
    let d = run(&old, &new, 1);
    let table = line(&d, "changed route table  routes/ingress/a.example.com:");
    assert!(
        table.contains("(https://a.example.com, NEW line 7): route.timeout: 30s → 45s"),
        "{table}"
    );
    assert_eq!(
        d.stdout
            .lines()
            .filter(|l| l.starts_with("changed"))
            .count(),
        1
    );
    assert!(!d.stdout.contains("DRAIN"), "{}", d.stdout);
    assert!(
        d.stdout
            .ends_with("1 changed, 0 added, 0 removed; no listener drains\n"),
        "{}",
        d.stdout
    );

    // A response header edit: the route changes, the header's value is not printed.
    let new = f.write(
        "headers.yaml",
        &config(
            "",
            "    set_response_headers:\n      X-Frame-Options: hunter2-response-value\n",
            "",
        ),
    );
    let d = run(&old, &new, 1);
    let table = line(&d, "changed route table  routes/ingress/a.example.com:");
    assert!(table.contains("response_headers_to_add"), "{table}");
}

#[test]
fn a_new_host_adds_its_table_scope_and_cluster() {
    let f = Files::new();
    let old = f.write("old.yaml", &config("", "", ""));
    let new = f.write(
        "new.yaml",
        &config(
            "",
            "",
            "  - from: https://c.example.com\n    to: http://127.0.0.1:9002\n    allow_public_unauthenticated_access: true\n",
        ),
    );
    let d = run(&old, &new, 1);
    let table = line(&d, "added   route table  routes/ingress/c.example.com:");
    assert!(table.contains("route(s) for c.example.com"), "{table}");
    let scope = line(&d, "added   scope        scope/ingress/c.example.com:");
    assert!(
        scope
            .contains("host c.example.com gets its own route table (routes/ingress/c.example.com)"),
        "{scope}"
    );
    let cluster = line(&d, "added   cluster      cluster/127.0.0.1-9002-");
    assert!(
        cluster.contains("endpoints 127.0.0.1:9002 (plain)"),
        "{cluster}"
    );
    assert!(
        d.stdout
            .ends_with("0 changed, 3 added, 0 removed; no listener drains\n"),
        "{}",
        d.stdout
    );
}

#[test]
fn removing_a_route_removes_its_table_scope_and_cluster() {
    let f = Files::new();
    let old = f.write(
        "old.yaml",
        &config(
            "",
            "",
            "  - from: https://c.example.com\n    to: http://127.0.0.1:9002\n    allow_public_unauthenticated_access: true\n",
        ),
    );
    let new = f.write("new.yaml", &config("", "", ""));
    let d = run(&old, &new, 1);
    line(&d, "removed route table  routes/ingress/c.example.com:");
    line(
        &d,
        "removed scope        scope/ingress/c.example.com: host c.example.com loses",
    );
    let cluster = line(&d, "removed cluster      cluster/127.0.0.1-9002-");
    assert!(cluster.contains("no route uses it any more"), "{cluster}");
    assert!(
        d.stdout
            .contains("0 changed, 0 added, 3 removed; no listener drains")
    );

    // A second route on a host that keeps its table: the table changes, naming the route.
    let old = f.write(
        "two.yaml",
        &config(
            "",
            "",
            "  - from: https://b.example.com\n    prefix: /admin\n    to: http://127.0.0.1:9003\n    allowed_domains: [example.com]\n",
        ),
    );
    let d = run(&old, &new, 1);
    let table = line(&d, "changed route table  routes/ingress/b.example.com:");
    assert!(
        table.contains("routes removed: route/") && table.contains("prefix /admin, OLD line 15"),
        "{table}"
    );
}

#[test]
fn a_new_certificate_changes_the_listener_and_drains() {
    let f = Files::new();
    let certs = tls::certs();
    let old = f.write("old.yaml", &config("", "", ""));
    let second = format!(
        "  - cert: {}\n    key: {}\n",
        certs.join("upstream.pem").display(),
        certs.join("upstream-key.pem").display()
    );
    // Appended to the `certificates` list, which `config` ends its globals with.
    let new = f.write("new.yaml", &config(&second, "", ""));
    let d = run(&old, &new, 2);
    let listener = line(&d, "changed listener     listener/ingress:");
    assert!(
        listener.contains("certificate list changed (secret/certificate-1 added)"),
        "{listener}"
    );
    line(
        &d,
        "added   secret       secret/certificate-1: certificate added",
    );
    assert!(d.stdout.contains("**DRAIN: listener/ingress would change"));
    assert!(
        d.stdout
            .ends_with("1 changed, 1 added, 0 removed; 1 listener drains\n")
    );
}

#[test]
fn new_certificate_content_travels_over_sds_without_a_drain() {
    let f = Files::new();
    let certs = tls::certs();
    let old = f.write("old.yaml", &config("", "", ""));
    // The same list position, other files: the secret changes, the listener does not.
    let text = config("", "", "")
        .replace("server.pem", "upstream.pem")
        .replace("server-key.pem", "upstream-key.pem");
    assert!(text.contains(&certs.join("upstream-key.pem").display().to_string()));
    let new = f.write("new.yaml", &text);
    let d = run(&old, &new, 1);
    let secret = line(&d, "changed secret       secret/certificate-0:");
    assert!(secret.contains("certificate changed"), "{secret}");
    assert!(!d.stdout.contains("listener/ingress"), "{}", d.stdout);
    assert!(
        d.stdout
            .ends_with("1 changed, 0 added, 0 removed; no listener drains\n")
    );
}

#[test]
fn a_codec_change_drains_for_the_drain_time() {
    let f = Files::new();
    let timing = "sluice_drain_time: 42s\nsluice_http2_drain_timeout: 3s\n";
    let old = f.write("old.yaml", &config(timing, "", ""));
    let new = f.write(
        "new.yaml",
        &config(&format!("{timing}codec_type: http1\n"), "", ""),
    );
    let d = run(&old, &new, 2);
    let listener = line(&d, "changed listener     listener/ingress:");
    assert!(
        listener.contains("hcm.codec_type: AUTO → HTTP1"),
        "{listener}"
    );
    let drain = line(&d, "**DRAIN:");
    assert!(drain.ends_with("**"), "{drain}");
    assert!(
        drain.contains("the final one after 3s") && drain.contains("after 42s (sluice_drain_time)"),
        "{drain}"
    );

    // The drain window is Envoy's start-up flag: a new value is noted, the old one applies.
    let longer = f.write(
        "longer.yaml",
        &config(
            "sluice_drain_time: 90s\nsluice_http2_drain_timeout: 3s\ncodec_type: http1\n",
            "",
            "",
        ),
    );
    let d = run(&old, &longer, 2);
    let drain = line(&d, "**DRAIN:");
    assert!(
        drain.contains("after 42s") && drain.contains("NEW sets sluice_drain_time to 1m30s"),
        "{drain}"
    );
}

#[test]
fn the_first_wildcard_route_switches_to_one_table_and_drains() {
    let f = Files::new();
    let old = f.write("old.yaml", &config("", "", ""));
    let new = f.write(
        "new.yaml",
        &config(
            "",
            "",
            "  - from: https://*.example.com\n    to: http://127.0.0.1:9002\n    allow_public_unauthenticated_access: true\n",
        ),
    );
    let d = run(&old, &new, 2);
    let listener = line(&d, "changed listener     listener/ingress:");
    assert!(
        listener.contains("one route table for every host instead of a table per host"),
        "{listener}"
    );
    line(&d, "added   route table  routes/ingress: new route table:");
    for host in ["a.example.com", "b.example.com"] {
        line(&d, &format!("removed route table  routes/ingress/{host}:"));
        line(&d, &format!("removed scope        scope/ingress/{host}:"));
    }
    assert!(d.stdout.contains("**DRAIN: listener/ingress would change"));
    assert!(
        d.stdout
            .ends_with("1 changed, 2 added, 4 removed; 1 listener drains\n")
    );

    // And back: the last wildcard route gone.
    let d = run(&new, &old, 2);
    let listener = line(&d, "changed listener     listener/ingress:");
    assert!(
        listener.contains("a route table per host instead of one table"),
        "{listener}"
    );
}

#[test]
fn a_bad_new_file_exits_78_with_its_line() {
    let f = Files::new();
    let old = f.write("old.yaml", &config("", "", ""));
    let new = f.write(
        "bad.yaml",
        &config("", "", "").replace("https://b.example.com", "https://b.example.com:x"),
    );
    let d = diff(&old, &new, &[]);
    assert_eq!(d.code, Some(78), "{}", d.stderr);
    assert!(d.stdout.is_empty(), "{}", d.stdout);
    assert!(
        d.stderr.contains("bad.yaml:12:11: error: routes[1].from:"),
        "{}",
        d.stderr
    );
    assert!(
        d.stderr.contains(&format!(
            "sluice diff: NEW config {} is invalid; nothing was compared",
            new.display()
        )),
        "{}",
        d.stderr
    );
    // Either side.
    assert_eq!(diff(&new, &old, &[]).code, Some(78));
    let missing = diff(&old, Path::new("/nonexistent/new.yaml"), &[]);
    assert_eq!(missing.code, Some(78));
    assert!(missing.stderr.contains("cannot read the config file"));
    // Misuse.
    let usage = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["diff", "only-one.yaml"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(64));
}

/// `diff`'s claims hold for a real Envoy: the route edit it calls drain-free leaves the
/// listener alone (`listener_modified` stays 0) and the codec change it calls a drain
/// modifies the listener.
#[test]
fn a_real_envoy_agrees_with_diff() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let text = |timeout: &str, codec: &str| {
        format!(
            "{}{codec}routes:\n  - from: http://app.example.com\n    to: {}\n    allow_public_unauthenticated_access: true\n{timeout}",
            ports.globals(),
            upstream.url()
        )
    };
    let sluice = Sluice::start(ports, &text("", ""));
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    let served = poll(Duration::from_secs(15), || {
        let r = crate::common::http::get(ports.listener, "app.example.com", "/").ok()?;
        (r.status == 200).then_some(())
    });
    assert!(served.is_some(), "Envoy never served the route");
    let f = Files::new();

    // A route edit: diff says exit 1 and no drain; Envoy gets a new route table only.
    let old = f.write("old.yaml", &text("", ""));
    let edited = text("    timeout: 45s\n", "");
    let new = f.write("new.yaml", &edited);
    let d = run(&old, &new, 1);
    assert!(d.stdout.contains("no listener drains"), "{}", d.stdout);
    sluice.write_config(&edited);
    let arrived = poll(Duration::from_secs(15), || {
        envoy
            .config_dump("dynamic_route_configs")
            .to_string()
            .contains("\"timeout\":\"45s\"")
            .then_some(())
    });
    assert!(arrived.is_some(), "the route edit never reached Envoy");
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 0);
    assert_eq!(
        envoy.stat("listener_manager.total_filter_chains_draining"),
        0
    );
    assert_eq!(envoy.stat("listener_manager.total_listeners_draining"), 0);

    // A codec change: diff says exit 2 with a drain; Envoy modifies the listener.
    let codec = text("    timeout: 45s\n", "codec_type: http1\n");
    let next = f.write("codec.yaml", &codec);
    let d = run(&new, &next, 2);
    assert!(
        d.stdout.contains("**DRAIN: listener/ingress"),
        "{}",
        d.stdout
    );
    sluice.write_config(&codec);
    let modified = poll(Duration::from_secs(15), || {
        (envoy.stat("listener_manager.listener_modified") >= 1).then_some(())
    });
    assert!(
        modified.is_some(),
        "the codec change never modified Envoy's listener; Envoy's log:\n{}",
        envoy.guard.log_text()
    );
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 1);
}

/// The certificate cases against a real Envoy: other files for the same `certificates` entry
/// arrive over SDS and leave the listener alone; a second entry modifies the listener.
#[test]
fn a_real_envoy_agrees_with_diff_on_certificates() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let certs = tls::certs();
    let route = format!(
        "routes:\n  - from: https://app.example.com\n    to: {}\n    allow_public_unauthenticated_access: true\n",
        upstream.url()
    );
    let first = format!("{}{route}", tls::listener_globals(&ports));
    let sluice = Sluice::start(ports, &first);
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    // Whether Envoy's /certs shows a certificate with this name, within a deadline.
    let serves = |name: &str| {
        poll(Duration::from_secs(15), || {
            let certs = crate::common::http::get(ports.admin, "admin", "/certs").ok()?;
            certs.body.contains(name).then_some(())
        })
        .is_some()
    };
    assert!(
        serves("server.example.com"),
        "Envoy never loaded the first certificate"
    );
    let f = Files::new();
    let old = f.write("old.yaml", &first);

    // The same entry, other files.
    let other = first
        .replace("server.pem", "upstream.pem")
        .replace("server-key.pem", "upstream-key.pem");
    let new = f.write("other.yaml", &other);
    let d = run(&old, &new, 1);
    line(
        &d,
        "changed secret       secret/certificate-0: certificate changed",
    );
    sluice.write_config(&other);
    assert!(
        serves("upstream.example.com"),
        "the new certificate files never reached Envoy"
    );
    assert_eq!(envoy.stat("listener_manager.listener_modified"), 0);
    assert_eq!(
        envoy.stat("listener_manager.total_filter_chains_draining"),
        0
    );

    // A second entry: the listener's certificate list grows.
    let two = other.replace(
        "routes:\n",
        &format!(
            "  - cert: {}\n    key: {}\nroutes:\n",
            certs.join("server.pem").display(),
            certs.join("server-key.pem").display()
        ),
    );
    let next = f.write("two.yaml", &two);
    let d = run(&new, &next, 2);
    line(
        &d,
        "changed listener     listener/ingress: certificate list changed",
    );
    sluice.write_config(&two);
    let modified = poll(Duration::from_secs(15), || {
        (envoy.stat("listener_manager.listener_modified") >= 1).then_some(())
    });
    assert!(
        modified.is_some(),
        "a second certificate never modified Envoy's listener; Envoy's log:\n{}",
        envoy.guard.log_text()
    );
}
