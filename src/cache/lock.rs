//! The advisory lock that lets several processes share one cache: one writer at a time
//! per cache path, waiters told who holds it, a timeout, and a lock file that may be
//! removed under the waiters (`cache_cli clear`/`rm`) without ever giving two processes
//! the lock at once.
//!
//! Every writer of a cache takes a `&CacheLock` for its path (`CacheWriter::create`,
//! `CacheAppender::open`, `upgrade`): a writer without the lock does not compile.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{absolute_cache_path, open_regular, OpenMode};
use crate::error::{Error, Result};

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
/// The lock file may be removed while processes wait on it (`cache_cli clear`/`rm`
/// remove it, holding it): a waiter then gets the `flock` of a file no name leads to
/// any more, while a newcomer creates and locks a new file at the name. So the lock is
/// held only once the name still leads to the locked file (`fstat` of the descriptor
/// against `lstat` of the path); otherwise the waiter starts again on the file at the
/// name now. A remover unlinks a lock file only while holding it and after the same
/// check (`remove_lock_file`), so the name cannot change under a holder.
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
    file: Option<File>,
    /// The cache the lock is for, absolute (as `absolute_cache_path` makes it).
    cache_path: PathBuf,
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
        let mut wait = Wait::new(cache_path, &lock_path, stop);
        let mut vanished = 0;
        for _ in 0..MAX_REPLACED {
            if let Some(dir) = lock_path.parent() {
                super::create_cache_dir(dir)?;
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
                        Err(_) => return Self::held(None, cache_path).map(Some),
                    }
                }
                // The directory was removed (`cache_cli clear`) between its creation and
                // the open: make it again.
                Err(Error::Io { source: e, .. })
                    if e.kind() == std::io::ErrorKind::NotFound && vanished < MAX_VANISHED =>
                {
                    vanished += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !wait.until_locked(&file)? {
                return Ok(None);
            }
            if names_file(&lock_path, &file) {
                record_holder(&file);
                return Self::held(Some(file), cache_path).map(Some);
            }
            // The file was removed (or replaced) while we waited: its lock guards
            // nothing. Start again on the file at the name now.
        }
        Err(replaced_too_often(&lock_path))
    }

    /// Takes the lock if no other process holds it: `Ok(None)` when the cache is in
    /// use. Unlike `exclusive`, never creates the cache directory.
    pub fn try_exclusive(cache_path: &Path) -> Result<Option<CacheLock>> {
        let lock_path = lock_path(cache_path);
        for _ in 0..MAX_REPLACED {
            let file = open_lock_file(&lock_path)?;
            match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) if names_file(&lock_path, &file) => {
                    record_holder(&file);
                    return Self::held(Some(file), cache_path).map(Some);
                }
                // Removed while we opened it: try the file at the name now.
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(None),
                Err(e) => return Err(Error::io("cannot lock", &lock_path, e)),
            }
        }
        Err(replaced_too_often(&lock_path))
    }

    fn held(file: Option<File>, cache_path: &Path) -> Result<CacheLock> {
        Ok(CacheLock {
            file,
            cache_path: absolute_cache_path(cache_path)?,
        })
    }

    /// The cache this lock is for (absolute).
    pub fn cache_path(&self) -> &Path {
        &self.cache_path
    }

    /// Checks that this is the lock of the cache at `path`, for a writer of `path`
    /// (`what`, e.g. "cannot write cache"): a lock taken for another cache is an error
    /// naming both.
    pub(crate) fn check_for(&self, path: &Path, what: &str) -> Result<()> {
        if absolute_cache_path(path)? == self.cache_path {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "{what} {}: the lock held is the one of {}",
            path.display(),
            self.cache_path.display()
        )))
    }

    /// Removes the lock file and releases the lock; true if the file was removed. Safe
    /// while others wait on the file: they find its name gone and start again on a new
    /// file. Best effort: a lock file that cannot be removed (a read-only directory)
    /// stays.
    pub fn remove_lock_file(self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let path = lock_path(&self.cache_path);
        // Holding the lock of the file the name leads to, nobody else can change the
        // name (see the type's documentation).
        names_file(&path, file) && std::fs::remove_file(&path).is_ok()
    }
}

/// Times a removed directory is made again before the lock gives up.
const MAX_VANISHED: u32 = 1000;

/// Times the lock is taken again on a new file, because the one it got was removed or
/// replaced meanwhile, before it gives up (a file system whose inode numbers do not
/// stay put would otherwise loop for ever).
pub(crate) const MAX_REPLACED: u32 = 10_000;

/// The error when the lock file at `lock_path` kept changing under this process.
pub(crate) fn replaced_too_often(lock_path: &Path) -> Error {
    Error::io(
        "cannot lock",
        lock_path,
        std::io::Error::other(format!(
            "the lock file was removed or replaced {MAX_REPLACED} times while this process \
             took it (another program keeps removing it, or the file system does not keep \
             inode numbers)"
        )),
    )
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

/// True if `path` still leads to the file open as `f` (no symbolic link followed).
pub(crate) fn names_file(path: &Path, f: &File) -> bool {
    match (f.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// One wait for a cache's lock, across the lock files it may have to start again on:
/// when it started, whether it said so on stderr, how long it sleeps next.
struct Wait<'a> {
    cache_path: &'a Path,
    lock_path: &'a Path,
    stop: Option<&'a AtomicBool>,
    start: Instant,
    timeout: Option<Duration>,
    notice: Duration,
    told: bool,
    nap: Duration,
}

impl<'a> Wait<'a> {
    fn new(cache_path: &'a Path, lock_path: &'a Path, stop: Option<&'a AtomicBool>) -> Self {
        Wait {
            cache_path,
            lock_path,
            stop,
            start: Instant::now(),
            timeout: lock_timeout(),
            notice: lock_notice_after(),
            told: false,
            nap: Duration::from_millis(1),
        }
    }

    /// Polls for the lock on `file` until it is ours (true), `stop` is set (false) or
    /// the lock timeout expires. Says on stderr, once per wait, that it is waiting.
    fn until_locked(&mut self, file: &File) -> Result<bool> {
        loop {
            match flock(file, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => return Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
                Err(e) => return Err(Error::io("cannot lock", self.lock_path, e)),
            }
            if self.stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Ok(false);
            }
            let waited = self.start.elapsed();
            if self.timeout.is_some_and(|t| waited >= t) {
                return Err(Error::LockTimeout {
                    path: self.cache_path.to_path_buf(),
                    pid: holder_pid(file),
                    waited,
                });
            }
            if !self.told && waited >= self.notice {
                self.told = true;
                let who = match holder_pid(file) {
                    Some(pid) => format!("pid {pid}"),
                    None => "another process (its pid is not recorded)".into(),
                };
                let limit = match self.timeout {
                    Some(t) => format!("giving up after {:.1} s", t.as_secs_f64()),
                    None => format!("no timeout; set {LOCK_TIMEOUT_ENV}=SECONDS to give up"),
                };
                eprintln!(
                    "harmonics-dataset: waiting for the lock of {} ({}), held by {who}, for \
                     {:.1} s so far ({limit})",
                    self.cache_path.display(),
                    self.lock_path.display(),
                    waited.as_secs_f64(),
                );
            }
            let mut sleep = self.nap;
            if let Some(t) = self.timeout {
                sleep = sleep
                    .min(t.saturating_sub(waited))
                    .max(Duration::from_millis(1));
            }
            std::thread::sleep(sleep);
            self.nap = (self.nap * 2).min(Duration::from_millis(50));
        }
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
