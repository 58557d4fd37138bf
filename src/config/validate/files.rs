//! Files the config points at (certificates, keys, CA bundles, secret files): resolved
//! relative to the config file, checked to exist and to hold what they should. Contents of
//! key and secret files never appear in a message.

use std::path::{Path, PathBuf};

/// What a referenced file must contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PemKind {
    Certificate,
    PrivateKey,
}

/// Resolves `path` against the config file's directory (absolute paths stay as they are), so
/// Envoy, whose working directory may differ, gets a path that works.
pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    // Lexically, so messages show `certs/a.pem` rather than `config/../certs/a.pem`.
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Checks that the file exists and holds a PEM block of the given kind.
pub fn check_pem(path: &Path, kind: PemKind) -> Result<(), String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))?;
    let text = String::from_utf8_lossy(&bytes);
    let ok = match kind {
        PemKind::Certificate => text.contains("-----BEGIN CERTIFICATE-----"),
        PemKind::PrivateKey => text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----"),
    };
    if ok {
        Ok(())
    } else {
        let what = match kind {
            PemKind::Certificate => "a PEM certificate (-----BEGIN CERTIFICATE-----)",
            PemKind::PrivateKey => "a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
        };
        Err(format!("{} does not contain {what}", path.display()))
    }
}

/// Reads a secret from a file (Pomerium's `*_file` keys), trimming the trailing newline.
pub fn read_secret(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "the file is not text".into(),
        _ => e.to_string(),
    }
}

/// The system's CA bundle, for verifying https upstreams when no CA is configured.
pub fn system_ca_bundle() -> Option<PathBuf> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}
