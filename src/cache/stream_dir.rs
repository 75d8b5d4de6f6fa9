//! The files of a stream cache (a directory written by `stream::node_cache`), as the
//! store sees them: their names, how a directory is recognised as a stream cache (its
//! `stream.info`), its disk use as `du` counts it, and its removal. The inventory lists
//! a stream cache as one entry (`EntryKind::Stream`) and never enters it; `cache_cli rm`
//! and `clear` remove it whole; `prune` leaves it alone (it keeps its own limit).
//!
//! Removal under a live reader is safe: a reader holds a descriptor on each block it
//! reads (the data stays readable, checked by CRC), a block it opens later is fetched
//! again, and the directory and its fixed files are made again when missing.

use std::path::Path;

use crate::error::{Error, Result};

/// The ledger lock (empty; its `flock` serialises the decisions).
pub const LOCK_FILE: &str = ".stream.lock";
/// One slot per local rank: pid, epoch, node position.
pub const RANKS_FILE: &str = ".stream.ranks";
/// What the stream is: `kind=stream`, url, etag, cache_limit, block_bytes (one per line).
pub const INFO_FILE: &str = "stream.info";
/// `INFO_FILE` being rewritten.
pub const INFO_TEMP: &str = ".stream.info.tmp";

/// A complete block's file name.
pub fn block_name(id: u64) -> String {
    format!("b{id}.blk")
}

/// A block being fetched.
pub fn temp_name(id: u64) -> String {
    format!(".b{id}.tmp")
}

/// `(block id, is a temp file)` of a block or temp file name.
pub fn parse_name(name: &str) -> Option<(u64, bool)> {
    let (id, temp) = match name.strip_prefix(".b").and_then(|s| s.strip_suffix(".tmp")) {
        Some(id) => (id, true),
        None => (name.strip_prefix('b')?.strip_suffix(".blk")?, false),
    };
    Some((id.parse().ok()?, temp))
}

/// What `stream.info` says, and the directory's disk use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamDirInfo {
    pub url: String,
    pub etag: String,
    pub cache_limit: u64,
    pub block_bytes: u64,
    /// Allocated bytes of the directory and every file in it.
    pub disk_bytes: u64,
}

/// The stream cache at `dir`, or None when `dir` is not one (no `stream.info` starting
/// with `kind=stream`).
pub fn inspect(dir: &Path) -> Option<StreamDirInfo> {
    let text = std::fs::read_to_string(dir.join(INFO_FILE)).ok()?;
    if !text.starts_with("kind=stream\n") {
        return None;
    }
    let mut info = StreamDirInfo::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("url", v)) => info.url = v.to_string(),
            Some(("etag", v)) => info.etag = v.to_string(),
            Some(("cache_limit", v)) => info.cache_limit = v.parse().unwrap_or(0),
            Some(("block_bytes", v)) => info.block_bytes = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    info.disk_bytes = directory_usage(dir).unwrap_or(0);
    Some(info)
}

/// Allocated bytes of `dir` and of every entry directly in it (`st_blocks · 512`).
pub fn directory_usage(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut used = std::fs::symlink_metadata(dir)
        .map(|m| m.blocks() * 512)
        .map_err(|e| Error::io("cannot stat", dir, e))?;
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    for d in rd.flatten() {
        if let Ok(m) = d.metadata() {
            used += m.blocks() * 512;
        }
    }
    Ok(used)
}

/// True for a file name the stream cache makes.
fn is_own(name: &str) -> bool {
    [LOCK_FILE, RANKS_FILE, INFO_FILE, INFO_TEMP].contains(&name) || parse_name(name).is_some()
}

/// Removes the stream cache at `dir`: its own files (never anything else, never
/// through a link), then the directory if that leaves it empty. Returns the files
/// removed.
///
/// It holds the stream's ledger lock meanwhile (made if missing: no live process
/// reserves, evicts or publishes a block while the files go) and removes the lock file
/// last: a process waiting for that lock then finds its name gone and makes the
/// directory again.
pub fn remove(dir: &Path) -> Result<usize> {
    use std::os::unix::fs::OpenOptionsExt;
    let lock_path = dir.join(LOCK_FILE);
    let ledger = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&lock_path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
    if let Some(f) = &ledger {
        super::flock(f, libc::LOCK_EX).map_err(|e| Error::io("cannot lock", &lock_path, e))?;
    }
    let mut removed = 0;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("cannot list", dir, e)),
    };
    let mut own: Vec<(String, std::path::PathBuf)> = rd
        .flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_file()))
        .map(|d| (d.file_name().to_string_lossy().into_owned(), d.path()))
        .filter(|(name, _)| is_own(name))
        .collect();
    // The lock file last.
    own.sort_by_key(|(name, _)| name == LOCK_FILE);
    for (_, path) in own {
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot remove", path, e)),
        }
    }
    let _ = std::fs::remove_dir(dir);
    drop(ledger);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_removal_touch_only_the_streams_files() {
        assert_eq!(parse_name(&block_name(42)), Some((42, false)));
        assert_eq!(parse_name(&temp_name(7)), Some((7, true)));
        assert_eq!(parse_name("bx.blk"), None);
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("s");
        std::fs::create_dir(&s).unwrap();
        assert!(inspect(&s).is_none());
        std::fs::write(
            s.join(INFO_FILE),
            "kind=stream\nurl=u\netag=\"e\"\ncache_limit=9\n",
        )
        .unwrap();
        std::fs::write(s.join(block_name(1)), b"x").unwrap();
        std::fs::write(s.join("mine.txt"), b"y").unwrap();
        let i = inspect(&s).unwrap();
        assert_eq!((i.url.as_str(), i.cache_limit), ("u", 9));
        assert!(i.disk_bytes > 0);
        // stream.info, the block, and the lock file it took meanwhile.
        assert_eq!(remove(&s).unwrap(), 3);
        assert!(!s.join(LOCK_FILE).exists());
        assert!(
            s.join("mine.txt").exists(),
            "a user's file stays (and the directory)"
        );
    }
}
