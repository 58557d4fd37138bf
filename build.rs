//! Embeds the protobuf descriptor set that envoy-types ships, so `render` can turn
//! envoy-types messages into proto3 JSON by reflection instead of hand-written JSON.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

const CRATE: &str = "envoy-types";
const DESCRIPTOR: &str = "src/generated/types.bin";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let descriptor = from_registry(&manifest_dir).unwrap_or_else(|| from_metadata(&manifest_dir));
    println!("cargo:rerun-if-changed={}", descriptor.display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("envoy_descriptors.bin");
    fs::copy(&descriptor, &out).unwrap_or_else(|e| panic!("copy {}: {e}", descriptor.display()));
}

/// The usual case: envoy-types comes from crates.io, and cargo has unpacked it under
/// `$CARGO_HOME/registry/src/<index>/envoy-types-<version>/` before any build script runs.
/// Looking there needs nothing else on disk, unlike `cargo metadata`, which resolves the whole
/// lock file and so needs every dev-dependency downloaded (a fresh release build has none).
fn from_registry(manifest_dir: &Path) -> Option<PathBuf> {
    let lock = fs::read_to_string(manifest_dir.join("Cargo.lock")).ok()?;
    let version = locked_version(&lock, CRATE)?;
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut indexes: Vec<PathBuf> = fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    indexes.sort();
    indexes
        .into_iter()
        .map(|index| index.join(format!("{CRATE}-{version}")).join(DESCRIPTOR))
        .find(|path| path.is_file())
}

/// The version of `name` that Cargo.lock pins, read from its `[[package]]` entries.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_string());
        }
    }
    None
}

/// Vendored sources, git checkouts and path overrides: ask cargo where envoy-types lives.
/// Not `--offline`, so a missing dev-dependency is fetched rather than failing the build.
fn from_metadata(manifest_dir: &Path) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
        ])
        // Only this platform's dependencies: others (macOS-only crates, say) are never needed.
        .arg(env::var("TARGET").expect("cargo sets TARGET"))
        .current_dir(manifest_dir)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages array")
        .iter()
        .find(|p| p["name"] == CRATE)
        .and_then(|p| p["manifest_path"].as_str())
        .expect("envoy-types is a dependency");
    PathBuf::from(manifest)
        .parent()
        .expect("manifest has a parent directory")
        .join(DESCRIPTOR)
}
