//! Credentials already checked (verified bearer tokens, opened session cookies), remembered
//! until a deadline so that a client's every request does not pay for a signature or a seal.

use std::collections::HashMap;
use std::sync::Mutex;

use xxhash_rust::xxh3::Xxh3Builder;

use crate::hashing::lookup_hasher;

/// A bounded map from a credential's text to what checking it found, each entry usable until
/// a Unix second. When full, expired entries go first, then all.
///
/// Keyed by `lookup_hasher`, not SipHash: the key is a whole token or cookie (~1 KB), hashed on
/// every Check, and only credentials that passed their check are ever inserted, so a caller
/// cannot fill the table with keys of its choosing.
pub struct Remembered<V> {
    entries: Mutex<HashMap<Box<str>, Entry<V>, Xxh3Builder>>,
    max: usize,
}

struct Entry<V> {
    value: V,
    /// Unix seconds after which the credential must be checked again.
    until: u64,
}

impl<V> Remembered<V> {
    pub fn new(max: usize) -> Self {
        Remembered {
            entries: Mutex::new(HashMap::with_hasher(lookup_hasher())),
            max,
        }
    }

    /// What `read` makes of the entry for `credential`, if there is one still usable at `now`.
    pub fn find<R>(&self, credential: &str, now: u64, read: impl FnOnce(&V) -> R) -> Option<R> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(credential)
            .filter(|e| e.until > now)
            .map(|e| read(&e.value))
    }

    pub fn insert(&self, credential: &str, value: V, until: u64, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(credential.into(), Entry { value, until });
    }
}

#[cfg(test)]
mod tests {
    use super::Remembered;

    fn held<V>(cache: &Remembered<V>) -> usize {
        cache.entries.lock().unwrap().len()
    }

    #[test]
    fn an_entry_is_found_until_its_deadline_only() {
        let cache = Remembered::new(8);
        cache.insert("token-a", 1, 100, 50);
        assert_eq!(cache.find("token-a", 99, |v| *v), Some(1));
        assert_eq!(cache.find("token-a", 100, |v| *v), None);
        assert_eq!(cache.find("token-b", 60, |v| *v), None);
    }

    #[test]
    fn a_full_table_drops_expired_entries_first_then_all() {
        let cache = Remembered::new(3);
        cache.insert("old", 0, 10, 0);
        cache.insert("live-1", 1, 100, 0);
        cache.insert("live-2", 2, 100, 0);
        // Full at 20: only the expired entry goes.
        cache.insert("live-3", 3, 100, 20);
        assert_eq!(held(&cache), 3);
        assert_eq!(cache.find("live-1", 20, |v| *v), Some(1));
        assert_eq!(cache.find("old", 5, |v| *v), None);
        // Full of live entries: all go, the new one stays.
        cache.insert("live-4", 4, 100, 20);
        assert_eq!(held(&cache), 1);
        assert_eq!(cache.find("live-4", 20, |v| *v), Some(4));
    }
}
