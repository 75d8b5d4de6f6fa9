//! What a cache directory holds, read without disturbing it: every file, classified
//! as a cache or as one of the companions the library keeps beside a cache (its lock,
//! a writer's temporary file, the old runtime's `<cache>.token`). Used by `cache_cli`.
//! Nothing here writes, and nothing here changes a file's access time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};

/// What a file in the cache directory is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A cache file (of any format, possibly damaged).
    Cache,
    /// `.<name>.lock`: the lock of cache `<name>` (which may not exist yet).
    Lock { cache: String },
    /// `.<name>.XXXXXX.tmp`: a writer's file for cache `<name>`, not yet published.
    Temp { cache: String },
    /// `<name>.token` beside cache `<name>`: the old runtime's token side file.
    TokenSide { cache: String },
    /// Any other dotfile: not a cache, left alone by listings.
    Hidden,
    /// A stream cache: a directory of blocks with its `stream.info` (`stream_dir`),
    /// listed as one entry whose size is its disk use; never entered.
    Stream,
}

/// One file under the cache directory.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Path relative to the directory, `/`-separated (`a/b.cache`). For companions,
    /// the cache it belongs to is named relative to the directory too.
    pub name: String,
    /// The directory as given, joined with `name` (so its spelling is kept).
    pub path: PathBuf,
    pub kind: EntryKind,
    /// The directory entry is a symbolic link (to a regular file): listed, but never
    /// treated as a cache (the library does not read or write through links).
    pub is_symlink: bool,
    pub size: u64,
    pub modified: SystemTime,
    pub accessed: SystemTime,
}

impl DirEntry {
    /// When the cache was last used: the newer of its access and modification times
    /// (`CacheReader::open` sets the access time, writers the modification time).
    pub fn last_used(&self) -> SystemTime {
        self.modified.max(self.accessed)
    }

    /// The cache this file is, or belongs to.
    pub fn cache_name(&self) -> Option<&str> {
        match &self.kind {
            EntryKind::Cache | EntryKind::Stream => Some(&self.name),
            EntryKind::Lock { cache }
            | EntryKind::Temp { cache }
            | EntryKind::TokenSide { cache } => Some(cache),
            EntryKind::Hidden => None,
        }
    }
}

/// Every regular file under `dir`, recursively, classified, sorted by name.
/// Hidden directories and symbolic links to directories are not entered.
/// A missing `dir` is an `Error::Io` whose source is `NotFound`.
pub fn scan_cache_dir(dir: &Path) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    scan(dir, "", &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The caches under `dir` (companion files left out), stream caches included (one
/// entry per directory), sorted by name.
pub fn list_caches(dir: &Path) -> Result<Vec<DirEntry>> {
    Ok(scan_cache_dir(dir)?
        .into_iter()
        .filter(|e| matches!(e.kind, EntryKind::Cache | EntryKind::Stream))
        .collect())
}

fn scan(dir: &Path, prefix: &str, out: &mut Vec<DirEntry>) -> Result<()> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    let mut files = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = dir.join(entry.file_name());
        // Follows a symlink to a file; a dangling link is skipped.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if meta.is_dir() {
            if is_link || file_name.starts_with('.') {
                continue;
            }
            if let Some(info) = super::stream_dir::inspect(&path) {
                out.push(DirEntry {
                    name: format!("{prefix}{file_name}"),
                    path,
                    kind: EntryKind::Stream,
                    is_symlink: false,
                    size: info.disk_bytes,
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    accessed: meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            } else {
                scan(&path, &format!("{prefix}{file_name}/"), out)?;
            }
        } else if meta.is_file() {
            files.push((file_name, path, meta, is_link));
        }
    }
    let plain: HashSet<String> = files
        .iter()
        .filter(|(n, ..)| !n.starts_with('.'))
        .map(|(n, ..)| n.clone())
        .collect();
    for (file_name, path, meta, is_symlink) in files {
        let kind = classify(&file_name, &plain);
        let in_dir = |n: &str| format!("{prefix}{n}");
        let kind = match kind {
            EntryKind::Lock { cache } => EntryKind::Lock {
                cache: in_dir(&cache),
            },
            EntryKind::Temp { cache } => EntryKind::Temp {
                cache: in_dir(&cache),
            },
            EntryKind::TokenSide { cache } => EntryKind::TokenSide {
                cache: in_dir(&cache),
            },
            k => k,
        };
        out.push(DirEntry {
            name: in_dir(&file_name),
            path,
            kind,
            is_symlink,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            accessed: meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    Ok(())
}

/// Classifies a file name on its own (a `<name>.token` side file is not recognised
/// without its directory: it comes out as `Cache`, and its content decides).
pub fn classify_name(file_name: &str) -> EntryKind {
    classify(file_name, &HashSet::new())
}

/// Judged by its content, why the file at `path` is not a cache the library may
/// delete: `Ok(None)` for a cache (the current format, damaged or not: its magic
/// says what it is; a legacy file whose first record parses; an empty file), and
/// `Ok(Some(reason))` for anything else, a symbolic link or special file included.
/// `Err` when the file cannot be read (permission denied, I/O error).
pub fn why_not_a_cache(path: &Path) -> Result<Option<String>> {
    use std::io::Read;
    let mut file = match super::open_cache_file(path, super::OpenMode::ReadNoAtime) {
        Ok(f) => f,
        Err(Error::NotRegularFile { kind, .. }) => return Ok(Some(format!("it is {kind}"))),
        Err(e) => return Err(e),
    };
    let mut first = Vec::with_capacity(super::format::SNIFF_LEN);
    (&mut file)
        .take(super::format::SNIFF_LEN as u64)
        .read_to_end(&mut first)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if first.is_empty() {
        return Ok(None);
    }
    match super::format::sniff(&first) {
        super::Sniff::Current | super::Sniff::Damaged(_) => Ok(None),
        super::Sniff::Legacy => match super::CacheReader::inspect(path) {
            Ok(_) => Ok(None),
            Err(e @ Error::Io { .. }) => Err(e),
            Err(_) => Ok(Some(
                "it has neither the cache format's magic bytes nor legacy records".into(),
            )),
        },
    }
}

/// True for a lock or temporary file the library made (by name, and a regular file
/// of plausible size: a lock holds at most a pid), which `cache_cli` may delete.
pub fn is_own_companion(e: &DirEntry) -> bool {
    match e.kind {
        EntryKind::Lock { .. } => !e.is_symlink && e.size <= 64,
        EntryKind::Temp { .. } => !e.is_symlink,
        _ => false,
    }
}

/// Classifies one file name given the non-hidden names in the same directory.
fn classify(file_name: &str, plain: &HashSet<String>) -> EntryKind {
    if let Some(rest) = file_name.strip_prefix('.') {
        if let Some(cache) = rest.strip_suffix(".lock") {
            if !cache.is_empty() {
                return EntryKind::Lock {
                    cache: cache.to_string(),
                };
            }
        }
        // `CacheWriter` names its file `.<name>.` + 6 random characters + `.tmp`.
        if let Some(stem) = rest.strip_suffix(".tmp") {
            if let Some((cache, random)) = stem.rsplit_once('.') {
                if !cache.is_empty() && random.len() == 6 {
                    return EntryKind::Temp {
                        cache: cache.to_string(),
                    };
                }
            }
        }
        return EntryKind::Hidden;
    }
    if let Some(cache) = file_name.strip_suffix(".token") {
        if plain.contains(cache) {
            return EntryKind::TokenSide {
                cache: cache.to_string(),
            };
        }
    }
    EntryKind::Cache
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions_are_told_apart_from_caches() {
        let plain: HashSet<String> = ["train.cache", "train.cache.token", "v.token"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = |n| classify(n, &plain);
        assert_eq!(c("train.cache"), EntryKind::Cache);
        assert_eq!(
            c(".train.cache.lock"),
            EntryKind::Lock {
                cache: "train.cache".into()
            }
        );
        assert_eq!(
            c(".train.cache.a1B2c3.tmp"),
            EntryKind::Temp {
                cache: "train.cache".into()
            }
        );
        assert_eq!(
            c("train.cache.token"),
            EntryKind::TokenSide {
                cache: "train.cache".into()
            }
        );
        // No cache `v` beside it: a file that merely ends in .token is listed.
        assert_eq!(c("v.token"), EntryKind::Cache);
        assert_eq!(c(".notes"), EntryKind::Hidden);
    }
}
