//! What triggers a reload and what a reload sends: in-place writes, atomic renames,
//! Kubernetes ConfigMap symlink swaps, SIGHUP, no-op reloads, and certificate rotation over SDS.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::envoy::Envoy;
use crate::common::http;
use crate::common::process::poll;
use crate::common::sluice::{Ports, Sluice};
use crate::common::testdata;
use crate::common::upstream::Upstream;

fn route(host: &str, to: &str) -> String {
    format!(
        "  - from: http://{host}\n    to: {to}\n    allow_public_unauthenticated_access: true\n"
    )
}

fn config(ports: &Ports, hosts: &[&str]) -> String {
    let routes: String = hosts
        .iter()
        .map(|h| route(h, "http://127.0.0.1:1"))
        .collect();
    format!("{}routes:\n{routes}", ports.globals())
}

#[test]
fn an_atomic_rename_is_picked_up() {
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports, &["a.test"]));
    sluice.rename_config(&config(&ports, &["a.test", "b.test"]));
    assert!(
        sluice.wait_generation(2),
        "the renamed file was not reloaded: {}",
        sluice.status()
    );
}

/// Kubernetes mounts a ConfigMap as `config.yaml -> ..data/config.yaml`, `..data -> ..<stamp>`,
/// and updates it by swapping the `..data` symlink.
#[test]
fn a_kubernetes_configmap_swap_is_picked_up() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let version = |name: &str, text: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("config.yaml"), text).unwrap();
    };
    version("..2026_11_21_1", &config(&ports, &["a.test"]));
    std::os::unix::fs::symlink("..2026_11_21_1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.yaml", dir.path().join("config.yaml")).unwrap();
    let config_path = dir.path().join("config.yaml");
    let sluice = Sluice::start_with(ports, dir, config_path);

    let root = sluice.dir.path();
    let d = root.join("..2026_11_21_2");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("config.yaml"), config(&ports, &["a.test", "b.test"])).unwrap();
    std::os::unix::fs::symlink("..2026_11_21_2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    assert!(
        sluice.wait_generation(2),
        "the ConfigMap swap was not reloaded: {}",
        sluice.status()
    );
}

/// The config is a symlink into a folder sluice does not watch, so only SIGHUP reloads it.
#[test]
fn sighup_reloads() {
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.yaml");
    std::fs::write(&target, config(&ports, &["a.test"])).unwrap();
    let config_path = dir.path().join("config.yaml");
    std::os::unix::fs::symlink(&target, &config_path).unwrap();
    let sluice = Sluice::start_with(ports, dir, config_path);
    std::fs::write(&target, config(&ports, &["a.test", "b.test"])).unwrap();
    sluice.guard.signal("HUP");
    assert!(
        sluice.wait_generation(2),
        "SIGHUP did not reload: {}",
        sluice.status()
    );
    assert!(
        sluice.wait_log("SIGHUP: reloading"),
        "{}",
        sluice.guard.log_text()
    );
}

/// Rewriting the file without changing what it means publishes nothing and sends 0 bytes.
#[test]
fn a_no_op_reload_sends_nothing() {
    let ports = Ports::new();
    let text = config(&ports, &["a.test"]);
    let sluice = Sluice::start(ports, &text);
    let _envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    let settled = poll(Duration::from_secs(10), || {
        let e = sluice.envoy_status("edge-1")?;
        (e["types"]["RDS"]["acked_version"] == e["types"]["RDS"]["sent_version"]
            && !e["types"]["RDS"]["acked_version"].is_null())
        .then_some(())
    });
    assert!(settled.is_some(), "{}", sluice.status());
    let before = sluice.status()["counters"].clone();
    // Same meaning, different bytes: a comment and different key order.
    sluice.write_config(&format!("# reformatted\n{text}"));
    let unchanged = poll(Duration::from_secs(10), || {
        (sluice.status()["reload"]["unchanged"].as_u64() >= Some(1)).then_some(())
    });
    assert!(
        unchanged.is_some(),
        "the rewrite was not reloaded: {}",
        sluice.status()
    );
    let after = sluice.status()["counters"].clone();
    assert_eq!(
        after["bytes_sent"], before["bytes_sent"],
        "a no-op reload sent bytes"
    );
    assert_eq!(after["responses"], before["responses"]);
    assert_eq!(sluice.generation(), 1);
}

fn served_fingerprint(port: u16) -> Option<String> {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername app.example.com </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    );
    let out = Command::new("sh").arg("-c").arg(script).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.contains('=').then_some(text)
}

fn file_fingerprint(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replacing the certificate files changes what Envoy serves, over SDS, without replacing the
/// listener.
#[test]
fn certificate_rotation_does_not_touch_the_listener() {
    let upstream = Upstream::start("app");
    let ports = Ports::new();
    let dir = tempfile::tempdir().unwrap();
    let certs = testdata().join("certs");
    std::fs::copy(certs.join("server.pem"), dir.path().join("tls.crt")).unwrap();
    std::fs::copy(certs.join("server-key.pem"), dir.path().join("tls.key")).unwrap();
    let text = format!(
        "address: 127.0.0.1:{}\ngrpc_address: 127.0.0.1:{}\nenvoy_admin_address: 127.0.0.1:{}\ncertificates:\n  - cert: tls.crt\n    key: tls.key\nroutes:\n  - from: https://app.example.com\n    to: {}\n    allow_public_unauthenticated_access: true\n",
        ports.listener,
        ports.grpc,
        ports.admin,
        upstream.url()
    );
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, text).unwrap();
    let sluice = Sluice::start_with(ports, dir, config_path);
    let envoy = Envoy::start(
        "envoy",
        &sluice.bootstrap("edge-1", "delta", ports.admin),
        ports.admin,
    );
    let first = poll(Duration::from_secs(10), || {
        served_fingerprint(ports.listener)
    })
    .expect("TLS listener serving");
    assert_eq!(first, file_fingerprint(&certs.join("server.pem")));

    // Rotate as cert-manager and most tools do: write new files, then rename over the old.
    let root = sluice.dir.path();
    std::fs::copy(certs.join("upstream.pem"), root.join(".tls.crt.new")).unwrap();
    std::fs::copy(certs.join("upstream-key.pem"), root.join(".tls.key.new")).unwrap();
    std::fs::rename(root.join(".tls.key.new"), root.join("tls.key")).unwrap();
    std::fs::rename(root.join(".tls.crt.new"), root.join("tls.crt")).unwrap();
    let rotated = file_fingerprint(&certs.join("upstream.pem"));
    let served = poll(Duration::from_secs(15), || {
        served_fingerprint(ports.listener).filter(|f| *f == rotated)
    });
    assert!(
        served.is_some(),
        "Envoy still serves the old certificate; sluice: {}",
        sluice.status()
    );
    assert_eq!(
        envoy.stat("listener_manager.listener_modified"),
        0,
        "rotation replaced the listener"
    );
    assert_eq!(
        envoy.stat("listener_manager.total_filter_chains_draining"),
        0
    );
    let body = http::get(ports.admin, "admin", "/certs").unwrap().body;
    assert!(
        body.contains("upstream.example.com"),
        "Envoy's /certs does not show the new certificate"
    );
}
