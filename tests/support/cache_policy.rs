//! Unit-level simulations of a cache of whole blocks over a known reading order (block
//! ids, one per record read): what LRU (the production loaders' policy) fetches, and
//! what Belady's MIN (evict the block next used furthest ahead, no prefetch) fetches,
//! the fewest any policy can fetch with that many blocks. The streaming tests and the
//! streaming benchmark compare `StreamingProducer` with both.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// Blocks an LRU cache of `capacity` blocks fetches over `accesses`, per epoch of
/// `per_epoch` accesses.
pub fn lru(accesses: &[u64], capacity: usize, per_epoch: usize) -> Vec<u64> {
    let per_epoch = per_epoch.max(1);
    let mut cache: VecDeque<u64> = VecDeque::new();
    let mut fetched = vec![0; accesses.len().div_ceil(per_epoch)];
    for (k, &b) in accesses.iter().enumerate() {
        if let Some(i) = cache.iter().position(|&c| c == b) {
            cache.remove(i);
        } else {
            fetched[k / per_epoch] += 1;
            if cache.len() == capacity {
                cache.pop_front();
            }
        }
        cache.push_back(b);
    }
    fetched
}

/// Blocks Belady's MIN with `capacity` blocks fetches over `accesses`, per epoch of
/// `per_epoch` accesses.
pub fn belady(accesses: &[u64], capacity: usize, per_epoch: usize) -> Vec<u64> {
    let per_epoch = per_epoch.max(1);
    let mut next = vec![usize::MAX; accesses.len()];
    let mut seen = HashMap::new();
    for (k, &b) in accesses.iter().enumerate().rev() {
        next[k] = seen.insert(b, k).unwrap_or(usize::MAX);
    }
    // Each cached block with its next access, ordered by it for the eviction.
    let mut cached: HashMap<u64, usize> = HashMap::new();
    let mut by_next: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut fetched = vec![0; accesses.len().div_ceil(per_epoch)];
    for (k, &b) in accesses.iter().enumerate() {
        if let Some(n) = cached.remove(&b) {
            by_next.remove(&(n, b));
        } else {
            fetched[k / per_epoch] += 1;
            if cached.len() == capacity {
                if let Some((_, v)) = by_next.pop_last() {
                    cached.remove(&v);
                }
            }
        }
        cached.insert(b, next[k]);
        by_next.insert((next[k], b));
    }
    fetched
}
