//! A `sluice serve` process for a test, with its config file in a temporary folder.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::http;
use super::process::{Guard, free_port, poll};

/// Ports one test's sluice and Envoy use.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub grpc: u16,
    pub listener: u16,
    pub admin: u16,
}

impl Ports {
    pub fn new() -> Self {
        Ports {
            grpc: free_port(),
            listener: free_port(),
            admin: free_port(),
        }
    }

    /// The global part of a plain-HTTP config using these ports.
    pub fn globals(&self) -> String {
        format!(
            "insecure_server: true\naddress: 127.0.0.1:{}\ngrpc_address: 127.0.0.1:{}\nenvoy_admin_address: 127.0.0.1:{}\n",
            self.listener, self.grpc, self.admin
        )
    }
}

pub struct Sluice {
    pub guard: Guard,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub ports: Ports,
}

impl Sluice {
    /// Writes `config` and starts `sluice serve` on it, waiting until it answers.
    pub fn start(ports: Ports, config: &str) -> Sluice {
        Self::start_binary(
            ports,
            config,
            std::path::Path::new(env!("CARGO_BIN_EXE_sluice")),
        )
    }

    /// Like [`Sluice::start`], with another build of sluice (a bench's A/B baseline).
    pub fn start_binary(ports: Ports, config: &str, binary: &std::path::Path) -> Sluice {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).expect("write config");
        let guard = Self::spawn_binary(binary, &dir, &path, &["--envoy", "external"], &[]);
        let sluice = Sluice {
            guard,
            dir,
            config: path,
            ports,
        };
        sluice.wait_ready();
        sluice
    }

    /// Starts `sluice serve` on a config file the test laid out itself inside `dir`.
    pub fn start_with(ports: Ports, dir: tempfile::TempDir, config: PathBuf) -> Sluice {
        let guard = Self::spawn(&dir, &config);
        let sluice = Sluice {
            guard,
            dir,
            config,
            ports,
        };
        sluice.wait_ready();
        sluice
    }

    fn spawn(dir: &tempfile::TempDir, config: &std::path::Path) -> Guard {
        // Each test starts its own Envoys beside sluice: external mode, whatever is installed.
        Self::spawn_with(dir, config, &["--envoy", "external"], &[])
    }

    /// `sluice serve` with extra arguments and environment.
    pub fn spawn_with(
        dir: &tempfile::TempDir,
        config: &std::path::Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Guard {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_sluice"));
        Self::spawn_binary(binary, dir, config, args, env)
    }

    fn spawn_binary(
        binary: &std::path::Path,
        dir: &tempfile::TempDir,
        config: &std::path::Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Guard {
        let mut command = Command::new(binary);
        command
            .args(["serve", "-c"])
            .arg(config)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            // Benches set SLUICE_LOG to keep per-request debug lines out of their figures.
            .env(
                "RUST_LOG",
                std::env::var("SLUICE_LOG").unwrap_or_else(|_| "sluice=debug".into()),
            );
        // In a folder of its own: sluice watches the config's folder, and a log line written
        // there per request would wake its watcher for each one.
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("log folder");
        let log = logs.join(format!(
            "sluice-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        Guard::spawn("sluice", command, &log)
    }

    pub fn wait_ready(&self) {
        let ready = poll(Duration::from_secs(20), || self.try_status());
        assert!(
            ready.is_some(),
            "sluice did not start serving; its log:\n{}",
            self.guard.log_text()
        );
    }

    /// Waits until sluice's log contains `needle`: log lines reach the file from a writer
    /// thread that gathers them for a few milliseconds, so a line can trail what it reports.
    pub fn wait_log(&self, needle: &str) -> bool {
        poll(Duration::from_secs(5), || {
            self.guard.log_text().contains(needle).then_some(())
        })
        .is_some()
    }

    /// Stops and starts the process again on the same config.
    pub fn restart(&mut self) {
        self.guard.stop();
        self.guard = Self::spawn(&self.dir, &self.config);
        self.wait_ready();
    }

    pub fn try_status(&self) -> Option<Value> {
        let reply = http::get(self.ports.grpc, "sluice", "/.sluice/status").ok()?;
        (reply.status == 200)
            .then(|| serde_json::from_str(&reply.body).ok())
            .flatten()
    }

    pub fn status(&self) -> Value {
        self.try_status()
            .unwrap_or_else(|| panic!("sluice status unavailable; log:\n{}", self.guard.log_text()))
    }

    /// Replaces the config file the way an editor that writes in place does.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).expect("rewrite config");
    }

    /// Replaces the config file by an atomic rename (as most deploy tools do).
    pub fn rename_config(&self, text: &str) {
        let tmp = self.dir.path().join(".config.yaml.tmp");
        std::fs::write(&tmp, text).expect("write temp config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    /// `sluice bootstrap` for an external Envoy, with the admin port replaced.
    pub fn bootstrap(&self, node_id: &str, ads: &str, admin_port: u16) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["bootstrap", "-c"])
            .arg(&self.config)
            .args(["--format", "json", "--node-id", node_id, "--ads", ads])
            .output()
            .expect("run sluice bootstrap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut json: Value = serde_json::from_slice(&out.stdout).expect("bootstrap JSON");
        json["admin"]["address"]["socket_address"]["port_value"] = Value::from(admin_port);
        json
    }

    /// Waits until the served generation reaches `generation`.
    pub fn wait_generation(&self, generation: u64) -> bool {
        poll(Duration::from_secs(10), || {
            (self.generation() >= generation).then_some(())
        })
        .is_some()
    }

    /// Generation of the served config (from status).
    pub fn generation(&self) -> u64 {
        self.status()["reload"]["generation"].as_u64().unwrap_or(0)
    }

    /// The status entry of one connected Envoy.
    pub fn envoy_status(&self, node_id: &str) -> Option<Value> {
        self.try_status()?["envoys"]
            .as_array()?
            .iter()
            .find(|e| e["node_id"] == node_id)
            .cloned()
    }
}
