//! Stable content hashes (xxh3) for resource names, versions and checksums.

use std::hash::{Hash, Hasher};

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
