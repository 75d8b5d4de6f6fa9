//! Reading ahead in a known order: what a `CacheReader` does with the future a sampler
//! gives it (`CacheReader::read_ahead`).
//!
//! A training order is a pure function (`Sampler`), so the reader can know the next
//! hundreds of indices before it is asked for them. It keeps a ring of the next records
//! with their frame offsets, looked up from the index in batches, and acts on it in one
//! of two modes:
//!
//! - **Warm** (the file is in the page cache): no system call per record. Records are
//!   read from the mapping; the bytes of the record `PREFETCH_AHEAD` places ahead are
//!   software-prefetched into L2 while this one is copied and hashed, so the DRAM
//!   misses of a random order overlap instead of adding up. One `getrusage` every
//!   `WINDOW` records counts this thread's major faults: one in a window (the disk was
//!   waited for) switches to cold.
//! - **Cold**: the ring deepens to `COLD_BYTES` (at most `COLD_DEPTH` records), and
//!   every record entering it is looked at. A file that fits in half the available
//!   memory is read in whole aligned 2 MiB clusters, each once (a bit each): where the
//!   kernel reads faults of a `MADV_HUGEPAGE` mapping as huge folios, a missing cluster
//!   is left to the fault of its first record, which reads the 2 MiB as one folio
//!   mapped by one page-table entry; elsewhere it is handed to the kernel with
//!   `madvise(MADV_WILLNEED)`, which queues its reads and returns. (WILLNEED fills the
//!   page cache with 4 KiB folios: their allocation and mapping cost a cold global
//!   shuffle about 0.1 s of system time on a 313 MB file, and every later epoch twice
//!   the time of one over huge folios.) A larger file gets exactly the records' pages,
//!   asked for with WILLNEED: the byte ranges of a batch are sorted, neighbours merged
//!   (a block of a block-shuffled order is one range), and the ranges `mincore` finds
//!   missing are handed over. The disk sees a queue instead of one request at a time,
//!   and the consumer finds its record in the page cache, or in flight. When
//!   `RESIDENT_BATCHES` batches in a row were all resident, the reader is warm again
//!   (large clusters stay cold: what is left costs a bit test a record, and a fault
//!   while cold forgets what was asked for, as eviction would have).
//!
//! No thread and no descriptor: the kernel does the reading, so a consumer that stops
//! (drops the producer mid-epoch) leaves nothing running. Nothing is copied into
//! private memory ahead of time either: read-ahead fills the page cache, the same pages
//! a `read()` would (DESIGN §11's note on memory), and the ring holds 16 bytes a record.
//!
//! Read-ahead only says where to look and starts the disk and the CPU early: every
//! record is checked when it is read, exactly as without it (a record damaged on disk
//! is refused whether it arrived through read-ahead or not). An index that does not
//! match the plan is served as without one; `MAX_MISSES` of them in a row end the plan.

use std::collections::VecDeque;

use super::mapping::{page_size, Mapping};

/// The order a reader is told to expect (`CacheReader::read_ahead`,
/// `Producer::read_ahead`): the record indices its random reads will ask for next, in
/// order. A `Sampler` is one (it never ends); so is any iterator of indices.
pub type ReadOrder = Box<dyn Iterator<Item = u64> + Send + Sync>;

/// Records looked up ahead while warm (the ring is topped up to this when half empty).
const WARM_DEPTH: usize = 32;
/// Records the ring holds at most while cold ...
const COLD_DEPTH: usize = 1024;
/// ... and the bytes they may span (by the last frame's length).
const COLD_BYTES: usize = 32 << 20;
/// While cold, the ring is topped up in batches of at least this many records.
const COLD_BATCH: usize = 64;
/// The record whose bytes are software-prefetched, counted from the one being read.
const PREFETCH_AHEAD: usize = 8;
/// Bytes of a record prefetched (all of a record up to this size), into the L2 cache
/// (`prefetch_l2`). Into L1, whole records filled the line-fill buffers and stalled
/// (95% of the read-ahead's time sat on the prefetch instruction), so only 256 bytes
/// were prefetched there; into L2, whole 3 KiB records 8 ahead took a warm global
/// shuffle from 2.07 to 1.69 times the sequential C++ `next()` pass, and the view pass
/// from 2.20 to 1.76 times the sequential one (docs/benchmarks.md). The cap keeps what
/// is in flight (8 records) well inside L2 for records of any size.
const PREFETCH_BYTES: usize = 8 << 10;
/// Records between two looks at this thread's major-fault count.
const WINDOW: u32 = 32;
/// Major faults in one window that make the reader cold (a warm epoch has none).
const COLD_FAULTS: u64 = 1;
/// Batches in a row found resident that make a cold reader warm again.
const RESIDENT_BATCHES: u32 = 4;
/// Cold requests of a file the page cache can hold are whole aligned clusters of this
/// many bytes.
const LARGE_CLUSTER: usize = 2 << 20;
/// Ranges closer than this are merged into one request.
const MERGE_GAP: usize = 32 << 10;
/// Reads in a row that were not the planned record before the plan is dropped.
const MAX_MISSES: u32 = 2 * COLD_DEPTH as u32;
/// An offset not looked up ahead (its lookup failed, or the index is out of range):
/// the read looks it up itself and reports what is wrong at the right record.
const UNKNOWN: usize = usize::MAX;

pub(crate) struct ReadAhead {
    order: ReadOrder,
    /// Cold requests are aligned to this many bytes (`new`).
    cluster: usize,
    /// Large clusters already asked for, a bit each.
    asked: Vec<u64>,
    /// Large clusters are left to faults, read as huge folios (None: not decided yet;
    /// see `request`).
    huge: Option<bool>,
    /// The next records, in order: (index, frame offset or `UNKNOWN`).
    ring: VecDeque<(u64, usize)>,
    /// The length of the last frame read: the estimate for those ahead.
    frame_len: usize,
    cold: bool,
    /// Records served since the last look at the fault count.
    served: u32,
    /// The thread and its major-fault count at the start of the window.
    faults: (std::thread::ThreadId, u64),
    /// Cold: batches in a row whose ranges were all resident.
    resident_batches: u32,
    misses: u32,
    /// The first records of the plan were looked at (`top_up`).
    probed: bool,
    /// `mincore`'s answer buffer, and the ranges of a batch (reused).
    pages: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    /// Counters for tests and benchmarks: ranges asked for, reads served from the plan.
    pub(crate) stats: ReadAheadStats,
}

/// What read-ahead did (`CacheReader::read_ahead_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadAheadStats {
    /// Reads that were the record planned next.
    pub planned_reads: u64,
    /// Reads of another index (served without the plan).
    pub unplanned_reads: u64,
    /// Byte ranges handed to the kernel to read ahead (cold).
    pub ranges_requested: u64,
    /// Cold 2 MiB clusters left for the reads' own faults to bring in whole, as one
    /// huge folio each (`Mapping::huge_pages`), instead of being asked for.
    pub clusters_faulted: u64,
    /// Times the reader went from warm to cold.
    pub went_cold: u64,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("ahead", &self.ring.len())
            .field("cold", &self.cold)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ReadAhead {
    /// A plan over a file of `file_len` bytes.
    pub(crate) fn new(order: ReadOrder, file_len: usize) -> ReadAhead {
        // A file the page cache can hold is read cold in large clusters: the records'
        // neighbours are asked for later in the epoch anyway, and a few large requests
        // cost the disk and the kernel far less than one per record (a cold global
        // shuffle asked for each record's pages took 12x the CPU of a sequential
        // pass). A larger file gets exactly the records' pages.
        let cluster = if file_len <= page_cache_room() / 2 {
            LARGE_CLUSTER
        } else {
            page_size()
        };
        ReadAhead {
            order,
            cluster,
            asked: Vec::new(),
            huge: None,
            ring: VecDeque::with_capacity(WARM_DEPTH),
            frame_len: 4096,
            cold: false,
            served: 0,
            faults: (std::thread::current().id(), major_faults()),
            resident_batches: 0,
            misses: 0,
            probed: false,
            pages: Vec::new(),
            ranges: Vec::new(),
            stats: ReadAheadStats::default(),
        }
    }

    /// False once the reads stopped following the plan.
    pub(crate) fn alive(&self) -> bool {
        self.misses < MAX_MISSES
    }

    /// The frame just read was `len` bytes long.
    #[inline]
    pub(crate) fn saw_frame(&mut self, len: usize) {
        self.frame_len = len.max(1);
    }

    /// The frame offset of `index` if it is the record planned next (or, after a read
    /// off the plan, one further in it: the records planned before it are passed over),
    /// after which the plan moves on. `records` is the record count, `lookup(i)` the
    /// frame offset of record `i` from the index, `entry(i)` where its index entry lies.
    #[inline]
    pub(crate) fn take(
        &mut self,
        index: u64,
        map: &Mapping,
        records: u64,
        lookup: impl Fn(u64) -> crate::Result<usize>,
        entry: impl Fn(u64) -> Option<usize>,
    ) -> Option<usize> {
        if self.ring.is_empty() {
            self.top_up(map, records, &lookup, &entry);
        }
        // Another index than the one planned next is a detour (served without the
        // plan, which waits) or, when the reads keep missing the plan and have come
        // to a record further in it, a skip: the plan moves up to it.
        let pos = match self.ring.front() {
            Some(&(i, _)) if i == index => Some(0),
            _ if self.misses > 0 => self.ring.iter().position(|&(i, _)| i == index),
            _ => None,
        };
        let Some(pos) = pos else {
            self.misses += 1;
            self.stats.unplanned_reads += 1;
            return None;
        };
        self.ring.drain(..pos);
        let (_, at) = self.ring.pop_front().expect("found above");
        self.misses = 0;
        self.stats.planned_reads += 1;
        self.served += 1;
        if self.served == WINDOW && self.check_temperature() {
            // What is in the ring now was not requested: ask for it with the rest.
            self.request(map, 0);
        }
        let low = if self.cold {
            self.cold_depth().saturating_sub(COLD_BATCH)
        } else {
            WARM_DEPTH / 2
        };
        if self.ring.len() < low.max(PREFETCH_AHEAD + 1) {
            self.top_up(map, records, &lookup, &entry);
        }
        if let Some(&(_, ahead)) = self.ring.get(PREFETCH_AHEAD - 1) {
            if ahead != UNKNOWN {
                super::reader::prefetch_l2(map, ahead, ahead + self.frame_len.min(PREFETCH_BYTES));
            }
        }
        (at != UNKNOWN).then_some(at)
    }

    fn cold_depth(&self) -> usize {
        (COLD_BYTES / self.frame_len).clamp(COLD_BATCH, COLD_DEPTH)
    }

    /// Fills the ring up to its depth from the order, looking the offsets up in one
    /// batch (their index entries prefetched first, so the misses overlap); while cold,
    /// asks the kernel for the new records' bytes. `entry(i)` is where record `i`'s
    /// index entry lies in `map`, if it is there.
    fn top_up(
        &mut self,
        map: &Mapping,
        records: u64,
        lookup: &impl Fn(u64) -> crate::Result<usize>,
        entry: &impl Fn(u64) -> Option<usize>,
    ) {
        let depth = if self.cold {
            self.cold_depth()
        } else {
            WARM_DEPTH
        };
        let first = self.ring.len();
        while self.ring.len() < depth {
            let Some(i) = self.order.next() else { break };
            if let Some(e) = entry(i).filter(|_| i < records) {
                super::reader::prefetch(map, e, e + 1);
            }
            self.ring.push_back((i, UNKNOWN));
        }
        for k in first..self.ring.len() {
            let i = self.ring[k].0;
            if i < records {
                self.ring[k].1 = lookup(i).unwrap_or(UNKNOWN);
            }
        }
        if self.cold {
            self.request(map, first);
        } else if !self.probed {
            // The first records of a plan: a file not in the page cache is cold from
            // the start (no window of one-page faults to find it out).
            self.probed = true;
            if self.request(map, first) > 0 {
                self.cold = true;
                self.stats.went_cold += 1;
            }
        }
    }

    /// Cold: hands the byte ranges of ring entries `from..` that are not resident to
    /// the kernel to read (merged, in file order); returns how many it handed over.
    fn request(&mut self, map: &Mapping, from: usize) -> u64 {
        let page = page_size();
        let end = map.len().div_ceil(page) * page;
        let c = self.cluster;
        let large = c == LARGE_CLUSTER;
        // Where the kernel reads a mapping's faults in huge folios, a large cluster is
        // left to the fault of its first record instead of `MADV_WILLNEED`: WILLNEED
        // fills the page cache with 4 KiB folios (80,000 for a 313 MB file), which cost
        // a cold epoch's CPU to allocate and map, and every later epoch its faults and
        // TLB misses (a warm sequential pass over such a file took 2-2.5x as long as
        // over the same file read in order). A fault reads the aligned 2 MiB whole.
        let huge = large && *self.huge.get_or_insert_with(|| map.huge_pages());
        self.ranges.clear();
        for &(_, at) in self.ring.iter().skip(from) {
            if at != UNKNOWN {
                let lo = at / c * c;
                // Large clusters: each asked for once (a bit each), not looked at again.
                if large {
                    let (word, bit) = (lo / c / 64, 1u64 << (lo / c % 64));
                    if self.asked.len() <= word {
                        self.asked.resize(word + 1, 0);
                    }
                    if self.asked[word] & bit != 0 {
                        continue;
                    }
                    self.asked[word] |= bit;
                }
                let hi = (at + self.frame_len).div_ceil(c).saturating_mul(c).min(end);
                self.ranges.push((lo, hi));
            }
        }
        if self.ranges.is_empty() {
            return 0;
        }
        self.ranges.sort_unstable();
        let mut merged = 0;
        for k in 1..self.ranges.len() {
            let (lo, hi) = self.ranges[k];
            if lo <= self.ranges[merged].1 + MERGE_GAP {
                self.ranges[merged].1 = self.ranges[merged].1.max(hi);
            } else {
                merged += 1;
                self.ranges[merged] = (lo, hi);
            }
        }
        self.ranges.truncate(merged + 1);
        let mut missing = 0;
        for k in 0..self.ranges.len() {
            let (lo, hi) = self.ranges[k];
            // A large cluster is looked at in three pages, not all 512: mincore looks
            // each page up in the page cache when the range is not mapped (that was a
            // quarter of a cold block-shuffled epoch); WILLNEED skips the pages of a
            // partly read cluster itself.
            let resident = if large {
                map.probably_resident(lo, hi - lo, &mut self.pages)
            } else {
                map.resident(lo, hi - lo, &mut self.pages)
            };
            if !resident {
                missing += 1;
                if !huge {
                    map.will_need(lo, hi - lo);
                }
            }
        }
        if huge {
            self.stats.clusters_faulted += missing;
        } else {
            self.stats.ranges_requested += missing;
        }
        if large {
            // Stays cold: what is left to ask for costs a bit test a record; a fault
            // (pages evicted since they were asked for) clears the bits.
        } else if missing == 0 {
            self.resident_batches += 1;
            if self.resident_batches >= RESIDENT_BATCHES {
                self.cold = false;
                self.resident_batches = 0;
            }
        } else {
            self.resident_batches = 0;
        }
        missing
    }

    /// Every `WINDOW` records: a warm reader whose thread waited for the disk goes cold
    /// (true: the next top-up deepens the ring).
    fn check_temperature(&mut self) -> bool {
        self.served = 0;
        let now = (std::thread::current().id(), major_faults());
        let (thread, before) = std::mem::replace(&mut self.faults, now);
        let waited = thread == now.0 && now.1.saturating_sub(before) >= COLD_FAULTS;
        if waited && self.cold && self.huge != Some(true) {
            // Cold and still waiting: clusters asked for may have been evicted. (Not
            // when clusters are left to faults: there a fault is how they are read,
            // and forgetting them would only probe and count them again.)
            self.asked.clear();
        }
        if !waited || self.cold {
            return false;
        }
        self.cold = true;
        self.resident_batches = 0;
        self.stats.went_cold += 1;
        true
    }
}

/// Bytes the page cache could hold for us: `MemAvailable` of `/proc/meminfo`, read
/// once per process (0 where unknown: exact ranges then).
fn page_cache_room() -> usize {
    static ROOM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROOM.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemAvailable:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            })
            .map_or(0, |kib| kib.saturating_mul(1024))
    })
}

/// This thread's major faults so far (0 where the count is unavailable).
fn major_faults() -> u64 {
    // SAFETY: getrusage writes one rusage into the zeroed struct we own.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut u) == 0 {
            u.ru_majflt as u64
        } else {
            0
        }
    }
}

// A reader with a plan stays `Send + Sync`, as it was without one (the order is both).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<super::reader::CacheReader>();
};
