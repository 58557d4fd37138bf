//! sluice's metrics checked by the real Prometheus tools: `promtool check metrics` accepts
//! `/metrics`, a Prometheus server scrapes it (`up == 1`, a sluice histogram found through its
//! query API), `/metrics/envoy` proxies a real Envoy's admin, and publish → ACK is measured.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::envoy::Envoy;
use crate::common::http;
use crate::common::process::{Guard, free_port, poll};
use crate::common::sluice::{Ports, Sluice};
use crate::logs::{check_request, send_checks};

const INSTALL_HINT: &str = "install the Debian package `prometheus` (`apt-get install -y prometheus`, \
     or run `bash scripts/test.sh`, which installs it)";

/// A Prometheus tool on PATH, or a failure saying how to install it.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("`{name}` not found on PATH: {INSTALL_HINT}"))
}

fn config(ports: &Ports, metrics_port: u16, hosts: &[&str]) -> String {
    let mut text = format!(
        "{}metrics_address: 127.0.0.1:{metrics_port}\nlog_format: json\nroutes:\n",
        ports.globals()
    );
    for host in hosts {
        text.push_str(&format!(
            "  - id: {host}\n    from: http://{host}\n    to: http://127.0.0.1:9\n    allow_any_authenticated_user: true\n"
        ));
    }
    text
}

/// `promtool check metrics` on `text`: its complaints, or None when it accepts it.
fn promtool_complaints(text: &str) -> Option<String> {
    use std::io::Write;
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (!out.status.success() || !said.trim().is_empty()).then_some(said)
}

/// The sum of every sample of `name` (all label sets) in a text exposition.
fn sample_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn checks(n: usize) -> Vec<envoy_types::ext_authz::v3::pb::CheckRequest> {
    (0..n)
        .map(|i| check_request("a.test", "a.test", &format!("/{i}"), &[]))
        .collect()
}

#[test]
fn promtool_accepts_metrics_and_envoy_stats_are_proxied() {
    tool("promtool");
    let ports = Ports::new();
    let metrics_port = free_port();
    let sluice = Sluice::start(ports, &config(&ports, metrics_port, &["a.test"]));
    let bootstrap = sluice.bootstrap("metrics-envoy", "delta", ports.admin);
    let mut envoy = Envoy::start("envoy", &bootstrap, ports.admin);
    assert!(
        poll(Duration::from_secs(20), || {
            let e = sluice.envoy_status("metrics-envoy")?;
            e["types"]["RDS"]["acked_version"].is_string().then_some(())
        })
        .is_some(),
        "Envoy did not acknowledge its routes; sluice log:\n{}",
        sluice.guard.log_text()
    );
    send_checks(&ports, checks(5));

    // An edit: its publish → ACK time is measured per resource type.
    sluice.write_config(&config(&ports, metrics_port, &["a.test", "b.test"]));
    assert!(sluice.wait_generation(2));
    let acked = poll(Duration::from_secs(20), || {
        let text = http::get(metrics_port, "sluice", "/metrics").ok()?.body;
        (sample_sum(&text, "sluice_xds_publish_to_ack_seconds_count") >= 1.0).then_some(text)
    });
    let text = acked.unwrap_or_else(|| {
        panic!(
            "no publish → ACK observed; /metrics:\n{}",
            http::get(metrics_port, "sluice", "/metrics").unwrap().body
        )
    });

    // Both ports serve the same families; the classic text format unless asked otherwise.
    let reply = http::get(ports.grpc, "sluice", "/metrics").unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for body in [&text, &reply.body] {
        if let Some(complaints) = promtool_complaints(body) {
            panic!("promtool check metrics complained:\n{complaints}\n--- output:\n{body}");
        }
    }
    assert!(
        sample_sum(&text, "sluice_authz_check_duration_seconds_count") >= 5.0,
        "{text}"
    );
    assert!(
        text.contains(
            "sluice_authz_decisions_total{outcome=\"sign_in\",reason=\"user-unauthenticated\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("sluice_config_reloads_total{result=\"published\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sluice_xds_acks_total{type_url=\"type.googleapis.com/envoy.config.cluster.v3.Cluster\"}"),
        "{text}"
    );
    assert!(
        sample_sum(&text, "sluice_config_reload_duration_seconds_count") >= 4.0,
        "every stage of the reload is timed: {text}"
    );
    assert_eq!(
        sample_sum(&text, "sluice_xds_connected_envoys"),
        1.0,
        "{text}"
    );

    let open = http::request(
        "GET",
        metrics_port,
        "sluice",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )],
    )
    .unwrap();
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);

    // Envoy's own stats, from its admin, on both ports.
    for port in [ports.grpc, metrics_port] {
        let envoy_stats = http::get(port, "sluice", "/metrics/envoy").unwrap();
        assert_eq!(envoy_stats.status, 200, "{}", envoy_stats.body);
        assert!(
            envoy_stats.body.contains("envoy_server_live")
                && envoy_stats
                    .body
                    .contains("# TYPE envoy_cluster_manager_cds_update_success counter"),
            "{}",
            envoy_stats.body
        );
    }
    envoy.guard.stop();
    let gone = http::get(metrics_port, "sluice", "/metrics/envoy").unwrap();
    assert_eq!(gone.status, 503, "{}", gone.body);
    assert!(gone.body.contains("did not answer"), "{}", gone.body);
}

/// A Prometheus server on loopback, killed when the test ends (also on panic).
struct Prometheus {
    guard: Guard,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target_port: u16) -> Prometheus {
        let binary = tool("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sluice\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let guard = Guard::spawn("prometheus", command, &dir.path().join("prometheus.log"));
        Prometheus {
            guard,
            port,
            _dir: dir,
        }
    }

    /// The result vector of an instant query, or None while Prometheus is not answering.
    fn query(&self, query: &str) -> Option<Vec<Value>> {
        let reply = http::get(
            self.port,
            "prometheus",
            &format!("/api/v1/query?query={query}"),
        )
        .ok()?;
        let json: Value = serde_json::from_str(&reply.body).ok()?;
        (json["status"] == "success").then(|| json["data"]["result"].as_array().cloned())?
    }
}

#[test]
fn prometheus_scrapes_sluice_and_finds_its_histograms() {
    let ports = Ports::new();
    let metrics_port = free_port();
    let sluice = Sluice::start(ports, &config(&ports, metrics_port, &["a.test"]));
    send_checks(&ports, checks(3));
    let prometheus = Prometheus::start(metrics_port);
    let up = poll(Duration::from_secs(60), || {
        let result = prometheus.query("up")?;
        result
            .iter()
            .any(|r| r["metric"]["job"] == "sluice" && r["value"][1] == "1")
            .then_some(())
    });
    assert!(
        up.is_some(),
        "Prometheus never saw sluice up; its log:\n{}",
        prometheus.guard.log_text()
    );
    let buckets = poll(Duration::from_secs(30), || {
        let result = prometheus.query("sluice_authz_check_duration_seconds_bucket")?;
        let count = prometheus.query("sluice_authz_check_duration_seconds_count")?;
        let seen = count
            .first()
            .and_then(|c| c["value"][1].as_str()?.parse::<f64>().ok())?;
        (result.len() > 1 && seen >= 3.0).then_some(result)
    });
    let buckets = buckets.unwrap_or_else(|| {
        panic!(
            "Prometheus has no Check latency histogram; its log:\n{}",
            prometheus.guard.log_text()
        )
    });
    assert!(
        buckets.iter().any(|b| b["metric"]["le"] == "+Inf"),
        "{buckets:?}"
    );
    let decisions = prometheus
        .query("sluice_authz_decisions_total")
        .unwrap_or_default();
    assert!(
        decisions
            .iter()
            .any(|d| d["metric"]["outcome"] == "sign_in"),
        "{decisions:?}"
    );
    drop(sluice);
}
