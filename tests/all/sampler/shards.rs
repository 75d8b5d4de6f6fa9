//! Rank shards: equal, disjoint (or padded) slices of one global sequence.

use super::*;

/// All ranks' indices for one epoch: `out[r]` is rank r's sequence.
fn ranks(n: u64, w: u64, drop_last: bool, seed: u64) -> Vec<Vec<u64>> {
    (0..w)
        .map(|r| {
            let mut s = Sampler::new(
                n,
                SamplerOptions {
                    drop_last,
                    ..opts(seed, r, w)
                },
            )
            .unwrap();
            (0..s.size()).map(|_| s.next_index()).collect()
        })
        .collect()
}

#[test]
fn shards_are_equal_disjoint_or_padded_and_share_one_global_sequence() {
    for n in [1001u64, 7, 100_003] {
        let global = epoch_order(n, 11, 0, 0);
        for w in [1u64, 2, 3, 8, 64] {
            for drop_last in [false, true] {
                if drop_last && n < w {
                    continue; // refused: every rank would get nothing
                }
                let per = ranks(n, w, drop_last, 11);
                let count = if drop_last { n / w } else { n.div_ceil(w) };
                for (r, seq) in per.iter().enumerate() {
                    assert_eq!(seq.len() as u64, count, "n={n} w={w} rank {r}");
                    for (k, &i) in seq.iter().enumerate() {
                        // rank r's k-th index is global position k*w + r, wrapping.
                        let g = (k as u64 * w + r as u64) % n;
                        assert_eq!(i, global[g as usize], "n={n} w={w} r={r} k={k}");
                    }
                }
                let mut all: Vec<u64> = per.concat();
                all.sort_unstable();
                let before = all.len();
                all.dedup();
                if drop_last {
                    assert_eq!(all.len(), before, "disjoint with drop_last");
                    assert_eq!(before as u64, n / w * w);
                } else {
                    assert_eq!(all.len() as u64, n, "the union is the dataset");
                    assert_eq!(before as u64 - n, count * w - n, "padding only");
                }
            }
        }
    }
}
