//! The on-disk cache: where cache files live, their format, reading, writing,
//! appending, and the advisory lock that lets several processes share one cache.

mod format;
mod index;
mod inventory;
pub mod maintenance;
mod mapping;
mod publish;
mod published;
mod reader;
mod recovery;
mod writer;

pub(crate) use format::{entry_offset, parse_frame, Frame, FRAME_HEADER};
pub use format::{Commit, Header, Metadata, Sniff, DATA_ALIGNMENT, MAGIC, VERSION, VERSION_1};
pub use inventory::{
    classify_name, is_own_companion, list_caches, scan_cache_dir, why_not_a_cache, DirEntry,
    EntryKind,
};
pub(crate) use maintenance::legacy_token_path;
pub use mapping::repaired_faults;
pub use publish::{sha256_file, write_compact, CompactFile};
pub(crate) use published::read_full;
pub use published::{read_stream_header, FrameStream};
pub(crate) use reader::copy_into;
pub use reader::{CacheReader, Format, RecordLoc};
pub(crate) use recovery::{check_at_with_recovery, read_with_recovery};
pub use writer::{upgrade, CacheAppender, CacheWriter};

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// An exclusive advisory lock (`flock`) on a cache, held until dropped.
///
/// The lock is taken on a companion file `.<name>.lock` rather than on the cache
/// itself, because the cache file is replaced by rename and a lock on the old inode
/// would not exclude a process that opens the new one. The lock file is opened with
/// `O_NOFOLLOW` and must be a regular file: a symbolic link or anything else planted
/// at its name is refused (`Error::NotRegularFile`), so no file is ever created where
/// a link points. The holder writes its pid into the file, so a waiter can say whom
/// it waits for.
///
/// Waiting is a poll (`LOCK_NB` and short sleeps): after `lock_notice_after()` (2 s by
/// default) a waiter says on stderr which cache it waits for and which pid holds it;
/// after `lock_timeout()` (none by default) it fails with `Error::LockTimeout`.
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
    /// Waits until this process holds the lock for the cache at `cache_path`, or
    /// until the lock timeout expires (`Error::LockTimeout`).
    pub fn exclusive(cache_path: &Path) -> Result<CacheLock> {
        Ok(Self::exclusive_unless_stopped(cache_path, None)?.expect("no stop flag to stop on"))
    }

    /// Like `exclusive`, and also gives up (`Ok(None)`) soon after `stop` becomes
    /// true, so a thread waiting for another process's lock can be told to quit.
    pub fn exclusive_unless_stopped(
        cache_path: &Path,
        stop: Option<&AtomicBool>,
    ) -> Result<Option<CacheLock>> {
        let lock_path = lock_path(cache_path);
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("cannot create cache directory", dir, e))?;
        }
        let file = match open_lock_file(&lock_path) {
            Ok(f) => f,
            Err(Error::Io { source: e, .. })
                if e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(libc::EROFS) =>
            {
                match open_regular(
                    &lock_path,
                    OpenMode::Read,
                    LOCK_FILE,
                    "cannot open lock file",
                ) {
                    Ok(f) => f,
                    Err(e @ Error::NotRegularFile { .. }) => return Err(e),
                    Err(_) => return Ok(Some(CacheLock { _file: None })),
                }
            }
            Err(e) => return Err(e),
        };
        if !wait_for_lock(&file, cache_path, &lock_path, stop)? {
            return Ok(None);
        }
        record_holder(&file);
        Ok(Some(CacheLock { _file: Some(file) }))
    }

    /// Takes the lock if no other process holds it: `Ok(None)` when the cache is in
    /// use. Unlike `exclusive`, never creates the cache directory.
    pub fn try_exclusive(cache_path: &Path) -> Result<Option<CacheLock>> {
        let lock_path = lock_path(cache_path);
        let file = open_lock_file(&lock_path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => {
                record_holder(&file);
                Ok(Some(CacheLock { _file: Some(file) }))
            }
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io("cannot lock", &lock_path, e)),
        }
    }
}

/// `NotRegularFile::role` of a lock file.
const LOCK_FILE: &str = "lock file";

/// Opens (creating it if needed) the lock file at `lock_path` for reading and writing,
/// never through a symbolic link.
fn open_lock_file(lock_path: &Path) -> Result<File> {
    open_regular(
        lock_path,
        OpenMode::Create,
        LOCK_FILE,
        "cannot open lock file",
    )
}

/// Polls for the lock on `file` until it is ours (true), `stop` is set (false) or the
/// lock timeout expires. Says on stderr, once, that it is waiting.
fn wait_for_lock(
    file: &File,
    cache_path: &Path,
    lock_path: &Path,
    stop: Option<&AtomicBool>,
) -> Result<bool> {
    let start = Instant::now();
    let timeout = lock_timeout();
    let notice = lock_notice_after();
    let mut told = false;
    let mut nap = Duration::from_millis(1);
    loop {
        match flock(file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
            Err(e) => return Err(Error::io("cannot lock", lock_path, e)),
        }
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Ok(false);
        }
        let waited = start.elapsed();
        if timeout.is_some_and(|t| waited >= t) {
            return Err(Error::LockTimeout {
                path: cache_path.to_path_buf(),
                pid: holder_pid(file),
                waited,
            });
        }
        if !told && waited >= notice {
            told = true;
            let who = match holder_pid(file) {
                Some(pid) => format!("pid {pid}"),
                None => "another process (its pid is not recorded)".into(),
            };
            let limit = match timeout {
                Some(t) => format!("giving up after {:.1} s", t.as_secs_f64()),
                None => format!("no timeout; set {LOCK_TIMEOUT_ENV}=SECONDS to give up"),
            };
            eprintln!(
                "harmonics-dataset: waiting for the lock of {} ({}), held by {who}, for {:.1} s \
                 so far ({limit})",
                cache_path.display(),
                lock_path.display(),
                waited.as_secs_f64(),
            );
        }
        let mut sleep = nap;
        if let Some(t) = timeout {
            sleep = sleep
                .min(t.saturating_sub(waited))
                .max(Duration::from_millis(1));
        }
        std::thread::sleep(sleep);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// Writes this process's pid into the lock file it now holds (best effort: a lock
/// opened read-only keeps the previous holder's pid, which `holder_pid` checks).
fn record_holder(file: &File) {
    use std::os::unix::fs::FileExt;
    let text = format!("{}\n", std::process::id());
    if file.write_all_at(text.as_bytes(), 0).is_ok() {
        let _ = file.set_len(text.len() as u64);
    }
}

/// The pid recorded in a lock file, if it names a live process.
fn holder_pid(file: &File) -> Option<u32> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 24];
    let n = file.read_at(&mut buf, 0).ok()?;
    let pid: u32 = std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()?;
    let pid_t = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0)?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(pid)
}

/// Environment variable: seconds to wait for another process's lock before failing
/// with `Error::LockTimeout` (fractions allowed; unset: wait as long as it takes).
pub const LOCK_TIMEOUT_ENV: &str = "HARMONICS_LOCK_TIMEOUT";
/// Environment variable: seconds of waiting for a lock after which the waiter says so
/// on stderr (default 2).
pub const LOCK_NOTICE_ENV: &str = "HARMONICS_LOCK_NOTICE";

/// `u64::MAX`: not set by the program (the environment decides);
/// `u64::MAX - 1`: set to "no limit"; otherwise milliseconds.
const UNSET: u64 = u64::MAX;
const NO_LIMIT: u64 = u64::MAX - 1;
static LOCK_TIMEOUT_MS: AtomicU64 = AtomicU64::new(UNSET);
static LOCK_NOTICE_MS: AtomicU64 = AtomicU64::new(UNSET);

fn encode_limit(d: Option<Duration>) -> u64 {
    d.map_or(NO_LIMIT, |d| (d.as_millis() as u64).min(NO_LIMIT - 1))
}

/// Sets, for the whole process, how long a cache lock held by another process is
/// waited for before `Error::LockTimeout` (`None`: no limit). Overrides
/// `HARMONICS_LOCK_TIMEOUT`. Takes effect for waits that start afterwards.
pub fn set_lock_timeout(timeout: Option<Duration>) {
    LOCK_TIMEOUT_MS.store(encode_limit(timeout), Ordering::Relaxed);
}

/// Sets, for the whole process, after how long a waiter for a cache lock says so on
/// stderr. Overrides `HARMONICS_LOCK_NOTICE`.
pub fn set_lock_notice_after(after: Duration) {
    LOCK_NOTICE_MS.store(encode_limit(Some(after)), Ordering::Relaxed);
}

/// The lock timeout in force: `set_lock_timeout`, else `HARMONICS_LOCK_TIMEOUT`,
/// else none.
pub fn lock_timeout() -> Option<Duration> {
    match LOCK_TIMEOUT_MS.load(Ordering::Relaxed) {
        UNSET => env_seconds(LOCK_TIMEOUT_ENV),
        NO_LIMIT => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

/// After how long a lock waiter says so on stderr: `set_lock_notice_after`, else
/// `HARMONICS_LOCK_NOTICE`, else 2 s.
pub fn lock_notice_after() -> Duration {
    match LOCK_NOTICE_MS.load(Ordering::Relaxed) {
        UNSET => env_seconds(LOCK_NOTICE_ENV).unwrap_or(Duration::from_secs(2)),
        NO_LIMIT => Duration::MAX,
        ms => Duration::from_millis(ms),
    }
}

/// A duration in seconds from the environment; a value that is not a non-negative
/// number is ignored with a warning.
fn env_seconds(var: &str) -> Option<Duration> {
    let v = std::env::var(var).ok()?;
    match v.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s.min(1e9))),
        _ => {
            crate::log::warn(&format!("{var}={v:?} is not a number of seconds; ignored"));
            None
        }
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
