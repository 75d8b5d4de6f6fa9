//! Writing cache files.
//!
//! `CacheWriter` populates a new file: it writes to a temporary file in the target
//! directory and renames it into place only when complete, with the data and the
//! directory fsynced, so a crash leaves either no cache or the previous one.
//! `CacheAppender` extends an existing file: new frames go after the committed end,
//! are made durable, and only then does the header's commit slot move, so a crash
//! mid-append leaves the previous commit in force (the torn tail is ignored and cut
//! off by the next appender).
//!
//! Both write only under the cache's lock: their constructors take the `CacheLock` of
//! the path and borrow it for their lifetime, so a writer without the lock, or one that
//! outlives it, does not compile (and a lock of another path is refused).
//!
//! ```no_run
//! # use harmonics_dataset::cache::{CacheLock, CacheWriter, Metadata};
//! # fn main() -> harmonics_dataset::Result<()> {
//! # let path = std::path::Path::new("/tmp/x.cache");
//! let lock = CacheLock::exclusive(path)?;
//! let w = CacheWriter::create(path, Metadata::new("", "doc"), &lock)?;
//! w.finish()?;
//! # Ok(()) }
//! ```
//! Without the lock:
//! ```compile_fail,E0061
//! # use harmonics_dataset::cache::{CacheWriter, Metadata};
//! let w = CacheWriter::create("/tmp/x.cache", Metadata::new("", "doc"));
//! ```
//! Releasing it before the writer is done:
//! ```compile_fail,E0505
//! # use harmonics_dataset::cache::{CacheLock, CacheWriter, Metadata};
//! # fn main() -> harmonics_dataset::Result<()> {
//! # let path = std::path::Path::new("/tmp/x.cache");
//! let lock = CacheLock::exclusive(path)?;
//! let w = CacheWriter::create(path, Metadata::new("", "doc"), &lock)?;
//! drop(lock);
//! w.finish()?;
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{BufWriter, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{
    frame_header, index_frame_header, parse_frame, Commit, Frame, Header, Metadata, FRAME_HEADER,
    INDEX_ENTRY, MAX_META_LEN, META_OFFSET, VERSION_1,
};
use super::index::{walk_offsets, EntryLog};
use super::reader::CacheReader;
use super::{flock, names_file, CacheLock};
use crate::error::{Error, Result};
use crate::tensor::{parse_wire, wire_header_len, TensorRef, WireHeader};

const WRITE_BUFFER: usize = 4 << 20;
/// Records per vectored write of `push_wires` (two slices each, under IOV_MAX).
const WRITEV_RECORDS: usize = 512;
/// Record data at least this large bypasses the write buffer.
const DIRECT_WRITE: usize = 256 << 10;

/// Writeback of what was written is started every this many bytes, so the disk works
/// while records are still being produced and the final fsync has little left to do.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// Frames records onto the end of a file. Shared by the writer and the appender.
#[derive(Debug)]
struct FrameSink {
    out: BufWriter<File>,
    path: PathBuf,
    /// Absolute file offset where the next frame starts.
    offset: u64,
    records: u64,
    data_start: u64,
    scratch: Vec<u8>,
    /// File offset up to which writeback has been started.
    writeback_from: u64,
    /// Frame offsets of the records pushed since the last commit (for the index).
    log: EntryLog,
}

impl FrameSink {
    /// Appends one record. Hot path: no allocation once `scratch` has grown.
    fn push(&mut self, t: TensorRef<'_>) -> Result<()> {
        let hl = wire_header_len(t.shape.len());
        let mut wire_head = [0u8; crate::tensor::wire_header_len(crate::tensor::MAX_NDIMS)];
        self.scratch.clear();
        t.write_wire_header(&mut self.scratch)?;
        wire_head[..hl].copy_from_slice(&self.scratch);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&wire_head[..hl]);
        crc.update(t.data);
        self.write_frame(&wire_head[..hl], t.data, crc.finalize())
    }

    /// Appends one record given as validated wire bytes and their CRC32.
    fn push_wire(&mut self, wire: &[u8], h: WireHeader, crc: u32) -> Result<()> {
        self.write_frame(
            &wire[..h.data_offset],
            &wire[h.data_offset..h.record_len()],
            crc,
        )
    }

    fn write_frame(&mut self, wire_head: &[u8], data: &[u8], crc: u32) -> Result<()> {
        let wire_len = wire_head.len() + data.len();
        if u32::try_from(wire_len).is_err() {
            return Err(Error::InvalidArgument(format!(
                "record of {wire_len} bytes exceeds 4 GiB"
            )));
        }
        self.scratch.clear();
        frame_header(
            self.offset,
            wire_head.len(),
            wire_len,
            crc,
            &mut self.scratch,
        );
        self.log.push(self.offset, &self.path)?;
        let io = |e| Error::io("cannot write cache", &self.path, e);
        self.out.write_all(&self.scratch).map_err(io)?;
        self.out.write_all(wire_head).map_err(io)?;
        if data.len() >= DIRECT_WRITE {
            // A large record goes to the file from the caller's memory: copying it
            // through the buffer first would cost a memmove of every byte.
            self.out.flush().map_err(io)?;
            self.out.get_mut().write_all(data).map_err(io)?;
        } else {
            self.out.write_all(data).map_err(io)?;
        }
        self.offset += (self.scratch.len() + wire_len) as u64;
        self.records += 1;
        self.start_writeback();
        Ok(())
    }

    /// Asks the kernel to start writing back what has left our buffer (no waiting):
    /// durability still comes from the fsync in `sync`; this only overlaps the disk
    /// writes with producing records. Advice only: a failure changes speed, not data.
    fn start_writeback(&mut self) {
        let in_kernel = self.offset - self.out.buffer().len() as u64;
        if in_kernel < self.writeback_from + WRITEBACK_EVERY {
            return;
        }
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range on our own open descriptor; no memory is passed.
        unsafe {
            libc::sync_file_range(
                self.out.get_ref().as_raw_fd(),
                self.writeback_from as libc::off64_t,
                (in_kernel - self.writeback_from) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.writeback_from = in_kernel;
    }

    /// Appends complete wire records with vectored writes straight from the caller's
    /// memory (frame headers built here): no copy through the write buffer.
    fn push_wires(&mut self, records: &[(&[u8], WireHeader)]) -> Result<()> {
        let path = &self.path;
        let io = |e| Error::io("cannot write cache", path, e);
        self.out.flush().map_err(io)?;
        for chunk in records.chunks(WRITEV_RECORDS) {
            self.scratch.clear();
            let mut heads = [(0usize, 0usize); WRITEV_RECORDS];
            let mut offset = self.offset;
            for (i, (wire, h)) in chunk.iter().enumerate() {
                if h.record_len() != wire.len() || u32::try_from(wire.len()).is_err() {
                    return Err(Error::Wire(format!(
                        "{} bytes are not exactly one record",
                        wire.len()
                    )));
                }
                let at = self.scratch.len();
                self.log.push(offset, path)?;
                let crc = crc32fast::hash(wire);
                frame_header(offset, h.data_offset, wire.len(), crc, &mut self.scratch);
                heads[i] = (at, self.scratch.len());
                offset += (self.scratch.len() - at + wire.len()) as u64;
            }
            let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * chunk.len());
            for (i, (wire, _)) in chunk.iter().enumerate() {
                parts.push(&self.scratch[heads[i].0..heads[i].1]);
                parts.push(wire);
            }
            write_all_vectored(self.out.get_mut(), &parts).map_err(io)?;
            self.offset = offset;
            self.records += chunk.len() as u64;
        }
        Ok(())
    }

    fn commit(&self, seq: u64, index_at: u64) -> Commit {
        Commit {
            seq,
            records: self.records,
            data_len: self.offset - self.data_start,
            index_at,
        }
    }

    /// Writes an index frame of `capacity` entries at the end: `old` entries first
    /// (`copy_old` writes exactly `old` entries' bytes), then the logged ones, then
    /// zeros for the spare capacity. Returns the frame's offset. The log is emptied.
    fn write_index_frame(
        &mut self,
        capacity: u64,
        old: u64,
        copy_old: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> Result<u64> {
        let at = self.offset;
        self.scratch.clear();
        index_frame_header(at, capacity, &mut self.scratch)?;
        let path = &self.path;
        let io = |e| Error::io("cannot write index of", path, e);
        self.out.write_all(&self.scratch).map_err(io)?;
        copy_old(&mut self.out).map_err(io)?;
        let out = &mut self.out;
        self.log.for_each_chunk(path, |b| out.write_all(b))?;
        let spare = capacity - old - self.log.len();
        let zeros = [0u8; 4096];
        let mut left = spare * INDEX_ENTRY as u64;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.out.write_all(&zeros[..n]).map_err(io)?;
            left -= n as u64;
        }
        self.offset += self.scratch.len() as u64 + capacity * INDEX_ENTRY as u64;
        self.log.reset(self.records);
        Ok(at)
    }

    /// Flushes buffered frames and makes them durable.
    fn sync(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io("cannot write cache", &self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| Error::io("cannot sync cache", &self.path, e))
    }
}

/// Populates a new cache file, published atomically by `finish`, under the lock `'l`
/// of its path.
#[derive(Debug)]
pub struct CacheWriter<'l> {
    sink: FrameSink,
    tmp: tempfile::TempPath,
    final_path: PathBuf,
    meta: Metadata,
    /// An index frame reserved right after the header: (its offset, entries offset,
    /// capacity). Filled at `finish` if the records fit, else an index is appended.
    head_index: Option<(u64, u64, u64)>,
    /// The lock of `final_path`, held as long as the writer lives; `None` for a file
    /// that is never published (`unpublished`).
    lock: Option<&'l CacheLock>,
}

impl<'l> CacheWriter<'l> {
    /// Starts a new cache that will replace `final_path` when finished, under `lock`
    /// (the cache's lock: `CacheLock::exclusive(final_path)`). Nothing is visible at
    /// `final_path` until then; dropping the writer removes the temp file.
    pub fn create(
        final_path: impl AsRef<Path>,
        meta: Metadata,
        lock: &'l CacheLock,
    ) -> Result<CacheWriter<'l>> {
        Self::create_inner(final_path.as_ref(), meta, 0, Some(lock))
    }

    /// Like `create`, for about `records` records known in advance: the offset index
    /// is placed first, right after the header, where a remote reader finds it with
    /// one ranged GET (see format.rs). More records than announced still work (the
    /// index then goes after the last record, as with `create`).
    pub fn create_indexed(
        final_path: impl AsRef<Path>,
        meta: Metadata,
        records: u64,
        lock: &'l CacheLock,
    ) -> Result<CacheWriter<'l>> {
        Self::create_inner(final_path.as_ref(), meta, records, Some(lock))
    }

    fn create_inner(
        final_path: &Path,
        mut meta: Metadata,
        head_capacity: u64,
        lock: Option<&'l CacheLock>,
    ) -> Result<CacheWriter<'l>> {
        if let Some(lock) = lock {
            lock.check_for(final_path, "cannot write cache")?;
        }
        let final_path = final_path.to_path_buf();
        // Every file its own: a copy of another file over this one is told apart.
        meta.nonce = super::format::new_nonce();
        let header = Header::encode(&meta, Commit::default());
        check_metadata_fits(&header, &meta, &final_path)?;
        let dir = parent_dir(&final_path);
        super::create_cache_dir(dir)?;
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.");
        let (file, tmp) = create_locked_temp(dir, &prefix)?;
        remove_dead_temps(dir, &prefix, &tmp);
        let data_start = header.len() as u64;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        out.write_all(&header)
            .map_err(|e| Error::io("cannot write cache", &*tmp, e))?;
        let mut w = CacheWriter {
            sink: FrameSink {
                out,
                path: tmp.to_path_buf(),
                offset: data_start,
                records: 0,
                data_start,
                scratch: Vec::with_capacity(64),
                writeback_from: 0,
                log: EntryLog::new(0),
            },
            tmp,
            final_path,
            meta,
            head_index: None,
            lock,
        };
        if head_capacity > 0 {
            let at = w.sink.write_index_frame(head_capacity, 0, |_| Ok(()))?;
            let body = super::format::index_body_at(at);
            w.head_index = Some((at, body, head_capacity));
        }
        Ok(w)
    }

    pub fn push(&mut self, t: TensorRef<'_>) -> Result<()> {
        self.sink.push(t)
    }

    /// Adds a record given as raw wire bytes (validated here).
    pub fn push_wire(&mut self, wire: &[u8]) -> Result<()> {
        let h = parse_wire(wire, &mut Vec::new())?;
        if h.record_len() != wire.len() {
            return Err(Error::Wire(format!(
                "{} trailing bytes after the record",
                wire.len() - h.record_len()
            )));
        }
        self.sink.push_wire(wire, h, crc32fast::hash(wire))
    }

    /// Adds a record the caller has already parsed (`h` is `parse_wire` of `wire`)
    /// and checksummed (`crc` is its CRC32): a published cache's record, whose CRC
    /// was just verified, is not hashed twice.
    pub(crate) fn push_checked_wire(&mut self, wire: &[u8], h: WireHeader, crc: u32) -> Result<()> {
        self.sink.push_wire(wire, h, crc)
    }

    /// Adds records the caller has already parsed (each `h` is `parse_wire` of its
    /// bytes), written from the caller's memory with vectored writes: for a batch of
    /// records that already sit in one buffer (a network body), without copying them
    /// or parsing them again.
    pub(crate) fn push_wires(&mut self, records: &[(&[u8], WireHeader)]) -> Result<()> {
        self.sink.push_wires(records)
    }

    pub fn records(&self) -> u64 {
        self.sink.records
    }

    /// Bytes written so far (header included).
    pub fn bytes(&self) -> u64 {
        self.sink.offset
    }

    /// The temporary file being written (for readers that follow a download).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Makes every record pushed so far readable through `temp_path` (no fsync).
    pub fn flush(&mut self) -> Result<()> {
        let path = &self.sink.path;
        self.sink
            .out
            .flush()
            .map_err(|e| Error::io("cannot write cache", path, e))
    }

    /// Writes the index after the last record, then the committed header; `durable`:
    /// data and index, then header, fsynced.
    fn write_header(&mut self, durable: bool) -> Result<()> {
        let records = self.sink.records;
        let index_at = match self.head_index {
            Some((at, body, capacity)) if records <= capacity => {
                self.flush()?;
                let file = self.sink.out.get_ref();
                let mut to = body;
                self.sink.log.for_each_chunk(&self.sink.path, |b| {
                    file.write_all_at(b, to)?;
                    to += b.len() as u64;
                    Ok(())
                })?;
                at
            }
            _ if records > 0 => self.sink.write_index_frame(records, 0, |_| Ok(()))?,
            _ => 0,
        };
        if durable {
            self.sink.sync()?;
        } else {
            self.flush()?;
        }
        let header = Header::encode(&self.meta, self.sink.commit(1, index_at));
        let file = self.sink.out.get_ref();
        file.write_all_at(&header, 0)
            .and_then(|_| if durable { file.sync_all() } else { Ok(()) })
            .map_err(|e| Error::io("cannot write cache", &self.sink.path, e))
    }

    /// Writes the header, makes everything durable and renames the file into place.
    pub fn finish(self) -> Result<PathBuf> {
        self.publish().map(|(path, _)| path)
    }

    /// `finish`, then a reader of the file just written, made from the descriptor that
    /// wrote it (the path is not opened again): whatever another program puts at the
    /// path after the rename is not what this reader serves.
    ///
    /// The reader is checked to be of what was written (metadata, nonce included, and
    /// record count): the file is published under a name others can open, and a `cp`
    /// over that name between the rename and the mapping rewrites this very inode in
    /// place; such a file is an error, never served.
    pub fn finish_reader(self) -> Result<CacheReader> {
        let (meta, records) = (self.meta.clone(), self.sink.records);
        let (path, file) = self.publish()?;
        let r = CacheReader::from_file(&file, &path)?;
        check_is_written(&r, &meta, records, &path)?;
        Ok(r)
    }

    fn publish(mut self) -> Result<(PathBuf, File)> {
        if self.lock.is_none() {
            return Err(Error::InvalidArgument(format!(
                "cannot publish {}: its writer was made for a file that is never published",
                self.final_path.display()
            )));
        }
        self.write_header(true)?;
        let final_path = self.final_path.clone();
        self.tmp
            .persist(&final_path)
            .map_err(|e| Error::io("cannot rename cache into place at", &final_path, e.error))?;
        sync_dir(parent_dir(&final_path))?;
        let file = self
            .sink
            .out
            .into_inner()
            .map_err(|e| Error::io("cannot write cache", &final_path, e.into_error()))?;
        Ok((final_path, file))
    }

    /// Completes the file but never publishes it: the name is removed and the reader
    /// keeps the data alive (for a producer that must not leave a cache behind).
    /// No fsync: an unlinked file does not survive a crash whatever is synced.
    pub fn finish_anonymous(mut self) -> Result<CacheReader> {
        self.write_header(false)?;
        let reader = CacheReader::from_file(self.sink.out.get_ref(), &self.final_path)?;
        drop(self.tmp);
        Ok(reader)
    }
}

impl CacheWriter<'static> {
    /// A writer of a file that is never published, only read through
    /// `finish_anonymous` (a download that must not leave a cache behind): no lock,
    /// since no other process ever opens it. `template` gives the directory and the
    /// temporary file's name; `finish` refuses to publish it.
    pub fn unpublished(template: impl AsRef<Path>, meta: Metadata) -> Result<Self> {
        Self::create_inner(template.as_ref(), meta, 0, None)
    }
}

/// Rewrites the cache file at `path` in the current format version, its offset index
/// first (right after the header), and renames it into place: for a version-1 or
/// legacy (headerless) file. Returns false, changing nothing, for a file already
/// current. The metadata is kept (a legacy file's token comes from its `<path>.token`
/// side file, as `DiskCacheProducer` reads it, which is then removed). Readers of the
/// old file keep their inode. `lock` is the cache's lock.
pub fn upgrade(path: impl AsRef<Path>, lock: &CacheLock) -> Result<bool> {
    let path = path.as_ref();
    lock.check_for(path, "cannot upgrade cache")?;
    let mut r = CacheReader::open(path)?;
    if r.format() == super::Format::Current && r.version() >= super::format::VERSION {
        return Ok(false);
    }
    let mut side = path.as_os_str().to_os_string();
    side.push(".token");
    let side = PathBuf::from(side);
    let meta = if r.format() == super::Format::Legacy {
        let token = std::fs::read_to_string(&side).unwrap_or_default();
        Metadata::new(
            token.lines().next().unwrap_or(""),
            &format!("legacy cache {}", path.display()),
        )
    } else {
        r.metadata().clone()
    };
    let mut w = CacheWriter::create_indexed(path, meta, r.len(), lock)?;
    r.rewind();
    // Each record copied and checked on the copy (a byte changed in place between a
    // check and the write would otherwise be written under a fresh, valid CRC).
    let mut t = crate::tensor::Tensor::new(crate::tensor::DType::UInt8, Vec::new(), Vec::new());
    for _ in 0..r.len() {
        r.next_into(&mut t)?;
        w.push(t.as_ref())?;
    }
    w.finish()?;
    if r.format() == super::Format::Legacy {
        let _ = std::fs::remove_file(&side);
    }
    Ok(true)
}

/// Appends records to an existing current-format cache file, under the lock `'l` of
/// its path.
#[derive(Debug)]
pub struct CacheAppender<'l> {
    sink: FrameSink,
    header: Header,
    _lock: &'l CacheLock,
}

impl<'l> CacheAppender<'l> {
    /// Opens `path` for appending after its committed records, under `lock` (the
    /// cache's lock); cuts off any uncommitted tail.
    pub fn open(path: impl AsRef<Path>, lock: &'l CacheLock) -> Result<CacheAppender<'l>> {
        let path = path.as_ref();
        lock.check_for(path, "cannot append to cache")?;
        // Never through a symbolic link, never a FIFO or device: the same rule as
        // every other opener (a rebuild renames over whatever is at the name).
        let mut file = super::open_cache_file(path, super::OpenMode::ReadWrite)?;
        let mut head = Vec::new();
        (&mut file)
            .take((META_OFFSET + MAX_META_LEN) as u64)
            .read_to_end(&mut head)
            .map_err(|e| Error::io("cannot read cache", path, e))?;
        let header = Header::decode(&head).map_err(|d| Error::corrupt(path, d))?;
        let end = header.data_start + header.commit.data_len;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot stat cache", path, e))?
            .len();
        if len < end {
            return Err(Error::corrupt(
                path,
                format!("file is {len} bytes, shorter than its committed length {end}"),
            ));
        }
        if len > end {
            file.set_len(end)
                .map_err(|e| Error::io("cannot cut torn tail of", path, e))?;
        }
        file.seek(SeekFrom::Start(end))
            .map_err(|e| Error::io("cannot seek in", path, e))?;
        Ok(CacheAppender {
            sink: FrameSink {
                out: BufWriter::with_capacity(WRITE_BUFFER, file),
                path: path.to_path_buf(),
                offset: end,
                records: header.commit.records,
                data_start: header.data_start,
                scratch: Vec::with_capacity(64),
                writeback_from: end,
                log: EntryLog::new(header.commit.records),
            },
            header,
            _lock: lock,
        })
    }

    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // used by tests only
    pub fn metadata(&self) -> &Metadata {
        &self.header.meta
    }

    /// True when this appender's file is the one `r` read, as `r` saw it: the same
    /// inode, metadata (nonce included) and commit. False when the path was replaced
    /// (renamed over, or rewritten in place) between `r`'s open and this one's.
    pub fn continues(&self, r: &CacheReader) -> bool {
        use std::os::unix::fs::MetadataExt;
        let same_inode = match (self.sink.out.get_ref().metadata(), r.inode()) {
            (Ok(m), Some(ino)) => (m.dev(), m.ino()) == ino,
            _ => false,
        };
        same_inode
            && r.format() == super::Format::Current
            && self.header.meta == *r.metadata()
            && self.header.data_start == r.data_start()
            && self.header.commit.records == r.len()
            && self.header.commit.data_len == r.data_len()
    }

    /// A reader of the file this appender wrote and committed, made from its descriptor
    /// (the path is not opened again).
    pub fn into_reader(mut self) -> Result<CacheReader> {
        let path = self.sink.path.clone();
        self.sink
            .out
            .flush()
            .map_err(|e| Error::io("cannot write cache", &path, e))?;
        let r = CacheReader::from_file(self.sink.out.get_ref(), &path)?;
        // As in `finish_reader`: a file rewritten in place after the commit is not served.
        check_is_written(&r, &self.header.meta, self.header.commit.records, &path)?;
        Ok(r)
    }

    /// Records committed plus pushed so far.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))] // used by tests only
    pub fn records(&self) -> u64 {
        self.sink.records
    }

    pub fn push(&mut self, t: TensorRef<'_>) -> Result<()> {
        self.sink.push(t)
    }

    /// Makes the pushed records and their index entries durable, then publishes them
    /// by writing the other commit slot (and syncing again).
    ///
    /// The entries go into the spare capacity of the index in force when they fit
    /// (in place: entries past the committed count are read by nobody); otherwise a
    /// new index frame of twice the needed capacity is written after the new records,
    /// the old entries copied into it. Either way the cost is amortised O(1) per
    /// appended record. A version-1 file is appended to in its own layout (no index).
    pub fn commit(&mut self) -> Result<()> {
        let version = self.header.version;
        let mut index_at = self.header.commit.index_at;
        if version != VERSION_1 && self.sink.log.len() > 0 {
            index_at = self.write_index()?;
        }
        self.sink.sync()?;
        let c = self.sink.commit(self.header.commit.seq + 1, index_at);
        let file = self.sink.out.get_ref();
        file.write_all_at(&c.encode_for(version), c.slot_offset_for(version))
            .and_then(|_| file.sync_data())
            .map_err(|e| Error::io("cannot commit cache", &self.sink.path, e))?;
        self.header.commit = c;
        Ok(())
    }

    /// Writes the index entries of the records pushed since the last commit (not yet
    /// durable); returns the offset of the index frame now in force.
    fn write_index(&mut self) -> Result<u64> {
        let path = self.sink.path.clone();
        let old = self.header.commit.records;
        let need = old + self.sink.log.len();
        let current = self.header.commit.index_at;
        let mut body = None;
        if current != 0 {
            let mut fh = [0u8; FRAME_HEADER];
            self.sink
                .out
                .get_ref()
                .read_exact_at(&mut fh, current)
                .map_err(|e| Error::io("cannot read index of", &path, e))?;
            match parse_frame(&fh, true) {
                Ok(Frame::Index { body_at, body_len }) => {
                    body = Some((current + body_at as u64, (body_len / INDEX_ENTRY) as u64))
                }
                _ => {
                    return Err(Error::corrupt(
                        &path,
                        format!("the commit's index at offset {current} is not an index frame"),
                    ))
                }
            }
        }
        if let Some((body_at, capacity)) = body.filter(|&(_, cap)| need <= cap) {
            // In place, into the spare capacity.
            self.sink
                .out
                .flush()
                .map_err(|e| Error::io("cannot write cache", &path, e))?;
            let file = self.sink.out.get_ref();
            let mut at = body_at + old * INDEX_ENTRY as u64;
            self.sink.log.for_each_chunk(&path, |b| {
                file.write_all_at(b, at)?;
                at += b.len() as u64;
                Ok(())
            })?;
            debug_assert!(at <= body_at + capacity * INDEX_ENTRY as u64);
            self.sink.log.reset(self.sink.records);
            return Ok(current);
        }
        let capacity = (2 * need).max(64);
        let data_start = self.header.data_start;
        let data_end = data_start + self.header.commit.data_len;
        self.sink
            .write_index_frame(capacity, old, |out: &mut BufWriter<File>| {
                let file = out.get_ref().try_clone()?;
                match body {
                    Some((body_at, _)) => {
                        let mut buf = vec![0u8; 1 << 20];
                        let mut done = 0u64;
                        let total = old * INDEX_ENTRY as u64;
                        while done < total {
                            let n = (total - done).min(buf.len() as u64) as usize;
                            file.read_exact_at(&mut buf[..n], body_at + done)?;
                            out.write_all(&buf[..n])?;
                            done += n as u64;
                        }
                        Ok(())
                    }
                    None if old == 0 => Ok(()),
                    None => {
                        // A current-format file with records but no index (not one
                        // this library writes): index its records by one walk.
                        // SAFETY: read-only map of the committed bytes, which do not
                        // change (we hold the cache's lock as the only writer).
                        let map = unsafe {
                            memmap2::MmapOptions::new()
                                .len(data_end as usize)
                                .map(&file)?
                        };
                        let offsets = walk_offsets(
                            &map,
                            data_start as usize,
                            data_end as usize,
                            old,
                            true,
                            true,
                        )
                        .map_err(std::io::Error::other)?;
                        for (i, &o) in offsets.iter().enumerate() {
                            out.write_all(&super::format::index_entry(i as u64, o).to_le_bytes())?;
                        }
                        Ok(())
                    }
                }
            })
    }
}

/// Creates `<dir>/<prefix>XXXXXX.tmp` and holds an exclusive `flock` on it for as long
/// as the file stays open: the lock is how other processes tell a temp file that is
/// being written from one left behind by a writer that died (the kernel releases the
/// lock of a killed process).
fn create_locked_temp(dir: &Path, prefix: &str) -> Result<(File, tempfile::TempPath)> {
    loop {
        // 0666 minus the umask, as any file a program creates (tempfile's default,
        // 0600, would make a published cache unreadable to other users of the dir).
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io("cannot create temporary cache file in", dir, e))?;
        let (file, tmp) = tmp.into_parts();
        flock(&file, libc::LOCK_EX).map_err(|e| Error::io("cannot lock", &*tmp, e))?;
        // Between creation and the lock, a sweeper (`remove_dead_temps` of another
        // writer) may have taken the file for a dead writer's and unlinked it: then
        // start again with a new name.
        if names_file(&tmp, &file) {
            return Ok((file, tmp));
        }
        // The name is no longer ours; do not let TempPath remove someone else's file.
        let _ = tmp.keep();
    }
}

/// Refuses metadata the format cannot hold (readers refuse more than `MAX_META_LEN`
/// bytes as damage, so writing it would make a cache that is rebuilt on every run).
/// `header` is `Header::encode` of `meta`.
fn check_metadata_fits(header: &[u8], meta: &Metadata, path: &Path) -> Result<()> {
    let stored = super::format::declared_meta_len(header).expect("an encoded header");
    // The length field is 32 bits: the header's own size also catches a wrapped one.
    let encoded = header.len() - META_OFFSET;
    if stored <= MAX_META_LEN && encoded <= MAX_META_LEN + super::format::DATA_ALIGN {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "cannot write cache {}: its metadata takes {} bytes, more than the format's limit of \
         {MAX_META_LEN} bytes; the token is {} bytes and the source description {} bytes \
         (use a shorter token, a hash of it for example)",
        path.display(),
        stored.max(encoded.saturating_sub(super::format::DATA_ALIGN)),
        meta.token.len(),
        meta.source.len()
    )))
}

/// `write_all` for a list of slices, with `writev` (a short write resumes where it
/// stopped).
fn write_all_vectored(file: &mut File, parts: &[&[u8]]) -> std::io::Result<()> {
    let (mut i, mut off) = (0usize, 0usize);
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len());
    while i < parts.len() {
        slices.clear();
        slices.push(IoSlice::new(&parts[i][off..]));
        slices.extend(parts[i + 1..].iter().map(|p| IoSlice::new(p)));
        match file.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                while i < parts.len() && n >= parts[i].len() - off {
                    n -= parts[i].len() - off;
                    i += 1;
                    off = 0;
                }
                off += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes temp files of this cache whose writer is gone: a file nobody holds the
/// `flock` of was left by a process that died mid-population (SIGKILL, power loss).
/// Best effort: a failure here never fails the population.
fn remove_dead_temps(dir: &Path, prefix: &str, own: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) || !name.ends_with(".tmp") {
            continue;
        }
        let path = entry.path();
        if path == own {
            continue;
        }
        // Not through a planted link, and not a FIFO that would block the open.
        let Ok(f) = super::open_regular(&path, super::OpenMode::Read, "temporary file", "") else {
            continue;
        };
        if flock(&f, libc::LOCK_EX | libc::LOCK_NB).is_ok() && names_file(&path, &f) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync directory", dir, e))
}

/// Err unless `r` (a reader of the file a writer just wrote, from the writer's own
/// descriptor) holds what was written: the same metadata (the nonce makes it this
/// file's) and the same number of records.
fn check_is_written(r: &CacheReader, meta: &Metadata, records: u64, path: &Path) -> Result<()> {
    if r.metadata() == meta && r.len() == records {
        return Ok(());
    }
    Err(Error::corrupt(
        path,
        "the file was rewritten in place by another program just after it was written \
         (replace cache files by rename, never in place)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use std::os::unix::io::FromRawFd;

    /// The lock of another cache is no proof: refused by every writer, naming both.
    #[test]
    fn writers_refuse_the_lock_of_another_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.cache"), dir.path().join("b.cache"));
        let lock_a = CacheLock::exclusive(&a).unwrap();
        let mut w = CacheWriter::create(&a, Metadata::new("", "t"), &lock_a).unwrap();
        w.push(Tensor::from_f32(&[1.0]).as_ref()).unwrap();
        w.finish().unwrap();
        std::fs::copy(&a, &b).unwrap();
        let errors = [
            CacheWriter::create(&b, Metadata::new("", "t"), &lock_a).unwrap_err(),
            CacheWriter::create_indexed(&b, Metadata::new("", "t"), 1, &lock_a).unwrap_err(),
            CacheAppender::open(&b, &lock_a).unwrap_err(),
            upgrade(&b, &lock_a).unwrap_err(),
        ];
        for e in errors {
            let m = e.to_string();
            assert!(matches!(e, Error::InvalidArgument(_)), "{m}");
            assert!(m.contains("b.cache") && m.contains("a.cache"), "{m}");
        }
        assert!(CacheAppender::open(&a, &lock_a).is_ok());
    }

    /// A writer made for a file that is never published cannot be published.
    #[test]
    fn an_unpublished_writer_is_never_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anon.cache");
        let mut w = CacheWriter::unpublished(&path, Metadata::new("", "t")).unwrap();
        w.push(Tensor::from_f32(&[1.0]).as_ref()).unwrap();
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("never published"), "{e}");
        assert!(!path.exists());
        let mut w = CacheWriter::unpublished(&path, Metadata::new("", "t")).unwrap();
        w.push(Tensor::from_f32(&[2.0]).as_ref()).unwrap();
        assert_eq!(w.finish_anonymous().unwrap().len(), 1);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A pipe takes at most its capacity (64 KiB) per write while the reader is
    /// slow: `write_all_vectored` must resume mid-slice and deliver every byte in order.
    #[test]
    fn write_all_vectored_resumes_after_short_writes() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two descriptors, each then owned by one File.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (mut rd, mut wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let parts: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                (0..(i * 7919 % 20_000 + 1))
                    .map(|j| (i + j) as u8)
                    .collect()
            })
            .collect();
        let expected: Vec<u8> = parts.concat();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 1000];
            loop {
                std::thread::sleep(std::time::Duration::from_micros(200));
                match rd.read(&mut buf).unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        write_all_vectored(&mut wr, &slices).unwrap();
        drop(wr);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    }
}
