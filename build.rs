//! Embeds the protobuf descriptor set that envoy-types ships, so `render` can turn
//! envoy-types messages into proto3 JSON by reflection instead of hand-written JSON.

use std::{env, fs, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // `cargo metadata` knows where the resolved envoy-types sources live, whether they come
    // from the registry, a vendor directory or a git checkout.
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        // Only this platform's dependencies: others (macOS-only crates, say) are never downloaded.
        .arg(env::var("TARGET").expect("cargo sets TARGET"))
        .current_dir(&manifest_dir)
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
        .find(|p| p["name"] == "envoy-types")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("envoy-types is a dependency");
    let descriptor = PathBuf::from(manifest)
        .parent()
        .expect("manifest has a parent directory")
        .join("src/generated/types.bin");
    println!("cargo:rerun-if-changed={}", descriptor.display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("envoy_descriptors.bin");
    fs::copy(&descriptor, &out).unwrap_or_else(|e| panic!("copy {}: {e}", descriptor.display()));
}
