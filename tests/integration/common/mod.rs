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

/// A runtime with one worker and a listener on 127.0.0.1:`port` (0: any free port), for the
/// in-process servers tests and benches start beside sluice.
pub fn one_worker_listener(port: u16) -> (tokio::runtime::Runtime, tokio::net::TcpListener) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
    (runtime, listener)
}

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
