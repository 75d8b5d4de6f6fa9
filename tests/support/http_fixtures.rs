//! What the HTTP and S3 tests share around a producer: options with an absolute
//! cache path, a published cache file, reading an epoch, comparing records, and
//! listing what a download left in its cache directory.
//!
//! Part of the tests' `support` module (`use support::http_fixtures;`).

use std::path::{Path, PathBuf};

use harmonics_dataset::cache::{CacheLock, CacheWriter, Metadata};
use harmonics_dataset::{HttpOptions, Producer, Tensor};

/// Options with an absolute cache path and `retries` (tests run in threads;
/// `HARMONICS_CACHE_DIR` is process-global, so no test relies on it).
pub fn cache_options(cache: &Path, retries: u32) -> HttpOptions {
    HttpOptions {
        cache: true,
        cache_path: cache.to_str().unwrap().to_string(),
        retries,
        ..HttpOptions::default()
    }
}

/// The records as a published cache file (new format), as a machine that built
/// the cache would put it on a static server.
pub fn published_cache(records: &[Tensor]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.cache");
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut w = CacheWriter::create(&path, Metadata::new("", "test publisher"), &lock).unwrap();
    for r in records {
        w.push(r.as_ref()).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// Reads one full epoch through the Producer trait (what training code does).
pub fn epoch<P: Producer + ?Sized>(p: &mut P) -> Vec<Tensor> {
    let n = p.size().unwrap();
    (0..n).map(|_| p.next().unwrap()).collect()
}

/// Asserts exact record equality, pointing at the first differing record.
pub fn assert_records(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: record {i} differs: got {:?} {:?}, want {:?} {:?}",
            got[i].dtype, got[i].shape, want[i].dtype, want[i].shape
        );
    }
}

/// Entries of a cache directory that a later run could mistake for data: anything
/// except the lock companion `.<name>.lock` (which holds no data and is kept on
/// purpose, see `cache::CacheLock`). A missing directory has none.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        !(name.starts_with('.') && name.ends_with(".lock"))
    });
    v.sort();
    v
}

/// Every file name in `dir` (dotfiles included), sorted; none for a missing one.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
