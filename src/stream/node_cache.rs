//! The node cache of a stream: a directory under `HARMONICS_CACHE_DIR` shared by the
//! ranks (processes) of one node, holding whole blocks of the published file, never
//! more than `cache_limit` bytes of disk, counting every file and the directory itself
//! (`st_blocks · 512`, as `du` counts).
//!
//! Files (all created with `O_NOFOLLOW`; nothing else is ever written there):
//! - `.stream.lock`: empty; its `flock` (exclusive) is the ledger lock. Every decision
//!   that changes what the directory holds (reserving space, evicting, reclaiming) is
//!   taken under it, after measuring the directory.
//! - `.stream.ranks`: one 32-byte slot per local rank (pid, epoch, node position), what
//!   eviction reads to know when each block is next needed.
//! - `stream.info`: a few lines (`kind=stream`, URL, ETag, limit, block size) for
//!   `cache_cli` and for a later run to see what the blocks are of.
//! - `b<ID>.blk`: a complete block: a 64-byte header (magic, block id, records, the
//!   object's ETag hash, CRC), the records' offsets, the frames as published. Visible
//!   only once complete and every record's CRC checked.
//! - `.b<ID>.tmp`: a block being fetched. Created (`O_EXCL`) under the ledger lock with
//!   its whole size allocated at once (`fallocate`), so the directory's measure already
//!   counts it; its fetcher holds an exclusive `flock` on it until it is renamed to
//!   `b<ID>.blk`. A temp file whose `flock` is free belongs to a dead fetcher (kill -9):
//!   the next one to look reclaims it.
//!
//! **The limit.** Space is taken only under the ledger lock, after measuring the
//! directory, by allocating the whole block (plus a margin for the file system's own
//! blocks) before a byte is fetched; if it does not fit, blocks are evicted first or
//! nothing is fetched. So the directory never holds more than the limit, whatever the
//! processes do or when they die.
//!
//! **Readers.** A reader holds a shared `flock` on each block file it reads (and checks
//! after taking it that the name still points at its inode). Eviction takes
//! `LOCK_EX | LOCK_NB` and skips a block that is busy: a block is never removed from
//! under a reader.
//!
//! **Eviction** (Belady's rule with the known order): the block whose next use by any
//! live local rank is furthest in the future, and only one whose next use comes after
//! that of the block being fetched. Every block has a remote copy (the published file).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::{check_record_frame, flock, parse_frame, FRAME_HEADER};
use crate::error::{Error, HttpCause, HttpErrorKind, Result};

use crate::cache::stream_dir::{block_name, parse_name, temp_name, INFO_TEMP};
pub use crate::cache::stream_dir::{directory_usage, INFO_FILE, LOCK_FILE, RANKS_FILE};

const BLOCK_MAGIC: [u8; 8] = *b"HMNSTBLK";
const BLOCK_HEADER: u64 = 64;
/// The file system's allocation unit assumed in the reservations.
const FS_BLOCK: u64 = 4096;
/// Allowance per file for the file system's own blocks (an extent tree block).
const FILE_MARGIN: u64 = FS_BLOCK;
/// The fixed files (lock, ranks, info) and the directory, and a directory block
/// that renames may add: what a stream cache holds before any block.
pub const OVERHEAD: u64 = 5 * FS_BLOCK;
/// Bytes of one rank slot.
const SLOT: u64 = 32;

/// A block slot for the minimum: the blocks a local rank may need on disk at once.
pub const MIN_BLOCKS_PER_RANK: u64 = 8;

/// Bytes of disk one block may take: its file (header, offsets, frames) rounded up to
/// the file system block, plus a margin.
pub fn block_allocation(records: u64, bytes: u64) -> u64 {
    data_at(records).saturating_add(bytes).div_ceil(FS_BLOCK) * FS_BLOCK + FILE_MARGIN
}

/// The smallest workable limit: `MIN_BLOCKS_PER_RANK` of the largest block per local
/// rank (a rank's window of `WINDOW_BLOCKS` being read and the next one arriving),
/// plus the fixed files.
pub fn minimum_limit(max_records: u64, max_bytes: u64, ranks_per_node: u64) -> u64 {
    MIN_BLOCKS_PER_RANK
        .saturating_mul(ranks_per_node)
        .saturating_mul(block_allocation(max_records, max_bytes))
        .saturating_add(OVERHEAD)
}

fn data_at(records: u64) -> u64 {
    (BLOCK_HEADER + 4 * records).div_ceil(8) * 8
}

/// What the node's cache is of (checked against every block file read).
#[derive(Clone, Debug)]
pub struct BlockSource {
    pub url: String,
    pub etag: String,
    pub etag_hash: u64,
}

impl BlockSource {
    pub fn new(url: &str, etag: &str) -> BlockSource {
        let mut h = crc32fast::Hasher::new();
        h.update(etag.as_bytes());
        let lo = h.finalize();
        let mut h = crc32fast::Hasher::new_with_initial(lo ^ 0x5a5a_5a5a);
        h.update(url.as_bytes());
        h.update(etag.as_bytes());
        BlockSource {
            url: url.to_string(),
            etag: etag.to_string(),
            etag_hash: (u64::from(h.finalize()) << 32) | u64::from(lo),
        }
    }
}

/// A block to place: id, first record, record count, frame bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    pub id: u64,
    pub first: u64,
    pub records: u64,
    pub bytes: u64,
}

/// When a block is next needed: (epoch, node position); None: not foreseen.
pub type NextUse = Option<(u64, u64)>;

/// The result of asking for room to fetch a block.
pub enum Claim {
    /// The block is there.
    Ready(BlockFile),
    /// Another fetcher (this or another process) is fetching it.
    Busy,
    /// No room without evicting a block needed sooner.
    NoRoom,
    /// Room is reserved: fetch into it.
    Fetch(TempBlock),
}

/// A rank's published position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankPosition {
    pub local: u64,
    pub epoch: u64,
    pub position: u64,
}

/// Counters of this process's view of the node cache.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub blocks_fetched: AtomicU64,
    pub blocks_evicted: AtomicU64,
    pub disk_high_water: AtomicU64,
}

/// One node's stream cache directory (see the module docs).
#[derive(Debug)]
pub struct NodeCache {
    dir: PathBuf,
    limit: u64,
    ranks_per_node: u64,
    source: BlockSource,
    /// The content of `stream.info`.
    info: String,
    pub counters: CacheCounters,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(what, path, e)
}

/// Opens `path` with `flags` (plus `O_NOFOLLOW | O_CLOEXEC`), refusing anything but a
/// regular file.
fn open_file(path: &Path, write: bool, create: bool, excl: bool) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    if write {
        o.write(true);
    }
    if create && excl {
        o.create_new(true);
    } else if create {
        o.create(true);
    }
    let f = o
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// The ledger lock, held until dropped.
struct Ledger {
    _file: File,
}

impl NodeCache {
    /// Opens (creating) the node cache at `dir` for `source`, with `limit` bytes (0:
    /// none). Blocks of another version of the object are removed.
    pub fn open(
        dir: &Path,
        limit: u64,
        ranks_per_node: u64,
        source: BlockSource,
        block_bytes: u64,
    ) -> Result<NodeCache> {
        if let Ok(m) = std::fs::symlink_metadata(dir) {
            if !m.file_type().is_dir() {
                return Err(Error::NotRegularFile {
                    path: dir.to_path_buf(),
                    kind: crate::cache::irregular_kind(&m.file_type()).unwrap_or("a file"),
                    role: "stream cache directory",
                });
            }
        }
        std::fs::create_dir_all(dir)
            .map_err(io("cannot create the stream cache directory", dir))?;
        let info = format!(
            "kind=stream\nurl={}\netag={}\ncache_limit={limit}\nblock_bytes={block_bytes}\n",
            source.url, source.etag
        );
        let cache = NodeCache {
            dir: dir.to_path_buf(),
            limit,
            ranks_per_node,
            source,
            info,
            counters: CacheCounters::default(),
        };
        let _l = cache.lock_only()?;
        let ranks = cache.dir.join(RANKS_FILE);
        let f = open_file(&ranks, true, true, false).map_err(io("cannot open", &ranks))?;
        if f.metadata().map(|m| m.len()).unwrap_or(0) < SLOT * ranks_per_node {
            f.set_len(SLOT * ranks_per_node)
                .map_err(io("cannot size", &ranks))?;
        }
        let old = std::fs::read_to_string(cache.dir.join(INFO_FILE)).unwrap_or_default();
        if old != cache.info {
            if !old.contains(&format!("etag={}\n", cache.source.etag)) {
                // Blocks of another object or version: never served, removed now.
                cache.remove_foreign_blocks()?;
            }
            cache.write_info()?;
        }
        cache.note_usage(directory_usage(&cache.dir)?);
        drop(_l);
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The ledger lock, with `stream.info` made again if `cache_cli rm` or `clear`
    /// removed it while the directory stayed (a file created meanwhile kept it).
    fn lock(&self) -> Result<Ledger> {
        let l = self.lock_only()?;
        if !self.dir.join(INFO_FILE).exists() {
            // For cache_cli only: a failure costs the reader nothing.
            let _ = self.write_info();
        }
        Ok(l)
    }

    /// The ledger lock. The lock file is the one at its name once locked: a lock file
    /// removed while we waited for it (`cache_cli rm` removes it last, holding it) is
    /// locked by no one else, so the new one is taken (the directory made again).
    fn lock_only(&self) -> Result<Ledger> {
        let path = self.dir.join(LOCK_FILE);
        let mut tries = 0;
        loop {
            let f = match open_file(&path, true, true, false) {
                Ok(f) => f,
                // The directory removed (it may go again before the next try).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 10 => {
                    tries += 1;
                    self.make_again()?;
                    continue;
                }
                Err(e) => return Err(Error::io("cannot open lock file", &path, e)),
            };
            flock(&f, libc::LOCK_EX).map_err(io("cannot lock", &path))?;
            if same_file(&f, &path) {
                return Ok(Ledger { _file: f });
            }
        }
    }

    /// Writes `stream.info` (a temp file renamed over it).
    fn write_info(&self) -> Result<()> {
        let tmp = self.dir.join(INFO_TEMP);
        let _ = std::fs::remove_file(&tmp);
        let mut f = open_file(&tmp, true, true, true).map_err(io("cannot write", &tmp))?;
        std::io::Write::write_all(&mut f, self.info.as_bytes())
            .map_err(io("cannot write", &tmp))?;
        drop(f);
        let info = self.dir.join(INFO_FILE);
        std::fs::rename(&tmp, &info).map_err(io("cannot write", &info))
    }

    /// Makes the directory again after it was removed under a live stream (`cache_cli
    /// rm` or `clear`), with its `stream.info`, so that it is a stream cache again (and
    /// listed, removed and left alone by `prune` as one).
    fn make_again(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(io("cannot create the stream cache directory", &self.dir))?;
        if !self.dir.join(INFO_FILE).exists() {
            // Not under the ledger lock (its file is gone too): another rank may be
            // writing it at the same moment, which does as well.
            let _ = self.write_info();
        }
        Ok(())
    }

    fn block_path(&self, id: u64) -> PathBuf {
        self.dir.join(block_name(id))
    }

    fn temp_path(&self, id: u64) -> PathBuf {
        self.dir.join(temp_name(id))
    }

    /// Allocated bytes of the directory and every file in it, as `du` counts, measured
    /// under the ledger lock (a rename during the listing could show a file twice or
    /// not at all; renames are made under the lock).
    pub fn usage(&self) -> Result<u64> {
        let _l = self.lock()?;
        directory_usage(&self.dir)
    }

    fn note_usage(&self, used: u64) {
        self.counters
            .disk_high_water
            .fetch_max(used, Ordering::Relaxed);
    }

    /// Publishes local rank `p.local`'s position.
    pub fn publish_position(&self, p: RankPosition) -> Result<()> {
        let path = self.dir.join(RANKS_FILE);
        // Made again if removed (cache_cli rm under a live stream; the directory may
        // go again between the two steps, hence a few tries).
        let mut tries = 0;
        let f = loop {
            match open_file(&path, true, true, false) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => {
                    tries += 1;
                    self.make_again()?;
                }
                Err(e) => return Err(Error::io("cannot open", &path, e)),
            }
        };
        let mut slot = [0u8; SLOT as usize];
        slot[0..4].copy_from_slice(&std::process::id().to_le_bytes());
        slot[8..16].copy_from_slice(&p.epoch.to_le_bytes());
        slot[16..24].copy_from_slice(&p.position.to_le_bytes());
        f.write_all_at(&slot, p.local * SLOT)
            .map_err(io("cannot write", &path))
    }

    /// Clears this process's slot (a rank that stops reading pins nothing).
    pub fn release_position(&self, local: u64) {
        let path = self.dir.join(RANKS_FILE);
        if let Ok(f) = open_file(&path, true, false, false) {
            let mut slot = [0u8; SLOT as usize];
            if f.read_exact_at(&mut slot, local * SLOT).is_ok()
                && slot[0..4] == std::process::id().to_le_bytes()
            {
                let _ = f.write_all_at(&[0u8; SLOT as usize], local * SLOT);
            }
        }
    }

    /// The positions of the live local ranks (a slot whose process is gone is ignored).
    pub fn positions(&self) -> Vec<RankPosition> {
        let path = self.dir.join(RANKS_FILE);
        let mut out = Vec::new();
        let Ok(f) = open_file(&path, false, false, false) else {
            return out;
        };
        for local in 0..self.ranks_per_node {
            let mut slot = [0u8; SLOT as usize];
            if f.read_exact_at(&mut slot, local * SLOT).is_err() {
                break;
            }
            let pid = u32::from_le_bytes(slot[0..4].try_into().expect("4"));
            if pid == 0 || !alive(pid) {
                continue;
            }
            out.push(RankPosition {
                local,
                epoch: u64::from_le_bytes(slot[8..16].try_into().expect("8")),
                position: u64::from_le_bytes(slot[16..24].try_into().expect("8")),
            });
        }
        out
    }

    /// Opens block `spec` if it is there, complete and of this object, with a shared
    /// lock held while the returned file lives. A damaged block is removed (it is
    /// fetched again).
    pub fn open_block(&self, spec: BlockSpec) -> Result<Option<BlockFile>> {
        match self.try_open(spec)? {
            Opened::Missing => Ok(None),
            Opened::Block(b) => Ok(Some(b)),
            Opened::Damaged(path) => {
                let _l = self.lock()?;
                self.remove_if_idle(&path);
                Ok(None)
            }
        }
    }

    fn try_open(&self, spec: BlockSpec) -> Result<Opened> {
        let path = self.block_path(spec.id);
        let f = match open_file(&path, false, false, false) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(Error::io("cannot open stream block", &path, e)),
        };
        flock(&f, libc::LOCK_SH).map_err(io("cannot lock", &path))?;
        // Evicted between the open and the lock: not this file any more.
        if !same_file(&f, &path) {
            return Ok(Opened::Missing);
        }
        match BlockFile::from_file(f, &path, spec, self.source.etag_hash) {
            Ok(b) => Ok(Opened::Block(b)),
            Err(e) => {
                crate::log::warn(&format!("{e}; the block is fetched again"));
                Ok(Opened::Damaged(path))
            }
        }
    }

    /// Removes the file at `path` if no reader holds it (true when removed or gone).
    fn remove_if_idle(&self, path: &Path) -> bool {
        let Ok(f) = open_file(path, false, false, false) else {
            return true;
        };
        if flock(&f, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            return false;
        }
        std::fs::remove_file(path).is_ok()
    }

    /// Reserves room for block `spec` and claims its fetch, evicting under Belady's rule
    /// (see the module docs): `need` is when the block is needed, `next_use` says when
    /// any other block is. Without `evict`, only blocks no rank foresees a use for are
    /// evicted (a deep prefetch takes free room, never a block kept for later).
    pub fn claim(
        &self,
        spec: BlockSpec,
        need: NextUse,
        evict: bool,
        next_use: &mut dyn FnMut(u64) -> NextUse,
    ) -> Result<Claim> {
        if let Some(b) = self.open_block(spec)? {
            return Ok(Claim::Ready(b));
        }
        let _ledger = self.lock()?;
        match self.try_open(spec)? {
            Opened::Block(b) => return Ok(Claim::Ready(b)),
            Opened::Damaged(path) => {
                if !self.remove_if_idle(&path) {
                    return Ok(Claim::Busy);
                }
            }
            Opened::Missing => {}
        }
        let temp = self.temp_path(spec.id);
        if temp.exists() && !self.remove_if_idle(&temp) {
            return Ok(Claim::Busy);
        }
        let entries = self.entries()?;
        // Dead fetchers' temp files are reclaimed first.
        for e in entries.iter().filter(|e| e.temp) {
            self.remove_if_idle(&e.path);
        }
        let want = block_allocation(spec.records, spec.bytes);
        if self.limit > 0 {
            let mut used = directory_usage(&self.dir)?;
            if used + want + FS_BLOCK > self.limit {
                // Candidates: complete blocks, furthest next use first, only those
                // needed after this one.
                let later = |u: NextUse| match (u, need) {
                    (None, _) => true,
                    (Some(_), _) if !evict => false,
                    (Some(_), None) => false,
                    (Some(a), Some(b)) => a > b,
                };
                let mut victims: Vec<(NextUse, &Entry)> = entries
                    .iter()
                    .filter(|e| !e.temp)
                    .map(|e| (next_use(e.id), e))
                    .filter(|(u, _)| later(*u))
                    .collect();
                // None (not foreseen) sorts as the furthest.
                victims.sort_by(|a, b| match (a.0, b.0) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, _) => std::cmp::Ordering::Less,
                    (_, None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => y.cmp(&x),
                });
                for (_, v) in victims {
                    if used + want + FS_BLOCK <= self.limit {
                        break;
                    }
                    if self.remove_if_idle(&v.path) {
                        self.counters.blocks_evicted.fetch_add(1, Ordering::Relaxed);
                        used = directory_usage(&self.dir)?;
                    }
                }
                if used + want + FS_BLOCK > self.limit {
                    return Ok(Claim::NoRoom);
                }
            }
        }
        let file = open_file(&temp, true, true, true).map_err(io("cannot create", &temp))?;
        flock(&file, libc::LOCK_EX).map_err(io("cannot lock", &temp))?;
        let len = data_at(spec.records) + spec.bytes;
        // SAFETY: fallocate on a descriptor we own; no memory is passed.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_file(&temp);
            return Err(Error::io("cannot allocate a stream block", &temp, e));
        }
        self.note_usage(directory_usage(&self.dir)?);
        Ok(Claim::Fetch(TempBlock {
            file,
            path: temp,
            spec,
            finished: false,
        }))
    }

    /// Checks a fetched block (every frame and CRC), writes its header and offsets and
    /// publishes it under its name; returns it opened for reading, or None when its temp
    /// file was removed meanwhile (`cache_cli rm` or `clear`): it is to be fetched again.
    pub fn publish(&self, mut t: TempBlock) -> Result<Option<BlockFile>> {
        let offsets = verify_frames(&t.file, &t.path, t.spec, &self.source.url)?;
        let mut head = Vec::with_capacity(data_at(t.spec.records) as usize);
        head.extend_from_slice(&BLOCK_MAGIC);
        head.extend_from_slice(&1u32.to_le_bytes());
        head.extend_from_slice(&(t.spec.records as u32).to_le_bytes());
        head.extend_from_slice(&t.spec.id.to_le_bytes());
        head.extend_from_slice(&t.spec.first.to_le_bytes());
        head.extend_from_slice(&t.spec.bytes.to_le_bytes());
        head.extend_from_slice(&self.source.etag_hash.to_le_bytes());
        head.resize(60, 0);
        let mut h = crc32fast::Hasher::new();
        h.update(&head);
        for o in &offsets {
            h.update(&o.to_le_bytes());
        }
        head.extend_from_slice(&h.finalize().to_le_bytes());
        for o in &offsets {
            head.extend_from_slice(&o.to_le_bytes());
        }
        head.resize(data_at(t.spec.records) as usize, 0);
        t.file
            .write_all_at(&head, 0)
            .map_err(io("cannot write", &t.path))?;
        // Readers may take it (shared) from the moment it has its name.
        flock(&t.file, libc::LOCK_SH).map_err(io("cannot lock", &t.path))?;
        let path = self.block_path(t.spec.id);
        {
            let _ledger = self.lock()?;
            // Temp files are made and renamed under the ledger, so the name is ours here
            // unless it was removed (another fetcher's temp may have that name now).
            if !same_file(&t.file, &t.path) {
                t.finished = true; // nothing of ours to remove
                return Ok(None);
            }
            std::fs::rename(&t.path, &path).map_err(io("cannot publish", &path))?;
            self.note_usage(directory_usage(&self.dir)?);
        }
        t.finished = true;
        self.counters.blocks_fetched.fetch_add(1, Ordering::Relaxed);
        let file = t.file.try_clone().map_err(io("cannot open", &path))?;
        BlockFile::from_parts(file, path, t.spec, offsets).map(Some)
    }

    /// Removes block files of another object or version (under the ledger lock).
    fn remove_foreign_blocks(&self) -> Result<()> {
        for e in self.entries()? {
            if !e.temp {
                let mut head = [0u8; BLOCK_HEADER as usize];
                let ours = open_file(&e.path, false, false, false)
                    .and_then(|f| f.read_exact_at(&mut head, 0))
                    .is_ok()
                    && head[40..48] == self.source.etag_hash.to_le_bytes();
                if !ours {
                    self.remove_if_idle(&e.path);
                }
            }
        }
        Ok(())
    }

    fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.dir).map_err(io("cannot list", &self.dir))?;
        for d in rd.flatten() {
            let name = d.file_name().to_string_lossy().into_owned();
            if let Some((id, temp)) = parse_name(&name) {
                out.push(Entry {
                    id,
                    temp,
                    path: d.path(),
                });
            }
        }
        Ok(out)
    }
}

/// True when the name `path` still refers to the open file `f`.
fn same_file(f: &File, path: &Path) -> bool {
    match (std::fs::symlink_metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

enum Opened {
    Missing,
    Block(BlockFile),
    Damaged(PathBuf),
}

struct Entry {
    id: u64,
    temp: bool,
    path: PathBuf,
}

/// A block being fetched: room reserved, exclusively locked, removed if dropped
/// unfinished.
#[derive(Debug)]
pub struct TempBlock {
    file: File,
    path: PathBuf,
    pub spec: BlockSpec,
    finished: bool,
}

impl TempBlock {
    /// Writes frame bytes at `offset` from the block's first frame.
    pub fn write_at(&self, bytes: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(bytes, data_at(self.spec.records) + offset)
            .map_err(io("cannot write", &self.path))
    }
}

impl Drop for TempBlock {
    fn drop(&mut self) {
        // Not a file another fetcher made under that name after ours was removed.
        if !self.finished && same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Walks the frames of a fetched block: every frame a record, every CRC right, the
/// frames end exactly at the block's end. Returns each record's offset.
fn verify_frames(file: &File, path: &Path, spec: BlockSpec, url: &str) -> Result<Vec<u32>> {
    let bad = |d: String| {
        Error::http(
            HttpCause::of(HttpErrorKind::Body),
            url,
            format!(
                "block {} (records {}..{}): {d}",
                spec.id,
                spec.first,
                spec.first + spec.records
            ),
        )
    };
    let base = data_at(spec.records);
    let mut r = std::io::BufReader::with_capacity(1 << 20, FileAt { file, pos: base });
    let mut offsets = Vec::with_capacity(spec.records as usize);
    let mut at = 0u64;
    let (mut frame, mut shape) = (Vec::new(), Vec::new());
    for i in 0..spec.records {
        let rec = spec.first + i;
        let mut fh = [0u8; FRAME_HEADER];
        r.read_exact(&mut fh).map_err(io("cannot read", path))?;
        let len = parse_frame(&fh, true)
            .map_err(|d| bad(format!("record {rec}: {d}")))?
            .len();
        if at + len > spec.bytes {
            return Err(bad(format!("record {rec} runs past the block")));
        }
        frame.clear();
        frame.extend_from_slice(&fh);
        frame.resize(len as usize, 0);
        r.read_exact(&mut frame[fh.len()..])
            .map_err(io("cannot read", path))?;
        check_record_frame(&frame, &mut shape).map_err(|d| bad(format!("record {rec}: {d}")))?;
        offsets.push(at as u32);
        at += len;
    }
    if at != spec.bytes {
        return Err(bad(format!(
            "the frames end at {at}, the block at {}",
            spec.bytes
        )));
    }
    Ok(offsets)
}

/// `Read` over a file from a position (pread).
struct FileAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A complete block open for reading (a shared lock held while it lives).
#[derive(Debug)]
pub struct BlockFile {
    file: File,
    path: PathBuf,
    pub spec: BlockSpec,
    offsets: Vec<u32>,
}

impl BlockFile {
    fn from_parts(
        file: File,
        path: PathBuf,
        spec: BlockSpec,
        offsets: Vec<u32>,
    ) -> Result<BlockFile> {
        Ok(BlockFile {
            file,
            path,
            spec,
            offsets,
        })
    }

    /// Reads and checks the header and offsets of the block file `f`.
    fn from_file(f: File, path: &Path, spec: BlockSpec, etag_hash: u64) -> Result<BlockFile> {
        let bad = |d: &str| Error::corrupt(path, format!("stream block: {d}"));
        let mut head = vec![0u8; data_at(spec.records) as usize];
        f.read_exact_at(&mut head, 0)
            .map_err(|_| bad("shorter than its header"))?;
        let u64_at = |a: usize| u64::from_le_bytes(head[a..a + 8].try_into().expect("8"));
        if head[0..8] != BLOCK_MAGIC
            || u32::from_le_bytes(head[12..16].try_into().expect("4")) as u64 != spec.records
            || u64_at(16) != spec.id
            || u64_at(24) != spec.first
            || u64_at(32) != spec.bytes
        {
            return Err(bad("the header is not this block's"));
        }
        if u64_at(40) != etag_hash {
            return Err(bad("of another version of the object"));
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..60]);
        let offsets: Vec<u32> = head
            [BLOCK_HEADER as usize..BLOCK_HEADER as usize + 4 * spec.records as usize]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        for o in &offsets {
            h.update(&o.to_le_bytes());
        }
        if h.finalize() != u32::from_le_bytes(head[60..64].try_into().expect("4")) {
            return Err(bad("header checksum mismatch"));
        }
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < data_at(spec.records) + spec.bytes {
            return Err(bad("truncated"));
        }
        Ok(BlockFile {
            file: f,
            path: path.to_path_buf(),
            spec,
            offsets,
        })
    }

    /// The frame of record `i` (global) into `buf`, and its wire bytes checked (CRC).
    /// Allocates nothing once `buf` is large enough (the per-record path).
    pub fn read_record<'b>(&self, i: u64, buf: &'b mut Vec<u8>) -> Result<&'b [u8]> {
        let k = (i - self.spec.first) as usize;
        let start = u64::from(self.offsets[k]);
        let end = self
            .offsets
            .get(k + 1)
            .map_or(self.spec.bytes, |&o| u64::from(o));
        buf.resize((end - start) as usize, 0);
        self.file
            .read_exact_at(buf, data_at(self.spec.records) + start)
            .map_err(io("cannot read stream block", &self.path))?;
        let path = self.path.display().to_string();
        crate::http::record_wire(buf, i, &path).map_err(|e| match e {
            Error::Http { detail, .. } => Error::corrupt(&self.path, detail),
            e => e,
        })
    }
}
