//! Store maintenance at the C boundary (`cache::maintenance`): list, verify, remove,
//! clear and prune the caches of a directory. Cache names are resolved as in
//! `harmonics_disk_cache_new` (relative names live under `$HARMONICS_CACHE_DIR`,
//! default `.harmonics/cache`; absolute paths are used as given).

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::error::{guard, Failure, HarmonicsStatus};
use super::handle::{arg_ref, arg_str, check_out, write_out, BoxHandle};
use crate::cache::maintenance::{self, CacheInfo, CacheState, Clear, Lookup, Removal, Verdict};
use crate::cache::{cache_dir, resolve_cache_path};

/// What opening a cache (header only) found.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsCacheState {
    Current = 0,
    /// A headerless cache of the original runtime (no checksums).
    Legacy = 1,
    /// Permission denied: the file may well be intact.
    Unreadable = 2,
    /// A symbolic link or special file at a cache's name.
    NotAFile = 3,
    Damaged = 4,
}

impl From<CacheState> for HarmonicsCacheState {
    fn from(s: CacheState) -> Self {
        match s {
            CacheState::Current => HarmonicsCacheState::Current,
            CacheState::Legacy => HarmonicsCacheState::Legacy,
            CacheState::Unreadable => HarmonicsCacheState::Unreadable,
            CacheState::NotAFile => HarmonicsCacheState::NotAFile,
            CacheState::Damaged => HarmonicsCacheState::Damaged,
        }
    }
}

/// One cache of a `HarmonicsCacheList`. The strings are NUL-terminated UTF-8 (never
/// null) owned by the list: valid until `harmonics_cache_list_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsCacheEntry {
    /// Relative to the directory, `/`-separated (`a/b.cache`).
    pub name: *const c_char,
    pub path: *const c_char,
    pub size: u64,
    pub state: HarmonicsCacheState,
    /// Records (0 unless `CURRENT` or `LEGACY`).
    pub records: u64,
    /// Unix seconds: creation (from the header, else the modification time), and the
    /// last use (newer of access and modification time; prune removes the oldest).
    pub created: u64,
    pub last_used: u64,
    /// The header's token and source ("" unless `CURRENT`).
    pub token: *const c_char,
    pub source: *const c_char,
    /// Why the cache could not be opened ("" if it could).
    pub error: *const c_char,
}

struct Entry {
    name: CString,
    path: CString,
    token: CString,
    source: CString,
    error: CString,
    size: u64,
    state: HarmonicsCacheState,
    records: u64,
    created: u64,
    last_used: u64,
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Entry {
    fn of(i: &CacheInfo) -> Entry {
        let m = i.metadata();
        Entry {
            name: c_string(&i.entry.name),
            path: c_string(&i.entry.path.to_string_lossy()),
            token: c_string(m.map_or("", |m| &m.token)),
            source: c_string(m.map_or("", |m| &m.source)),
            error: c_string(
                &i.reader
                    .as_ref()
                    .err()
                    .map_or(String::new(), |e| e.to_string()),
            ),
            size: i.entry.size,
            state: i.state().into(),
            records: i.reader.as_ref().map_or(0, |r| r.len()),
            created: unix(i.created()),
            last_used: unix(i.entry.last_used()),
        }
    }
}

/// The caches of a directory, as `harmonics_cache_list` found them (a snapshot).
pub struct HarmonicsCacheList {
    entries: Vec<Entry>,
}

impl BoxHandle for HarmonicsCacheList {}

/// `dir`, or the default cache directory when it is null.
fn dir_or_default(dir: *const c_char) -> Result<PathBuf, Failure> {
    if dir.is_null() {
        Ok(cache_dir())
    } else {
        Ok(PathBuf::from(arg_str(dir, "dir")?))
    }
}

/// Lists the caches under `dir` (null: `$HARMONICS_CACHE_DIR`, default
/// `.harmonics/cache`), sorted by name, opening each one's header without changing
/// its access time. A directory that does not exist holds no caches.
///
/// # Safety
/// `dir` is null or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_list(
    dir: *const c_char,
    out: *mut *mut HarmonicsCacheList,
) -> HarmonicsStatus {
    guard(|| {
        let dir = dir_or_default(dir)?;
        check_out(out, "out")?;
        let found = maintenance::list(&dir)?.unwrap_or_default();
        let entries = found.iter().map(Entry::of).collect();
        write_out(out, "out", HarmonicsCacheList { entries }.into_raw())
    })
}

/// The number of caches in `list`.
///
/// # Safety
/// `list` is a live list; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_list_len(
    list: *const HarmonicsCacheList,
    out: *mut usize,
) -> HarmonicsStatus {
    guard(|| {
        let list = arg_ref(list, "list")?;
        write_out(out, "out", list.entries.len())
    })
}

/// Cache `index` of `list` (`HARMONICS_STATUS_INVALID_ARGUMENT` past the end). Its
/// strings belong to the list.
///
/// # Safety
/// `list` is a live list; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_list_get(
    list: *const HarmonicsCacheList,
    index: usize,
    out: *mut HarmonicsCacheEntry,
) -> HarmonicsStatus {
    guard(|| {
        let list = arg_ref(list, "list")?;
        check_out(out, "out")?;
        let n = list.entries.len();
        let e = list.entries.get(index).ok_or_else(|| {
            Failure::invalid(format!("index {index} is past the list's {n} cache(s)"))
        })?;
        let entry = HarmonicsCacheEntry {
            name: e.name.as_ptr(),
            path: e.path.as_ptr(),
            size: e.size,
            state: e.state,
            records: e.records,
            created: e.created,
            last_used: e.last_used,
            token: e.token.as_ptr(),
            source: e.source.as_ptr(),
            error: e.error.as_ptr(),
        };
        write_out(out, "out", entry)
    })
}

/// Frees a list (null is a no-op); its entries' strings go with it.
///
/// # Safety
/// `list` is null or a list not freed yet.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_list_free(list: *mut HarmonicsCacheList) {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { HarmonicsCacheList::free_raw(list) };
        Ok(())
    });
}

/// No file at a cache's path: an I/O failure naming it.
fn no_cache(path: &Path) -> Failure {
    Failure::new(HarmonicsStatus::Io, format!("no cache {}", path.display()))
}

/// The cache named `name`: an error naming its path unless a regular file is there.
fn existing(name: &str) -> Result<PathBuf, Failure> {
    let path = resolve_cache_path(name)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    match maintenance::lookup(dir, &path, name)? {
        Lookup::Found(_) => Ok(path),
        Lookup::Missing => Err(no_cache(&path)),
        Lookup::NotAFile(kind) => Err(Failure::new(
            HarmonicsStatus::Io,
            format!("{} is {kind}, not a cache file", path.display()),
        )),
    }
}

/// Checks every record of cache `name` (every CRC; the framing of a legacy cache) and
/// stores how many there are in `*out_records`. A damaged cache is
/// `HARMONICS_STATUS_CORRUPT`, one that cannot be read for lack of permission
/// `HARMONICS_STATUS_IO` (the file may be intact), a missing one `HARMONICS_STATUS_IO`;
/// the message names the file.
///
/// # Safety
/// `name` is NUL-terminated; `out_records` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_verify(
    name: *const c_char,
    out_records: *mut u64,
) -> HarmonicsStatus {
    guard(|| {
        let name = arg_str(name, "name")?;
        check_out(out_records, "out_records")?;
        let path = existing(name)?;
        let fail =
            |status, detail: String| Failure::new(status, format!("{}: {detail}", path.display()));
        match maintenance::verify(&path, |_, _| {}) {
            Verdict::Ok(c) => write_out(out_records, "out_records", c.records),
            Verdict::Damaged(d) => Err(fail(HarmonicsStatus::Corrupt, d)),
            Verdict::Unreadable(d) => Err(fail(HarmonicsStatus::Io, d)),
        }
    })
}

/// Removes cache `name` (and its token side file) while holding its lock, or the
/// library's own lock or temporary file at `name`. `*out_removed` is false when
/// another process is using it (nothing removed). Anything that is not a cache by its
/// content (a link, a special file, another file) is refused with
/// `HARMONICS_STATUS_INVALID_ARGUMENT`; a missing one is `HARMONICS_STATUS_IO`.
///
/// # Safety
/// `name` is NUL-terminated; `out_removed` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_remove(
    name: *const c_char,
    out_removed: *mut bool,
) -> HarmonicsStatus {
    guard(|| {
        let name = arg_str(name, "name")?;
        check_out(out_removed, "out_removed")?;
        let path = resolve_cache_path(name)?;
        let removed = match maintenance::remove(&path)? {
            Removal::Removed => true,
            Removal::InUse => false,
            Removal::Missing => return Err(no_cache(&path)),
            Removal::Refused(why) => {
                return Err(Failure::invalid(format!(
                    "{} {why}: not removed",
                    path.display()
                )))
            }
        };
        write_out(out_removed, "out_removed", removed)
    })
}

/// What `harmonics_cache_clear` did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HarmonicsClearReport {
    /// Files removed (caches, their locks, temporary and token side files).
    pub removed: usize,
    /// Files kept because they are not the library's.
    pub kept: usize,
    /// Caches kept because another process is using them.
    pub in_use: usize,
    /// `all_or_nothing` and some cache was in use: nothing was removed.
    pub aborted: bool,
    /// The directory itself was removed (it was left empty; never through a link).
    pub dir_removed: bool,
}

/// Removes the caches in `dir` (through a symbolic link: in the directory it points
/// to), their lock, temporary and token side files, and `dir` if that leaves it
/// empty; other files stay. Caches in use stay, or with `all_or_nothing` nothing is
/// removed if any is. A `dir` whose removal would take more than caches (`/` or a
/// directory right under it, the home directory, the working directory or one
/// above it) is refused with `HARMONICS_STATUS_INVALID_ARGUMENT`; one that does not
/// exist is cleared already.
///
/// # Safety
/// `dir` is NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_clear(
    dir: *const c_char,
    all_or_nothing: bool,
    out: *mut HarmonicsClearReport,
) -> HarmonicsStatus {
    guard(|| {
        let dir = arg_str(dir, "dir")?;
        check_out(out, "out")?;
        let report = match maintenance::clear(Path::new(dir), all_or_nothing)? {
            Clear::Refused(why) => {
                return Err(Failure::invalid(format!("refusing to remove {dir}: {why}")))
            }
            Clear::Missing | Clear::DanglingLink => HarmonicsClearReport::default(),
            Clear::Done(c) => HarmonicsClearReport {
                removed: c.removed,
                kept: c.kept.len(),
                in_use: c.busy.len(),
                aborted: c.aborted,
                dir_removed: c.dir_removed,
            },
        };
        write_out(out, "out", report)
    })
}

/// What `harmonics_cache_prune` did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HarmonicsPruneReport {
    /// Caches removed, least recently used first.
    pub removed: usize,
    /// Caches that were due to go but are in use by another process (kept).
    pub in_use: usize,
    /// The caches' total size before and after, in bytes.
    pub total_before: u64,
    pub total_after: u64,
}

/// Removes the least recently used caches in `dir` until their total size is at most
/// `max_bytes` (only caches count and go). `total_after` stays above `max_bytes` only
/// when caches in use could not be removed (`in_use`). A directory that does not
/// exist holds nothing.
///
/// # Safety
/// `dir` is NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_cache_prune(
    dir: *const c_char,
    max_bytes: u64,
    out: *mut HarmonicsPruneReport,
) -> HarmonicsStatus {
    guard(|| {
        let dir = arg_str(dir, "dir")?;
        check_out(out, "out")?;
        let report = match maintenance::prune(Path::new(dir), max_bytes)? {
            None => HarmonicsPruneReport::default(),
            Some(p) => HarmonicsPruneReport {
                removed: p.removed.len(),
                in_use: p.in_use.len(),
                total_before: p.total_before,
                total_after: p.total,
            },
        };
        write_out(out, "out", report)
    })
}
