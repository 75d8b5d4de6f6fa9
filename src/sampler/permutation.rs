//! A keyed pseudo-random permutation of `[0, n)` computed on the fly: 0 bytes per
//! element, O(1) per lookup, a pure function of its key.
//!
//! Construction: a Feistel network over a mixed-radix domain `[0, a·b)` with
//! `a = ⌈√n⌉`, `b = ⌈n/a⌉` (so `a·b - n < a`), then cycle walking: apply the network
//! again until the value falls below `n`.
//!
//! Why it is a bijection of `[0, n)`:
//! - `x ↔ (x / b, x mod b)` is a bijection between `[0, a·b)` and `Z_a × Z_b`;
//! - one round maps `(l, r) ∈ Z_p × Z_q` to `(r, (l + F(r)) mod p) ∈ Z_q × Z_p`; from the
//!   output, `r` is read back directly and `l = (l' - F(r)) mod p`, so every round is
//!   invertible whatever the round function `F`, and so is their composition (an even
//!   number of rounds brings the moduli back to `(a, b)`): a permutation `π` of `[0, a·b)`;
//! - cycle walking takes `x < n` along its cycle of `π` to the first element below `n`.
//!   The walk ends (the cycle returns to `x` itself at worst), and two different starts
//!   `x ≠ y` cannot end on the same `z`: walking backwards from `z` with `π⁻¹` meets the
//!   one predecessor below `n` first. So the walk is a permutation of `[0, n)`.
//!
//! The domain exceeds `n` by less than `√n + 1`, so walking is rare (one network pass
//! per lookup, almost always) and its branch predictable. The round function is the
//! splitmix64 finaliser (a full-avalanche 64-bit mixer) of the half XOR a per-round
//! key, reduced to `Z_p` by a multiply-high; the keys are derived from (seed, epoch,
//! stream) by the same mixer, so every epoch and stream is an independent permutation.

/// Feistel rounds. Four rounds of a strong round function give a pseudo-random
/// permutation (Luby–Rackoff); an even count brings the halves back to their moduli.
const ROUNDS: usize = 4;

/// The splitmix64 finaliser: every input bit affects every output bit.
#[inline(always)]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// `F(r)` in `Z_m`: the mix of `r ^ key`, mapped onto `[0, m)` by a multiply-high.
#[inline(always)]
fn round_fn(r: u64, key: u64, m: u64) -> u64 {
    ((u128::from(mix64(r ^ key)) * u128::from(m)) >> 64) as u64
}

/// Division by a fixed divisor without a hardware divide on the hot path: for 32-bit
/// numerators and divisors, `q = ⌊M·x / 2^64⌋` with `M = ⌊(2^64 - 1) / d⌋ + 1` is exact
/// (Lemire, Kaser, Kurz, "Faster remainder by direct computation", 2019); wider
/// numerators fall back to the divide instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Divisor {
    d: u64,
    /// 0 when `d` does not fit in 32 bits (no fast path).
    m: u64,
    /// `log2(d)` when `d` is a power of two (a shift and a mask), else `u32::MAX`.
    shift: u32,
}

impl Divisor {
    pub(crate) fn new(d: u64) -> Divisor {
        debug_assert!(d > 0);
        let m = if d <= u64::from(u32::MAX) {
            (u64::MAX / d).wrapping_add(1)
        } else {
            0
        };
        let shift = if d.is_power_of_two() {
            d.trailing_zeros()
        } else {
            u32::MAX
        };
        Divisor { d, m, shift }
    }

    /// `(x / d, x % d)`.
    #[inline(always)]
    pub(crate) fn div_rem(&self, x: u64) -> (u64, u64) {
        if self.shift != u32::MAX {
            (x >> self.shift, x & (self.d - 1))
        } else if x <= u64::from(u32::MAX) && self.m != 0 {
            let q = ((u128::from(self.m) * u128::from(x)) >> 64) as u64;
            // d = 1 gives m = 0 (wrapped): handled by the m != 0 test above.
            (q, x - q * self.d)
        } else {
            (x / self.d, x % self.d)
        }
    }
}

/// A permutation of `[0, n)` selected by `(seed, epoch, stream)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Permutation {
    n: u64,
    /// The domain is `Z_a × Z_b`, `a·b >= n`.
    a: u64,
    b: u64,
    by_b: Divisor,
    keys: [u64; ROUNDS],
}

/// `⌈√n⌉` for any u64.
fn ceil_sqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while u128::from(r) * u128::from(r) > u128::from(n) {
        r -= 1;
    }
    while u128::from(r) * u128::from(r) < u128::from(n) {
        r += 1;
    }
    r
}

impl Permutation {
    pub(crate) fn new(n: u64, seed: u64, epoch: u64, stream: u64) -> Permutation {
        let n = n.max(1);
        let a = ceil_sqrt(n);
        let b = n.div_ceil(a);
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
            a,
            b,
            by_b: Divisor::new(b),
            keys,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.n
    }

    #[cfg(test)]
    fn domain(&self) -> u64 {
        self.a * self.b
    }

    /// One pass of the network over `[0, a·b)`.
    #[inline(always)]
    fn network(&self, x: u64) -> u64 {
        let (mut l, mut r) = self.by_b.div_rem(x);
        let (mut ml, mut mr) = (self.a, self.b);
        for &k in &self.keys {
            let sum = l + round_fn(r, k, ml); // both below ml <= 2^32: no overflow
            let nl = if sum >= ml { sum - ml } else { sum };
            l = r;
            r = nl;
            std::mem::swap(&mut ml, &mut mr);
        }
        l * self.b + r
    }

    /// The inverse network (rounds in reverse order).
    #[cfg(test)]
    fn network_inverse(&self, y: u64) -> u64 {
        let (mut l, mut r) = (y / self.b, y % self.b);
        // The last round ran with moduli (b, a) (ROUNDS is even).
        let (mut ml, mut mr) = (self.b, self.a);
        for &k in self.keys.iter().rev() {
            // (l, r) = (r0, (l0 + F(r0)) mod ml): recover (l0, r0).
            let f = round_fn(l, k, ml);
            let l0 = if r >= f { r - f } else { r + ml - f };
            r = l;
            l = l0;
            std::mem::swap(&mut ml, &mut mr);
        }
        l * self.b + r
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
    fn divisor_matches_the_divide_instruction() {
        let xs = [
            0u64,
            1,
            2,
            3,
            7,
            1000,
            65535,
            65536,
            1 << 31,
            u32::MAX as u64 - 1,
            u32::MAX as u64,
            1 << 32,
            u64::MAX,
        ];
        for d in [
            1u64,
            2,
            3,
            7,
            10,
            1000,
            65537,
            (1 << 31) + 1,
            u32::MAX as u64,
            1 << 32,
            256,
            1 << 63,
            u64::MAX,
        ] {
            let v = Divisor::new(d);
            for x in xs
                .iter()
                .copied()
                .chain((0..2000).map(|i| mix64(i) >> (i % 64)))
            {
                assert_eq!(v.div_rem(x), (x / d, x % d), "{x} / {d}");
            }
        }
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
        let p = Permutation::new(1000, 1, 2, 3); // domain 32 × 32
        let d = p.domain();
        assert!((1000..1000 + 33).contains(&d));
        let mut seen = vec![false; d as usize];
        for x in 0..d {
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
