//! Files sluice writes for Envoy: inline (base64) certificates, keys and CAs from the config,
//! and the self-signed certificate used when none is configured. Envoy reads them by path, so
//! no key material ever travels in an xDS resource or appears in `render` output.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::model::CertificatePair;

/// Overrides where the files go (default: `$TMPDIR/sluice-<uid>`).
pub const DIR_VARIABLE: &str = "SLUICE_RUNTIME_DIR";

#[derive(Debug, thiserror::Error)]
pub enum GeneratedError {
    #[error("cannot create the directory {dir} for generated certificate files: {reason}")]
    Dir { dir: PathBuf, reason: String },
    #[error(
        "{dir} belongs to another user; sluice writes key files only into a directory it owns (set {DIR_VARIABLE} to choose another)"
    )]
    NotOwned { dir: PathBuf },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// The directory for generated files: private to this user (0700).
pub fn dir() -> Result<PathBuf, GeneratedError> {
    let dir = configured_dir();
    let failed = |e: std::io::Error| GeneratedError::Dir {
        dir: dir.clone(),
        reason: e.to_string(),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(failed)?;
    let meta = std::fs::metadata(&dir).map_err(failed)?;
    // SAFETY: as above.
    if meta.uid() != unsafe { libc::getuid() } {
        return Err(GeneratedError::NotOwned { dir });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(dir)
}

fn configured_dir() -> PathBuf {
    match std::env::var_os(DIR_VARIABLE) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        // SAFETY: getuid has no preconditions and cannot fail.
        _ => std::env::temp_dir().join(format!("sluice-{}", unsafe { libc::getuid() })),
    }
}

/// For a file sluice generated, its name without the directory: the name is derived from the
/// content, the directory from the machine, and what names a resource must not depend on
/// where sluice runs (two sluices behind one Envoy must agree).
pub fn machine_independent(path: &Path) -> Option<PathBuf> {
    if path.parent()? != configured_dir() {
        return None;
    }
    Some(PathBuf::from("$RUNTIME").join(path.file_name()?))
}

/// Writes `bytes` to `<dir>/<label>-<hash>.pem` (0600) unless that file already holds them,
/// and returns its path. Named by content, so the same config gives the same paths (and the
/// same Envoy resources) on every load and in every process.
pub fn write_private(label: &str, bytes: &[u8]) -> Result<PathBuf, GeneratedError> {
    let hash = Sha256::digest(bytes);
    let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let path = dir()?.join(format!("{label}-{name}.pem"));
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        return Ok(path);
    }
    write_atomically(&path, bytes)?;
    Ok(path)
}

/// Through a temporary file and a rename, so a reader (Envoy, another sluice) never sees half.
/// On failure (a full disk) the temporary file is removed: nothing half-written stays behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GeneratedError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        GeneratedError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })
}

/// The self-signed certificate served when the config has none. Generated once per process
/// and then reused, so a reload never changes the certificate (nor the listener's secret). A
/// failure (no room for the files) is not kept: the next reload tries again.
pub fn self_signed() -> Result<CertificatePair, String> {
    static PAIR: Mutex<Option<CertificatePair>> = Mutex::new(None);
    once_made(&PAIR, || generate().map_err(|e| e.to_string()))
}

/// What `slot` holds, else what `make` makes, kept in `slot` if it succeeded.
fn once_made<T: Clone, E>(
    slot: &Mutex<Option<T>>,
    make: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(made) = slot.as_ref() {
        return Ok(made.clone());
    }
    let made = make()?;
    *slot = Some(made.clone());
    Ok(made)
}

fn generate() -> Result<CertificatePair, GeneratedError> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| GeneratedError::Generate(e.to_string()))?;
    // Pomerium's catch-all certificate is for `*`; a SAN may not be a bare `*`, so the name
    // goes in the subject and the SAN names localhost (clients must skip verification anyway).
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sluice self-signed certificate");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let key = rcgen::KeyPair::generate().map_err(|e| GeneratedError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| GeneratedError::Generate(e.to_string()))?;
    let cert_path = write_private("self-signed", cert.pem().as_bytes())?;
    let key_path = write_private("self-signed-key", key.serialize_pem().as_bytes())?;
    Ok(CertificatePair {
        cert: cert_path,
        key: key_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_generated_once_and_kept_private() {
        let a = self_signed().unwrap();
        let b = self_signed().unwrap();
        assert_eq!(a, b, "one certificate per process");
        let cert = std::fs::read_to_string(&a.cert).unwrap();
        assert!(cert.contains("BEGIN CERTIFICATE"));
        let mode = std::fs::metadata(&a.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is private");
    }

    #[test]
    fn a_failure_to_make_the_self_signed_pair_is_not_kept() {
        let slot = Mutex::new(None);
        let failed: Result<u32, &str> = once_made(&slot, || Err("no space left on device"));
        assert!(failed.is_err());
        assert_eq!(once_made(&slot, || Ok::<_, &str>(1)), Ok(1), "tried again");
        assert_eq!(once_made(&slot, || Ok::<_, &str>(2)), Ok(1), "then kept");
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should go: the rename fails after the bytes were written.
        let path = dir.path().join("label-0123.pem");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        let err = write_atomically(&path, b"-----BEGIN CERTIFICATE-----").unwrap_err();
        assert!(
            matches!(&err, GeneratedError::Write { path: p, .. } if *p == path),
            "{err}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            [path.file_name().unwrap()],
            "only what was there before"
        );
    }

    #[test]
    fn same_bytes_same_path() {
        let a = write_private("unit-test", b"hello").unwrap();
        let b = write_private("unit-test", b"hello").unwrap();
        let c = write_private("unit-test", b"other").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
