//! A keyed pseudo-random permutation of `[0, n)` computed on the fly: 0 bytes per
//! element, O(1) per lookup, a pure function of its key.
//!
//! Construction: a Feistel network over the smallest power-of-two domain `[0, 2^bits)`
//! that holds `n` (halves of `ceil(bits/2)` and `floor(bits/2)` bits, alternating), then
//! cycle walking: apply the network again until the value falls below `n`.
//!
//! Why it is a bijection of `[0, n)`:
//! - one round maps `(hi, lo)` to `(lo, hi ^ F(lo))`; from the output, `lo` is read back
//!   directly and `hi = (hi ^ F(lo)) ^ F(lo)`, so every round is invertible whatever the
//!   round function `F`, and so is their composition: a permutation `π` of `[0, 2^bits)`;
//! - cycle walking takes `x < n` along its cycle of `π` to the first element below `n`.
//!   The walk ends (the cycle returns to `x` itself at worst), and two different starts
//!   `x ≠ y` cannot end on the same `z`: walking backwards from `z` with `π⁻¹` meets the
//!   one predecessor below `n` first. So the walk is a permutation of `[0, n)`.
//!
//! The domain is below `2n`, so a lookup takes fewer than 2 network evaluations on
//! average. The round function is the splitmix64 finaliser (a full-avalanche 64-bit
//! mixer) of the half XOR a per-round key; the keys are derived from (seed, epoch,
//! stream) by the same mixer, so every epoch and stream is an independent permutation.

/// Feistel rounds. Four rounds of a strong round function give a pseudo-random
/// permutation (Luby–Rackoff); an even count brings the halves back to their widths.
const ROUNDS: usize = 4;

/// The splitmix64 finaliser: every input bit affects every output bit.
#[inline(always)]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A permutation of `[0, n)` selected by `(seed, epoch, stream)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Permutation {
    n: u64,
    /// Width of the high half at the input (the low half has `bits - hi_bits`).
    hi_bits: u32,
    lo_bits: u32,
    keys: [u64; ROUNDS],
}

#[inline(always)]
fn mask(bits: u32) -> u64 {
    (1u64 << bits) - 1 // bits <= 32 here
}

impl Permutation {
    pub(crate) fn new(n: u64, seed: u64, epoch: u64, stream: u64) -> Permutation {
        // At least 2 bits so that both halves are non-empty.
        let bits = (64 - n.saturating_sub(1).leading_zeros()).max(2);
        let hi_bits = bits.div_ceil(2);
        let base = mix64(
            mix64(seed ^ 0x6861_726d_6f6e_6963) // "harmonic"
                ^ mix64(epoch.wrapping_add(GOLDEN))
                ^ mix64(stream.wrapping_mul(GOLDEN) ^ 0x5eed),
        );
        let mut keys = [0u64; ROUNDS];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = mix64(base.wrapping_add((i as u64 + 1).wrapping_mul(GOLDEN)));
        }
        Permutation {
            n,
            hi_bits,
            lo_bits: bits - hi_bits,
            keys,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.n
    }

    /// One pass of the network over `[0, 2^bits)`.
    #[inline(always)]
    fn network(&self, x: u64) -> u64 {
        let (mut wh, mut wl) = (self.hi_bits, self.lo_bits);
        let mut x = x;
        for k in &self.keys {
            let hi = x >> wl;
            let lo = x & mask(wl);
            // F(lo): the top `wh` bits of the mix, the best-mixed ones.
            let f = mix64(lo ^ k) >> (64 - wh);
            x = (lo << wh) | (hi ^ f);
            std::mem::swap(&mut wh, &mut wl);
        }
        x
    }

    /// The inverse network (rounds in reverse order).
    #[cfg(test)]
    fn network_inverse(&self, x: u64) -> u64 {
        // After an even number of rounds the layout is (hi_bits, lo_bits) again; the
        // last round was applied with widths (wh, wl) = (lo_bits, hi_bits).
        let (mut wh, mut wl) = (self.lo_bits, self.hi_bits);
        let mut x = x;
        for k in self.keys.iter().rev() {
            // x = lo << wh | (hi ^ F(lo)), with lo of wl bits and hi of wh bits.
            let lo = x >> wh;
            let hi = (x & mask(wh)) ^ (mix64(lo ^ k) >> (64 - wh));
            x = (hi << wl) | lo;
            std::mem::swap(&mut wh, &mut wl);
        }
        x
    }

    /// The image of `x < n`.
    #[inline]
    pub(crate) fn apply(&self, x: u64) -> u64 {
        debug_assert!(x < self.n);
        let mut y = self.network(x);
        while y >= self.n {
            y = self.network(y);
        }
        y
    }

    /// The `x` whose image is `y < n`.
    #[cfg(test)]
    pub(crate) fn invert(&self, y: u64) -> u64 {
        debug_assert!(y < self.n);
        let mut x = self.network_inverse(y);
        while x >= self.n {
            x = self.network_inverse(x);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_permutation(p: &Permutation) -> bool {
        let mut seen = vec![false; p.len() as usize];
        for x in 0..p.len() {
            let y = p.apply(x);
            if y >= p.len() || std::mem::replace(&mut seen[y as usize], true) {
                return false;
            }
        }
        true
    }

    #[test]
    fn small_domains_are_permuted_and_inverted() {
        for n in 1..300u64 {
            for seed in 0..3 {
                let p = Permutation::new(n, seed, 7, 0);
                assert!(is_permutation(&p), "n={n} seed={seed}");
                for x in 0..n {
                    assert_eq!(p.invert(p.apply(x)), x);
                }
            }
        }
    }

    #[test]
    fn the_network_alone_is_a_bijection_of_its_domain() {
        let p = Permutation::new(1000, 1, 2, 3); // domain 1024
        let mut seen = vec![false; 1024];
        for x in 0..1024 {
            let y = p.network(x) as usize;
            assert!(!std::mem::replace(&mut seen[y], true));
            assert_eq!(p.network_inverse(y as u64), x);
        }
    }

    #[test]
    fn keys_differ_by_seed_epoch_and_stream() {
        let a = Permutation::new(1000, 1, 0, 0);
        assert_ne!(a, Permutation::new(1000, 2, 0, 0));
        assert_ne!(a, Permutation::new(1000, 1, 1, 0));
        assert_ne!(a, Permutation::new(1000, 1, 0, 1));
        let first: Vec<u64> = (0..20).map(|x| a.apply(x)).collect();
        let other: Vec<u64> = (0..20)
            .map(|x| Permutation::new(1000, 1, 1, 0).apply(x))
            .collect();
        assert_ne!(first, other);
    }
}
