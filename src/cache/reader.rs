//! `CacheReader`: serves the committed records of a cache file, in order, cycling, and
//! by index (random access).
//!
//! Guarantees: a reader never sees uncommitted records (it maps only the committed
//! length read from the header when it opened); every record's CRC is checked before
//! the record is handed out; opening is O(1) in the number of records for the current
//! format; memory stays bounded because the file is memory-mapped and pages already
//! passed are released as the cursor moves on.
//!
//! A reader reads the one file it opened, through its descriptor and its mapping: a
//! file renamed over the path later is not seen (the producers open the path once, and
//! serve the reader they validated or the file they just wrote). What another program
//! does to the opened file *in place* (`cp other.cache train.cache`, `truncate`, a
//! byte written into it) is what the rest of this note is about:
//!
//! - **Copying reads** (`next_into`, `at_into`, and the producers' `next`/`at` and the
//!   C/C++ copying calls built on them) hand over exactly a record the file held, of the
//!   file opened, or an error. The CRC is checked on the copy handed over itself (the
//!   sequential read hashes the caller's copy, `RecordSink::copied`, right after making
//!   it, and never hashes the mapping; random access reads the frame with `pread` into a
//!   buffer of the reader and checks it there), so a byte written between the check and
//!   the copy cannot pass. After the copy the file's first 24 bytes are
//!   compared with those seen at open and the SIGBUS flag is read (`Mapping::intact`):
//!   a same-layout file copied over this one differs there, because every file written
//!   carries its own random nonce under the header CRC (format.rs), and a cut file has
//!   raised the flag. A mismatch is `Error::Corrupt`, which the producers repair by a
//!   rebuild (or report).
//! - **Zero-copy views** (`next_view`, and `view`/`view_checked`) are checked the same
//!   way before they are returned, but then borrow the shared mapping: a program that
//!   rewrites the file in place while a view is held can change the bytes under it (or
//!   cut them, which reads as zeros); nothing can be promised about bytes read after the
//!   check. The next call on the reader reports the change. Random-access views
//!   (`view_at`) borrow the reader's own `pread` buffer, which no other program can
//!   write: they hold the checked bytes until the next call.
//! - Not detected: an in-place writer that keeps the first 24 bytes and writes whole
//!   valid frames of the same layout (a `dd conv=notrunc` of another version's records
//!   only), and a file written before nonces existed (or the headerless legacy format)
//!   overwritten by one with an equal head. Replace cache files by rename.
//!
//! The cost of the file check on the random-access path is one atomic load and a
//! 24-byte compare of a resident page per record: not measurable in the shuffled
//! `view_at` epoch of the cache benchmark (figure 8, 100,000 records of 3 KiB: 0.186 s
//! before and 0.186-0.205 s after, in runs alternated on one machine). Comparing the
//! descriptor's `fstat` (size, mtime, ctime) with the one at open was the alternative:
//! a system call per record (0.4 us measured, against 1.2-1.5 us for the warm `pread`
//! of such a record), and an append by another process (a legitimate change of mtime
//! and size) would read as a rewrite.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::format::{
    check_record_frame, check_record_frame_with, entry_offset, parse_frame, slot_in_flux, sniff,
    Frame, Header, Metadata, Sniff, FRAME_HEADER, INDEX_ENTRY, SNIFF_LEN, VERSION_1,
};
use super::index::walk_offsets;
use super::mapping::Mapping;
use crate::error::{Error, Result};
use crate::tensor::RecordSink;
use crate::tensor::{parse_wire, wire_header_len, DType, TensorRef, MAX_NDIMS};

/// Where `advance` found a record's data in the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLoc {
    pub dtype: crate::tensor::DType,
    data: std::ops::Range<usize>,
}

/// What `advance_frame` found: the record, its frame's offset and its stored CRC
/// (0 in the legacy format, which has none).
struct Advanced {
    loc: RecordLoc,
    at: usize,
    crc: u32,
}

/// Which format a cache file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Current,
    Legacy,
}

/// Resident pages behind the cursor are dropped every this many bytes.
const TRIM_EVERY: usize = 16 << 20;

#[derive(Debug)]
pub struct CacheReader {
    path: PathBuf,
    map: Option<Mapping>,
    format: Format,
    meta: Metadata,
    records: u64,
    data_start: usize,
    data_end: usize,
    /// Bytes after `data_end` present in the file but not committed.
    uncommitted_tail: u64,
    cursor: usize,
    index: u64,
    shape: Vec<usize>,
    trimmed_to: usize,
    /// (device, inode) of the file read, to tell whether the path was replaced since.
    inode: Option<(u64, u64)>,
    /// Random access (`view_at`) state.
    ra: RandomAccess,
}

/// What `view_at` needs: where the index is, and its own shape buffer and page budget.
#[derive(Debug, Default)]
struct RandomAccess {
    /// Format version of a current-format file (index frames exist from version 2).
    version: u32,
    /// The commit's `index_at` (0: no index in the file).
    index_at: u64,
    /// Offset in the mapping of the index entries, once the index frame was checked.
    entries_at: Option<usize>,
    /// An index built in memory on first use for a file without one (version 1,
    /// legacy): 8 bytes per record.
    built: Option<Vec<u64>>,
    shape: Vec<usize>,
    /// Bytes touched by `view_at` since its pages were last released.
    touched: usize,
    /// The mapping is advised for random access (until the next sequential read).
    random_advice: bool,
    /// A descriptor of the file: random access reads records with `pread` into `buf`
    /// rather than through the mapping. A fault on a mapped file maps the pages around
    /// it too (fault-around, 64 KiB), so scattered reads through the mapping would
    /// grow the resident set by 64 KiB a record and pay for the faults; a copy costs
    /// less and leaves nothing resident but the page cache.
    file: Option<File>,
    /// The record read last, from its frame's 8-aligned start down (u64 words, so the
    /// tensor data in it is 8-aligned as in the mapping); `buf_len` bytes are valid.
    buf: Vec<u64>,
    buf_len: usize,
    /// Bytes of the on-disk index: above `TRIM_EVERY`, its pages touched are released
    /// like the sequential window (a small index simply stays resident).
    index_bytes: usize,
    /// `preadv2(RWF_NOWAIT)` is not supported for this file (see `read_clustered`).
    no_nowait: bool,
}

/// Cold random reads are read from disk in aligned clusters of this many bytes (the
/// kernel's read-around for a fault on a mapping, `read_ahead_kb` by default).
const READ_CLUSTER: u64 = 128 << 10;

/// `pread` of `buf.len()` bytes at `off`, clustering reads that miss the page cache.
/// A `pread` at a random offset reads only the pages asked for, so an epoch read in
/// block order from a cold cache would pay one disk request per record although the
/// records of a block are read within the same window. Here a read first tries the
/// page cache alone (`preadv2(RWF_NOWAIT)`: one call, as a plain `pread`, when the
/// record is cached); when part of it is not cached, the aligned `READ_CLUSTER` bytes
/// around it are asked for (`posix_fadvise(WILLNEED)`, one large request) and the rest
/// is read. The cluster goes to the page cache only (no resident memory of ours), and
/// its neighbours are served warm when the order comes to them.
fn read_clustered(
    file: &File,
    buf: &mut [u8],
    off: u64,
    unsupported: &mut bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    let mut done = 0usize;
    if !*unsupported {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: one iovec over `buf`, which is valid for writes of its length.
        let n = unsafe { libc::preadv2(fd, &iov, 1, off as libc::off_t, libc::RWF_NOWAIT) };
        if n >= 0 {
            done = n as usize;
            if done == buf.len() {
                return Ok(());
            }
        } else {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {}
                Some(libc::EINTR) => {}
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => *unsupported = true,
                _ => return Err(e),
            }
        }
        if !*unsupported {
            let lo = (off + done as u64) / READ_CLUSTER * READ_CLUSTER;
            let hi = (off + buf.len() as u64).div_ceil(READ_CLUSTER) * READ_CLUSTER;
            // SAFETY: advice on a descriptor we own; it reads nothing into our memory.
            unsafe {
                libc::posix_fadvise(
                    fd,
                    lo as libc::off_t,
                    (hi - lo) as libc::off_t,
                    libc::POSIX_FADV_WILLNEED,
                )
            };
        }
    }
    file.read_exact_at(&mut buf[done..], off + done as u64)
}

fn words_as_bytes(w: &[u64]) -> &[u8] {
    // SAFETY: u8 has no alignment or validity requirements; same allocation and length.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), w.len() * 8) }
}

fn words_as_bytes_mut(w: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above; the borrow is exclusive.
    unsafe { std::slice::from_raw_parts_mut(w.as_mut_ptr().cast::<u8>(), w.len() * 8) }
}

impl CacheReader {
    /// Opens a cache file of either format. Damage found in the header or a length
    /// that contradicts the header is reported as `Error::Corrupt`.
    pub fn open(path: impl AsRef<Path>) -> Result<CacheReader> {
        let path = path.as_ref();
        // Anything but a regular file is refused before it can block or be followed.
        let file = super::open_cache_file(path, super::OpenMode::Read)?;
        let r = Self::from_file(&file, path)?;
        mark_used(&file);
        Ok(r)
    }

    /// Opens a cache file like `open`, for inspection: the file's access time is
    /// left as it was (where permitted), so looking at a cache does not count as
    /// using it.
    pub fn inspect(path: impl AsRef<Path>) -> Result<CacheReader> {
        let path = path.as_ref();
        let file = super::open_cache_file(path, super::OpenMode::ReadNoAtime)?;
        Self::from_file(&file, path)
    }

    pub(crate) fn from_file(file: &File, path: &Path) -> Result<CacheReader> {
        let stat = file
            .metadata()
            .map_err(|e| Error::io("cannot stat cache", path, e))?;
        let file_len = stat.len();
        let mut r = CacheReader {
            inode: Some((stat.dev(), stat.ino())),
            path: path.to_path_buf(),
            format: Format::Legacy,
            shape: Vec::with_capacity(8),
            ..CacheReader::empty()
        };
        if file_len == 0 {
            return Ok(r);
        }
        let usize_len = usize::try_from(file_len)
            .map_err(|_| Error::corrupt(path, "file too large to map on this platform"))?;
        // Cache files are replaced by rename and only ever grow past their committed
        // length, so the mapped bytes do not change under us; when another program
        // cuts or rewrites the file in place anyway, `Mapping` turns the SIGBUS into a
        // poisoned mapping that `intact()` reports.
        let mut map =
            Mapping::new(file, usize_len).map_err(|e| Error::io("cannot map cache", path, e))?;
        let mut file_len = file_len;
        match sniff(&map[..map.len().min(SNIFF_LEN)]) {
            Sniff::Current => {
                // A commit slot that fails its CRC may be one an appender is writing
                // this instant: look again (the other slot is complete by then)
                // before taking the older commit or reporting damage.
                let mut attempt = 0;
                let h = loop {
                    let h = Header::decode(&map).map_err(|d| Error::corrupt(path, d));
                    if attempt == 3 || (h.is_ok() && !slot_in_flux(&map)) {
                        break h?;
                    }
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_micros(50 << attempt));
                };
                let end = h.data_start.saturating_add(h.commit.data_len);
                if end > file_len {
                    // An appender may have committed between our stat and our reading
                    // of the header: its data was written before the commit, so the
                    // file is long enough now. Map it again; the commit we decoded
                    // stays our snapshot (committed bytes never change).
                    let now = file
                        .metadata()
                        .map_err(|e| Error::io("cannot stat cache", path, e))?
                        .len();
                    if now >= end {
                        if let Ok(len) = usize::try_from(now) {
                            map = Mapping::new(file, len)
                                .map_err(|e| Error::io("cannot map cache", path, e))?;
                            file_len = now;
                        }
                    }
                }
                let end = h
                    .data_start
                    .checked_add(h.commit.data_len)
                    .filter(|&e| e <= file_len)
                    .ok_or_else(|| {
                        Error::corrupt(
                            path,
                            format!(
                                "file is {file_len} bytes, shorter than its committed length {} + {}",
                                h.data_start, h.commit.data_len
                            ),
                        )
                    })?;
                r.ra = RandomAccess::open(&h);
                r.format = Format::Current;
                r.meta = h.meta;
                r.records = h.commit.records;
                r.data_start = h.data_start as usize;
                r.data_end = end as usize;
                r.uncommitted_tail = file_len - end;
            }
            Sniff::Damaged(why) => {
                return Err(Error::corrupt(path, format!("damaged header: {why}")))
            }
            Sniff::Legacy => {
                // The headerless format has no count: walk the record headers once.
                // A torn final record (what an interrupted append leaves: a prefix of
                // a record, its header consistent as far as it goes) is left out, the
                // valid prefix served; any other record that does not parse (a
                // byte count that does not match its shape, an unknown dtype) is damage.
                let mut at = 0usize;
                let mut shape = Vec::new();
                while at < map.len() {
                    let rest = &map[at..];
                    let torn = match crate::tensor::wire_record_len(rest) {
                        Ok(Some(len)) => len > rest.len(),
                        Ok(None) => true,
                        Err(e) => return Err(legacy_damage(path, r.records, at, e)),
                    };
                    if torn {
                        if r.records == 0 {
                            return Err(legacy_damage(
                                path,
                                0,
                                at,
                                Error::Wire(format!(
                                    "{} bytes, less than one whole record",
                                    rest.len()
                                )),
                            ));
                        }
                        break;
                    }
                    let h = parse_wire(rest, &mut shape)
                        .map_err(|e| legacy_damage(path, r.records, at, e))?;
                    at += h.record_len();
                    r.records += 1;
                }
                r.data_end = at;
                r.uncommitted_tail = file_len - at as u64;
            }
        }
        r.cursor = r.data_start;
        map.advise(memmap2::Advice::Sequential);
        r.map = Some(map);
        r.ra.file = file.try_clone().ok();
        r.intact()?;
        Ok(r)
    }

    /// A reader with no file and no records (a placeholder before the first open).
    pub fn empty() -> CacheReader {
        CacheReader {
            path: PathBuf::new(),
            map: None,
            format: Format::Current,
            meta: Metadata::default(),
            records: 0,
            data_start: 0,
            data_end: 0,
            uncommitted_tail: 0,
            cursor: 0,
            index: 0,
            shape: Vec::new(),
            trimmed_to: 0,
            inode: None,
            ra: RandomAccess::default(),
        }
    }

    /// (device, inode) of the file this reader maps.
    pub fn inode(&self) -> Option<(u64, u64)> {
        self.inode
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn format(&self) -> Format {
        self.format
    }
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }
    pub fn len(&self) -> u64 {
        self.records
    }
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
    /// Offset of the first record in the file.
    pub fn data_start(&self) -> u64 {
        self.data_start as u64
    }
    /// Bytes of committed record data (frames included).
    pub fn data_len(&self) -> u64 {
        (self.data_end - self.data_start) as u64
    }
    /// Bytes past the committed end (a torn tail from an interrupted write).
    pub fn uncommitted_tail(&self) -> u64 {
        self.uncommitted_tail
    }
    /// Index of the record the next call returns.
    pub fn position(&self) -> u64 {
        self.index
    }

    /// Moves the cursor to record 0.
    pub fn rewind(&mut self) {
        self.cursor = self.data_start;
        self.index = 0;
    }

    /// The next record, CRC-checked, borrowed from the mapping until the next call.
    /// Cycles to record 0 after the last. Hot path: allocates nothing.
    pub fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let loc = self.advance()?;
        Ok(self.view(loc))
    }

    /// Checks the next record and moves past it; `view` then borrows it. Split from
    /// `next_view` so a caller can recover from an error before borrowing.
    #[inline]
    pub fn advance(&mut self) -> Result<RecordLoc> {
        let r = self.advance_frame::<true>().map(|a| a.loc);
        // After the CRC: whatever the record looked like, a mapping that lost pages or
        // whose file was rewritten in place is reported as such.
        match &self.map {
            Some(m) if !m.intact() => Err(self.changed(self.index)),
            _ => r,
        }
    }

    /// The next record (cycling as `next_view`), copied into `out`: the copying read.
    /// The CRC is computed over the copy `out` holds (the wire header re-encoded from
    /// the parsed fields, then `out.copied()`), against the stored CRC read once; the
    /// mapping is not hashed, and the copy is hashed while it is still in cache. So `out`
    /// holds exactly the bytes the CRC vouches for, whatever another program writes into
    /// the file meanwhile. Then the file is confirmed to be the one opened (`intact`).
    /// A mismatch is `Error::Corrupt` and leaves the cursor on the record (what `out`
    /// holds then is unspecified). Hot path: allocates nothing (a `Tensor` sink reuses
    /// its buffers).
    pub fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        let (cursor, index) = (self.cursor, self.index);
        let a = match self.advance_frame::<false>() {
            Ok(a) => a,
            // As in `advance`: a cut or rewritten file is reported as such.
            Err(e) => return self.intact().and(Err(e)),
        };
        let map = self.map.as_ref().expect("non-empty cache is mapped");
        // What the hashing of the mapping used to do: the next record on its way while
        // this one is copied.
        prefetch(
            &map[..self.data_end],
            a.loc.data.end,
            a.loc.data.end + PREFETCH,
        );
        let t = TensorRef {
            dtype: a.loc.dtype,
            shape: &self.shape,
            data: &map[a.loc.data.clone()],
        };
        out.copy(t)?;
        let crc = crc_of(a.loc.dtype, &self.shape, out.copied());
        // A file cut or rewritten in place is reported as such, whatever was copied.
        self.intact()?;
        if self.format == Format::Current && crc != Some(a.crc) {
            (self.cursor, self.index) = (cursor, index);
            return Err(self.damage(
                a.at,
                "CRC mismatch in the bytes copied (the file is being written in place?)".into(),
            ));
        }
        Ok(())
    }

    /// Err when the file was cut or rewritten in place by another program since it
    /// was mapped (see `mapping.rs`). A copy of the last record made before this
    /// returns Ok holds the bytes the CRC check saw.
    #[inline]
    pub fn intact(&self) -> Result<()> {
        match &self.map {
            Some(m) if !m.intact() => Err(self.changed(self.index)),
            _ => Ok(()),
        }
    }

    fn changed(&self, index: u64) -> Error {
        Error::corrupt(
            &self.path,
            format!(
                "the file changed while being read (truncated or overwritten in place by \
                 another program) at record {index}; replace cache files by rename, never in place",
            ),
        )
    }

    /// Checks the framing of the next record and moves past it; with `HASH`, checks its
    /// CRC over the mapping too (the zero-copy path; the copying one hashes its copy).
    #[inline(always)]
    fn advance_frame<const HASH: bool>(&mut self) -> Result<Advanced> {
        if self.records == 0 {
            return Err(Error::Empty(format!("cache {}", self.path.display())));
        }
        if self.index == self.records {
            self.rewind();
        }
        self.skip_index_frames();
        let map = self.map.as_ref().expect("non-empty cache is mapped");
        let at = self.cursor;
        let region = &map[at..self.data_end];
        // Current: the one frame check, hashing the mapping only with `HASH` (the
        // copying path compares its copy with the CRC read here).
        let (wire_at, h, crc) = match self.format {
            Format::Current => {
                let f = check_record_frame_with(region, &mut self.shape, |b, at, len| {
                    HASH.then(|| crc_prefetching(b, at, len))
                })
                .map_err(|d| self.damage(at, d))?;
                (f.wire_at, f.wire, f.crc)
            }
            Format::Legacy => match parse_wire(region, &mut self.shape) {
                Ok(h) => (0, h, 0),
                Err(e) => return Err(self.damage(at, e.to_string())),
            },
        };
        let next = at + wire_at + h.record_len();
        if self.index + 1 == self.records && self.past_index_frames(next) != self.data_end {
            return Err(self.damage(
                next,
                "committed length does not end at a record boundary".into(),
            ));
        }
        self.cursor = next;
        self.index += 1;
        self.release_passed_pages(at);
        Ok(Advanced {
            loc: RecordLoc {
                dtype: h.dtype,
                data: at + wire_at + h.data_offset..next,
            },
            at,
            crc,
        })
    }

    /// The record `advance` just moved past. `loc` must come from the last `advance`.
    pub fn view(&self, loc: RecordLoc) -> TensorRef<'_> {
        TensorRef {
            dtype: loc.dtype,
            shape: &self.shape,
            data: &self.map.as_ref().expect("non-empty cache is mapped")[loc.data],
        }
    }

    /// Moves the cursor to record `index` (mod the record count). O(1) through the
    /// offset index of a version-2 file; otherwise O(index), checking each record
    /// passed over (used after a rebuild, not on the hot path).
    pub fn seek(&mut self, index: u64) -> Result<()> {
        if self.seek_indexed(index)? {
            return Ok(());
        }
        self.rewind();
        if self.records > 0 {
            for _ in 0..index % self.records {
                self.advance()?;
            }
        }
        Ok(())
    }

    /// Checks every committed record's CRC and framing without handing any out;
    /// returns the number of records checked. Leaves the cursor at record 0.
    pub fn verify(&mut self, mut progress: impl FnMut(u64, u64)) -> Result<u64> {
        self.rewind();
        for i in 0..self.records {
            self.next_view()?;
            progress(i + 1, self.data_len());
        }
        self.rewind();
        self.verify_index()?;
        Ok(self.records)
    }

    fn damage(&self, offset: usize, detail: String) -> Error {
        Error::corrupt(
            &self.path,
            format!("record {} at offset {offset}: {detail}", self.index),
        )
    }

    /// Drops resident pages well behind `keep_from`, so iterating a file larger than
    /// RAM costs memory in proportion to one window, not to the file.
    fn release_passed_pages(&mut self, keep_from: usize) {
        if keep_from < self.trimmed_to {
            // Wrapped around to record 0: the previous epoch's last window (up to
            // TRIM_EVERY bytes) is still resident; drop it before the new epoch adds
            // its own. No view into it is alive: the current record is at the start.
            self.drop_pages(self.trimmed_to, self.data_end);
            self.trimmed_to = 0;
        }
        if keep_from >= self.trimmed_to + TRIM_EVERY {
            self.drop_pages(self.trimmed_to, keep_from);
            self.trimmed_to = keep_from / page_size() * page_size();
        }
    }

    /// Drops the resident pages lying wholly inside [from, to) of the mapping.
    fn drop_pages(&self, from: usize, to: usize) {
        let page = page_size();
        let start = from / page * page;
        let end = to / page * page;
        if let (Some(map), true) = (&self.map, end > start) {
            // SAFETY: no reference into [start, end) is alive: callers pass ranges no
            // view of the current record overlaps (views end before `keep_from`).
            unsafe { map.dont_need(start, end - start) };
        }
    }
}

/// Records that the cache was used: sets its atime to now (mtime untouched), so
/// `cache_cli prune` can evict the least recently used caches even on filesystems
/// mounted `relatime`/`noatime`. Best effort: a read-only file simply keeps its atime.
fn mark_used(file: &File) {
    use std::os::unix::io::AsRawFd;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    ];
    // SAFETY: futimens on a descriptor we own, with a two-element array as required.
    let _ = unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
}

/// Bytes hashed between two prefetch rounds, and how far ahead of them the prefetch reaches.
const PREFETCH: usize = 4096;

/// CRC32 of `region[at..at + len]`, hashed 4 KiB at a time, each piece after a
/// prefetch of the 4 KiB that follow it (past the record's end too, so the next record
/// is on its way while this one is hashed). The hardware prefetchers stop at page
/// boundaries, so without this a pass over a mapping waits on memory at every page.
/// Measured on dataset A (docs/benchmarks.md): the C++ `next()` pass went from 1.52 to
/// 1.19 times the CPU time of `cat`, the view pass from 1.14 to 0.90; a distance of 8 KiB
/// was no better, 16 KiB worse.
#[inline]
fn crc_prefetching(region: &[u8], at: usize, len: usize) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let mut o = at;
    let end = at + len;
    while o < end {
        let next = (o + PREFETCH).min(end);
        prefetch(region, next, next + PREFETCH);
        h.update(&region[o..next]);
        o = next;
    }
    h.finalize()
}

/// The CRC32 of the wire record `dtype`, `shape`, `data`: the wire header re-encoded
/// from the parsed fields (the encoding is canonical), then the data. None when `data`
/// is too long for the wire's u32 (a sink that says it holds more than it was given).
#[inline]
fn crc_of(dtype: DType, shape: &[usize], data: &[u8]) -> Option<u32> {
    let mut head = [0u8; wire_header_len(MAX_NDIMS)];
    let nbytes = u32::try_from(data.len()).ok()?;
    let hl = encode_wire_header(dtype, shape, nbytes, &mut head);
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..hl]);
    h.update(data);
    Some(h.finalize())
}

/// The wire header of a record (dtype, shape, data length) into `out`; returns its
/// length. The fields come from a parsed header, so they fit the wire's u32s and
/// `shape.len() <= MAX_NDIMS`.
fn encode_wire_header(
    dtype: DType,
    shape: &[usize],
    nbytes: u32,
    out: &mut [u8; wire_header_len(MAX_NDIMS)],
) -> usize {
    out[0] = dtype.code();
    out[1..5].copy_from_slice(&(shape.len() as u32).to_le_bytes());
    let mut at = 5;
    for &d in shape {
        out[at..at + 4].copy_from_slice(&(d as u32).to_le_bytes());
        at += 4;
    }
    out[at..at + 4].copy_from_slice(&nbytes.to_le_bytes());
    at + 4
}

/// Hints the CPU to load `region[from..to]` (clamped to the region) into its caches.
/// A hint: it never faults, even on a page that was cut from the file.
#[inline]
fn prefetch(region: &[u8], from: usize, to: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let to = to.min(region.len());
        let mut o = from & !63;
        while o < to {
            // SAFETY: `o < region.len()`: the address lies inside the mapping;
            // prefetching has no other requirement (and no effect on memory).
            #[allow(unused_unsafe)]
            unsafe {
                core::arch::x86_64::_mm_prefetch(
                    region.as_ptr().add(o) as *const i8,
                    core::arch::x86_64::_MM_HINT_T0,
                )
            };
            o += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (region, from, to);
}

/// A legacy (headerless) file whose record `index` at `at` does not parse: damage. At
/// record 0 the file may also be no cache at all: the message says both.
fn legacy_damage(path: &Path, index: u64, at: usize, e: Error) -> Error {
    let e = match e {
        Error::Wire(d) => d,
        e => e.to_string(),
    };
    Error::corrupt(
        path,
        if index == 0 {
            format!("damaged: no cache header and no legacy record at its start ({e})")
        } else {
            format!("damaged legacy record {index} at offset {at}: {e}")
        },
    )
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

impl RandomAccess {
    /// Notes where the index of a current-format file is. Nothing is read: opening
    /// touches only the header; the index frame is checked on first use.
    fn open(h: &Header) -> RandomAccess {
        RandomAccess {
            version: h.version,
            index_at: if h.version == VERSION_1 {
                0
            } else {
                h.commit.index_at
            },
            ..RandomAccess::default()
        }
    }
}

/// Random access. `view_at(i)` is O(1): one index entry and one frame are read (two
/// pages for a record within a page). Files without an index (version 1, legacy) get
/// one built in memory on first use (one walk over the frame headers, 8 bytes per
/// record). Pages touched by random access are released every `TRIM_EVERY` bytes, so
/// memory stays bounded in any order.
impl CacheReader {
    /// The file's format version: 2 (current), 1, or 0 for the headerless legacy format.
    pub fn version(&self) -> u32 {
        self.ra.version
    }

    /// True when the file carries an offset index (random access without building one).
    pub fn has_index(&self) -> bool {
        self.ra.index_at != 0
    }

    /// Checks the header of the index frame the commit names, on first use (O(1)).
    fn ensure_index(&mut self) -> Result<()> {
        if self.ra.entries_at.is_some() || self.ra.index_at == 0 {
            return Ok(());
        }
        let Some(map) = &self.map else {
            return Ok(());
        };
        let at = self.ra.index_at;
        let end = self.data_end;
        let bad =
            |d: String| Error::corrupt(&self.path, format!("index frame at offset {at}: {d}"));
        let at = usize::try_from(at)
            .ok()
            .filter(|&a| a >= self.data_start && a + FRAME_HEADER <= end)
            .ok_or_else(|| bad("outside the committed data".into()))?;
        let fh: &[u8; FRAME_HEADER] = map[at..at + FRAME_HEADER].try_into().unwrap();
        match parse_frame(fh, true).map_err(bad)? {
            Frame::Index { body_at, body_len } => {
                let capacity = (body_len / INDEX_ENTRY) as u64;
                if at + body_at + body_len > end {
                    return Err(bad("runs past the committed data".into()));
                }
                if capacity < self.records {
                    return Err(bad(format!(
                        "holds {capacity} entries for {} records",
                        self.records
                    )));
                }
                self.ra.entries_at = Some(at + body_at);
                self.ra.index_bytes = body_len;
                Ok(())
            }
            Frame::Record { .. } => Err(bad("a record frame, not an index".into())),
        }
    }

    /// Record `index` (0-based, no cycling), CRC-checked, borrowed until the next call.
    /// The sequential cursor is not moved. `Error::IndexOutOfRange` at `index >= len()`.
    pub fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        let loc = self.check_at(index)?;
        Ok(self.view_checked(loc))
    }

    /// Checks record `index` for `view_checked`: split from `view_at` so a caller can
    /// recover from damage before borrowing.
    pub fn check_at(&mut self, index: u64) -> Result<RecordLoc> {
        if index >= self.records {
            return Err(Error::IndexOutOfRange {
                source_name: self.path.display().to_string(),
                index,
                len: self.records,
            });
        }
        self.release_random_pages();
        let at = self.frame_offset(index)?;
        let framed = self.format == Format::Current;
        let bad = |path: &Path, d: String| {
            Error::corrupt(path, format!("record {index} at offset {at}: {d}"))
        };
        let loc = if self.ra.file.is_some() {
            self.read_frame_copy(at, framed)
                .map(|(dtype, data)| RecordLoc { dtype, data })
        } else {
            let map = self.map.as_ref().expect("non-empty cache is mapped");
            check_frame(map, at, self.data_end, framed, &mut self.ra.shape).map(
                |(dtype, data, end)| {
                    // Fault-around maps up to 64 KiB around each page touched.
                    self.ra.touched += end - at + (128 << 10);
                    RecordLoc { dtype, data }
                },
            )
        };
        // After the read, whatever it found: a record of another file copied over this
        // one in place (the same layout passes every frame check) is told by the file's
        // first bytes, which hold its nonce's CRC (see `mapping.rs`); a cut file by the
        // mapping's fault flag (or a short read).
        match &self.map {
            Some(m) if !m.intact() => Err(self.changed(index)),
            _ => loc.map_err(|d| bad(&self.path, d)),
        }
    }

    /// Record `index` (as `view_at`) copied into `out`: the copying random access.
    /// The record was read into a buffer of this reader with `pread` and CRC-checked
    /// there, so what is copied is what the CRC vouches for; without that buffer (no
    /// descriptor), `out`'s copy is hashed as in `next_into`.
    pub fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        let loc = self.check_at(index)?;
        let private = self.ra.file.is_some();
        let dtype = loc.dtype;
        out.copy(self.view_checked(loc))?;
        if private {
            return Ok(());
        }
        let crc = crc_of(dtype, &self.ra.shape, out.copied());
        self.intact()?;
        if self.format != Format::Current {
            return Ok(());
        }
        // Read through the mapping: the copy against the frame's stored CRC.
        let at = self.frame_offset(index)?;
        let map = self.map.as_ref().expect("non-empty cache is mapped");
        let stored = map
            .get(at..self.data_end)
            .and_then(super::format::stored_record_crc);
        if crc.is_none() || crc != stored {
            return Err(Error::corrupt(
                &self.path,
                format!("record {index} at offset {at}: CRC mismatch in the bytes copied"),
            ));
        }
        Ok(())
    }

    /// The record `check_at` just checked. `loc` must come from the last `check_at`.
    pub fn view_checked(&self, loc: RecordLoc) -> TensorRef<'_> {
        let bytes = match self.ra.file {
            Some(_) => &words_as_bytes(&self.ra.buf)[..self.ra.buf_len],
            None => &self.map.as_ref().expect("non-empty cache is mapped")[..],
        };
        TensorRef {
            dtype: loc.dtype,
            shape: &self.ra.shape,
            data: &bytes[loc.data],
        }
    }

    /// Reads the frame at `at` into `ra.buf` with `pread` (one call when the frame is
    /// no larger than the previous one, two otherwise) and checks it; the data range
    /// returned is in `ra.buf`, 8-aligned as in the file.
    fn read_frame_copy(
        &mut self,
        at: usize,
        framed: bool,
    ) -> std::result::Result<(crate::tensor::DType, std::ops::Range<usize>), String> {
        use std::os::unix::fs::FileExt;
        if self.ra.index_bytes > TRIM_EVERY {
            // Fault-around maps up to 64 KiB of the index around each entry read.
            self.ra.touched += 64 << 10;
        }
        let file = self.ra.file.as_ref().expect("checked by the caller");
        let lead = at % 8;
        let start = at - lead;
        let avail = self.data_end - start;
        // The last frame's length plus the largest difference in `lead`.
        let guess = match self.ra.buf_len {
            0 => 4096,
            n => n + 8,
        }
        .min(avail);
        if self.ra.buf.len() * 8 < guess {
            self.ra.buf.resize(guess.div_ceil(8), 0);
        }
        let bytes = &mut words_as_bytes_mut(&mut self.ra.buf)[..guess];
        read_clustered(file, bytes, start as u64, &mut self.ra.no_nowait)
            .map_err(|e| format!("cannot read: {e}"))?;
        let need = lead
            .saturating_add(frame_len_in(&bytes[lead.min(guess)..], framed))
            .min(avail);
        let mut len = guess;
        if need > guess {
            if self.ra.buf.len() * 8 < need {
                self.ra.buf.resize(need.div_ceil(8), 0);
            }
            let bytes = words_as_bytes_mut(&mut self.ra.buf);
            file.read_exact_at(&mut bytes[guess..need], (start + guess) as u64)
                .map_err(|e| format!("cannot read: {e}"))?;
            len = need;
        }
        let bytes = &words_as_bytes(&self.ra.buf)[..len];
        let (dtype, data, end) = check_frame(bytes, lead, len, framed, &mut self.ra.shape)?;
        // The next read guesses this frame's length: one call for same-sized records.
        self.ra.buf_len = end;
        Ok((dtype, data))
    }

    /// `seek` in O(1) through the on-disk index; false (nothing done) for a file
    /// without one. The record sought is checked when it is read, as every record is.
    fn seek_indexed(&mut self, index: u64) -> Result<bool> {
        if self.ra.index_at == 0 || self.records == 0 {
            return Ok(false);
        }
        let index = index % self.records;
        self.cursor = self.frame_offset(index)?;
        self.index = index;
        Ok(true)
    }

    /// The frame offset of record `index` (< records) from the index.
    fn frame_offset(&mut self, index: u64) -> Result<usize> {
        self.ensure_index()?;
        let map = self.map.as_ref().expect("non-empty cache is mapped");
        let bad = |d: String| Error::corrupt(&self.path, format!("record {index}: {d}"));
        let offset = match self.ra.entries_at {
            Some(e) => {
                let at = e + index as usize * INDEX_ENTRY;
                let entry = u64::from_le_bytes(map[at..at + INDEX_ENTRY].try_into().unwrap());
                entry_offset(index, entry)
                    .ok_or_else(|| bad(format!("its index entry at offset {at} is damaged")))?
            }
            None => {
                if self.ra.built.is_none() {
                    let framed = self.format == Format::Current;
                    let built = walk_offsets(
                        map,
                        self.data_start,
                        self.data_end,
                        self.records,
                        framed,
                        framed && self.ra.version >= 2,
                    )
                    .map_err(|d| Error::corrupt(&self.path, format!("indexing records: {d}")))?;
                    self.ra.built = Some(built);
                }
                self.ra.built.as_ref().expect("built above")[index as usize]
            }
        };
        usize::try_from(offset)
            .ok()
            .filter(|&o| o >= self.data_start && o < self.data_end)
            .ok_or_else(|| bad(format!("the index points outside the data, at {offset}")))
    }

    /// Releases the pages random access has touched once they add up to `TRIM_EVERY`
    /// (no view is alive: `check_at` takes `&mut self`), and advises the kernel that
    /// reads are random (no readahead) until the next sequential read.
    fn release_random_pages(&mut self) {
        if self.ra.touched >= TRIM_EVERY {
            if let Some(len) = self.map.as_ref().map(|m| m.len()) {
                self.drop_pages(0, len);
            }
            self.trimmed_to = 0;
            self.ra.touched = 0;
        }
        if !self.ra.random_advice {
            if let Some(map) = &self.map {
                map.advise(memmap2::Advice::Random);
            }
            self.ra.random_advice = true;
        }
    }

    /// Before a sequential read: moves the cursor past index frames (version 2) and
    /// restores sequential readahead after random access. One byte test per record.
    #[inline]
    fn skip_index_frames(&mut self) {
        if self.ra.random_advice {
            if let Some(map) = &self.map {
                map.advise(memmap2::Advice::Sequential);
            }
            self.ra.random_advice = false;
        }
        if self.ra.version >= 2 {
            self.cursor = self.past_index_frames(self.cursor);
        }
    }

    /// The first offset at or after `at` that is not the start of an index frame
    /// (damaged index frame headers are left for the record check to report).
    fn past_index_frames(&self, mut at: usize) -> usize {
        let Some(map) = &self.map else { return at };
        if self.ra.version < 2 {
            return at;
        }
        while map
            .get(at..self.data_end)
            .is_some_and(super::format::flags_index_frame)
        {
            let fh: &[u8; FRAME_HEADER] = map[at..at + FRAME_HEADER].try_into().unwrap();
            match parse_frame(fh, true) {
                Ok(f @ Frame::Index { .. }) if at + f.len() as usize <= self.data_end => {
                    at += f.len() as usize
                }
                _ => break,
            }
        }
        at
    }

    /// Checks that every index entry names its record's frame (after `verify` has
    /// checked the records themselves).
    fn verify_index(&mut self) -> Result<()> {
        self.ensure_index()?;
        let (Some(map), Some(entries)) = (&self.map, self.ra.entries_at) else {
            return Ok(());
        };
        let mut at = self.data_start;
        for i in 0..self.records {
            at = self.past_index_frames(at);
            let e = entries + i as usize * INDEX_ENTRY;
            let entry = u64::from_le_bytes(map[e..e + INDEX_ENTRY].try_into().unwrap());
            if entry_offset(i, entry) != Some(at as u64) {
                return Err(Error::corrupt(
                    &self.path,
                    format!("index entry {i} (at offset {e}) does not point at record {i}'s frame at {at}"),
                ));
            }
            let fh: &[u8; FRAME_HEADER] = map[at..at + FRAME_HEADER].try_into().unwrap();
            at += parse_frame(fh, true)
                .map_err(|d| Error::corrupt(&self.path, d))?
                .len() as usize;
        }
        Ok(())
    }
}

/// The length a frame (or a legacy wire record) starting at `b` claims, as far as its
/// first bytes tell; `usize::MAX` when they cannot tell (read all that is there).
fn frame_len_in(b: &[u8], framed: bool) -> usize {
    // A header that is damaged needs no more bytes: parsing what is there reports it.
    if framed {
        match b
            .first_chunk::<FRAME_HEADER>()
            .map(|fh| parse_frame(fh, true))
        {
            None => usize::MAX,
            Some(Ok(f)) => f.len() as usize,
            Some(Err(_)) => b.len(),
        }
    } else {
        match crate::tensor::wire_record_len(b) {
            Ok(Some(n)) => n,
            Ok(None) => usize::MAX,
            Err(_) => b.len(),
        }
    }
}

/// Checks the record frame at `at` (a framed file: frame bounds and CRC; legacy: the
/// wire record alone). Returns its dtype, data range and end.
fn check_frame(
    map: &[u8],
    at: usize,
    data_end: usize,
    framed: bool,
    shape: &mut Vec<usize>,
) -> std::result::Result<(crate::tensor::DType, std::ops::Range<usize>, usize), String> {
    let region = &map[at..data_end];
    let (wire_at, h) = if framed {
        let f = check_record_frame(region, shape)?;
        (f.wire_at, f.wire)
    } else {
        (0, parse_wire(region, shape).map_err(|e| e.to_string())?)
    };
    let end = at + wire_at + h.record_len();
    Ok((h.dtype, at + wire_at + h.data_offset..end, end))
}
