//! Store maintenance: list, verify, remove, clear and prune the caches of a cache
//! directory. The policy lives here, so Rust, C (`ffi::maintenance`) and `cache_cli`
//! share it; callers format the structured results.
//!
//! Only caches (recognised by their content) and the library's own lock and temporary
//! files are ever deleted, and a cache is deleted only while its lock is held.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::lock::{replaced_too_often, MAX_REPLACED};
use super::{
    classify_name, flock, irregular_kind, is_own_companion, list_caches, names_file,
    scan_cache_dir, why_not_a_cache, CacheLock, CacheReader, DirEntry, EntryKind, Format, Metadata,
};
use crate::error::{Error, Result};

/// Where the original runtime stored a cache's token: `<cache>.token`.
pub(crate) fn legacy_token_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(".token");
    PathBuf::from(p)
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// What opening a cache for inspection found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheState {
    Current,
    Legacy,
    /// Permission denied: the file may well be intact.
    Unreadable,
    /// A symbolic link or special file at the cache's name.
    NotAFile,
    Damaged,
}

impl CacheState {
    /// The word `cache_cli list` shows: "current", "legacy", "unreadable", ...
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Current => "current",
            CacheState::Legacy => "legacy",
            CacheState::Unreadable => "unreadable",
            CacheState::NotAFile => "not-a-file",
            CacheState::Damaged => "damaged",
        }
    }

    /// How a cache that could not be opened is classified.
    pub fn of_error(e: &Error) -> CacheState {
        match e {
            e if e.is_permission_denied() => CacheState::Unreadable,
            Error::NotRegularFile { .. } => CacheState::NotAFile,
            _ => CacheState::Damaged,
        }
    }
}

/// One cache and what opening it (header only, access time untouched) found.
pub struct CacheInfo {
    pub entry: DirEntry,
    pub reader: Result<CacheReader>,
}

impl CacheInfo {
    pub fn of(entry: DirEntry) -> CacheInfo {
        let reader = CacheReader::inspect(&entry.path);
        CacheInfo { entry, reader }
    }

    pub fn state(&self) -> CacheState {
        match &self.reader {
            Ok(r) if r.format() == Format::Current => CacheState::Current,
            Ok(_) => CacheState::Legacy,
            Err(e) => CacheState::of_error(e),
        }
    }

    /// The header's metadata (current format only).
    pub fn metadata(&self) -> Option<&Metadata> {
        match &self.reader {
            Ok(r) if r.format() == Format::Current => Some(r.metadata()),
            _ => None,
        }
    }

    /// When the cache was made: from its header, else its modification time.
    pub fn created(&self) -> SystemTime {
        match self.metadata() {
            Some(m) if m.created > 0 => UNIX_EPOCH + Duration::from_secs(m.created),
            _ => self.entry.modified,
        }
    }
}

/// The caches under `dir`, inspected, sorted by name; `None` when `dir` does not exist.
pub fn list(dir: &Path) -> Result<Option<Vec<CacheInfo>>> {
    Ok(caches(dir)?.map(|v| v.into_iter().map(CacheInfo::of).collect()))
}

/// The caches under `dir` (not inspected); `None` when `dir` does not exist.
pub fn caches(dir: &Path) -> Result<Option<Vec<DirEntry>>> {
    match list_caches(dir) {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What is at a cache's path (looked up without following a link).
#[derive(Debug)]
pub enum Lookup {
    Found(DirEntry),
    Missing,
    /// A link, directory or special file: its kind ("a FIFO (named pipe)").
    NotAFile(&'static str),
}

/// Looks up the cache at `path`; `name` is what the user called it, used as the
/// entry's name when `path` is not under `dir`.
pub fn lookup(dir: &Path, path: &Path, name: &str) -> Result<Lookup> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Missing),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    if let Some(kind) = irregular_kind(&meta.file_type()) {
        return Ok(Lookup::NotAFile(kind));
    }
    let shown = path
        .strip_prefix(dir)
        .map_or_else(|_| name.to_string(), |p| p.to_string_lossy().into_owned());
    Ok(Lookup::Found(DirEntry {
        name: shown,
        path: path.to_path_buf(),
        kind: EntryKind::Cache,
        is_symlink: false,
        size: meta.len(),
        modified: meta.modified().unwrap_or(UNIX_EPOCH),
        accessed: meta.accessed().unwrap_or(UNIX_EPOCH),
    }))
}

/// What checking every record of one cache found.
#[derive(Debug)]
pub enum Verdict {
    Ok(Checked),
    /// The damage, without the path (the caller knows it).
    Damaged(String),
    /// Permission denied, with the file's owner and mode: the file may well be intact.
    Unreadable(String),
}

/// An intact cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    pub records: u64,
    pub data_len: u64,
    pub format: Format,
    /// Bytes after the last complete record (ignored by readers).
    pub uncommitted_tail: u64,
}

/// Checks every record of the cache at `path` (every CRC in the current format, the
/// framing in the legacy one). `progress(done, total)` is called after each record.
pub fn verify(path: &Path, mut progress: impl FnMut(u64, u64)) -> Verdict {
    let verdict = |err: Error| match err {
        err if err.is_permission_denied() => {
            Verdict::Unreadable(format!("permission denied{}: {err}", owner_of(path)))
        }
        Error::Corrupt { detail, .. } => Verdict::Damaged(detail),
        other => Verdict::Damaged(other.to_string()),
    };
    let mut r = match CacheReader::inspect(path) {
        Ok(r) => r,
        Err(err) => return verdict(err),
    };
    let total = r.len();
    match r.verify(|done, _| progress(done, total)) {
        Ok(records) => Verdict::Ok(Checked {
            records,
            data_len: r.data_len(),
            format: r.format(),
            uncommitted_tail: r.uncommitted_tail(),
        }),
        Err(err) => verdict(err),
    }
}

/// " (owner uid N, mode M)" for a message about a file we may not read.
fn owner_of(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(" (owner uid {}, mode {:o})", m.uid(), m.mode() & 0o7777),
        Err(_) => String::new(),
    }
}

/// What `remove` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Another process holds its lock (or the companion file's `flock`): kept.
    InUse,
    Missing,
    /// Not a cache nor a lock or temporary file of the library: why ("is a FIFO
    /// (named pipe), not a cache file", "is not a cache file (...)"). Kept.
    Refused(String),
}

/// Removes the cache at `path` (with its token side file), a stream cache directory
/// (its own files; a live reader keeps what it reads and fetches again), or the
/// library's own lock or temporary file at `path`; anything else is refused.
pub fn remove(path: &Path) -> Result<Removal> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Missing),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    if meta.is_dir() && super::stream_dir::inspect(path).is_some() {
        super::stream_dir::remove(path)?;
        return Ok(Removal::Removed);
    }
    if let Some(kind) = irregular_kind(&meta.file_type()) {
        return Ok(Removal::Refused(format!("is {kind}, not a cache file")));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let removed = match classify_name(&file_name) {
        // A lock holds at most a pid; anything larger is not one of ours.
        EntryKind::Lock { .. } if meta.len() <= 64 => remove_companion(path)?,
        EntryKind::Temp { .. } => remove_companion(path)?,
        _ => {
            if let Some(why) = why_not_a_cache(path)? {
                return Ok(Removal::Refused(format!("is not a cache file ({why})")));
            }
            remove_cache(path)?
        }
    };
    Ok(if removed {
        Removal::Removed
    } else {
        Removal::InUse
    })
}

/// Removes one cache file and its token side file, holding the cache's lock; false
/// when another process holds the lock. The caller has checked that `path` is a
/// cache (`why_not_a_cache`): no lock file is ever created beside anything else.
fn remove_cache(path: &Path) -> Result<bool> {
    let Some(_lock) = CacheLock::try_exclusive(path)? else {
        return Ok(false);
    };
    std::fs::remove_file(path).map_err(|e| Error::io("cannot remove", path, e))?;
    let _ = std::fs::remove_file(legacy_token_path(path));
    // The lock file stays: unlinking it could let two processes lock different files.
    Ok(true)
}

/// Removes the library's own lock or temporary file at `path` unless a process holds
/// its `flock` (a writer holds its temp file's, a user of a cache its lock's). The file
/// is unlinked only while locked and while the name still leads to it (the rule of
/// `CacheLock`): a lock file created at the name meanwhile, and locked by its creator,
/// must not lose its name under its holder.
fn remove_companion(path: &Path) -> Result<bool> {
    let mut first = true;
    for _ in 0..MAX_REPLACED {
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            // Removed by another process since the last attempt: gone, as asked.
            Err(e) if !first && e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(Error::io("cannot open", path, e)),
        };
        first = false;
        if flock(&f, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            return Ok(false);
        }
        if names_file(path, &f) {
            std::fs::remove_file(path).map_err(|e| Error::io("cannot remove", path, e))?;
            return Ok(true);
        }
        // Another file took the name while we locked this one: look again.
    }
    Err(replaced_too_often(path))
}

/// Why removing `dir` as a whole would remove more than a cache directory, if it would:
/// `/` or a directory directly under it, the home directory, or the working directory
/// or one above it (the same rules as `scripts/clear-cache.sh`).
pub fn dangerous_to_remove(dir: &Path) -> Option<String> {
    let home = std::env::var_os("HOME").and_then(|h| std::fs::canonicalize(h).ok());
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    dangerous_given(dir, home.as_deref(), cwd.as_deref())
}

/// `dangerous_to_remove` with the (canonical) home and working directories given.
fn dangerous_given(dir: &Path, home: Option<&Path>, cwd: Option<&Path>) -> Option<String> {
    let real = std::fs::canonicalize(dir).ok()?;
    if real.components().count() <= 2 {
        return Some(format!(
            "it resolves to the top-level directory {}",
            real.display()
        ));
    }
    if home == Some(real.as_path()) {
        return Some("it resolves to the home directory".into());
    }
    if cwd.is_some_and(|cwd| cwd.starts_with(&real)) {
        return Some("it contains the working directory".into());
    }
    None
}

/// What `clear` did.
#[derive(Debug)]
pub enum Clear {
    /// Removing the directory would remove more than caches (`dangerous_to_remove`):
    /// nothing was touched.
    Refused(String),
    /// The directory does not exist.
    Missing,
    /// The directory is a symbolic link to a directory that does not exist.
    DanglingLink,
    Done(Cleared),
}

/// What a `clear` that ran removed and kept.
#[derive(Debug, Default)]
pub struct Cleared {
    /// The directory the caches were in (through a link: the one it points to).
    pub real: PathBuf,
    pub through_link: bool,
    /// Files removed.
    pub removed: usize,
    /// Files kept because they are not the library's, with the reason, by name.
    pub kept: Vec<(String, String)>,
    /// Caches kept because another process uses them, by name.
    pub busy: Vec<String>,
    /// `all_or_nothing` with caches in use: nothing was removed.
    pub aborted: bool,
    /// The directory itself was removed (never through a link).
    pub dir_removed: bool,
}

/// Removes the caches in `dir` (through a symbolic link: in the directory it points
/// to), their lock, temporary and token side files, and the directory if that leaves
/// it empty. Other files are kept and reported; caches in use are kept, or with
/// `all_or_nothing` nothing at all is removed if any cache is in use.
pub fn clear(dir: &Path, all_or_nothing: bool) -> Result<Clear> {
    // The rules apply to what the path resolves to, so also through a link.
    clear_unless(dir, all_or_nothing, dangerous_to_remove(dir))
}

fn clear_unless(dir: &Path, all_or_nothing: bool, danger: Option<String>) -> Result<Clear> {
    if let Some(why) = danger {
        return Ok(Clear::Refused(why));
    }
    let through_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    // Through a link, the caches are those of the directory it points to; the link
    // and that directory stay.
    let real = if through_link {
        match std::fs::canonicalize(dir) {
            Ok(r) => r,
            Err(_) => return Ok(Clear::DanglingLink),
        }
    } else {
        dir.to_path_buf()
    };
    let files = match scan_cache_dir(&real) {
        Ok(v) => v,
        Err(e) if is_not_found(&e) => return Ok(Clear::Missing),
        Err(e) => return Err(e),
    };
    // What may go: caches (by content), the library's locks and temporary files, and
    // the token side files of caches that go. Everything else stays, with a reason.
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut going: Vec<&DirEntry> = Vec::new();
    let mut cache_names: Vec<&str> = Vec::new();
    for f in &files {
        match &f.kind {
            EntryKind::Cache if f.is_symlink => {
                kept.push((f.name.clone(), "a symbolic link".into()))
            }
            EntryKind::Cache => match why_not_a_cache(&f.path) {
                Ok(None) => {
                    going.push(f);
                    cache_names.push(&f.name);
                }
                Ok(Some(why)) => kept.push((f.name.clone(), format!("not a cache: {why}"))),
                Err(e) => kept.push((f.name.clone(), e.to_string())),
            },
            EntryKind::Lock { cache } | EntryKind::Temp { cache } => {
                if is_own_companion(f) {
                    going.push(f);
                    cache_names.push(cache);
                } else {
                    kept.push((
                        f.name.clone(),
                        "not a lock or temporary file of ours".into(),
                    ))
                }
            }
            EntryKind::Stream => going.push(f),
            EntryKind::TokenSide { .. } | EntryKind::Hidden => {}
        }
    }
    for f in &files {
        match &f.kind {
            EntryKind::TokenSide { cache } if cache_names.contains(&cache.as_str()) => {
                going.push(f)
            }
            EntryKind::TokenSide { .. } | EntryKind::Hidden => {
                kept.push((f.name.clone(), "not a cache".into()))
            }
            _ => {}
        }
    }
    // Every cache with a file or a lock, including one being populated for the
    // first time (it has a lock and a temporary file but no cache file yet).
    cache_names.sort_unstable();
    cache_names.dedup();
    let mut locks = Vec::new();
    let mut busy = Vec::new();
    for name in cache_names {
        match CacheLock::try_exclusive(&real.join(name))? {
            Some(l) => locks.push((name, l)),
            None => busy.push(name.to_string()),
        }
    }
    let mut out = Cleared {
        real,
        through_link,
        ..Cleared::default()
    };
    let had_lock_file = |name: &str| {
        files.iter().any(|f| {
            f.kind
                == EntryKind::Lock {
                    cache: name.to_string(),
                }
        })
    };
    if all_or_nothing && !busy.is_empty() {
        for (name, lock) in locks {
            // Lock files this run created for caches that had none go again.
            if !had_lock_file(name) {
                lock.remove_lock_file();
            }
        }
        out.busy = busy;
        out.kept = kept;
        out.aborted = true;
        return Ok(Clear::Done(out));
    }
    for f in &going {
        if f.cache_name().is_some_and(|n| busy.iter().any(|b| b == n)) {
            continue;
        }
        if f.kind == EntryKind::Stream {
            // A stream cache goes whole (safe under a live reader: see stream_dir).
            out.removed += super::stream_dir::remove(&f.path)?;
            continue;
        }
        // Lock files go last, each through its lock (below).
        if matches!(f.kind, EntryKind::Lock { .. }) {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => out.removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot remove", &f.path, e)),
        }
    }
    for (name, lock) in locks {
        // Unlinked while held and only if the name still leads to the locked file:
        // processes waiting on it start again on a new file, never two holders at once.
        // (Some did not exist before this run: those are not counted.)
        if lock.remove_lock_file() && had_lock_file(name) {
            out.removed += 1;
        }
    }
    remove_empty_dirs(&out.real);
    out.dir_removed = busy.is_empty() && !through_link && std::fs::remove_dir(&out.real).is_ok();
    out.busy = busy;
    out.kept = kept;
    Ok(Clear::Done(out))
}

/// Removes the empty subdirectories under `dir` (not `dir` itself).
fn remove_empty_dirs(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// What `prune` did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The caches' total size before and after, in bytes.
    pub total_before: u64,
    pub total: u64,
    /// Removed, least recently used first.
    pub removed: Vec<DirEntry>,
    /// Caches that were due to go but are in use by another process.
    pub in_use: Vec<DirEntry>,
}

/// Removes the least recently used caches under `dir` until their total size is at
/// most `max_bytes`; `None` when `dir` does not exist. Only caches count and go: not
/// links, not files of the user's. The result is over the limit only when caches in
/// use could not be removed.
pub fn prune(dir: &Path, max_bytes: u64) -> Result<Option<Pruned>> {
    let Some(mut entries) = caches(dir)? else {
        return Ok(None);
    };
    entries.retain(|e| !e.is_symlink && matches!(why_not_a_cache(&e.path), Ok(None)));
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let mut out = Pruned {
        total_before: total,
        total,
        ..Pruned::default()
    };
    if total <= max_bytes {
        return Ok(Some(out));
    }
    entries.sort_by(|a, b| a.last_used().cmp(&b.last_used()).then(a.name.cmp(&b.name)));
    for e in entries {
        if out.total <= max_bytes {
            break;
        }
        if remove_cache(&e.path)? {
            out.total = out.total.saturating_sub(e.size);
            out.removed.push(e);
        } else {
            out.in_use.push(e);
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheWriter;
    use crate::Tensor;

    /// A cache of `records` records at `path`, and no lock file left beside it.
    fn write_cache(path: &Path, records: usize) {
        let lock = CacheLock::exclusive(path).unwrap();
        let mut w = CacheWriter::create(path, Metadata::new("tok", "src"), &lock).unwrap();
        for i in 0..records {
            w.push(Tensor::from_f32(&[i as f32; 8]).as_ref()).unwrap();
        }
        w.finish().unwrap();
        lock.remove_lock_file();
    }

    fn set_used(path: &Path, secs: u64) {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    }

    #[test]
    fn prune_removes_least_recently_used_first_until_within_the_limit() {
        let d = tempfile::tempdir().unwrap();
        for (name, used) in [("a.cache", 3000), ("b.cache", 1000), ("c.cache", 2000)] {
            write_cache(&d.path().join(name), 4);
            set_used(&d.path().join(name), used);
        }
        std::fs::write(d.path().join("notes.txt"), b"mine, not a cache").unwrap();
        let size = std::fs::metadata(d.path().join("a.cache")).unwrap().len();
        let p = prune(d.path(), size).unwrap().unwrap();
        let names: Vec<&str> = p.removed.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b.cache", "c.cache"]);
        assert_eq!((p.total_before, p.total), (3 * size, size));
        assert!(p.in_use.is_empty());
        assert!(d.path().join("a.cache").exists() && d.path().join("notes.txt").exists());
        // Within the limit: nothing goes.
        let p = prune(d.path(), size).unwrap().unwrap();
        assert!(p.removed.is_empty() && p.total == size);
        assert!(prune(&d.path().join("none"), 0).unwrap().is_none());
    }

    #[test]
    fn prune_keeps_a_cache_in_use() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("busy.cache");
        write_cache(&path, 2);
        let _held = CacheLock::try_exclusive(&path).unwrap().unwrap();
        let p = prune(d.path(), 0).unwrap().unwrap();
        assert!(p.removed.is_empty());
        assert_eq!(p.in_use.len(), 1);
        assert!(p.total > 0 && path.exists());
    }

    #[test]
    fn clear_refuses_dangerous_targets_and_touches_nothing() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let work = home.join("project/work");
        std::fs::create_dir_all(&work).unwrap();
        write_cache(&home.join("a.cache"), 1);
        write_cache(&work.join("b.cache"), 1);
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        let (h, w) = (Some(home.as_path()), Some(work.as_path()));
        for (dir, want) in [
            (Path::new("/"), "top-level directory /"),
            (Path::new("/tmp/"), "top-level directory /tmp"),
            (&home, "home directory"),
            (&link, "home directory"),
            (&home.join("project"), "working directory"),
            (&work, "working directory"),
        ] {
            let why = dangerous_given(dir, h, w).unwrap_or_default();
            assert!(why.contains(want), "{}: {why:?}", dir.display());
            // What clear does with that verdict, on the directory itself (a
            // tempdir: nothing outside it could go if the refusal regressed).
            if dir.starts_with(d.path()) {
                let c = clear_unless(dir, false, Some(why)).unwrap();
                assert!(matches!(c, Clear::Refused(_)), "{c:?}");
            }
        }
        assert!(home.join("a.cache").exists() && work.join("b.cache").exists());
        assert_eq!(dangerous_given(&home.join("project/other"), h, w), None);
        assert!(dangerous_to_remove(Path::new("/")).is_some());
    }

    #[test]
    fn clear_removes_caches_and_companions_and_keeps_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        write_cache(&dir.join("a.cache"), 2);
        write_cache(&dir.join("sub/b.cache"), 2);
        std::fs::write(dir.join("a.cache.token"), b"old").unwrap();
        std::fs::write(dir.join(".a.cache.lock"), b"123").unwrap();
        std::fs::write(dir.join("notes.txt"), b"not a cache").unwrap();
        let Clear::Done(c) = clear(&dir, false).unwrap() else {
            panic!("not cleared")
        };
        assert_eq!(c.removed, 4, "{c:?}");
        assert_eq!(c.kept.len(), 1);
        assert_eq!(c.kept[0].0, "notes.txt");
        assert!(c.busy.is_empty() && !c.aborted && !c.dir_removed);
        assert!(dir.join("notes.txt").exists() && !dir.join("sub").exists());
        std::fs::remove_file(dir.join("notes.txt")).unwrap();
        let Clear::Done(c) = clear(&dir, false).unwrap() else {
            panic!("not cleared")
        };
        assert!(c.dir_removed && !dir.exists());
        assert!(matches!(clear(&dir, false).unwrap(), Clear::Missing));
    }

    #[test]
    fn clear_all_or_nothing_removes_nothing_while_a_cache_is_in_use() {
        let d = tempfile::tempdir().unwrap();
        write_cache(&d.path().join("a.cache"), 2);
        write_cache(&d.path().join("b.cache"), 2);
        let _held = CacheLock::try_exclusive(&d.path().join("b.cache"))
            .unwrap()
            .unwrap();
        let Clear::Done(c) = clear(d.path(), true).unwrap() else {
            panic!("not run")
        };
        assert!(c.aborted && c.removed == 0 && c.busy == ["b.cache"]);
        assert!(d.path().join("a.cache").exists());
        // The lock file this run took for a.cache (which had none) is gone again.
        assert!(!d.path().join(".a.cache.lock").exists());
        let Clear::Done(c) = clear(d.path(), false).unwrap() else {
            panic!("not run")
        };
        assert!(!c.aborted && c.busy == ["b.cache"]);
        assert!(!d.path().join("a.cache").exists() && d.path().join("b.cache").exists());
    }

    #[test]
    fn remove_refuses_what_is_not_a_cache() {
        let d = tempfile::tempdir().unwrap();
        let notes = d.path().join("notes.txt");
        std::fs::write(&notes, b"my notes, not a cache").unwrap();
        assert!(
            matches!(remove(&notes).unwrap(), Removal::Refused(why) if why.contains("not a cache file"))
        );
        assert!(notes.exists());
        let link = d.path().join("link.cache");
        std::os::unix::fs::symlink(&notes, &link).unwrap();
        assert_eq!(
            remove(&link).unwrap(),
            Removal::Refused(format!("is {}, not a cache file", crate::error::SYMLINK))
        );
        assert!(link.exists());
        let big_lock = d.path().join(".x.cache.lock");
        std::fs::write(&big_lock, [b'9'; 100]).unwrap();
        assert!(matches!(remove(&big_lock).unwrap(), Removal::Refused(_)));
        assert_eq!(
            remove(&d.path().join("none.cache")).unwrap(),
            Removal::Missing
        );
        let cache = d.path().join("a.cache");
        write_cache(&cache, 1);
        std::fs::write(legacy_token_path(&cache), b"t").unwrap();
        let held = CacheLock::try_exclusive(&cache).unwrap().unwrap();
        assert_eq!(remove(&cache).unwrap(), Removal::InUse);
        drop(held);
        assert_eq!(remove(&cache).unwrap(), Removal::Removed);
        assert!(!cache.exists() && !legacy_token_path(&cache).exists());
    }

    #[test]
    fn verify_tells_intact_damaged_and_unreadable_apart() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good.cache");
        write_cache(&good, 3);
        let mut calls = Vec::new();
        match verify(&good, |done, total| calls.push((done, total))) {
            Verdict::Ok(c) => {
                assert_eq!(
                    (c.records, c.format, c.uncommitted_tail),
                    (3, Format::Current, 0)
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(calls, [(1, 3), (2, 3), (3, 3)]);
        let mut bytes = std::fs::read(&good).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        let bad = d.path().join("bad.cache");
        std::fs::write(&bad, &bytes).unwrap();
        assert!(matches!(verify(&bad, |_, _| {}), Verdict::Damaged(_)));
        assert!(matches!(
            verify(&d.path().join("none.cache"), |_, _| {}),
            Verdict::Damaged(_)
        ));
        // Permission bits do not stop root; only check when they stop us.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::File::open(&good).is_err() {
            assert!(
                matches!(verify(&good, |_, _| {}), Verdict::Unreadable(m) if m.contains("owner uid"))
            );
        }
    }

    #[test]
    fn states_name_what_opening_found() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good.cache");
        write_cache(&good, 1);
        std::fs::write(d.path().join("junk.cache"), b"HDCX not a header").unwrap();
        let all = list(d.path()).unwrap().unwrap();
        let states: Vec<(&str, CacheState)> = all
            .iter()
            .map(|i| (i.entry.name.as_str(), i.state()))
            .collect();
        assert_eq!(
            states,
            [
                ("good.cache", CacheState::Current),
                ("junk.cache", CacheState::Damaged)
            ]
        );
        assert_eq!(all[0].metadata().unwrap().token, "tok");
        assert!(list(&d.path().join("none")).unwrap().is_none());
        assert!(matches!(
            lookup(d.path(), &good, "good.cache").unwrap(),
            Lookup::Found(e) if e.name == "good.cache"
        ));
        assert!(matches!(
            lookup(d.path(), d.path(), "x").unwrap(),
            Lookup::NotAFile("a directory")
        ));
    }
}
