//! The training order: which record each rank reads at each step of each epoch. Its
//! guarantees are documented on [`Sampler`], the public face of this module.

mod permutation;

use crate::error::{Error, Result};
use permutation::Divisor;
/// The keyed permutation, shared with the stream's block order (`crate::stream`).
pub(crate) use permutation::Permutation;

/// The fewest blocks in a mixing window of block mode (when there are that many). With
/// class-sorted data, 64 blocks drawn at random hold, for 20 equal classes, about 19
/// classes on average, and a batch drawn from the window most of them.
pub const BLOCK_WINDOW: u64 = 64;

/// How a sampler orders and splits the records (C++ `harmonics::SamplerOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerOptions {
    /// Selects the order; the same seed gives the same order on every machine.
    pub seed: u64,
    /// False: the global order is the record order 0, 1, 2, …
    pub shuffle: bool,
    /// This sampler's rank, `0 <= rank < world_size`.
    pub rank: u64,
    /// Number of ranks sharing the dataset.
    pub world_size: u64,
    /// True: drop the last `num_records % world_size` global positions instead of
    /// padding the last step by wrapping.
    pub drop_last: bool,
    /// 0: global shuffle; `B > 0`: block shuffle with blocks of `B` records.
    pub block_records: u64,
}

impl Default for SamplerOptions {
    fn default() -> SamplerOptions {
        SamplerOptions {
            seed: 0,
            shuffle: true,
            rank: 0,
            world_size: 1,
            drop_last: false,
            block_records: 0,
        }
    }
}

/// Where a sampler is: enough to continue the exact sequence, on any world size.
/// `position` is the *global* position of rank 0's next index in `epoch`
/// (after `k` steps at world size `W`: `k·W`); it is always below `num_records`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerState {
    pub seed: u64,
    pub epoch: u64,
    pub position: u64,
    pub num_records: u64,
    pub world_size: u64,
    pub rank: u64,
    /// The options of the sampler that saved the state.
    pub options: SamplerOptions,
}

/// The epoch's global order: global position (below `num_records`) → record index.
#[derive(Clone, Debug)]
struct Order {
    n: u64,
    kind: OrderKind,
}

#[derive(Clone, Debug)]
enum OrderKind {
    Sequential,
    Global(Permutation),
    Blocks(BlockOrder),
}

#[derive(Clone, Debug)]
struct BlockOrder {
    seed: u64,
    epoch: u64,
    block: u64,
    by_block: Divisor,
    full_blocks: u64,
    /// Permutation of the full blocks (absent when there are none).
    blocks: Option<Permutation>,
    /// The full blocks are split evenly into `windows` windows: the first `longer`
    /// windows hold `per_window + 1` blocks, the others `per_window`.
    windows: u64,
    per_window: u64,
    by_long: Divisor,
    by_short: Divisor,
    longer: u64,
}

/// The most blocks a window holds (see `Sampler`'s docs: at most `2·BLOCK_WINDOW - 1`
/// blocks, one more in the first windows of an uneven split).
const MAX_WINDOW_BLOCKS: usize = 2 * BLOCK_WINDOW as usize;

/// Block mode's per-window state, computed once when the sequence enters a window
/// (windows are read one after the other): the window's permutation, the global
/// positions it covers, and the permuted base record of each of its blocks. Within a
/// window an index then costs one permutation and a table look-up. O(1) memory
/// (about 1 KiB, whatever the dataset).
#[derive(Clone, Debug)]
struct Window {
    index: u64,
    perm: Permutation,
    /// Global positions `[start, end)` of the window.
    start: u64,
    end: u64,
    /// Records in the window's full blocks (`blocks · B`).
    full: u64,
    /// First record of the short last block (the epoch's last window only).
    tail: u64,
    /// `bases[s]`: first record of the window's `s`-th block in permuted order.
    bases: [u64; MAX_WINDOW_BLOCKS],
}

/// Held inline (no allocation: the sampler allocates nothing after `new`).
type WindowCache = Option<Window>;

impl Order {
    fn new(n: u64, opts: &SamplerOptions, epoch: u64) -> Order {
        let kind = if !opts.shuffle {
            OrderKind::Sequential
        } else if opts.block_records == 0 || opts.block_records >= n {
            OrderKind::Global(Permutation::new(n, opts.seed, epoch, 0))
        } else {
            let block = opts.block_records;
            let full_blocks = n / block; // >= 1: block < n
            let blocks = Some(Permutation::new(full_blocks, opts.seed, epoch, 0));
            let windows = (full_blocks / BLOCK_WINDOW).max(1);
            let per_window = full_blocks / windows; // >= 1
            OrderKind::Blocks(BlockOrder {
                seed: opts.seed,
                epoch,
                block,
                by_block: Divisor::new(block),
                full_blocks,
                blocks,
                windows,
                per_window,
                by_long: Divisor::new(per_window + 1),
                by_short: Divisor::new(per_window),
                longer: full_blocks % windows,
            })
        };
        Order { n, kind }
    }

    /// The record at global position `g < n`. Allocates nothing (hot path).
    #[inline]
    fn at(&self, g: u64, cache: &mut WindowCache) -> u64 {
        match &self.kind {
            OrderKind::Sequential => g,
            OrderKind::Global(p) => p.apply(g),
            OrderKind::Blocks(b) => b.at_cached(self.n, g, cache),
        }
    }

    /// `at` without state: what `index(k)` and `peek` use (pure).
    #[inline]
    fn at_pure(&self, g: u64, cache: &WindowCache) -> u64 {
        match &self.kind {
            OrderKind::Sequential => g,
            OrderKind::Global(p) => p.apply(g),
            OrderKind::Blocks(b) => match cache {
                Some(w) if (w.start..w.end).contains(&g) => b.in_window(w, g),
                _ => b.at(self.n, g),
            },
        }
    }
}

impl BlockOrder {
    /// First block (in permuted order) of window `j`.
    #[inline]
    fn first_block(&self, j: u64) -> u64 {
        j * self.per_window + j.min(self.longer)
    }

    /// The window holding global position `g < n`: (window, first block, blocks).
    #[inline]
    fn window_of(&self, g: u64) -> (u64, u64, u64) {
        // By its block slot (the short tail block belongs to the last window).
        let slot = self.by_block.div_rem(g).0.min(self.full_blocks - 1);
        let long_span = self.longer * (self.per_window + 1);
        let window = if slot < long_span {
            self.by_long.div_rem(slot).0
        } else {
            self.longer + self.by_short.div_rem(slot - long_span).0
        }
        .min(self.windows - 1);
        let first = self.first_block(window);
        let blocks_here = self.first_block(window + 1).min(self.full_blocks) - first;
        (window, first, blocks_here)
    }

    /// The permutation of window `window` (stream 0 is the block permutation; window
    /// `j` uses stream `j + 1`).
    fn window_perm(&self, n: u64, window: u64, blocks_here: u64) -> Permutation {
        let mut size = blocks_here * self.block;
        if window == self.windows - 1 {
            size += n - self.full_blocks * self.block;
        }
        Permutation::new(size, self.seed, self.epoch, window + 1)
    }

    /// The permuted block at block slot `slot`, as its first record.
    #[inline]
    fn block_base(&self, slot: u64) -> u64 {
        self.blocks.as_ref().map_or(slot, |p| p.apply(slot)) * self.block
    }

    /// The record at global position `g < n`, computed from scratch (two permutations).
    fn at(&self, n: u64, g: u64) -> u64 {
        let (window, first, blocks_here) = self.window_of(g);
        let q = self
            .window_perm(n, window, blocks_here)
            .apply(g - first * self.block);
        let full = blocks_here * self.block;
        if q < full {
            let (slot, offset) = self.by_block.div_rem(q);
            self.block_base(first + slot) + offset
        } else {
            // The short last block.
            self.full_blocks * self.block + (q - full)
        }
    }

    /// The record at global position `g` inside window `w` (one permutation).
    #[inline(always)]
    fn in_window(&self, w: &Window, g: u64) -> u64 {
        let q = w.perm.apply(g - w.start);
        if q < w.full {
            let (slot, offset) = self.by_block.div_rem(q);
            w.bases[slot as usize] + offset
        } else {
            w.tail + (q - w.full)
        }
    }

    /// `at`, keeping the state of the window `g` falls in (the hot path): equal to
    /// `at(n, g)` for every `g`.
    #[inline]
    fn at_cached(&self, n: u64, g: u64, cache: &mut WindowCache) -> u64 {
        if let Some(w) = cache {
            if (w.start..w.end).contains(&g) {
                return self.in_window(w, g);
            }
        }
        self.enter_window(n, g, cache);
        self.in_window(cache.as_ref().expect("entered above"), g)
    }

    /// Fills `cache` with the state of the window holding `g`.
    #[cold]
    fn enter_window(&self, n: u64, g: u64, cache: &mut WindowCache) {
        let (window, first, blocks_here) = self.window_of(g);
        let last = window == self.windows - 1;
        debug_assert!(blocks_here as usize <= MAX_WINDOW_BLOCKS);
        let w = cache.get_or_insert_with(|| Window {
            index: u64::MAX,
            perm: Permutation::new(1, 0, 0, 0),
            start: 0,
            end: 0,
            full: 0,
            tail: 0,
            bases: [0; MAX_WINDOW_BLOCKS],
        });
        if w.index != window {
            w.index = window;
            w.perm = self.window_perm(n, window, blocks_here);
            w.start = first * self.block;
            w.full = blocks_here * self.block;
            w.end = if last { n } else { w.start + w.full };
            w.tail = self.full_blocks * self.block;
            for (s, base) in w.bases.iter_mut().take(blocks_here as usize).enumerate() {
                *base = self.block_base(first + s as u64);
            }
        }
    }
}

/// The index sequence of one rank (C++ `harmonics::Sampler`): the training order, which
/// record each rank reads at each step of each epoch.
///
/// A `Sampler` owns no per-record memory. The epoch's *global order* is a pure
/// function of `(seed, epoch, num_records)` (and the order options), computed on the
/// fly by a keyed permutation (`permutation.rs`); rank `r` of `W` takes global positions
/// `r, r + W, r + 2W, …`. Guarantees:
/// - every epoch visits every record exactly once in its first `num_records` global
///   positions; with `drop_last = false` the last step is padded by wrapping to the
///   start of the same order (global position `g ≥ num_records` reads the record of
///   `g - num_records`), with `drop_last = true` the remainder is dropped; so every
///   rank has the same count, `size()`;
/// - the global sequence (position → record) does not depend on the world size;
/// - the state ([`SamplerState`]) is a few integers; [`Sampler::restore`] is O(1) and
///   may be done at another world size: the ranks continue at the saved *global*
///   position and cover the rest of the epoch once between them (padded by wrapping
///   or dropped as above), then start the next epoch at position 0.
///
/// Block mode (`block_records = B > 0`): the dataset is cut into blocks of `B`
/// consecutive records; the blocks are permuted, the permuted blocks are split evenly
/// into windows of consecutive blocks (`max(1, blocks / 64)` windows, so each holds
/// between 64 (`BLOCK_WINDOW`) and 127 blocks, or all of them), and records
/// are permuted within each window. A stretch of steps therefore reads from one window
/// of at most `127·B` records (locality for caches larger than RAM), and a batch mixes
/// records of at least 64 blocks drawn at random from the whole dataset. The last
/// `num_records % B` records (a short block) always belong to the epoch's last window.
///
/// ```
/// use harmonics_dataset::{Sampler, SamplerOptions};
///
/// # fn main() -> harmonics_dataset::Result<()> {
/// let rank = |rank| SamplerOptions { seed: 1, rank, world_size: 2, ..Default::default() };
/// let (mut r0, mut r1) = (Sampler::new(10, rank(0))?, Sampler::new(10, rank(1))?);
/// let mut epoch: Vec<u64> = (0..r0.size()).flat_map(|_| [r0.next_index(), r1.next_index()]).collect();
/// epoch.sort();
/// assert_eq!(epoch, (0..10).collect::<Vec<u64>>()); // disjoint ranks, the whole dataset
///
/// let checkpoint = r0.state(); // plain data
/// let mut resumed = Sampler::new(10, rank(0))?;
/// resumed.restore(&checkpoint)?; // O(1)
/// assert_eq!(resumed.next_index(), r0.next_index());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Sampler {
    n: u64,
    opts: SamplerOptions,
    per_rank: u64,
    epoch: u64,
    /// Global position of rank 0's next index in this epoch.
    position: u64,
    /// This epoch ends for this sampler when `position` reaches `end`.
    end: u64,
    order: Order,
    window: WindowCache,
}

impl Sampler {
    /// A sampler over `num_records` records, at epoch 0, position 0.
    pub fn new(num_records: u64, opts: SamplerOptions) -> Result<Sampler> {
        if num_records == 0 {
            return Err(Error::InvalidArgument(
                "a sampler needs at least one record (num_records is 0)".into(),
            ));
        }
        if opts.world_size == 0 || opts.rank >= opts.world_size {
            return Err(Error::InvalidArgument(format!(
                "sampler rank {} is not below world size {}",
                opts.rank, opts.world_size
            )));
        }
        let per_rank = if opts.drop_last {
            num_records / opts.world_size
        } else {
            num_records.div_ceil(opts.world_size)
        };
        if per_rank == 0 {
            return Err(Error::InvalidArgument(format!(
                "drop_last with {num_records} records over {} ranks leaves every rank nothing",
                opts.world_size
            )));
        }
        Ok(Sampler {
            n: num_records,
            opts,
            per_rank,
            epoch: 0,
            position: 0,
            end: per_rank * opts.world_size,
            order: Order::new(num_records, &opts, 0),
            window: None,
        })
    }

    pub fn options(&self) -> &SamplerOptions {
        &self.opts
    }

    pub fn num_records(&self) -> u64 {
        self.n
    }

    /// Indices per rank per epoch (the same on every rank).
    pub fn size(&self) -> u64 {
        self.per_rank
    }

    /// The epoch the next index belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Record index at global position `g` (any `g`; positions past the end wrap).
    #[inline]
    fn record_at(&self, g: u64, cache: &WindowCache) -> u64 {
        self.order
            .at_pure(if g < self.n { g } else { g % self.n }, cache)
    }

    /// The `k`-th index of this rank in a full epoch `epoch()` (pure: it does not move
    /// the sampler, and does not depend on a restore).
    pub fn index(&self, k: u64) -> Result<u64> {
        if k >= self.per_rank {
            return Err(Error::InvalidArgument(format!(
                "sampler step {k} is past the epoch's {} steps per rank",
                self.per_rank
            )));
        }
        Ok(self.record_at(k * self.opts.world_size + self.opts.rank, &None))
    }

    /// The next index of this rank; after the epoch's last one, the next epoch begins.
    #[inline]
    pub fn next_index(&mut self) -> u64 {
        let i = self.current();
        self.advance();
        i
    }

    /// `peek`, keeping the window permutation it computes (the hot path).
    #[inline]
    pub(crate) fn current(&mut self) -> u64 {
        let g = self.position + self.opts.rank;
        let g = if g < self.n { g } else { g % self.n };
        self.order.at(g, &mut self.window)
    }

    /// The index `next_index` returns next, without moving.
    #[inline]
    pub fn peek(&self) -> u64 {
        self.record_at(self.position + self.opts.rank, &self.window)
    }

    /// Moves past the index `peek` shows.
    #[inline]
    pub fn advance(&mut self) {
        self.position += self.opts.world_size;
        if self.position >= self.end {
            self.begin_epoch(self.epoch.wrapping_add(1));
        }
    }

    /// Fills `out` with the next `out.len()` indices (crossing epochs as `next_index`).
    pub fn fill(&mut self, out: &mut [u64]) {
        for slot in out {
            *slot = self.next_index();
        }
    }

    /// Starts epoch `epoch` at its first position.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.begin_epoch(epoch);
    }

    fn begin_epoch(&mut self, epoch: u64) {
        if epoch != self.epoch {
            self.order = Order::new(self.n, &self.opts, epoch);
            if let Some(w) = &mut self.window {
                w.index = u64::MAX; // another epoch: another window state
                w.end = 0;
            }
        }
        self.epoch = epoch;
        self.position = 0;
        self.end = self.per_rank * self.opts.world_size;
    }

    /// Where the sampler is (a few integers; see [`SamplerState`]).
    pub fn state(&self) -> SamplerState {
        SamplerState {
            seed: self.opts.seed,
            epoch: self.epoch,
            position: self.position,
            num_records: self.n,
            world_size: self.opts.world_size,
            rank: self.opts.rank,
            options: self.opts,
        }
    }

    /// Continues from `state` (saved by any rank, at any world size): this sampler keeps
    /// its rank and world size and takes the epoch and the global position. O(1).
    /// Refused: a state for another number of records, another seed or other order
    /// options, or one that is not a state of this dataset at all.
    pub fn restore(&mut self, state: &SamplerState) -> Result<()> {
        let refuse = |why: String| {
            Err(Error::InvalidArgument(format!(
                "cannot restore sampler state: {why}"
            )))
        };
        if state.num_records != self.n {
            return refuse(format!(
                "it is for {} records, this sampler has {}",
                state.num_records, self.n
            ));
        }
        if state.seed != self.opts.seed || state.options.seed != state.seed {
            return refuse(format!(
                "it is for seed {}, this sampler has seed {}",
                state.seed, self.opts.seed
            ));
        }
        let (a, b) = (&state.options, &self.opts);
        if a.shuffle != b.shuffle
            || a.block_records != b.block_records
            || a.drop_last != b.drop_last
        {
            return refuse(format!(
                "it was saved with shuffle={} block_records={} drop_last={}, this sampler has \
                 shuffle={} block_records={} drop_last={}",
                a.shuffle, a.block_records, a.drop_last, b.shuffle, b.block_records, b.drop_last
            ));
        }
        if state.position >= self.n {
            return refuse(format!(
                "position {} is past the end of a {}-record epoch",
                state.position, self.n
            ));
        }
        if state.world_size == 0 || state.rank >= state.world_size {
            return refuse(format!(
                "rank {} of world size {} is not a rank",
                state.rank, state.world_size
            ));
        }
        let w = self.opts.world_size;
        let left = self.n - state.position;
        let steps = if self.opts.drop_last {
            left / w
        } else {
            left.div_ceil(w)
        };
        self.begin_epoch(state.epoch);
        self.position = state.position;
        self.end = state.position + steps * w;
        if self.position >= self.end {
            // drop_last and fewer records left than ranks: nothing left in this epoch.
            self.begin_epoch(state.epoch.wrapping_add(1));
        }
        Ok(())
    }
}

impl Iterator for Sampler {
    type Item = u64;
    /// Never ends: epochs follow one another.
    fn next(&mut self) -> Option<u64> {
        Some(self.next_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64, rank: u64, world_size: u64) -> SamplerOptions {
        SamplerOptions {
            seed,
            rank,
            world_size,
            ..SamplerOptions::default()
        }
    }

    #[test]
    fn sequential_order_strides_ranks_and_pads_by_wrapping() {
        let o = SamplerOptions {
            shuffle: false,
            ..opts(0, 1, 3)
        };
        let mut s = Sampler::new(7, o).unwrap();
        assert_eq!(s.size(), 3);
        let got: Vec<u64> = (0..3).map(|_| s.next_index()).collect();
        assert_eq!(got, [1, 4, 0]); // positions 1, 4, 7 → 7 wraps to 0
        assert_eq!(s.epoch(), 1);
    }

    #[test]
    fn block_order_is_a_permutation_with_a_short_block() {
        for (n, b) in [(1000u64, 7u64), (64 * 5 * 3 + 2, 5), (10, 3), (100_000, 64)] {
            let o = SamplerOptions {
                block_records: b,
                ..opts(9, 0, 1)
            };
            let s = Sampler::new(n, o).unwrap();
            let mut seen = vec![false; n as usize];
            for k in 0..n {
                let i = s.index(k).unwrap();
                assert!(
                    !std::mem::replace(&mut seen[i as usize], true),
                    "n={n} b={b}"
                );
            }
        }
    }

    #[test]
    fn block_windows_cached_by_next_match_the_pure_order() {
        // Many windows (uneven split), one window, a short tail block; ranks striding
        // across window boundaries; three epochs (the window state is reset per epoch).
        for (n, b, w) in [
            (64 * 7 * 3 + 5u64, 7u64, 1u64),
            (64 * 9 * 2 + 130, 9, 3),
            (1000, 7, 2),
            (10, 3, 1),
            (200_003, 16, 8),
        ] {
            for rank in [0, w - 1] {
                let o = SamplerOptions {
                    block_records: b,
                    ..opts(5, rank, w)
                };
                let mut s = Sampler::new(n, o).unwrap();
                for epoch in 0..3 {
                    let pure = Sampler::new(n, o).map(|mut p| {
                        p.set_epoch(epoch);
                        p
                    });
                    let pure = pure.unwrap();
                    for k in 0..s.size() {
                        assert_eq!(s.peek(), pure.index(k).unwrap(), "n={n} b={b} k={k}");
                        assert_eq!(s.next_index(), pure.index(k).unwrap(), "n={n} b={b} k={k}");
                    }
                }
            }
        }
    }

    #[test]
    fn restore_refuses_other_options() {
        let s = Sampler::new(100, opts(1, 0, 1)).unwrap();
        let mut t = Sampler::new(
            100,
            SamplerOptions {
                block_records: 10,
                ..opts(1, 0, 1)
            },
        )
        .unwrap();
        let err = t.restore(&s.state()).unwrap_err().to_string();
        assert!(err.contains("block_records=0"), "{err}");
        let mut st = s.state();
        st.position = 100;
        let err = Sampler::new(100, opts(1, 0, 1))
            .unwrap()
            .restore(&st)
            .unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(Sampler::new(0, SamplerOptions::default()).is_err());
        assert!(Sampler::new(10, opts(0, 3, 3)).is_err());
        let e = Sampler::new(
            3,
            SamplerOptions {
                drop_last: true,
                ..opts(0, 0, 8)
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("leaves every rank nothing"), "{e}");
    }
}
