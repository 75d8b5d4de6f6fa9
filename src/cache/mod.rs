//! The on-disk cache: where cache files live, their format, reading, writing,
//! appending, and the advisory lock that lets several processes share one cache
//! (`lock`).

mod format;
mod index;
mod inventory;
mod lock;
pub mod maintenance;
mod mapping;
mod publish;
mod published;
mod readahead;
mod reader;
mod recovery;
pub(crate) mod stream_dir;
mod writer;

pub use format::Metadata;
pub(crate) use format::{
    check_record_wire, entry_offset, parse_frame, Frame, FRAME_HEADER, REGION_PREFIX,
};
pub(crate) use inventory::{
    classify_name, is_own_companion, list_caches, scan_cache_dir, why_not_a_cache,
};
pub use inventory::{DirEntry, EntryKind};
pub(crate) use lock::{flock, names_file};
pub use lock::{
    lock_notice_after, lock_path, lock_timeout, set_lock_notice_after, set_lock_timeout, CacheLock,
    LOCK_NOTICE_ENV, LOCK_TIMEOUT_ENV,
};
pub(crate) use maintenance::legacy_token_path;
pub use mapping::repaired_faults;
pub use publish::{sha256_file, write_compact, CompactFile};
pub(crate) use published::read_full;
pub use readahead::{ReadAheadStats, ReadOrder};
pub use reader::{CacheReader, Format, RecordLoc};
pub(crate) use recovery::{check_at_with_recovery, read_with_recovery};
pub use stream_dir::{inspect as inspect_stream_cache, StreamDirInfo};
pub use writer::{upgrade, CacheWriter};

// The file format's own pieces (header, commit slots, frame streams, the appender):
// crate-private; public, hidden from the docs, with the `testing` feature (the crate's
// tests and fuzz targets build and damage files with them).
testing_pub_use!(format::{Commit, Header, Sniff, DATA_ALIGNMENT, MAGIC, VERSION, VERSION_1});
testing_pub_use!(format::{check_record_frame, frame_header, RecordFrame});
testing_pub_use!(published::{read_stream_header, FrameStream});
testing_pub_use!(writer::CacheAppender);

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result, CACHE_FILE, SYMLINK};

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

/// Creates the directory a cache file goes in. When that fails under the cache
/// directory, the error says where the directory came from and that
/// `HARMONICS_CACHE_DIR` moves it: the default is relative to the working directory,
/// so a job started from `/` (or any directory it may not write) fails here first.
pub(crate) fn create_cache_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        let under_cache_dir = absolute_cache_path(&cache_dir()).is_ok_and(|d| dir.starts_with(d));
        if !under_cache_dir {
            return Error::io("cannot create cache directory", dir, e);
        }
        let origin = match std::env::var_os(CACHE_DIR_ENV) {
            Some(v) if !v.is_empty() => format!("{CACHE_DIR_ENV}={}", v.to_string_lossy()),
            _ => format!(
                "{CACHE_DIR_ENV} is not set, and the default {DEFAULT_CACHE_DIR} is relative to \
                 the working directory"
            ),
        };
        let hint =
            format!("{e} ({origin}; set {CACHE_DIR_ENV} to a directory this process can write)");
        Error::io(
            "cannot create cache directory",
            dir,
            std::io::Error::new(e.kind(), hint),
        )
    })
}

/// Resolves a cache name: an absolute path is used as given; a relative name lives
/// under `cache_dir()`. Empty names, NUL bytes and names that climb out of the
/// directory with `..` are refused. The result is absolute (a relative
/// `HARMONICS_CACHE_DIR` is taken against the working directory now), so a producer
/// that keeps it goes on using the same file after the process changes directory.
pub fn resolve_cache_path(name: &str) -> Result<PathBuf> {
    absolute_cache_path(&resolve_cache_path_in(&cache_dir(), name)?)
}

/// `path` made absolute against the working directory (symbolic links are not
/// resolved: the cache is the file at that name, whatever its directory links to).
pub fn absolute_cache_path(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|e| {
            Error::io(
                "cannot resolve the cache path against the working directory:",
                path,
                e,
            )
        })
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

/// How `open_regular` opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Read-only.
    Read,
    /// Read-only, without updating the access time where the kernel allows it.
    ReadNoAtime,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write, created (mode 0666 minus the umask) if missing.
    Create,
}

/// What a file type is, for messages ("a FIFO (named pipe)"); `None` for a regular file.
pub fn irregular_kind(t: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some(SYMLINK)
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("a special file")
    }
}

/// Opens the regular file at `path` and nothing else: a symbolic link, FIFO, device,
/// socket or directory there is refused at once with `Error::NotRegularFile` naming
/// it as the `role` it was meant to be. Nothing can block or be written through a
/// planted link: the path is checked with `lstat` first (opening a device or FIFO can
/// itself block or have effects), then opened with `O_NOFOLLOW | O_NONBLOCK |
/// O_CLOEXEC` and checked again with `fstat` (the name may have been replaced in
/// between). Other failures are `Error::Io` with `what`.
pub(crate) fn open_regular(
    path: &Path,
    mode: OpenMode,
    role: &'static str,
    what: &'static str,
) -> Result<File> {
    let refuse = |kind| Error::NotRegularFile {
        path: path.to_path_buf(),
        kind,
        role,
    };
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if let Some(kind) = irregular_kind(&m.file_type()) {
            return Err(refuse(kind));
        }
    }
    let mut flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let mut o = OpenOptions::new();
    o.read(true);
    match mode {
        OpenMode::Read => {}
        OpenMode::ReadNoAtime => flags |= libc::O_NOATIME,
        OpenMode::ReadWrite => {
            o.write(true);
        }
        OpenMode::Create => {
            o.write(true).create(true).truncate(false);
        }
    }
    let file = match o.custom_flags(flags).open(path) {
        // O_NOATIME needs ownership of the file: otherwise a plain open.
        Err(e) if mode == OpenMode::ReadNoAtime && e.raw_os_error() == Some(libc::EPERM) => {
            return open_regular(path, OpenMode::Read, role, what)
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse(SYMLINK)),
        r => r.map_err(|e| Error::io(what, path, e))?,
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot stat", path, e))?;
    if let Some(kind) = irregular_kind(&meta.file_type()) {
        return Err(refuse(kind));
    }
    // Back to blocking I/O (it makes no difference to a regular file; said for clarity).
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fd = file.as_raw_fd();
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// Opens the cache file at `path` for reading, refusing anything but a regular file
/// (see `open_regular`). Used by every opener of a cache.
pub(crate) fn open_cache_file(path: &Path, mode: OpenMode) -> Result<File> {
    let what = if mode == OpenMode::ReadWrite {
        "cannot open cache for append"
    } else {
        "cannot open cache"
    };
    open_regular(path, mode, CACHE_FILE, what)
}

/// Why a cache could not be appended to (`denied` is the permission error): whose
/// file it is and who tried, for the warning before a rebuild by rename.
pub(crate) fn append_refused(path: &Path, denied: &Error) -> String {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "cannot append to {}: the file belongs to uid {} (mode {:o}) and this process \
             (uid {me}) may not write it",
            path.display(),
            m.uid(),
            m.mode() & 0o7777
        ),
        Err(_) => format!("cannot append to {}: {denied}", path.display()),
    }
}

/// The error when a cache could be neither appended to (`reason`, from
/// `append_refused`) nor replaced by a rebuild (`rebuild`).
pub(crate) fn rebuild_refused(path: &Path, reason: &str, rebuild: Error) -> Error {
    let kind = match &rebuild {
        Error::Io { source, .. } => source.kind(),
        _ => std::io::ErrorKind::PermissionDenied,
    };
    Error::io(
        "cannot update cache",
        path,
        std::io::Error::new(
            kind,
            format!("{reason}; replacing it by a rebuild failed too: {rebuild}"),
        ),
    )
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
