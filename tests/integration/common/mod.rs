//! Helpers shared by the integration tests.

pub mod envoy;
pub mod golden;
pub mod grpc;
pub mod http;
pub mod idp;
pub mod oidc;
pub mod process;
pub mod sluice;
pub mod sse;
pub mod streams;
pub mod timing;
pub mod tls;
pub mod upstream;
pub mod wss;

use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testdata() -> PathBuf {
    repo_root().join("tests/testdata")
}

/// The `.yaml` files of a folder, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

pub fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("file has a name")
        .to_string_lossy()
        .into_owned()
}
