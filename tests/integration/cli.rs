//! The `sluice` binary: exit codes and output of validate, render and bootstrap.

use std::process::{Command, Output};

use crate::common::{envoy, testdata};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

fn config(name: &str) -> String {
    testdata().join("configs").join(name).display().to_string()
}

#[test]
fn validate_exits_0_with_a_summary() {
    let out = sluice(&["validate", "-c", &config("08-matching.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one-line summary: {stdout}");
    assert!(stdout.contains("valid: 6 route(s)"), "{stdout}");
}

#[test]
fn validate_exits_78_with_every_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "insecure_server: true\nroutes:\n  - from: nope\n    to: http://b,0\n",
    )
    .unwrap();
    let out = sluice(&["validate", "-c", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:3:11: error: routes[0].from:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:4:9: error: routes[0].to: zero load balancing weight"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid: 2 error(s)"), "{stderr}");
}

#[test]
fn misuse_exits_64() {
    assert_eq!(sluice(&["validate"]).status.code(), Some(64));
    assert_eq!(sluice(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(
        sluice(&["render", "-c", "x", "--format", "toml"])
            .status
            .code(),
        Some(64)
    );
    assert_eq!(sluice(&["--help"]).status.code(), Some(0));
}

#[test]
fn a_missing_file_is_a_config_error() {
    let out = sluice(&["validate", "-c", "/nonexistent/sluice.yaml"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
}

#[test]
fn render_and_bootstrap_are_accepted_by_envoy() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (name, args) in [
        (
            "render.yaml",
            vec!["render", "-c", &config("02-tls-certificates.yaml")],
        ),
        (
            "render.json",
            vec!["render", "-c", &config("05-http3.yaml"), "--format", "json"],
        ),
        (
            "delta.yaml",
            vec![
                "bootstrap",
                "-c",
                &config("16-identity.yaml"),
                "--ads",
                "delta",
                "--node-id",
                "edge-1",
            ],
        ),
        (
            "sotw.json",
            vec![
                "bootstrap",
                "-c",
                &config("01-minimal-insecure.yaml"),
                "--ads",
                "sotw",
                "--format",
                "json",
            ],
        ),
    ] {
        let out = sluice(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.path().join(name);
        std::fs::write(&file, &out.stdout).unwrap();
        envoy::validate(&file)
            .unwrap_or_else(|e| panic!("Envoy rejected `sluice {}`:\n{e}", args.join(" ")));
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn bootstrap_points_at_grpc_address_and_admin() {
    let out = sluice(&[
        "bootstrap",
        "-c",
        &config("16-identity.yaml"),
        "--format",
        "json",
        "--node-id",
        "edge-1",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["node"]["id"], "edge-1");
    assert_eq!(
        json["dynamic_resources"]["ads_config"]["api_type"],
        "DELTA_GRPC"
    );
    assert_eq!(
        json["admin"]["address"]["socket_address"]["port_value"],
        19901
    );
    let xds = &json["static_resources"]["clusters"][0];
    assert_eq!(xds["name"], "sluice/xds");
    let addr = &xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    assert_eq!(
        (addr["address"].as_str(), addr["port_value"].as_u64()),
        (Some("127.0.0.1"), Some(15443))
    );
}

#[test]
fn render_never_prints_secrets() {
    let out = sluice(&["render", "-c", &config("16-identity.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "golden-client-secret-value",
        "D3YAHo+K5pP2mhS4yndaP2laPXjq0PC2PIO7BeNfg9A=",
        "PRIVATE KEY",
        "LS0tLS1CRUdJTi",
    ] {
        assert!(!all.contains(secret), "render printed a secret ({secret})");
    }
}

/// The bootstraps in `envoy/` (for an external Envoy beside sluice) are what `sluice
/// bootstrap` prints for the example config, and Envoy accepts them.
#[test]
fn shipped_bootstraps_are_current_and_valid() {
    let root = crate::common::repo_root();
    let example = root.join("examples/config.yaml").display().to_string();
    let compose = root
        .join("examples/compose/config.yaml")
        .display()
        .to_string();
    for (file, config, flavour, node) in [
        ("bootstrap-delta.yaml", &example, "delta", "envoy-1"),
        ("bootstrap-sotw.yaml", &example, "sotw", "envoy-1"),
        ("bootstrap-compose.yaml", &compose, "delta", "envoy-compose"),
    ] {
        let out = sluice(&[
            "bootstrap",
            "-c",
            config,
            "--ads",
            flavour,
            "--node-id",
            node,
        ]);
        assert_eq!(out.status.code(), Some(0));
        let path = crate::common::repo_root().join("envoy").join(file);
        crate::common::golden::check(&path, &String::from_utf8_lossy(&out.stdout))
            .unwrap_or_else(|e| panic!("{e}"));
        envoy::validate(&path).unwrap_or_else(|e| panic!("Envoy rejected {}: {e}", path.display()));
    }
}

#[test]
fn the_example_config_renders_for_envoy() {
    let example = crate::common::repo_root()
        .join("examples/config.yaml")
        .display()
        .to_string();
    let out = sluice(&["render", "-c", &example]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    envoy::validate(&file).unwrap_or_else(|e| panic!("Envoy rejected the example: {e}"));
}

fn check(args: &[&str]) -> String {
    let mut all = vec!["check", "-c"];
    let file = config("15-policy.yaml");
    all.push(&file);
    all.extend_from_slice(args);
    let out = sluice(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_explains_an_allow_with_the_deciding_criteria() {
    let out = check(&[
        "--url",
        "http://people.example.com/",
        "--claims",
        r#"{"sub":"u1","email":"carol@example.org"}"#,
    ]);
    assert!(out.contains("routes[0]"), "{out}");
    assert!(out.contains("(line 5)"), "{out}");
    assert!(out.contains("decision: allow"), "{out}");
    assert!(
        out.contains("domain"),
        "the deciding criterion is named: {out}"
    );
}

#[test]
fn check_reports_sign_in_as_302_for_browsers_and_401_otherwise() {
    let browser = check(&[
        "--url",
        "http://people.example.com/",
        "--header",
        "Accept: text/html",
    ]);
    assert!(browser.contains("decision: sign in (302"), "{browser}");
    let api = check(&[
        "--url",
        "http://people.example.com/",
        "--header",
        "Accept: application/json",
    ]);
    assert!(api.contains("decision: sign in (401"), "{api}");
}

#[test]
fn check_reports_deny_over_allow_with_the_deny_reason() {
    let out = check(&[
        "--url",
        "http://ppl.example.com/admin/users",
        "--claims",
        r#"{"sub":"root","email":"root@example.com","groups":["admins"]}"#,
    ]);
    assert!(out.contains("decision: deny (403)"), "{out}");
    assert!(out.contains("http_path"), "{out}");
}

#[test]
fn check_reports_public_routes_unknown_hosts_and_bad_input() {
    let public = check(&["--url", "http://open.example.com/x"]);
    assert!(public.contains("ext_authz is not called"), "{public}");
    let unknown = check(&["--url", "http://nowhere.example.net/"]);
    assert!(unknown.contains("404"), "{unknown}");
    let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1MiIsImVtYWlsIjoiZGFuQGV4YW1wbGUuY29tIn0.c2ln";
    let by_token = check(&["--url", "http://people.example.com/", "--token", token]);
    assert!(by_token.contains("dan@example.com"), "{by_token}");
    assert!(by_token.contains("not verified offline"), "{by_token}");
    let bad = sluice(&[
        "check",
        "-c",
        &config("15-policy.yaml"),
        "--url",
        "http://people.example.com/",
        "--token",
        "not-a-jwt",
    ]);
    assert_ne!(bad.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("not a JWT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn explain(args: &[&str]) -> String {
    let file = config("06-timeouts.yaml");
    let mut all = vec!["explain", "-c", &file];
    all.extend_from_slice(args);
    let out = sluice(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One line of the limits table, by its name.
fn limit<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
}

#[test]
fn explain_names_every_limit_and_where_it_comes_from() {
    // Pomerium defaults on a route without timeout keys: ordinary requests get
    // default_upstream_timeout, streams get none.
    let sse = explain(&[
        "--url",
        "http://plain.example.com/events",
        "--header",
        "Accept: text/event-stream",
    ]);
    assert!(
        sse.contains("a stream request (Accept: text/event-stream)"),
        "{sse}"
    );
    assert!(
        sse.contains("/sse"),
        "the SSE variant of the Envoy route: {sse}"
    );
    assert!(limit(&sse, "route timeout").contains("none (0s)"), "{sse}");
    assert!(
        sse.contains("ordinary requests get 45s: `default_upstream_timeout`, line 9"),
        "{sse}"
    );
    let ordinary = explain(&["--url", "http://plain.example.com/"]);
    assert!(
        limit(&ordinary, "route timeout").contains("45s"),
        "{ordinary}"
    );
    // Keys the route and the file set, with their lines; sluice's own choices say so.
    let slow = explain(&["--url", "http://slow.example.com/"]);
    assert!(
        limit(&slow, "route timeout").contains("`timeout`, line 18"),
        "{slow}"
    );
    assert!(
        limit(&slow, "route idle timeout").contains("`idle_timeout`, line 19"),
        "{slow}"
    );
    assert!(
        limit(&slow, "stream idle timeout").contains("`timeout_idle`, line 8"),
        "{slow}"
    );
    assert!(
        limit(&slow, "request timeout").contains("`timeout_read`, line 4"),
        "{slow}"
    );
    assert!(
        limit(&slow, "max stream duration").contains("`timeout_write`, line 5"),
        "{slow}"
    );
    assert!(
        limit(&slow, "listener drain window").contains("`sluice_drain_time`, line 6"),
        "{slow}"
    );
    assert!(
        limit(&slow, "HTTP/2 drain grace").contains("`sluice_http2_drain_timeout`, line 7"),
        "{slow}"
    );
    assert!(
        limit(&slow, "downstream buffer limit").contains("32 KiB"),
        "{slow}"
    );
    assert!(
        limit(&slow, "max connection duration").contains("Envoy default"),
        "{slow}"
    );
    assert!(
        limit(&slow, "ext_authz call timeout").contains("grpc_client_timeout"),
        "{slow}"
    );
    let unknown = explain(&["--url", "http://elsewhere.example.net/"]);
    assert!(unknown.contains("none matches"), "{unknown}");
}

#[test]
fn envoy_flags_carry_the_drain_window() {
    let out = sluice(&["envoy-flags", "-c", &config("06-timeouts.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "--drain-time-s 900 --drain-strategy immediate"
    );
}
