//! Every epoch is a permutation (also in block mode, also for random sizes and
//! seeds), and the order is the same in another process.

use super::*;

#[test]
fn every_epoch_is_a_permutation_and_epochs_differ() {
    for n in SIZES {
        for seed in SEEDS {
            let epochs = if n > 10_000 { 2 } else { 16 };
            let orders: Vec<Vec<u64>> = (0..epochs).map(|e| epoch_order(n, seed, e, 0)).collect();
            let distinct: std::collections::HashSet<&Vec<u64>> = orders.iter().collect();
            match n {
                1 => assert_eq!(distinct.len(), 1),
                2 => assert_eq!(distinct.len(), 2, "both orders of 2 records appear"),
                _ => {
                    for e in 1..orders.len() {
                        assert_ne!(orders[e - 1], orders[e], "n={n} seed={seed} epoch {e}");
                    }
                    assert_ne!(orders[0], (0..n).collect::<Vec<_>>(), "shuffled");
                }
            }
            // Seeds differ too.
            if n >= 7 && seed != 0 {
                assert_ne!(orders[0], epoch_order(n, 0, 0, 0));
            }
        }
    }
}

#[test]
fn block_mode_epochs_are_permutations() {
    for n in [7u64, 1000, 1_000_003] {
        for b in [1u64, 3, 64, 1000] {
            let a = epoch_order(n, 5, 0, b);
            if n > b * 2 {
                assert_ne!(a, epoch_order(n, 5, 1, b), "n={n} b={b}");
            }
        }
    }
}

#[test]
fn the_order_is_identical_in_another_process() {
    let out = child(&[("HD_ORDER_CHILD", "1".into())]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for line in text.lines().filter(|l| l.starts_with("digest ")) {
        let f: Vec<u64> = line[7..].split(' ').map(|x| x.parse().unwrap()).collect();
        assert_eq!(f[2], digest(epoch_order(f[0], f[1], 3, 0)), "{line}");
        checked += 1;
    }
    assert_eq!(checked, SIZES.len() * SEEDS.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Large N: distinct in-range indices on a sample of positions, no O(N) memory.
    #[test]
    fn large_epochs_map_sampled_positions_injectively(
        n in 1u64..=10_000_000, seed in any::<u64>(), epoch in 0u64..1000,
        block in prop_oneof![Just(0u64), 1u64..5000], starts in proptest::collection::vec(any::<u64>(), 8)
    ) {
        let s = Sampler::new(n, SamplerOptions { seed, block_records: block, ..SamplerOptions::default() }).unwrap();
        let mut s = s;
        s.set_epoch(epoch);
        let mut got = std::collections::HashMap::new();
        for st in starts {
            // A run of consecutive positions from a random start.
            let start = st % n;
            for k in start..(start + 64).min(n) {
                let i = s.index(k).unwrap();
                prop_assert!(i < n);
                if let Some(prev) = got.insert(i, k) {
                    prop_assert_eq!(prev, k, "positions {} and {} both map to {}", prev, k, i);
                }
            }
        }
    }

    /// Small N: the whole epoch is a permutation, for any options.
    #[test]
    fn small_epochs_are_permutations(n in 1u64..3000, seed in any::<u64>(), epoch in any::<u64>(), block in 0u64..100) {
        let mut s = Sampler::new(n, SamplerOptions { seed, block_records: block, ..SamplerOptions::default() }).unwrap();
        s.set_epoch(epoch);
        let mut seen = vec![false; n as usize];
        for _ in 0..n {
            let i = s.next_index() as usize;
            prop_assert!(!std::mem::replace(&mut seen[i], true));
        }
    }
}
