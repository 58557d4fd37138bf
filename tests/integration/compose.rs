//! The checked-in `docker-compose.yml`: `docker-compose config` accepts it (with no Docker
//! engine), the bootstrap and flags it gives Envoy are what `sluice bootstrap` and `sluice
//! envoy-flags` print for the config it gives sluice, and its topology works without
//! containers: sluice and an external Envoy on loopback, a test upstream standing in for
//! `whoami`, and the request from the compose file's comment reaching it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::envoy::Envoy;
use crate::common::http;
use crate::common::process::poll;
use crate::common::repo_root;
use crate::common::sluice::{Ports, Sluice};
use crate::common::upstream::Upstream;

const COMPOSE_HINT: &str = "docker-compose is required by this test and was not found.\n\
    Install it with `sudo apt-get install -y docker-compose` (the Debian package; \
    `bash scripts/test.sh` installs it), or point SLUICE_DOCKER_COMPOSE at a docker-compose binary.";

/// `$SLUICE_DOCKER_COMPOSE`, else `docker-compose` on PATH.
fn docker_compose() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_DOCKER_COMPOSE") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "SLUICE_DOCKER_COMPOSE={} is not a file.\n{COMPOSE_HINT}",
            p.display()
        );
        return p;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("docker-compose"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{COMPOSE_HINT}"))
}

fn yaml_file(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    sluice::document::yaml::parse(&text)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
        .to_json()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// One compose service, as the test reads it from `docker-compose.yml`.
struct Service {
    command: Vec<String>,
    /// (host source, container target) of each bind mount.
    mounts: Vec<(String, String)>,
    ports: Vec<String>,
}

impl Service {
    fn of(compose: &Value, name: &str) -> Service {
        let s = &compose["services"][name];
        assert!(s.is_object(), "docker-compose.yml has no service {name}");
        let mounts = s["volumes"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(|m| {
                        let mut parts = m.split(':');
                        let source = parts.next().unwrap_or_default().to_string();
                        let target = parts.next().unwrap_or_default().to_string();
                        (source, target)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Service {
            command: strings(&s["command"]),
            mounts,
            ports: if s["ports"].is_array() {
                strings(&s["ports"])
            } else {
                Vec::new()
            },
        }
    }

    /// The argument after `flag` in the command.
    fn arg(&self, flag: &str) -> &str {
        let i = self
            .command
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag} in {:?}", self.command));
        &self.command[i + 1]
    }

    /// The host file mounted at `target`, relative to the repository.
    fn source_of(&self, target: &str) -> PathBuf {
        let (source, _) = self
            .mounts
            .iter()
            .find(|(_, t)| t == target)
            .unwrap_or_else(|| panic!("nothing is mounted at {target}: {:?}", self.mounts));
        repo_root().join(source.trim_start_matches("./"))
    }
}

fn compose() -> Value {
    yaml_file(&repo_root().join("docker-compose.yml"))
}

/// The node id the compose bootstrap is printed with (`sluice bootstrap --node-id`).
const NODE_ID: &str = "envoy-compose";

fn sluice_out(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice");
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn docker_compose_config_accepts_the_compose_file_without_an_engine() {
    let binary = docker_compose();
    // An engine address that cannot answer: `config` must not need one (`build: .` and the
    // images are only named, never pulled or built).
    let run = |args: &[&str]| {
        Command::new(&binary)
            .args(["-f", "docker-compose.yml"])
            .args(args)
            .current_dir(repo_root())
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()))
    };
    let quiet = run(&["config", "-q"]);
    assert!(
        quiet.status.success(),
        "docker-compose config rejected docker-compose.yml:\n{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    // The resolved file: the mounts point at files that exist in the repository.
    let full = run(&["config"]);
    assert!(full.status.success());
    let resolved = sluice::document::yaml::parse(&String::from_utf8_lossy(&full.stdout))
        .expect("docker-compose config prints YAML")
        .expect("not empty")
        .to_json();
    for service in ["sluice", "envoy", "whoami"] {
        assert!(
            resolved["services"][service].is_object(),
            "service {service} missing from:\n{resolved:#}"
        );
    }
    for service in ["sluice", "envoy"] {
        for mount in strings(&resolved["services"][service]["volumes"]) {
            let source = mount.split(':').next().unwrap();
            assert!(
                Path::new(source).is_file(),
                "{service} mounts {source}, which is not a file"
            );
        }
    }
}

#[test]
fn the_compose_bootstrap_and_flags_are_what_sluice_prints() {
    let compose = compose();
    let sluice = Service::of(&compose, "sluice");
    let envoy = Service::of(&compose, "envoy");
    assert_eq!(sluice.command[0], "serve");
    let config = sluice.source_of(sluice.arg("-c"));
    let bootstrap = envoy.source_of(envoy.arg("-c"));
    assert_eq!(config, repo_root().join("examples/compose/config.yaml"));
    assert_eq!(bootstrap, repo_root().join("envoy/bootstrap-compose.yaml"));

    // Byte for byte what `sluice bootstrap` prints for the config sluice runs.
    let config_arg = config.display().to_string();
    let printed = sluice_out(&[
        "bootstrap",
        "-c",
        &config_arg,
        "--ads",
        "delta",
        "--node-id",
        NODE_ID,
    ]);
    let shipped = std::fs::read_to_string(&bootstrap).unwrap();
    assert!(
        printed == shipped,
        "{} is not what `sluice bootstrap -c examples/compose/config.yaml --node-id {NODE_ID}` prints; \
         regenerate it with SLUICE_UPDATE_GOLDEN=1 cargo test --test integration cli::shipped_bootstraps",
        bootstrap.display()
    );

    // Envoy's flags after `-c FILE` are `sluice envoy-flags`.
    let flags = sluice_out(&["envoy-flags", "-c", &config_arg]);
    let flags: Vec<&str> = flags.split_whitespace().collect();
    assert_eq!(envoy.command[0], "envoy");
    let after_bootstrap: Vec<&str> = envoy.command[3..].iter().map(String::as_str).collect();
    assert_eq!(&envoy.command[1..3], ["-c", "/etc/envoy/bootstrap.yaml"]);
    assert_eq!(after_bootstrap, flags, "compose's Envoy flags");

    // The ports compose publishes are the listener's and the admin's.
    let model = yaml_file(&config);
    let port = |key: &str| {
        model[key]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .unwrap_or_else(|| panic!("{key} in {}", config.display()))
            .to_string()
    };
    let (listener, admin) = (port("address"), port("envoy_admin_address"));
    assert!(
        envoy
            .ports
            .iter()
            .any(|p| p.ends_with(&format!(":{listener}"))),
        "compose does not publish the listener port {listener}: {:?}",
        envoy.ports
    );
    assert!(
        envoy
            .ports
            .iter()
            .any(|p| *p == format!("127.0.0.1:{admin}:{admin}")),
        "compose should publish the admin port {admin} on loopback only: {:?}",
        envoy.ports
    );
    // The image is the Envoy the tests run.
    let image = compose["services"]["envoy"]["image"].as_str().unwrap();
    assert!(image.starts_with("envoyproxy/envoy:v1.40"), "{image}");
}

/// Replaces `from` by `to` in `text`, insisting that it was there.
fn swap(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "expected {from:?} in:\n{text}");
    text.replace(from, to)
}

/// Sets an address (`{address, port_value}`) found at `path` in a JSON tree.
fn set_address(tree: &mut Value, path: &[&str], address: &str, port: u16) {
    let mut node = tree;
    for key in path {
        node = match key.parse::<usize>() {
            Ok(i) => &mut node[i],
            Err(_) => &mut node[*key],
        };
    }
    assert!(node.is_object(), "no address at {path:?}");
    node["address"] = Value::from(address);
    node["port_value"] = Value::from(port);
}

#[test]
fn the_compose_topology_runs_on_loopback() {
    let whoami = Upstream::start("whoami");
    let ports = Ports::new();
    let compose = compose();
    let sluice_service = Service::of(&compose, "sluice");
    let envoy_service = Service::of(&compose, "envoy");
    let config_file = sluice_service.source_of(sluice_service.arg("-c"));
    let bootstrap_file = envoy_service.source_of(envoy_service.arg("-c"));

    // The compose config with service names and wildcard binds turned into loopback ports.
    let mut config = std::fs::read_to_string(&config_file).unwrap();
    for (from, to) in [
        (
            "address: 0.0.0.0:8080",
            format!("address: 127.0.0.1:{}", ports.listener),
        ),
        (
            "grpc_address: 0.0.0.0:5443",
            format!("grpc_address: 127.0.0.1:{}", ports.grpc),
        ),
        (
            "http://sluice:5443",
            format!("http://127.0.0.1:{}", ports.grpc),
        ),
        (
            "envoy_admin_address: 0.0.0.0:9901",
            format!("envoy_admin_address: 127.0.0.1:{}", ports.admin),
        ),
        ("http://whoami:80", whoami.url()),
    ] {
        config = swap(config, from, &to);
    }
    for leftover in ["0.0.0.0", "sluice:", "whoami:"] {
        assert!(!config.contains(leftover), "{leftover} left in:\n{config}");
    }
    let sluice = Sluice::start(ports, &config);

    // The shipped bootstrap, with only its two addresses changed: sluice's and the admin's.
    let mut bootstrap = yaml_file(&bootstrap_file);
    set_address(
        &mut bootstrap,
        &["admin", "address", "socket_address"],
        "127.0.0.1",
        ports.admin,
    );
    let clusters = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap();
    assert_eq!(
        clusters.len(),
        1,
        "the bootstrap's only static cluster is xDS"
    );
    assert_eq!(clusters[0]["name"], "sluice/xds");
    set_address(
        &mut bootstrap,
        &[
            "static_resources",
            "clusters",
            "0",
            "load_assignment",
            "endpoints",
            "0",
            "lb_endpoints",
            "0",
            "endpoint",
            "address",
            "socket_address",
        ],
        "127.0.0.1",
        ports.grpc,
    );
    // Same structure as what sluice prints for the loopback config, but for what follows from
    // sluice's address being a name in compose: the endpoint's hostname and DNS discovery
    // (Envoy resolves 127.0.0.1 under STRICT_DNS too).
    let mut expected: Value = serde_json::from_str(&sluice_out(&[
        "bootstrap",
        "-c",
        &sluice.config.display().to_string(),
        "--format",
        "json",
        "--node-id",
        NODE_ID,
    ]))
    .unwrap();
    let hostname =
        "/static_resources/clusters/0/load_assignment/endpoints/0/lb_endpoints/0/endpoint/hostname";
    assert_eq!(bootstrap.pointer(hostname), Some(&Value::from("sluice")));
    *expected.pointer_mut(hostname).unwrap() = Value::from("sluice");
    let discovery = "/static_resources/clusters/0/type";
    assert_eq!(
        bootstrap.pointer(discovery),
        Some(&Value::from("STRICT_DNS"))
    );
    *expected.pointer_mut(discovery).unwrap() = Value::from("STRICT_DNS");
    assert_eq!(
        sluice::envoy::json::sorted(bootstrap.clone()).to_string(),
        sluice::envoy::json::sorted(expected).to_string(),
        "the compose bootstrap differs from sluice's by more than its addresses"
    );

    let flags: Vec<&str> = envoy_service.command[3..]
        .iter()
        .map(String::as_str)
        .collect();
    let envoy = Envoy::start_with_flags("envoy", &bootstrap, ports.admin, 1, &flags);

    // The compose file's try-it: curl -H 'Host: whoami.localhost' localhost:8080
    let reply = poll(Duration::from_secs(20), || {
        let r = http::get(ports.listener, "whoami.localhost", "/").ok()?;
        (r.status == 200).then_some(r)
    })
    .unwrap_or_else(|| {
        panic!(
            "whoami.localhost never answered through Envoy; Envoy's log:\n{}\nsluice's log:\n{}",
            envoy.guard.log_text(),
            sluice.guard.log_text()
        )
    });
    assert_eq!(reply.body, "hello from whoami");
    // The private route goes through ext_authz and is refused without a sign-in.
    let private = http::get(ports.listener, "private.localhost", "/").unwrap();
    assert!(
        matches!(private.status, 302 | 401 | 403),
        "private.localhost answered {} without a sign-in: {}",
        private.status,
        private.body
    );
    assert_ne!(private.body, "hello from whoami");
    assert!(
        sluice.envoy_status(NODE_ID).is_some(),
        "sluice does not see {NODE_ID}"
    );
}
