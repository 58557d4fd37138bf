//! Order-preserving parallel map for large configs: per-route work (validation, IR, encoding)
//! is independent, and a 10,000-route reload should use every core it has.

use std::num::NonZeroUsize;

/// Below this many items the work runs on the calling thread: spawning threads costs more
/// than it saves, and small configs stay simple to debug.
const MIN_PARALLEL: usize = 512;

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(NonZeroUsize::get)
        .unwrap_or(1)
        .min(8)
}

/// Maps `items` in contiguous chunks on scoped threads; the output keeps the input's order.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads();
    if items.len() < MIN_PARALLEL || threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let total = items.len();
    let chunk = total.div_ceil(threads);
    // Split from the back so each element moves once.
    let mut rest = items;
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    while !rest.is_empty() {
        let at = rest.len().saturating_sub(chunk);
        chunks.push(rest.split_off(at));
    }
    chunks.reverse();
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || c.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(total);
        for h in handles {
            out.extend(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_for_small_and_large_inputs() {
        for n in [0, 3, 511, 512, 10_001] {
            let out = super::map((0..n).collect(), |i: usize| i * 2);
            assert_eq!(out, (0..n).map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
