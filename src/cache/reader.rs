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
//!   copying reads, sequential and random, hash the caller's copy,
//!   `RecordSink::copied`, right after making it, and never hash the mapping), so a byte
//!   written between the check and the copy cannot pass. After the copy the file's first 24 bytes are
//!   compared with those seen at open and the SIGBUS flag is read (`Mapping::intact`):
//!   a same-layout file copied over this one differs there, because every file written
//!   carries its own random nonce under the header CRC (format.rs), and a cut file has
//!   raised the flag. A legacy (headerless) file has no CRC to catch a cut inside a
//!   page (the rest of the page reads as zeros, with no SIGBUS): its length is checked
//!   after each read instead (`unchanged`). A mismatch is `Error::Corrupt`, which the producers repair by a
//!   rebuild (or report).
//! - **Zero-copy views** (`next_view`, `view_at`, and `view`/`view_checked`) are checked
//!   the same way before they are returned, but then borrow the shared mapping: a
//!   program that rewrites the file in place while a view is held can change the bytes
//!   under it (or cut them, which reads as zeros); nothing can be promised about bytes
//!   read after the check. The next call on the reader reports the change.
//! - Not detected: an in-place writer that keeps the first 24 bytes and writes whole
//!   valid frames of the same layout (a `dd conv=notrunc` of another version's records
//!   only), and a file written before nonces existed (or the headerless legacy format)
//!   overwritten by one with an equal head. Replace cache files by rename.
//!
//! The cost of the file check on the random-access path is one atomic load and a
//! 24-byte compare of a resident page per record. Comparing the descriptor's `fstat`
//! (size, mtime, ctime) with the one at open was the alternative: a system call per
//! record, and an append by another process (a legitimate change of mtime and size)
//! would read as a rewrite.
//!
//! Random access reads through the mapping, with no system call per record (it used
//! `pread`, one call a record); told the order of the reads to come (`read_ahead`), the
//! reader looks offsets up in batches, prefetches the next records and, when the file
//! is not in the page cache, asks the disk for many records at once (`readahead.rs`).
//! Mapped pages are the page cache's, not this process's private memory.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::format::{
    check_record_frame_with, entry_offset, parse_frame, slot_in_flux, sniff, Frame, Header,
    Metadata, Sniff, FRAME_HEADER, INDEX_ENTRY, SNIFF_LEN, VERSION_1,
};
use super::index::walk_offsets;
use super::mapping::{page_size, Mapping};
use super::readahead::{ReadAhead, ReadAheadStats, ReadOrder};
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
    /// A legacy (headerless) file's descriptor: its records carry no CRC, so a cut
    /// that zeroes the tail of the last page without a SIGBUS is told by its length
    /// (`unchanged`).
    legacy_file: Option<File>,
    /// Random access (`view_at`) state.
    ra: RandomAccess,
    /// The CRC state after the last wire header hashed (both read paths).
    head_crc: HeadCrc,
}

/// How the mapping is advised for random reads (`advise_random`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RandomAdvice {
    Planned,
    Unplanned,
}

/// What `view_at` needs: where the index is, its own shape buffer, and the read-ahead.
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
    /// The advice the mapping has for random access (None: sequential, set at open and
    /// by each sequential read).
    random_advice: Option<RandomAdvice>,
    /// The order the next random reads come in, when the caller said (`read_ahead`).
    plan: Option<ReadAhead>,
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
                r.legacy_file = Some(
                    file.try_clone()
                        .map_err(|e| Error::io("cannot reopen cache", path, e))?,
                );
            }
        }
        r.cursor = r.data_start;
        map.advise(memmap2::Advice::Sequential);
        r.map = Some(map);
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
            legacy_file: None,
            ra: RandomAccess::default(),
            head_crc: HeadCrc::default(),
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
        if self.unchanged() {
            r
        } else {
            Err(self.changed(self.index))
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
        // The next record's first line and the start of each page it reaches on its
        // way while this one is copied: the hardware prefetchers follow a stream
        // within a page but stop at its end. (Prefetching every line of the next 4 KiB
        // filled the line-fill buffers: 14% of the pass stalled on the prefetch.)
        prefetch_pages(
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
        let crc = self.head_crc.crc_of(a.loc.dtype, &self.shape, out.copied());
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
        if self.unchanged() {
            Ok(())
        } else {
            Err(self.changed(self.index))
        }
    }

    /// The mapping's check (no page lost, the same first bytes), and for a legacy file,
    /// whose records carry no CRC, that it was not cut: a cut inside a page zeroes the
    /// rest of that page without a SIGBUS, which only the file's length tells (one
    /// `fstat` a record, legacy files only).
    #[inline]
    fn unchanged(&self) -> bool {
        let cut = |f: &File| {
            f.metadata()
                .map_or(true, |md| md.len() < self.data_end as u64)
        };
        !matches!(&self.map, Some(m) if !m.intact())
            && !matches!(&self.legacy_file, Some(f) if cut(f))
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

/// The bytes of record `index`'s entry in an index whose entries start at `entries`.
#[inline]
fn index_entry(entries: usize, index: u64) -> std::ops::Range<usize> {
    let at = entries + index as usize * INDEX_ENTRY;
    at..at + INDEX_ENTRY
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

/// The CRC state after a record's wire header, for the last header hashed: a pass over
/// records of one shape encodes and hashes the header once, not once a record (that
/// was 5% of the C++ `next()` pass, on crc32fast's path for short inputs).
#[derive(Debug, Default)]
struct HeadCrc {
    /// dtype and data length of the header hashed (None: nothing hashed yet).
    key: Option<(DType, u32)>,
    shape: Vec<usize>,
    crc: u32,
    len: u64,
}

impl HeadCrc {
    /// The CRC32 of the wire record `dtype`, `shape`, `data`: the wire header encoded
    /// from the parsed fields (the encoding is canonical), then the data. None when
    /// `data` is too long for the wire's u32 (a sink that says it holds more than it
    /// was given).
    #[inline]
    fn crc_of(&mut self, dtype: DType, shape: &[usize], data: &[u8]) -> Option<u32> {
        let nbytes = u32::try_from(data.len()).ok()?;
        if self.key != Some((dtype, nbytes)) || self.shape != shape {
            let mut head = [0u8; wire_header_len(MAX_NDIMS)];
            let hl = encode_wire_header(dtype, shape, nbytes, &mut head);
            let mut h = crc32fast::Hasher::new();
            h.update(&head[..hl]);
            (self.crc, self.len) = (h.finalize(), hl as u64);
            self.shape.clear();
            self.shape.extend_from_slice(shape);
            self.key = Some((dtype, nbytes));
        }
        let mut h = crc32fast::Hasher::new_with_initial_len(self.crc, self.len);
        h.update(data);
        Some(h.finalize())
    }
}

/// The wire header of a record (dtype, shape, data length) into `out`; returns its
/// length. The fields come from a parsed header, so they fit the wire's u32s and
/// `shape.len() <= MAX_NDIMS`.
fn encode_wire_header(dtype: DType, shape: &[usize], nbytes: u32, out: &mut [u8]) -> usize {
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
pub(super) fn prefetch(region: &[u8], from: usize, to: usize) {
    prefetch_with::<true>(region, from, to)
}

/// As `prefetch`, into the L2 cache only: lines asked for far ahead, which would
/// otherwise hold L1's few fill buffers while the current record waits for its own.
#[inline]
pub(super) fn prefetch_l2(region: &[u8], from: usize, to: usize) {
    prefetch_with::<false>(region, from, to)
}

/// `prefetch` (into L1 with `L1`) and `prefetch_l2`.
#[inline]
fn prefetch_with<const L1: bool>(region: &[u8], from: usize, to: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
        let to = to.min(region.len());
        let mut o = from & !63;
        while o < to {
            // SAFETY: `o < region.len()`: the address lies inside the mapping;
            // prefetching has no other requirement (and no effect on memory).
            #[allow(unused_unsafe)]
            unsafe {
                let p = region.as_ptr().add(o) as *const i8;
                if L1 {
                    _mm_prefetch(p, _MM_HINT_T0)
                } else {
                    _mm_prefetch(p, _MM_HINT_T1)
                }
            };
            o += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (region, from, to);
}

/// Hints the CPU to load the line at `from` and the first line of each page that
/// starts in `(from, to)` (clamped to the region): a stream's way into new pages, which
/// the hardware prefetchers do not cross.
#[inline]
fn prefetch_pages(region: &[u8], from: usize, to: usize) {
    prefetch(region, from, from + 1);
    let mut page = (from | 4095) + 1;
    while page < to {
        prefetch(region, page, page + 1);
        page += 4096;
    }
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

    /// Checks record `index` (its frame and its CRC, over the mapping) for
    /// `view_checked`: split from `view_at` so a caller can recover from damage before
    /// borrowing.
    pub fn check_at(&mut self, index: u64) -> Result<RecordLoc> {
        self.frame_at::<true>(index).map(|(loc, _)| loc)
    }

    /// Record `index` (as `view_at`) copied into `out`: the copying random access.
    /// As `next_into`: the frame is checked, the data copied from the mapping, and the
    /// CRC computed over the copy `out` holds against the stored one, so `out` holds
    /// exactly the bytes the CRC vouches for; then the file is confirmed to be the one
    /// opened.
    pub fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        let (loc, stored) = self.frame_at::<false>(index)?;
        out.copy(self.view_checked(loc.clone()))?;
        let crc = self
            .head_crc
            .crc_of(loc.dtype, &self.ra.shape, out.copied());
        self.intact()?;
        if self.format == Format::Current && crc != Some(stored) {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "record {index}: CRC mismatch in the bytes copied (the file is being \
                     written in place?)"
                ),
            ));
        }
        Ok(())
    }

    /// The record `check_at` just checked. `loc` must come from the last `check_at`.
    pub fn view_checked(&self, loc: RecordLoc) -> TensorRef<'_> {
        TensorRef {
            dtype: loc.dtype,
            shape: &self.ra.shape,
            data: &self.map.as_ref().expect("non-empty cache is mapped")[loc.data],
        }
    }

    /// Finds record `index` (through the read-ahead when it is the record planned
    /// next, else through the index) and checks its frame in the mapping: bounds, wire
    /// header, and with `HASH` its CRC over the mapping (the copying read hashes its copy
    /// instead, against the stored CRC returned). Then the file is checked to be the one
    /// opened, whatever the frame looked like: a record of another file copied over
    /// this one in place (the same layout passes every frame check) is told by the
    /// file's first bytes, which hold its nonce's CRC (see `mapping.rs`); a cut file by
    /// the mapping's fault flag.
    #[inline]
    fn frame_at<const HASH: bool>(&mut self, index: u64) -> Result<(RecordLoc, u32)> {
        if index >= self.records {
            return Err(Error::IndexOutOfRange {
                source_name: self.path.display().to_string(),
                index,
                len: self.records,
            });
        }
        self.advise_random();
        let at = match self.planned(index)? {
            Some(at) => at,
            None => self.frame_offset(index)?,
        };
        let map = self.map.as_ref().expect("non-empty cache is mapped");
        let region = &map[at..self.data_end];
        let found = match self.format {
            // A record out of order: no prefetch of the bytes after it (they are another
            // record's, not the next one read); the read-ahead prefetched its start.
            Format::Current => check_record_frame_with(region, &mut self.ra.shape, |b, at, len| {
                HASH.then(|| crc32fast::hash(&b[at..at + len]))
            })
            .map(|f| (f.wire_at, f.wire, f.crc)),
            Format::Legacy => parse_wire(region, &mut self.ra.shape)
                .map(|h| (0, h, 0))
                .map_err(|e| e.to_string()),
        };
        match self.unchanged() {
            false => Err(self.changed(index)),
            true => found
                .map(|(wire_at, h, crc)| {
                    let data = at + wire_at + h.data_offset..at + wire_at + h.record_len();
                    if let Some(plan) = &mut self.ra.plan {
                        plan.saw_frame(data.end - at);
                    }
                    (
                        RecordLoc {
                            dtype: h.dtype,
                            data,
                        },
                        crc,
                    )
                })
                .map_err(|d| {
                    Error::corrupt(&self.path, format!("record {index} at offset {at}: {d}"))
                }),
        }
    }

    /// Reads ahead in `order`: the indices the next random reads (`view_at`,
    /// `check_at`, `at_into`) will ask for, in order. A read of the index planned next
    /// finds its frame offset already looked up (in batches, ahead of time) and its
    /// bytes already on their way to the CPU cache (a software prefetch a few records
    /// ahead), and, when the file is not in the page cache, read from disk as one
    /// deep queue of requests (see `readahead.rs`). A read of any other index is served
    /// exactly as without a plan. Records are checked as always: read-ahead only says
    /// where to look and starts the disk and the CPU early. Replaces any earlier plan.
    pub fn read_ahead(&mut self, order: ReadOrder) {
        let len = self.map.as_ref().map_or(0, |m| m.len());
        self.ra.plan = (self.records > 0).then(|| ReadAhead::new(order, len));
    }

    /// Stops reading ahead (the next random reads are served one at a time).
    pub fn stop_read_ahead(&mut self) {
        self.ra.plan = None;
    }

    /// What the read-ahead did since `read_ahead` (zeros without a plan).
    pub fn read_ahead_stats(&self) -> ReadAheadStats {
        self.ra.plan.as_ref().map(|p| p.stats).unwrap_or_default()
    }

    /// The frame offset of record `index` if the read-ahead planned it next.
    #[inline]
    fn planned(&mut self, index: u64) -> Result<Option<usize>> {
        let Some(mut plan) = self.ra.plan.take() else {
            return Ok(None);
        };
        self.prepare_index()?;
        let map = self.map.as_ref().expect("a non-empty cache is mapped");
        let entries = self.ra.entries_at;
        let found = plan.take(
            index,
            map,
            self.records,
            |i| self.offset_of(i),
            |i| entries.map(|e| index_entry(e, i).start),
        );
        if plan.alive() {
            self.ra.plan = Some(plan);
        }
        Ok(found)
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
        self.prepare_index()?;
        self.offset_of(index)
    }

    /// Makes `offset_of` answer: checks the index frame, or builds an index in memory
    /// for a file without one (once).
    fn prepare_index(&mut self) -> Result<()> {
        self.ensure_index()?;
        if self.ra.entries_at.is_none() && self.ra.built.is_none() {
            let map = self.map.as_ref().expect("non-empty cache is mapped");
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
        Ok(())
    }

    /// The frame offset of record `index` (< records), after `prepare_index`.
    #[inline]
    fn offset_of(&self, index: u64) -> Result<usize> {
        let map = self.map.as_ref().expect("non-empty cache is mapped");
        let bad = |d: String| Error::corrupt(&self.path, format!("record {index}: {d}"));
        let offset = match (self.ra.entries_at, &self.ra.built) {
            (Some(e), _) => {
                let at = index_entry(e, index);
                let entry = u64::from_le_bytes(map[at.clone()].try_into().unwrap());
                let at = at.start;
                entry_offset(index, entry)
                    .ok_or_else(|| bad(format!("its index entry at offset {at} is damaged")))?
            }
            (None, Some(built)) => built[index as usize],
            (None, None) => unreachable!("prepare_index ran"),
        };
        usize::try_from(offset)
            .ok()
            .filter(|&o| o >= self.data_start && o < self.data_end)
            .ok_or_else(|| bad(format!("the index points outside the data, at {offset}")))
    }

    /// Advises the kernel how random reads go until the next sequential read. With a
    /// plan (`read_ahead`): `MADV_RANDOM`, no read-around of a fault, because the
    /// read-ahead asks for exactly the records coming (a read-around is `read_ahead_kb`,
    /// 8 MiB on some machines, for one record of a few KiB). Without one: the usual
    /// read-around of a fault that misses the page cache (neighbours of a record are
    /// often read soon: block order). Pages touched through the mapping stay mapped:
    /// they are the page cache's (reclaimable, shared), not this process's private
    /// memory (DESIGN §11), and dropping them would make the next epoch fault them back
    /// one by one.
    #[inline]
    fn advise_random(&mut self) {
        let want = if self.ra.plan.is_some() {
            RandomAdvice::Planned
        } else {
            RandomAdvice::Unplanned
        };
        if self.ra.random_advice != Some(want) {
            if let Some(map) = &self.map {
                map.advise(match want {
                    RandomAdvice::Planned => memmap2::Advice::Random,
                    RandomAdvice::Unplanned => memmap2::Advice::Normal,
                });
            }
            self.ra.random_advice = Some(want);
        }
    }

    /// Before a sequential read: moves the cursor past index frames (version 2) and
    /// restores sequential readahead after random access. One byte test per record.
    #[inline]
    fn skip_index_frames(&mut self) {
        if self.ra.random_advice.is_some() {
            if let Some(map) = &self.map {
                map.advise(memmap2::Advice::Sequential);
            }
            self.ra.random_advice = None;
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
            let e = index_entry(entries, i);
            let entry = u64::from_le_bytes(map[e.clone()].try_into().unwrap());
            let e = e.start;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC kept for the last header is the CRC of the whole wire record for every
    /// record, whatever changes from one to the next: the shape alone (same byte
    /// count), the dtype alone, the data alone, or all of them.
    #[test]
    fn the_kept_header_crc_is_the_wire_records_crc() {
        let bytes = |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let records: Vec<(DType, Vec<usize>, Vec<u8>)> = vec![
            (DType::Float32, vec![784], bytes(3136, 3)),
            (DType::Float32, vec![784], bytes(3136, 5)),
            (DType::Float32, vec![28, 28], bytes(3136, 5)),
            (DType::Int32, vec![28, 28], bytes(3136, 5)),
            (DType::UInt8, vec![3136], bytes(3136, 5)),
            (DType::Float64, vec![392], bytes(3136, 5)),
            (DType::Float32, vec![0], Vec::new()),
            (DType::Float32, vec![], bytes(4, 7)),
            (DType::Float32, vec![1; MAX_NDIMS], bytes(4, 7)),
            (DType::Float32, vec![784], bytes(3136, 3)),
        ];
        let mut kept = HeadCrc::default();
        for (dtype, shape, data) in &records {
            let t = TensorRef {
                dtype: *dtype,
                shape,
                data,
            };
            let want = crc32fast::hash(&t.to_wire().unwrap());
            assert_eq!(
                kept.crc_of(*dtype, shape, data),
                Some(want),
                "{}",
                t.describe()
            );
        }
    }
}
