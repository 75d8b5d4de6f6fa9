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
            EntryKind::Cache => Some(&self.name),
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

/// The caches under `dir` (companion files left out), sorted by name.
pub fn list_caches(dir: &Path) -> Result<Vec<DirEntry>> {
    Ok(scan_cache_dir(dir)?
        .into_iter()
        .filter(|e| e.kind == EntryKind::Cache)
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
            if !is_link && !file_name.starts_with('.') {
                scan(&path, &format!("{prefix}{file_name}/"), out)?;
            }
        } else if meta.is_file() {
            files.push((file_name, path, meta));
        }
    }
    let plain: HashSet<String> = files
        .iter()
        .filter(|(n, ..)| !n.starts_with('.'))
        .map(|(n, ..)| n.clone())
        .collect();
    for (file_name, path, meta) in files {
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
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            accessed: meta.accessed().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    Ok(())
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
