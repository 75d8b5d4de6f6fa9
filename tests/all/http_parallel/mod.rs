//! Parallel ranged downloads (issue 16, DESIGN §10), against a real nginx (strong
//! ETag, ranges, `If-Match`) behind the in-process fault proxy, and in-process servers:
//! - a published cache file and a legacy wire body fetched over several connections
//!   give exactly the records of a single-connection download, and the ranged GETs are
//!   pinned to the first response's ETag with `If-Match`;
//! - one connection cut mid-range: that range is resumed from the byte it reached
//!   (the requests are counted), the result is exact;
//! - the object replaced between two ranged GETs: the download restarts and serves the
//!   new version only; an object that keeps changing is a clear error after a bounded
//!   number of restarts;
//! - no range support, a weak ETag, an object below the threshold: one connection;
//! - the byte limit applies; no temp file is left after a failure;
//! - automatic connections (`connections` 0): one connection against a fast server,
//!   a split through a per-connection throttle, no split when a probe finds two
//!   connections no faster than one, a cut of the one connection resumed as ranges.
//!
//! One file per concept: `exact`, `changing_object`, `fallback`, `limits`,
//! `automatic`; the helpers they share are here and in `support`.

use crate::support;

mod automatic;
mod changing_object;
mod exact;
mod fallback;
mod limits;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use harmonics_dataset::{AsyncHttpProducer, Error, HttpOptions, HttpProducer, Producer, Tensor};
use support::fault_proxy::{Exchange, FaultProxy, Faults};
use support::http_fixtures::{assert_records, epoch, leftovers, published_cache};
use support::http_server::{wire_body, TestServer};
use support::nginx::{self, Nginx};

/// `n` records of float32[256] (1 KiB each): about `n` KiB.
fn data(n: usize, salt: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| {
            let v: Vec<f32> = (0..256).map(|j| (salt + i * 1000 + j) as f32).collect();
            Tensor::from_f32(&v)
        })
        .collect()
}

/// Parallel over `k` connections whatever the size.
fn parallel(cache: &Path, k: u32) -> HttpOptions {
    HttpOptions {
        cache_path: cache.to_str().unwrap().to_string(),
        retries: 2,
        connections: k,
        parallel_min_bytes: 1,
        ..HttpOptions::default()
    }
}

fn single(cache: &Path) -> HttpOptions {
    HttpOptions {
        connections: 1,
        ..parallel(cache, 1)
    }
}

/// The exchanges once every one of them is finished (the proxy records the end of a
/// response a moment after the client has it).
fn finished_exchanges(proxy: &FaultProxy) -> Vec<Exchange> {
    for _ in 0..2000 {
        let ex = proxy.exchanges();
        if ex.iter().all(|e| e.finished) {
            return ex;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("exchanges never finished: {:#?}", proxy.exchanges());
}

/// Every ranged GET is pinned with `If-Match` to `etag` and the ranges, with the
/// first response's prefix, cover `0..len` exactly once.
fn assert_ranges_cover(ex: &[Exchange], etag: &str, len: u64) {
    let mut ranges: Vec<(u64, u64)> = ex
        .iter()
        .filter_map(|e| e.range().map(|r| (e, r)))
        .map(|(e, r)| {
            assert_eq!(e.request_header("if-match"), Some(etag), "{e:#?}");
            assert_eq!(e.status, 206, "{e:#?}");
            r
        })
        .collect();
    ranges.sort();
    assert!(ranges.len() >= 3, "few ranged GETs: {ranges:?}");
    // The first response carries piece 0: the ranges start where it ends.
    let mut at = ranges[0].0;
    assert!(at > 0, "{ranges:?}");
    for (a, b) in &ranges {
        assert_eq!(*a, at, "ranges do not tile the object: {ranges:?}");
        at = b + 1;
    }
    assert_eq!(at, len, "{ranges:?}");
}

fn download(url: &str, o: HttpOptions) -> Vec<Tensor> {
    let mut p = HttpProducer::from_url(url, o).unwrap();
    epoch(&mut p)
}

/// One exchange, a whole GET (no range, no If-Match): a single-connection download.
fn whole_gets_only(ex: &[Exchange]) {
    assert_eq!(ex.len(), 1, "{ex:#?}");
    assert!(ex[0].range().is_none() && ex[0].request_header("if-match").is_none());
}
