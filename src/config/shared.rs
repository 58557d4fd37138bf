//! Equal values held once: the same policy or header set written on many routes (a team's
//! access rule on each of its hosts) is one allocation that every such route points at,
//! rather than a copy per route. A value stays shared as long as some route holds it; the
//! table keeps only weak references, pruned as it grows.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::hashing::content_hash_u64;

/// The shared values of one type, by content hash.
pub struct Shared<T> {
    table: Mutex<Table<T>>,
}

struct Table<T> {
    by_hash: HashMap<u64, Vec<Weak<T>>>,
    /// Entries after the last pruning; the table is pruned when it doubles.
    after_pruning: usize,
}

impl<T: Hash + PartialEq> Shared<T> {
    pub fn new() -> Self {
        Shared {
            table: Mutex::new(Table {
                by_hash: HashMap::new(),
                after_pruning: 0,
            }),
        }
    }

    /// The value equal to `value` that is already shared, or `value`, now shared.
    pub fn share(&self, value: Arc<T>) -> Arc<T> {
        let hash = content_hash_u64(&*value);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let slot = table.by_hash.entry(hash).or_default();
        if let Some(equal) = slot
            .iter()
            .filter_map(Weak::upgrade)
            .find(|held| **held == *value)
        {
            return equal;
        }
        slot.retain(|w| w.strong_count() > 0);
        slot.push(Arc::downgrade(&value));
        if table.by_hash.len() > 2 * table.after_pruning.max(512) {
            table.by_hash.retain(|_, slot| {
                slot.retain(|w| w.strong_count() > 0);
                !slot.is_empty()
            });
            table.after_pruning = table.by_hash.len();
        }
        value
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.table
            .lock()
            .unwrap()
            .by_hash
            .values()
            .map(Vec::len)
            .sum()
    }
}

impl<T: Hash + PartialEq> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Routes' policies.
pub static POLICIES: LazyLock<Shared<crate::policy::Policy>> = LazyLock::new(Shared::new);
/// Routes' `set_request_headers`.
pub static REQUEST_HEADERS: LazyLock<
    Shared<std::collections::BTreeMap<String, super::template::Template>>,
> = LazyLock::new(Shared::new);
/// Routes' `set_response_headers` (merged over the global ones).
pub static RESPONSE_HEADERS: LazyLock<Shared<std::collections::BTreeMap<String, String>>> =
    LazyLock::new(Shared::new);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_are_one_allocation_until_no_one_holds_them() {
        let shared: Shared<Vec<String>> = Shared::new();
        let a = shared.share(Arc::new(vec!["x".into()]));
        let b = shared.share(Arc::new(vec!["x".into()]));
        let c = shared.share(Arc::new(vec!["y".into()]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b));
        // Gone once no one holds it: an equal value later is a new allocation.
        let d = shared.share(Arc::new(vec!["x".into()]));
        assert_eq!(*d, vec!["x".to_string()]);
        assert_eq!(shared.entries(), 2, "the dead entry was replaced");
    }

    #[test]
    fn the_table_is_pruned_as_values_are_dropped() {
        let shared: Shared<u32> = Shared::new();
        for n in 0..10_000u32 {
            drop(shared.share(Arc::new(n)));
        }
        assert!(shared.entries() <= 2 * 512 + 1, "{}", shared.entries());
    }
}
