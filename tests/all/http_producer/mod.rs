//! HttpProducer against in-process servers on 127.0.0.1: the original runtime's
//! raw-socket server, offline reuse of the cache, every failure mode (no cache left
//! behind, the URL named), published cache files, validation, IPv6, revalidation,
//! damaged caches, retries with Range resume.
//!
//! One file per concept: `basics`, `failures` (and their kinds: `error_kinds`),
//! `cache_files`, `bodies`; the helpers they share are here and in `support`.

use crate::support;

mod basics;
mod bodies;
mod cache_files;
mod error_kinds;
mod failures;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use harmonics_dataset::cache::{CacheLock, CacheReader, CacheWriter, Metadata};
use harmonics_dataset::{CacheOutcome, Error, HttpOptions, HttpProducer, Producer, Tensor};
use support::http_fixtures::{cache_options, epoch, files};
use support::http_server::{
    self, dropping_once_with_range, gzip_stored, records, wire_body, TestServer,
};

fn opts(cache_path: &Path) -> HttpOptions {
    cache_options(cache_path, 0)
}

/// Where the last record of a cache file ends: a first population writes the offset
/// index right after it (at the commit's `index_at`).
fn records_end(file: &[u8]) -> usize {
    let h = harmonics_dataset::cache::Header::decode(file).unwrap();
    match h.commit.index_at as usize {
        0 => file.len(),
        at => at,
    }
}

/// No cache and no temp file: at most the lock file.
fn assert_nothing_left(dir: &Path, name: &str) {
    let left: Vec<String> = files(dir)
        .into_iter()
        .filter(|f| *f != format!(".{name}.lock"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Opens `url` expecting an HTTP error; checks it names the URL and that nothing
/// was left in the cache directory. Returns the message.
fn expect_http_error(url: &str, o: HttpOptions, dir: &Path) -> String {
    let err = HttpProducer::from_url(url, o).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Http { .. }),
        "not an HTTP error: {msg}"
    );
    assert!(msg.contains(url), "{msg:?} does not name {url}");
    assert_nothing_left(dir, "c.cache");
    msg
}
