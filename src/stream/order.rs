//! The stream's training order (DESIGN §11): blocks of whole consecutive records dealt
//! to the nodes, records mixed within windows of a node's blocks, the node's ranks
//! interleaved. A pure function of (seed, epoch, num_records, the block table, layout,
//! options); it holds per-block arrays only (0 bytes per record).
//!
//! - **Blocks** ([`BlockTable`]): records are cut front to back into runs of whole
//!   consecutive records; a block takes records while it holds less than
//!   `block_bytes` of frames and the next record keeps it within `block_bytes` (a record
//!   larger than `block_bytes` is a block alone). So a block holds at least
//!   `block_bytes` minus one record and at most `block_bytes` plus one record (the last
//!   block of the dataset may be shorter).
//! - **Dealing**: the blocks are permuted by the keyed permutation of the sampler
//!   (seed, deal epoch, stream `DEAL`) and laid end to end; block `b` goes to node
//!   `⌊s·N/n⌋` where `s` is the number of records before it in that sequence, `N` the
//!   node count (`world_size / ranks_per_node`) and `n` the records. Each node's record
//!   count is then `n/N` within one block (it holds the blocks starting in its `n/N`
//!   stretch). The deal epoch is 0 by default (stable: a node keeps its blocks, so its
//!   cache is reused) and the epoch itself with `redeal`.
//! - **A node's epoch**: its blocks are permuted again per epoch (stream `NODE_BLOCKS +
//!   node`), cut into windows of `WINDOW_BLOCKS` consecutive blocks (the last window
//!   may hold fewer), and the records of each window are permuted (stream
//!   `WINDOW + node·2^28 + window`). Node position `p` reads window after window: a
//!   stretch of steps reads from at most `WINDOW_BLOCKS` blocks, and a batch mixes
//!   records of 4 blocks drawn at random from the node's share. Without `shuffle`
//!   nothing is permuted: blocks are dealt in file order and read front to back.
//! - **Ranks**: local rank `j` of `R` on the node reads node positions `j, j+R, j+2R…`.
//!   Every rank of the world has the same `size()`: with `drop_last = false`,
//!   `⌈max_k T_k / R⌉` where `T_k` is node k's record count (positions past `T_k` read
//!   the node's last block of the epoch again, which is still in its cache: padding stays
//!   within one block per node); with `drop_last`, `⌊min_k T_k / R⌋` (a node's last
//!   positions are dropped). With `redeal` the node counts change every epoch, so the
//!   size is taken from their bounds (`n/N` plus or minus one block), the same in
//!   every epoch.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sampler::{Permutation, SamplerOptions};

/// Blocks in a mixing window: a rank reads from at most this many blocks at once.
pub const WINDOW_BLOCKS: usize = 4;

/// Permutation streams (disjoint from the sampler's streams by their high bits).
const DEAL: u64 = 1 << 60;
const NODE_BLOCKS: u64 = 2 << 60;
const WINDOW: u64 = 3 << 60;

/// The blocks of a published cache: per block, its first record and the byte offset
/// of its first frame (with a sentinel: the record count and the end of the data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTable {
    first: Vec<u64>,
    start: Vec<u64>,
    block_bytes: u64,
    max_records: u64,
    max_bytes: u64,
}

/// Builds a [`BlockTable`] from the record offsets, ascending, in one pass.
pub(crate) struct BlockTableBuilder {
    block_bytes: u64,
    table: BlockTable,
    /// The previous record (index, frame offset), not yet placed.
    pending: Option<(u64, u64)>,
}

impl BlockTableBuilder {
    pub(crate) fn new(block_bytes: u64) -> BlockTableBuilder {
        BlockTableBuilder {
            block_bytes: block_bytes.max(1),
            table: BlockTable {
                first: Vec::new(),
                start: Vec::new(),
                block_bytes: block_bytes.max(1),
                max_records: 0,
                max_bytes: 0,
            },
            pending: None,
        }
    }

    /// Record `i` (the next one) has its frame at `offset`.
    pub(crate) fn push(&mut self, i: u64, offset: u64) {
        if let Some((pi, po)) = self.pending.replace((i, offset)) {
            self.place(pi, po, offset);
        }
    }

    /// Places record `i` whose frame runs `offset..end`.
    fn place(&mut self, i: u64, offset: u64, end: u64) {
        let t = &mut self.table;
        let len = end - offset;
        let open = match (t.first.last(), t.start.last()) {
            (Some(_), Some(&s)) => {
                let held = offset - s;
                held < self.block_bytes && held + len <= self.block_bytes
            }
            _ => false,
        };
        if !open {
            t.first.push(i);
            t.start.push(offset);
        }
    }

    /// The table, the data ending at `end` after `records` records.
    pub(crate) fn finish(mut self, records: u64, end: u64) -> BlockTable {
        if let Some((pi, po)) = self.pending.take() {
            self.place(pi, po, end);
        }
        let mut t = self.table;
        for b in 0..t.first.len() {
            let r = t.first.get(b + 1).copied().unwrap_or(records) - t.first[b];
            let by = t.start.get(b + 1).copied().unwrap_or(end) - t.start[b];
            t.max_records = t.max_records.max(r);
            t.max_bytes = t.max_bytes.max(by);
        }
        t.first.push(records);
        t.start.push(end);
        t
    }
}

impl BlockTable {
    /// A table from every record's frame offset (ascending) and the end of the data.
    pub fn from_offsets(offsets: &[u64], end: u64, block_bytes: u64) -> BlockTable {
        let mut b = BlockTableBuilder::new(block_bytes);
        for (i, &o) in offsets.iter().enumerate() {
            b.push(i as u64, o);
        }
        b.finish(offsets.len() as u64, end)
    }

    pub fn blocks(&self) -> u64 {
        self.first.len() as u64 - 1
    }

    pub fn records(&self) -> u64 {
        *self.first.last().expect("a sentinel")
    }

    /// The block size asked for.
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes
    }

    /// Records `first..end` of block `b`.
    pub fn record_range(&self, b: u64) -> (u64, u64) {
        (self.first[b as usize], self.first[b as usize + 1])
    }

    /// Byte range of block `b`'s frames in the published file.
    pub fn byte_range(&self, b: u64) -> (u64, u64) {
        (self.start[b as usize], self.start[b as usize + 1])
    }

    pub fn block_records(&self, b: u64) -> u64 {
        let (a, z) = self.record_range(b);
        z - a
    }

    /// The most records / bytes in one block.
    pub fn max_block_records(&self) -> u64 {
        self.max_records
    }

    pub fn max_block_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The block holding record `i`.
    pub fn block_of(&self, i: u64) -> u64 {
        (self.first.partition_point(|&f| f <= i) - 1) as u64
    }
}

/// How the world is laid out over nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub world_size: u64,
    pub ranks_per_node: u64,
}

impl Layout {
    pub fn nodes(&self) -> u64 {
        self.world_size / self.ranks_per_node
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "world_size {} with {} ranks per node ({} nodes)",
            self.world_size,
            self.ranks_per_node,
            self.nodes()
        )
    }
}

/// One node's epoch: its blocks in reading order, grouped in windows.
#[derive(Debug)]
pub(crate) struct EpochPlan {
    pub epoch: u64,
    /// Block ids in the epoch's reading order.
    pub blocks: Vec<u64>,
    /// Node position at which each window starts, plus the node's record count.
    window_start: Vec<u64>,
    /// Where each of the node's blocks sits in `blocks`.
    slot_of: HashMap<u64, u32>,
    /// Positions of the epoch (`size · R`): those from the record count on are padding.
    pub positions: u64,
}

impl EpochPlan {
    pub fn records(&self) -> u64 {
        *self.window_start.last().expect("a sentinel")
    }

    pub fn windows(&self) -> usize {
        self.window_start.len() - 1
    }

    /// The window holding node position `p` (padding: the last window).
    pub fn window_of(&self, p: u64) -> usize {
        (self.window_start.partition_point(|&s| s <= p) - 1).min(self.windows() - 1)
    }

    /// Node positions `[start, end)` of window `w` (the last one runs to the end of
    /// the padding).
    pub fn window_span(&self, w: usize) -> (u64, u64) {
        let end = if w + 1 == self.windows() {
            self.positions.max(self.records())
        } else {
            self.window_start[w + 1]
        };
        (self.window_start[w], end)
    }

    /// Blocks of window `w`.
    pub fn window_blocks(&self, w: usize) -> &[u64] {
        let a = w * WINDOW_BLOCKS;
        &self.blocks[a..(a + WINDOW_BLOCKS).min(self.blocks.len())]
    }

    /// The window of block `b` in this epoch, if the node reads it.
    pub fn window_of_block(&self, b: u64) -> Option<usize> {
        self.slot_of.get(&b).map(|&s| s as usize / WINDOW_BLOCKS)
    }
}

/// The stream's order for one rank (see the module docs).
#[derive(Clone, Debug)]
pub struct StreamOrder {
    table: Arc<BlockTable>,
    opts: SamplerOptions,
    layout: Layout,
    redeal: bool,
    node: u64,
    local: u64,
    size: u64,
    /// The stable deal's blocks of this node (in dealt order), when not `redeal`.
    stable: Option<Arc<Vec<u64>>>,
    /// The last plans computed (a few epochs: ranks may be an epoch apart).
    plans: Vec<Arc<EpochPlan>>,
}

impl StreamOrder {
    /// The order of rank `opts.rank` of `opts.world_size`, `ranks_per_node` to a node.
    pub fn new(
        table: Arc<BlockTable>,
        opts: SamplerOptions,
        ranks_per_node: u64,
        redeal: bool,
    ) -> Result<StreamOrder> {
        let bad = |d: String| Err(Error::InvalidArgument(d));
        let n = table.records();
        if n == 0 {
            return bad("the stream needs at least one record (the dataset is empty)".into());
        }
        if opts.world_size == 0 || opts.rank >= opts.world_size {
            return bad(format!(
                "rank {} is not below world size {}",
                opts.rank, opts.world_size
            ));
        }
        if ranks_per_node == 0 || opts.world_size % ranks_per_node != 0 {
            return bad(format!(
                "world size {} is not a whole number of nodes of {ranks_per_node} ranks",
                opts.world_size
            ));
        }
        let layout = Layout {
            world_size: opts.world_size,
            ranks_per_node,
        };
        let nodes = layout.nodes();
        if table.max_block_records() > n / nodes {
            return bad(format!(
                "blocks of up to {} records are too large to deal {n} records to {nodes} \
                 nodes (each node needs at least one block): choose a smaller block_bytes \
                 (now {})",
                table.max_block_records(),
                table.block_bytes()
            ));
        }
        let node = opts.rank / ranks_per_node;
        let mut order = StreamOrder {
            table,
            opts,
            layout,
            redeal,
            node,
            local: opts.rank % ranks_per_node,
            size: 0,
            stable: None,
            plans: Vec::new(),
        };
        let r = ranks_per_node;
        let maxc = order.table.max_block_records();
        order.size = if !redeal {
            let (mine, counts) = order.deal(0);
            order.stable = Some(Arc::new(mine));
            if opts.drop_last {
                counts.iter().min().copied().unwrap_or(0) / r
            } else {
                counts.iter().max().copied().unwrap_or(0).div_ceil(r)
            }
        } else if opts.drop_last {
            (n / nodes + 1).saturating_sub(maxc) / r
        } else {
            (n.div_ceil(nodes) + maxc - 1).div_ceil(r)
        };
        if order.size == 0 {
            return bad(format!(
                "drop_last with {n} records over {nodes} nodes of {r} ranks leaves every \
                 rank nothing"
            ));
        }
        Ok(order)
    }

    pub fn table(&self) -> &Arc<BlockTable> {
        &self.table
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn options(&self) -> &SamplerOptions {
        &self.opts
    }

    pub fn redeal(&self) -> bool {
        self.redeal
    }

    /// This rank's node and its index on the node.
    pub fn node(&self) -> u64 {
        self.node
    }

    pub fn local_rank(&self) -> u64 {
        self.local
    }

    /// Records per rank per epoch (the same for every rank and epoch).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Deals the blocks for deal epoch `e`: this node's blocks (in dealt order) and
    /// every node's record count. O(blocks).
    fn deal(&self, e: u64) -> (Vec<u64>, Vec<u64>) {
        let t = &self.table;
        let (m, n, nodes) = (t.blocks(), t.records(), self.layout.nodes());
        let perm = self
            .opts
            .shuffle
            .then(|| Permutation::new(m, self.opts.seed, e, DEAL));
        let mut counts = vec![0u64; nodes as usize];
        let mut mine = Vec::new();
        let mut before = 0u64;
        for i in 0..m {
            let b = perm.as_ref().map_or(i, |p| p.apply(i));
            let k = ((u128::from(before) * u128::from(nodes)) / u128::from(n)) as u64;
            let c = t.block_records(b);
            counts[k as usize] += c;
            if k == self.node {
                mine.push(b);
            }
            before += c;
        }
        (mine, counts)
    }

    /// This node's plan for epoch `e` (cached: a few recent epochs).
    pub(crate) fn plan(&mut self, e: u64) -> Arc<EpochPlan> {
        if let Some(p) = self.plans.iter().find(|p| p.epoch == e) {
            return p.clone();
        }
        let mine = match &self.stable {
            Some(s) => s.clone(),
            None => Arc::new(self.deal(e).0),
        };
        let k = mine.len() as u64;
        let perm = self
            .opts
            .shuffle
            .then(|| Permutation::new(k, self.opts.seed, e, NODE_BLOCKS + self.node));
        let blocks: Vec<u64> = (0..k)
            .map(|i| mine[perm.as_ref().map_or(i, |p| p.apply(i)) as usize])
            .collect();
        let mut window_start = Vec::with_capacity(blocks.len() / WINDOW_BLOCKS + 2);
        let mut at = 0u64;
        for (i, &b) in blocks.iter().enumerate() {
            if i % WINDOW_BLOCKS == 0 {
                window_start.push(at);
            }
            at += self.table.block_records(b);
        }
        window_start.push(at);
        let slot_of = blocks
            .iter()
            .enumerate()
            .map(|(i, &b)| (b, i as u32))
            .collect();
        let plan = Arc::new(EpochPlan {
            epoch: e,
            blocks,
            window_start,
            slot_of,
            positions: self.size * self.layout.ranks_per_node,
        });
        if self.plans.len() >= 3 {
            self.plans.remove(0);
        }
        self.plans.push(plan.clone());
        plan
    }

    /// The record at node position `p` of `plan`: (block, record).
    pub(crate) fn at(&self, plan: &EpochPlan, p: u64) -> (u64, u64) {
        let t = &self.table;
        let total = plan.records();
        if p >= total {
            // Padding: the epoch's last block again.
            let b = *plan.blocks.last().expect("a node holds at least one block");
            let (first, end) = t.record_range(b);
            return (b, first + (p - total) % (end - first));
        }
        let w = plan.window_of(p);
        let (start, _) = (plan.window_start[w], plan.window_start[w + 1]);
        let size = plan.window_start[w + 1] - start;
        let q = if self.opts.shuffle {
            let stream = WINDOW + (self.node << 28) + w as u64;
            Permutation::new(size, self.opts.seed, plan.epoch, stream).apply(p - start)
        } else {
            p - start
        };
        let mut q = q;
        for &b in plan.window_blocks(w) {
            let c = t.block_records(b);
            if q < c {
                return (b, t.record_range(b).0 + q);
            }
            q -= c;
        }
        unreachable!("a window position past its blocks")
    }

    /// The node position of this rank's step `k`.
    pub fn position(&self, k: u64) -> u64 {
        k * self.layout.ranks_per_node + self.local
    }

    /// The record of this rank's step `k` of epoch `e`: (block, record).
    pub fn locate(&mut self, e: u64, k: u64) -> (u64, u64) {
        let plan = self.plan(e);
        self.at(&plan, self.position(k))
    }

    /// When block `b` is next read by a rank whose next read is node position `p` of
    /// epoch `e`: (epoch, position), or None when not in this epoch or the next.
    pub(crate) fn next_use(&mut self, b: u64, e: u64, p: u64) -> Option<(u64, u64)> {
        let plan = self.plan(e);
        if let Some(w) = plan.window_of_block(b) {
            let (start, end) = plan.window_span(w);
            if end > p {
                return Some((e, start.max(p)));
            }
        }
        let next = self.plan(e.wrapping_add(1));
        next.window_of_block(b)
            .map(|w| (e.wrapping_add(1), next.window_span(w).0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of `sizes[i % sizes.len()]` frame bytes each.
    fn table(n: u64, sizes: &[u64], block_bytes: u64) -> Arc<BlockTable> {
        let mut offsets = Vec::new();
        let mut at = 1000;
        for i in 0..n {
            offsets.push(at);
            at += sizes[i as usize % sizes.len()];
        }
        Arc::new(BlockTable::from_offsets(&offsets, at, block_bytes))
    }

    fn opts(rank: u64, world: u64) -> SamplerOptions {
        SamplerOptions {
            seed: 7,
            rank,
            world_size: world,
            ..SamplerOptions::default()
        }
    }

    /// Every rank's records in epoch `e`.
    fn epoch_of(
        t: &Arc<BlockTable>,
        o: SamplerOptions,
        r: u64,
        redeal: bool,
        e: u64,
    ) -> Vec<Vec<u64>> {
        (0..o.world_size)
            .map(|rank| {
                let mut s =
                    StreamOrder::new(t.clone(), SamplerOptions { rank, ..o }, r, redeal).unwrap();
                (0..s.size()).map(|k| s.locate(e, k).1).collect()
            })
            .collect()
    }

    #[test]
    fn blocks_hold_whole_records_within_one_record_of_block_bytes() {
        let t = table(1000, &[100, 37, 250, 9], 1000);
        for b in 0..t.blocks() {
            let (s, e) = t.byte_range(b);
            let (f, z) = t.record_range(b);
            assert!(z > f);
            if b + 1 < t.blocks() {
                assert!(e - s + 250 >= 1000 && e - s <= 1000, "block {b}: {}", e - s);
            }
        }
        assert_eq!(t.records(), 1000);
        assert_eq!(t.block_of(0), 0);
        assert_eq!(t.block_of(999), t.blocks() - 1);
        let big = table(10, &[5000], 1000);
        assert_eq!(big.blocks(), 10);
    }

    #[test]
    fn ranks_are_disjoint_their_union_is_the_dataset_and_sizes_are_equal() {
        for (n, world, r, drop_last, redeal) in [
            (1000u64, 4u64, 2u64, false, false),
            (1003, 4, 2, false, true),
            (997, 6, 3, true, false),
            (1200, 4, 1, false, false),
            (1001, 2, 2, true, true),
        ] {
            let t = table(n, &[100, 37, 250, 9], 900);
            let o = SamplerOptions {
                drop_last,
                ..opts(0, world)
            };
            let mut epochs = Vec::new();
            for e in 0..3 {
                let ranks = epoch_of(&t, o, r, redeal, e);
                let size = ranks[0].len();
                assert!(ranks.iter().all(|x| x.len() == size), "equal sizes");
                let mut seen = vec![0u32; n as usize];
                for x in &ranks {
                    for &i in x {
                        seen[i as usize] += 1;
                    }
                }
                if drop_last {
                    assert!(seen.iter().all(|&c| c <= 1), "disjoint");
                } else {
                    assert!(seen.iter().all(|&c| c >= 1), "union = dataset");
                    let extra: u32 = seen.iter().map(|&c| c - 1).sum();
                    // Padding: within one block per node.
                    let nodes = world / r;
                    assert!(
                        u64::from(extra) <= nodes * (t.max_block_records() + r),
                        "{extra}"
                    );
                }
                // Each node's ranks read only that node's blocks, disjoint from others'.
                let mut owner = HashMap::new();
                for (rank, x) in ranks.iter().enumerate() {
                    for &i in x {
                        let node = rank as u64 / r;
                        let prev = owner.insert(t.block_of(i), node);
                        assert!(prev.is_none_or(|p| p == node), "block shared by two nodes");
                    }
                }
                epochs.push(ranks);
            }
            assert_ne!(epochs[0], epochs[1], "epochs differ");
        }
    }

    #[test]
    fn stable_dealing_keeps_a_nodes_blocks_and_redeal_moves_them() {
        let t = table(4000, &[100], 1000);
        let blocks_of = |redeal: bool, e: u64| {
            let mut s = StreamOrder::new(t.clone(), opts(0, 4), 2, redeal).unwrap();
            let mut b = s.plan(e).blocks.clone();
            b.sort_unstable();
            b
        };
        assert_eq!(blocks_of(false, 0), blocks_of(false, 5));
        assert_ne!(blocks_of(true, 0), blocks_of(true, 1));
        // Node record counts are n/N within one block.
        let s = StreamOrder::new(t.clone(), opts(0, 4), 2, false).unwrap();
        let (_, counts) = s.deal(0);
        for c in counts {
            assert!(c.abs_diff(2000) <= t.max_block_records(), "{c}");
        }
    }

    #[test]
    fn a_stretch_of_steps_reads_from_one_window_of_blocks() {
        let t = table(5000, &[100], 1000); // 10 records a block
        let mut s = StreamOrder::new(t.clone(), opts(1, 2), 2, false).unwrap();
        let plan = s.plan(3);
        for w in 0..plan.windows() {
            let (a, z) = plan.window_span(w);
            let blocks: std::collections::HashSet<u64> = (a..z).map(|p| s.at(&plan, p).0).collect();
            assert!(blocks.len() <= WINDOW_BLOCKS);
        }
    }

    #[test]
    fn next_use_follows_the_plan() {
        let t = table(2000, &[100], 1000);
        let mut s = StreamOrder::new(t.clone(), opts(0, 1), 1, false).unwrap();
        let plan = s.plan(0);
        let first = plan.blocks[0];
        let last = *plan.blocks.last().unwrap();
        assert_eq!(s.next_use(first, 0, 0), Some((0, 0)));
        // Once its window is read, a block is next used in the next epoch.
        let (_, end) = plan.window_span(0);
        let nu = s.next_use(first, 0, end).unwrap();
        assert_eq!(nu.0, 1);
        assert!(s.next_use(last, 0, 0).unwrap() > (0, 0));
    }

    #[test]
    fn blocks_too_large_for_the_nodes_are_refused() {
        let t = table(10, &[100], 400);
        let e = StreamOrder::new(t, opts(0, 8), 1, false).unwrap_err();
        assert!(e.to_string().contains("smaller block_bytes"), "{e}");
    }
}
