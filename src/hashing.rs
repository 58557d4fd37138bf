//! Stable content hashes (xxh3) for resource names, versions and checksums.

use std::hash::{Hash, Hasher};
use std::path::{Component, Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

/// A stable 64-bit content hash, as 16 hex digits. Not for secrets: it names and versions
/// things, it does not protect them.
pub fn content_hash(value: &impl Hash) -> String {
    format!("{:016x}", content_hash_u64(value))
}

pub fn content_hash_u64(value: &impl Hash) -> u64 {
    let mut hasher = Xxh3::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// `path` as seen from `dir` (`../certs/ca.pem`); both are absolute or both relative.
pub fn relative_to(path: &Path, dir: &Path) -> PathBuf {
    let mut path_parts = path.components().peekable();
    let mut dir_parts = dir.components().peekable();
    while let (Some(a), Some(b)) = (path_parts.peek(), dir_parts.peek()) {
        if a != b {
            break;
        }
        path_parts.next();
        dir_parts.next();
    }
    dir_parts
        .map(|_| Component::ParentDir)
        .chain(path_parts)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_of_the_config_directory() {
        let dir = Path::new("/srv/sluice/configs");
        assert_eq!(
            relative_to(Path::new("/srv/sluice/certs/ca.pem"), dir),
            Path::new("../certs/ca.pem")
        );
        assert_eq!(
            relative_to(Path::new("/srv/sluice/configs/ca.pem"), dir),
            Path::new("ca.pem")
        );
        assert_eq!(
            relative_to(Path::new("/etc/ssl/ca.pem"), dir),
            Path::new("../../../etc/ssl/ca.pem")
        );
    }
}
