//! `StreamingProducer`: a published cache at an `https://` or `s3://` URL read in the
//! training order, a block at a time, through the node's bounded stream cache
//! (DESIGN §11; the order is `stream::order`, the cache `stream::node_cache`).
//!
//! - **Open**: one ranged GET of the object's head pins it to its ETag and length
//!   (`http::RangedObject`); the index is walked in chunks into the block table (per
//!   block: first record and byte offset); no per-record array is kept.
//! - **Prefetch**: `http.connections` threads (0: 4) fetch the blocks of this rank's
//!   current window and the next `HORIZON_WINDOWS` windows, in reading order, each
//!   claimed under the node cache's lock (fetched once per node: a block another rank
//!   is fetching is skipped by the prefetcher and waited for by the reader). A
//!   prefetch never evicts a block needed sooner than the one it fetches, and only the
//!   current and the next window's evict at all (deeper ones take free room: on a full
//!   cache they would evict the blocks kept for the next epoch, to fetch them again);
//!   without room it waits for the reader to move. A list of blocks ahead is dropped as
//!   soon as the reader enters another window (a block of the window it left would be
//!   fetched for nothing, evicting a block kept for later).
//! - **Reading**: `next()` locates its record (pure), opens the block with a shared
//!   lock (kept while the rank reads in its window), fetches it itself if no one has,
//!   reads the record's frame and checks its CRC. Nothing per record is allocated
//!   (`next_view`).
//! - **Integrity**: every range is pinned to the ETag; a worker that meets a changed
//!   object records the error, and the next `next()` returns it (naming the URL). Blocks
//!   of another version are never opened (their header carries the ETag's hash).
//! - **Resume**: [`StreamState`] (epoch, step, and the layout and options it belongs to);
//!   `restore` is O(1) and continues exactly for the same layout (world size and ranks
//!   per node), block size, seed and options; another layout is refused, naming both.
//! - **Drop**: the prefetch threads are told to stop and joined; a fetch in progress
//!   ends at its next read (at most the read timeout on a stalled connection).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::resolve_cache_path;
use crate::error::{Error, HttpCause, Result};
use crate::http::{HttpOptions, RemoteIndex};
use crate::producers::Producer;
use crate::sampler::SamplerOptions;
use crate::stream::node_cache::{
    block_allocation, minimum_limit, BlockFile, BlockSource, BlockSpec, Claim, NextUse, NodeCache,
    RankPosition, OVERHEAD,
};
use crate::stream::order::{BlockTable, BlockTableBuilder, Layout, StreamOrder};
use crate::stream::WINDOW_BLOCKS;
use crate::tensor::{parse_wire, TensorRef};

/// Windows beyond the current one that the prefetch fetches ahead.
const HORIZON_WINDOWS: usize = 2;
/// Windows beyond the current one whose prefetch may evict (Belady's rule). The deeper
/// ones take only free room: a full cache keeps the blocks it holds for the next epoch
/// rather than a deeper prefetch (which would evict them, to be fetched again), while
/// one window ahead over `http.connections` connections keeps the link busy.
const EVICTING_WINDOWS: usize = 1;
/// The automatic block size's bounds.
const AUTO_MIN_BLOCK: u64 = 64 << 10;
const AUTO_MAX_BLOCK: u64 = 8 << 20;

/// How a stream is cut and cached (C++ `harmonics::StreamOptions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Bytes of local disk the node's stream cache may hold (every file it creates);
    /// 0: no limit. A limit below the minimum (see [`StreamingProducer::new`]) is refused.
    pub cache_limit: u64,
    /// The fetch unit: a run of whole consecutive records of about this many bytes;
    /// 0: automatic (about 1/64 of a node's share, 64 KiB to 8 MiB, and small enough
    /// for `cache_limit`).
    pub block_bytes: u64,
    /// Ranks sharing this node's disk; node = rank / ranks_per_node.
    pub ranks_per_node: u64,
    /// Deal the blocks to the nodes anew every epoch.
    pub redeal: bool,
    /// The node's stream cache directory under `HARMONICS_CACHE_DIR`; "": from the URL.
    pub cache_name: String,
    /// Connections, timeouts, CA file, retries (`cache`, `cache_path`, `validate` and
    /// `revalidate` do not apply).
    pub http: HttpOptions,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            cache_limit: 0,
            block_bytes: 0,
            ranks_per_node: 1,
            redeal: false,
            cache_name: String::new(),
            http: HttpOptions::default(),
        }
    }
}

/// This process's view of the stream, since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StreamStats {
    /// Body bytes this process fetched from the remote (head and index included).
    pub bytes_fetched: u64,
    pub blocks_fetched: u64,
    pub blocks_evicted: u64,
    /// Allocated bytes of the node's stream cache now (all its files).
    pub disk_bytes: u64,
    /// The most this process has seen it hold.
    pub disk_high_water: u64,
    /// Time `next()` spent waiting for data.
    pub wait_seconds: f64,
}

/// Where a stream is, and the layout and options it belongs to (trivially copyable).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    pub seed: u64,
    pub epoch: u64,
    /// Steps this rank has taken in `epoch` (the same on every rank: ranks advance in
    /// lockstep, so any rank's state will do).
    pub step: u64,
    pub num_records: u64,
    pub world_size: u64,
    pub ranks_per_node: u64,
    /// The rank that saved it (informative: a restored producer keeps its own rank).
    pub rank: u64,
    /// The block size in force (after the automatic choice).
    pub block_bytes: u64,
    pub shuffle: bool,
    pub drop_last: bool,
    pub redeal: bool,
}

/// What the reader and the prefetch threads share.
struct Shared {
    remote: RemoteIndex,
    cache: NodeCache,
    table: Arc<BlockTable>,
    order: Mutex<StreamOrder>,
    /// The reader's (epoch, step), for the prefetch.
    position: Mutex<(u64, u64)>,
    moved: Condvar,
    stop: AtomicBool,
    /// A prefetch thread's error, returned by the next `next()`.
    failure: Mutex<Option<(HttpCause, String)>>,
    /// Blocks a thread of this process is fetching.
    inflight: Mutex<HashSet<u64>>,
    local: u64,
}

/// A published cache read in the training order through the node's bounded stream
/// cache (see the module docs).
pub struct StreamingProducer {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// The reader's own copy of the order (no lock per record).
    order: StreamOrder,
    epoch: u64,
    step: u64,
    /// Blocks held open (shared lock) while the rank reads in their window.
    open: Vec<BlockFile>,
    /// The window last published as this rank's position.
    published: Option<(u64, usize)>,
    buf: Vec<u8>,
    shape: Vec<usize>,
    wait: Duration,
}

impl std::fmt::Debug for StreamingProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingProducer")
            .field("url", &self.shared.remote.url())
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .finish()
    }
}

/// The cache name for a URL when none is given: `stream-<last path segment>-<hash>`.
fn default_cache_name(url: &str) -> String {
    let last: String = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    format!(
        "stream-{}-{:08x}",
        last.trim_start_matches('.'),
        crc32fast::hash(url.as_bytes())
    )
}

impl StreamingProducer {
    /// Opens the published cache at `url` as rank `order.rank` of `order.world_size`.
    ///
    /// The smallest workable `cache_limit` is `minimum_limit` (in the crate-private `stream::node_cache`): 8 of the largest block
    /// (its file rounded up to 4 KiB, plus 4 KiB) per local rank, plus 20 KiB for the
    /// directory and its fixed files. A smaller non-zero limit is refused here, with
    /// the minimum in bytes in the message.
    pub fn new(url: &str, order: SamplerOptions, opts: StreamOptions) -> Result<StreamingProducer> {
        crate::http::check_url(url)?;
        let r = opts.ranks_per_node;
        if r == 0
            || order.world_size == 0
            || order.world_size % r != 0
            || order.rank >= order.world_size
        {
            return Err(Error::InvalidArgument(format!(
                "{url}: rank {} of world size {} with {r} ranks per node is not a layout (the \
                 world size must be a whole number of nodes)",
                order.rank, order.world_size
            )));
        }
        let nodes = order.world_size / r;
        let never = || false;
        let remote = RemoteIndex::open(url, &opts.http, "stream", &never)?;
        let data = remote.end.saturating_sub(remote.head_bytes());
        let block_bytes = if opts.block_bytes > 0 {
            opts.block_bytes
        } else {
            let mut b = (data / (nodes * 64)).clamp(AUTO_MIN_BLOCK, AUTO_MAX_BLOCK);
            if opts.cache_limit > 0 {
                // Small enough that the limit holds the minimum (with room for a record).
                let per = opts.cache_limit.saturating_sub(OVERHEAD) / (8 * r);
                b = b.min((per / 2).max(4096));
            }
            b
        };
        let mut builder = BlockTableBuilder::new(block_bytes);
        remote.for_each_offset(&never, |i, o| {
            builder.push(i, o);
            Ok(())
        })?;
        let table = Arc::new(builder.finish(remote.records, remote.end));
        let stream_order =
            StreamOrder::new(table.clone(), order, r, opts.redeal).map_err(|e| prefix(url, e))?;
        let minimum = minimum_limit(table.max_block_records(), table.max_block_bytes(), r);
        if opts.cache_limit > 0 && opts.cache_limit < minimum {
            return Err(Error::InvalidArgument(format!(
                "{url}: cache_limit {} bytes is below this stream's minimum of {minimum} bytes \
                 ({} blocks per local rank of up to {} bytes each, {r} ranks per node, plus \
                 {OVERHEAD} bytes of fixed files); raise cache_limit or lower block_bytes \
                 (now {block_bytes})",
                opts.cache_limit,
                crate::stream::node_cache::MIN_BLOCKS_PER_RANK,
                block_allocation(table.max_block_records(), table.max_block_bytes()),
            )));
        }
        let name = if opts.cache_name.is_empty() {
            default_cache_name(url)
        } else {
            opts.cache_name.clone()
        };
        let dir = resolve_cache_path(&name)?;
        let source = BlockSource::new(url, remote.object.etag());
        let cache = NodeCache::open(&dir, opts.cache_limit, r, source, block_bytes)?;
        let shared = Arc::new(Shared {
            remote,
            cache,
            table,
            order: Mutex::new(stream_order.clone()),
            position: Mutex::new((0, 0)),
            moved: Condvar::new(),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            inflight: Mutex::new(HashSet::new()),
            local: stream_order.local_rank(),
        });
        let connections = match opts.http.connections {
            0 => crate::http::DEFAULT_CONNECTIONS,
            n => n,
        } as usize;
        let mut p = StreamingProducer {
            shared: shared.clone(),
            workers: Vec::new(),
            order: stream_order,
            epoch: 0,
            step: 0,
            open: Vec::new(),
            published: None,
            buf: Vec::new(),
            shape: Vec::new(),
            wait: Duration::ZERO,
        };
        p.publish_position()?;
        for w in 0..connections {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("harmonics-stream-{w}"))
                .spawn(move || prefetch(&s))
                .map_err(|e| Error::io("cannot start a prefetch thread for", url, e))?;
            p.workers.push(h);
        }
        Ok(p)
    }

    /// Records per rank per epoch (`Producer::size` as a plain number).
    pub fn rank_size(&self) -> u64 {
        self.order.size()
    }

    pub fn num_records(&self) -> u64 {
        self.shared.table.records()
    }

    /// The epoch the next record belongs to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Starts epoch `e` at its first record.
    pub fn set_epoch(&mut self, e: u64) {
        self.epoch = e;
        self.step = 0;
        self.moved();
    }

    /// The blocks of the published file (sizes, records).
    pub fn blocks(&self) -> &BlockTable {
        &self.shared.table
    }

    /// The record this rank reads at step `k` of epoch `e` (pure).
    pub fn index(&mut self, e: u64, k: u64) -> u64 {
        self.order.locate(e, k).1
    }

    pub fn url(&self) -> &str {
        self.shared.remote.url()
    }

    /// The node's stream cache directory.
    pub fn cache_dir(&self) -> &std::path::Path {
        self.shared.cache.dir()
    }

    /// Where the stream is (O(1)).
    pub fn state(&self) -> StreamState {
        let o = self.order.options();
        let l = self.order.layout();
        StreamState {
            seed: o.seed,
            epoch: self.epoch,
            step: self.step,
            num_records: self.num_records(),
            world_size: l.world_size,
            ranks_per_node: l.ranks_per_node,
            rank: o.rank,
            block_bytes: self.shared.table.block_bytes(),
            shuffle: o.shuffle,
            drop_last: o.drop_last,
            redeal: self.order.redeal(),
        }
    }

    /// Continues from `s` (O(1)): the same layout, block size, seed and options, else
    /// refused naming what differs (another layout: both layouts).
    pub fn restore(&mut self, s: &StreamState) -> Result<()> {
        let mine = self.state();
        let refuse = |why: String| {
            Err(Error::InvalidArgument(format!(
                "{}: cannot restore stream state: {why}",
                self.url()
            )))
        };
        let (a, b) = (
            Layout {
                world_size: s.world_size,
                ranks_per_node: s.ranks_per_node.max(1),
            },
            self.order.layout(),
        );
        if s.world_size != mine.world_size || s.ranks_per_node != mine.ranks_per_node {
            return refuse(format!(
                "it was saved with {a}, this stream has {b}; the order of one layout does not \
                 continue in another"
            ));
        }
        if s.num_records != mine.num_records || s.block_bytes != mine.block_bytes {
            return refuse(format!(
                "it is for {} records in blocks of {} bytes, this stream has {} records in \
                 blocks of {} bytes",
                s.num_records, s.block_bytes, mine.num_records, mine.block_bytes
            ));
        }
        if (s.seed, s.shuffle, s.drop_last, s.redeal)
            != (mine.seed, mine.shuffle, mine.drop_last, mine.redeal)
        {
            return refuse(format!(
                "it was saved with seed={} shuffle={} drop_last={} redeal={}, this stream has \
                 seed={} shuffle={} drop_last={} redeal={}",
                s.seed,
                s.shuffle,
                s.drop_last,
                s.redeal,
                mine.seed,
                mine.shuffle,
                mine.drop_last,
                mine.redeal
            ));
        }
        if s.step >= self.rank_size() {
            return refuse(format!(
                "step {} is past the epoch's {} steps",
                s.step,
                self.rank_size()
            ));
        }
        self.epoch = s.epoch;
        self.step = s.step;
        self.moved();
        Ok(())
    }

    /// This process's view of the stream.
    pub fn stats(&self) -> StreamStats {
        let c = &self.shared.cache.counters;
        let disk = self.shared.cache.usage().unwrap_or(0);
        let high = c
            .disk_high_water
            .fetch_max(disk, Ordering::Relaxed)
            .max(disk);
        StreamStats {
            bytes_fetched: self.shared.remote.object.body_bytes(),
            blocks_fetched: c.blocks_fetched.load(Ordering::Relaxed),
            blocks_evicted: c.blocks_evicted.load(Ordering::Relaxed),
            disk_bytes: disk,
            disk_high_water: high,
            wait_seconds: self.wait.as_secs_f64(),
        }
    }

    /// Tells the prefetch where the reader is.
    fn moved(&mut self) {
        *lock(&self.shared.position) = (self.epoch, self.step);
        self.shared.moved.notify_all();
        self.published = None;
    }

    fn publish_position(&mut self) -> Result<()> {
        let plan = self.order.plan(self.epoch);
        let p = self.order.position(self.step);
        let w = plan.window_of(p);
        if self.published != Some((self.epoch, w)) {
            self.published = Some((self.epoch, w));
            self.shared.cache.publish_position(RankPosition {
                local: self.shared.local,
                epoch: self.epoch,
                position: p,
            })?;
            *lock(&self.shared.position) = (self.epoch, self.step);
            self.shared.moved.notify_all();
            // Leaving a window: its blocks are released (the padding block stays open).
            let keep: HashSet<u64> = plan.window_blocks(w).iter().copied().collect();
            self.open.retain(|b| keep.contains(&b.spec.id));
        }
        Ok(())
    }

    fn failure(&self) -> Result<()> {
        match &*lock(&self.shared.failure) {
            Some((c, m)) => Err(Error::http(*c, self.url(), m.clone())),
            None => Ok(()),
        }
    }

    /// The open block `b`, fetching it (or waiting for its fetcher) if needed.
    fn block(&mut self, b: u64, need: (u64, u64)) -> Result<usize> {
        if let Some(i) = self.open.iter().position(|f| f.spec.id == b) {
            return Ok(i);
        }
        let started = Instant::now();
        let f = fetch_block(&self.shared, b, Some(need), true, true)?
            .expect("a demanded fetch waits until it has the block");
        self.wait += started.elapsed();
        if self.open.len() > WINDOW_BLOCKS {
            self.open.remove(0);
        }
        self.open.push(f);
        Ok(self.open.len() - 1)
    }
}

fn prefix(url: &str, e: Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{url}: {m}")),
        e => e,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn spec(table: &BlockTable, b: u64) -> BlockSpec {
    let (first, end) = table.record_range(b);
    let (s, z) = table.byte_range(b);
    BlockSpec {
        id: b,
        first,
        records: end - first,
        bytes: z - s,
    }
}

/// When block `id` is next read by any live rank of the node (the reader's own
/// position included, as published).
fn next_use_any(order: &mut StreamOrder, ranks: &[RankPosition], id: u64) -> NextUse {
    ranks
        .iter()
        .filter_map(|r| order.next_use(id, r.epoch, r.position))
        .min()
}

/// Gets block `b` into the node cache: `Some` once it is there (opened); `None` when
/// not `demand` and another fetcher has it or there is no room for it now. Without
/// `evict`, it takes only free room (or that of blocks no rank foresees).
fn fetch_block(
    s: &Shared,
    b: u64,
    need: NextUse,
    demand: bool,
    evict: bool,
) -> Result<Option<BlockFile>> {
    let spec = spec(&s.table, b);
    let url = s.remote.url();
    let mut nap = Duration::from_millis(1);
    loop {
        if s.stop.load(Ordering::Relaxed) {
            return Err(Error::Stopped(url.to_string()));
        }
        if demand {
            if let Some((c, m)) = &*lock(&s.failure) {
                return Err(Error::http(*c, url, m.clone()));
            }
        }
        let ranks = s.cache.positions();
        let claim = {
            let mut order = lock(&s.order);
            s.cache.claim(spec, need, evict, &mut |id| {
                next_use_any(&mut order, &ranks, id)
            })?
        };
        match claim {
            Claim::Ready(f) => return Ok(Some(f)),
            Claim::Fetch(t) => {
                let (start, end) = s.table.byte_range(b);
                let halted = || s.stop.load(Ordering::Relaxed);
                let mut buf = vec![0u8; (256 << 10).min((end - start) as usize).max(1)];
                s.remote
                    .object
                    .fetch(start, end, None, &halted, &mut buf, &mut |pos, bytes| {
                        t.write_at(bytes, pos - start)
                            .map_err(crate::http::ranged::RangeFailure::Io)
                    })
                    .map_err(|f| f.into_error(url))?;
                match s.cache.publish(t)? {
                    Some(f) => return Ok(Some(f)),
                    // Its temp file was removed (cache_cli rm): fetched again.
                    None if demand => continue,
                    None => return Ok(None),
                }
            }
            Claim::Busy | Claim::NoRoom if !demand => return Ok(None),
            Claim::Busy | Claim::NoRoom => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// A prefetch thread: fetches the blocks of the reader's window and the next
/// `HORIZON_WINDOWS` windows that no one has, until stopped.
fn prefetch(s: &Shared) {
    let mut seen = (u64::MAX, u64::MAX);
    let mut idle = false;
    while !s.stop.load(Ordering::Relaxed) {
        let (epoch, step) = {
            let mut pos = lock(&s.position);
            if idle && *pos == seen {
                pos = s
                    .moved
                    .wait_timeout(pos, Duration::from_millis(50))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *pos
        };
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        seen = (epoch, step);
        // The blocks ahead, in reading order, with when each is needed.
        // (block, when it is needed, whether its fetch may evict).
        let ahead: Vec<(u64, NextUse, bool)> = {
            let mut order = lock(&s.order);
            let p = order.position(step);
            let mut out = Vec::new();
            let plan = order.plan(epoch);
            let w0 = plan.window_of(p);
            for w in w0..(w0 + 1 + HORIZON_WINDOWS).min(plan.windows()) {
                let at = plan.window_span(w).0.max(p);
                let evict = w <= w0 + EVICTING_WINDOWS;
                out.extend(
                    plan.window_blocks(w)
                        .iter()
                        .map(|&b| (b, Some((epoch, at)), evict)),
                );
            }
            let spill = (w0 + 1 + HORIZON_WINDOWS).saturating_sub(plan.windows());
            if spill > 0 {
                let next = order.plan(epoch.wrapping_add(1));
                for w in 0..spill.min(next.windows()) {
                    let at = next.window_span(w).0;
                    let evict = plan.windows() - w0 + w <= EVICTING_WINDOWS;
                    out.extend(
                        next.window_blocks(w)
                            .iter()
                            .map(|&b| (b, Some((epoch.wrapping_add(1), at)), evict)),
                    );
                }
            }
            out
        };
        idle = true;
        for (b, need, evict) in ahead {
            if s.stop.load(Ordering::Relaxed) {
                return;
            }
            if *lock(&s.position) != seen {
                // The reader moved to another window: blocks of the one it left would be
                // fetched for nothing (evicting blocks kept for later). Look again.
                idle = false;
                break;
            }
            if s.cache
                .dir()
                .join(crate::cache::stream_dir::block_name(b))
                .exists()
            {
                continue;
            }
            if !lock(&s.inflight).insert(b) {
                continue;
            }
            let r = fetch_block(s, b, need, false, evict);
            lock(&s.inflight).remove(&b);
            match r {
                Ok(Some(_)) => {
                    idle = false;
                    break; // look again from the reader's position
                }
                Ok(None) => continue,
                Err(Error::Stopped(_)) => return,
                Err(e) => {
                    let mut f = lock(&s.failure);
                    if f.is_none() {
                        let cause = HttpCause::of_error(&e);
                        *f = Some(match e {
                            Error::Http { detail, .. } => (cause, detail),
                            e => (cause, e.to_string()),
                        });
                    }
                    return;
                }
            }
        }
    }
}

impl Producer for StreamingProducer {
    /// This rank's next record; after `size()` records, the next epoch's first.
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.failure()?;
        self.publish_position()?;
        let (e, k) = (self.epoch, self.step);
        let p = self.order.position(k);
        let (b, rec) = self.order.locate(e, k);
        let i = self.block(b, (e, p))?;
        self.step += 1;
        if self.step >= self.order.size() {
            self.epoch = self.epoch.wrapping_add(1);
            self.step = 0;
        }
        let wire = self.open[i].read_record(rec, &mut self.buf)?;
        let h = parse_wire(wire, &mut self.shape)?;
        Ok(TensorRef {
            dtype: h.dtype,
            shape: &self.shape,
            data: &wire[h.data_offset..h.record_len()],
        })
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.order.size() as usize)
    }

    fn source(&self) -> String {
        format!("stream {}", self.url())
    }
}

impl Drop for StreamingProducer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.moved.notify_all();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        self.open.clear();
        self.shared.cache.release_position(self.shared.local);
    }
}
