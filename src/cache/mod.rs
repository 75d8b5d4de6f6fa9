//! The on-disk cache: where cache files live, their format, reading, writing,
//! appending, and the advisory lock that lets several processes share one cache.

mod format;
mod index;
mod inventory;
mod published;
mod reader;
mod writer;

pub(crate) use format::{parse_frame, Frame, FRAME_HEADER};
pub use format::{Commit, Header, Metadata, Sniff, MAGIC, VERSION, VERSION_1};
pub use inventory::{list_caches, scan_cache_dir, DirEntry, EntryKind};
pub use published::{read_stream_header, FrameStream};
pub use reader::{CacheReader, Format, RecordLoc};
pub use writer::{upgrade, CacheAppender, CacheWriter};

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "HARMONICS_CACHE_DIR";
/// Cache directory when the variable is unset or empty (relative to the working directory).
pub const DEFAULT_CACHE_DIR: &str = ".harmonics/cache";

/// The cache directory: `$HARMONICS_CACHE_DIR`, else `.harmonics/cache`, spelled as given.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(DEFAULT_CACHE_DIR),
    }
}

/// Resolves a cache name: an absolute path is used as given; a relative name lives
/// under `cache_dir()`. Empty names, NUL bytes and names that climb out of the
/// directory with `..` are refused.
pub fn resolve_cache_path(name: &str) -> Result<PathBuf> {
    resolve_cache_path_in(&cache_dir(), name)
}

/// `resolve_cache_path` against an explicit directory.
pub fn resolve_cache_path_in(dir: &Path, name: &str) -> Result<PathBuf> {
    let refuse = |reason| Error::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("the name is empty"));
    }
    if name.contains('\0') {
        return Err(refuse("the name contains a NUL byte"));
    }
    let path = Path::new(name);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(refuse("'..' is not allowed in a cache name"));
    }
    if name.ends_with('/') || path.file_name().is_none() {
        return Err(refuse("the name is a directory, not a file"));
    }
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(dir.join(path))
    }
}

/// An exclusive advisory lock (`flock`) on a cache, held until dropped.
///
/// The lock is taken on a companion file `.<name>.lock` rather than on the cache
/// itself, because the cache file is replaced by rename and a lock on the old inode
/// would not exclude a process that opens the new one.
///
/// Where the lock file cannot be opened for writing (a read-only directory or file
/// system, another user's cache), an existing lock file is locked through a read-only
/// descriptor (flock does not care); if there is none and none can be created, the
/// lock is empty: this process cannot write there anyway, and reading without the lock
/// is safe (files are published by rename, appends by a commit after the data).
#[derive(Debug)]
pub struct CacheLock {
    _file: Option<File>,
}

impl CacheLock {
    /// Blocks until this process holds the lock for the cache at `cache_path`.
    pub fn exclusive(cache_path: &Path) -> Result<CacheLock> {
        let lock_path = lock_path(cache_path);
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("cannot create cache directory", dir, e))?;
        }
        let file = match open_lock_file(&lock_path) {
            Ok(f) => f,
            Err(e)
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(libc::EROFS) =>
            {
                match File::open(&lock_path) {
                    Ok(f) => f,
                    Err(_) => return Ok(CacheLock { _file: None }),
                }
            }
            Err(e) => return Err(Error::io("cannot open lock file", &lock_path, e)),
        };
        flock(&file, libc::LOCK_EX).map_err(|e| Error::io("cannot lock", &lock_path, e))?;
        Ok(CacheLock { _file: Some(file) })
    }

    /// Takes the lock if no other process holds it: `Ok(None)` when the cache is in
    /// use. Unlike `exclusive`, never creates the cache directory.
    pub fn try_exclusive(cache_path: &Path) -> Result<Option<CacheLock>> {
        let lock_path = lock_path(cache_path);
        let file = open_lock_file(&lock_path)
            .map_err(|e| Error::io("cannot open lock file", &lock_path, e))?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Some(CacheLock { _file: Some(file) })),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io("cannot lock", &lock_path, e)),
        }
    }
}

/// Opens (creating it if needed) the lock file at `lock_path` for reading and writing.
fn open_lock_file(lock_path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
}

/// `flock(2)` on `f` with `op`, retried when a signal interrupts it.
pub(crate) fn flock(f: &File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The lock file companion of a cache file.
pub fn lock_path(cache_path: &Path) -> PathBuf {
    let name = cache_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    cache_path.with_file_name(format!(".{name}.lock"))
}

/// True for files in a cache directory that are not caches (locks, temporaries).
pub fn is_internal_file(file_name: &str) -> bool {
    file_name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_under_the_directory_and_bad_ones_are_refused() {
        let d = Path::new("/tmp/hc");
        assert_eq!(
            resolve_cache_path_in(d, "train.cache").unwrap(),
            d.join("train.cache")
        );
        assert_eq!(
            resolve_cache_path_in(d, "sub/a.cache").unwrap(),
            d.join("sub/a.cache")
        );
        assert_eq!(
            resolve_cache_path_in(d, "/abs/x").unwrap(),
            PathBuf::from("/abs/x")
        );
        for bad in ["", "../x", "a/../../x", "a\0b", "dir/", ".."] {
            let err = resolve_cache_path_in(d, bad).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{bad:?} accepted");
        }
        assert!(resolve_cache_path_in(d, "../x")
            .unwrap_err()
            .to_string()
            .contains("'..'"));
    }

    #[test]
    fn lock_file_is_a_hidden_companion() {
        assert_eq!(
            lock_path(Path::new("/d/train.cache")),
            PathBuf::from("/d/.train.cache.lock")
        );
        assert!(is_internal_file(".train.cache.lock"));
        assert!(!is_internal_file("train.cache"));
    }
}
