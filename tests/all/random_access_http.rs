//! Random access through the HTTP producers (issue 14): `view_at` over the cache of a
//! download, of a published cache file of either format version (index last, index
//! first, version 1), while an `AsyncHttpProducer` is still downloading, and the
//! re-download when `view_at` finds damage.

use crate::support;
use support::http_server;

use std::path::Path;

use harmonics_dataset::cache::{upgrade, CacheLock, CacheReader, CacheWriter, Header, Metadata};
use harmonics_dataset::{
    AsyncHttpProducer, CacheOutcome, Error, HttpOptions, HttpProducer, Producer, Tensor,
};
use http_server::{records, wire_body, TestServer};
use support::cache_files::version_1_file;
use support::http_fixtures::cache_options;

fn opts(cache_path: &Path) -> HttpOptions {
    cache_options(cache_path, 0)
}

fn check_all(p: &mut dyn Producer, want: &[Tensor]) {
    assert!(p.has_random_access());
    let n = want.len() as u64;
    for k in 0..n {
        let i = (k * 7919) % n; // a fixed scattered order (7919 is prime to n here)
        assert!(
            p.view_at(i).unwrap().to_owned() == want[i as usize],
            "view_at({i})"
        );
    }
    match p.view_at(n) {
        Err(Error::IndexOutOfRange { index, len, .. }) => assert_eq!((index, len), (n, n)),
        other => panic!("view_at({n}): {:?}", other.map(|t| t.to_owned())),
    }
}

fn published(data: &[Tensor], path: &Path) -> Vec<u8> {
    let lock = CacheLock::exclusive(path).unwrap();
    let mut w = CacheWriter::create(path, Metadata::new("tok", "src"), &lock).unwrap();
    for t in data {
        w.push(t.as_ref()).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(path).unwrap()
}

/// A version-1 published file, as the previous release wrote it (no index).
fn published_v1(data: &[Tensor]) -> Vec<u8> {
    version_1_file(&Metadata::new("tok", "v1"), data)
}

#[test]
fn http_producer_random_access_over_plain_and_published_bodies() {
    let data = records(301, 9);
    let src = tempfile::tempdir().unwrap();
    let last = published(&data, &src.path().join("last.cache"));
    // Index first, as an upgrade or a publish step writes it.
    let legacy = src.path().join("first.cache");
    std::fs::write(&legacy, wire_body(&data)).unwrap();
    let lock = CacheLock::exclusive(&legacy).unwrap();
    upgrade(&legacy, &lock).unwrap();
    drop(lock);
    let first = std::fs::read(&legacy).unwrap();
    let h = Header::decode(&first).unwrap();
    assert_eq!(h.commit.index_at, h.data_start);
    for (what, body) in [
        ("wire records", wire_body(&data)),
        ("index last", last),
        ("index first", first),
        ("version 1", published_v1(&data)),
    ] {
        let server = TestServer::serving(body);
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("c.cache");
        let mut p = HttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
        assert_eq!(p.outcome(), CacheOutcome::Created, "{what}");
        check_all(&mut p, &data);
        assert!(
            p.next().unwrap() == data[0],
            "{what}: the cursor did not move"
        );
        assert!(CacheReader::open(&cache).unwrap().has_index(), "{what}");
        // Without a persistent cache too (an unlinked file).
        let mut p = HttpProducer::from_url(
            &server.url("/d"),
            HttpOptions {
                cache: false,
                ..opts(&dir.path().join("none.cache"))
            },
        )
        .unwrap();
        check_all(&mut p, &data);
    }
}

#[test]
fn a_damaged_record_found_by_view_at_is_downloaded_again() {
    let data = records(50, 4);
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    drop(HttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap());
    let before = server.request_count();
    // Flip a byte in record 20's data (found through the index in the file).
    let mut file = std::fs::read(&cache).unwrap();
    let h = Header::decode(&file).unwrap();
    let at = h.commit.index_at as usize;
    let e = at + 9 + (file[at + 8] & 0x7f) as usize + 8 * 20;
    let frame = (u64::from_le_bytes(file[e..e + 8].try_into().unwrap()) & ((1 << 48) - 1)) as usize;
    file[frame + 30] ^= 0x02;
    std::fs::write(&cache, &file).unwrap();

    let mut p = HttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(
        server.request_count(),
        before,
        "offline-first: no request yet"
    );
    assert!(p.view_at(21).unwrap().to_owned() == data[21]);
    assert!(
        p.view_at(20).unwrap().to_owned() == data[20],
        "re-downloaded, then served"
    );
    assert_eq!(server.request_count(), before + 1);
    check_all(&mut p, &data);
}

#[test]
fn async_producer_random_access_waits_for_the_download_and_keeps_the_cursor() {
    let data = records(400, 17);
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("a.cache");
    let mut p = AsyncHttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    assert!(p.next().unwrap() == data[0]);
    assert!(p.next().unwrap() == data[1]);
    // Random access while following: served from the finished cache.
    assert!(p.view_at(399).unwrap().to_owned() == data[399]);
    assert!(
        p.next().unwrap() == data[2],
        "the sequential position is kept"
    );
    check_all(&mut p, &data);
    // From a warm cache (no thread at all).
    let mut p = AsyncHttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    check_all(&mut p, &data);
    // A failed download is reported by view_at, naming the URL.
    let gone = TestServer::start(|c| c.respond("404 Not Found", &[], b""));
    let mut p =
        AsyncHttpProducer::from_url(&gone.url("/missing"), opts(&dir.path().join("m.cache")))
            .unwrap();
    let e = p.view_at(0).map(|t| t.to_owned()).unwrap_err();
    assert!(e.to_string().contains("/missing"), "{e}");
}

#[test]
fn a_sampled_epoch_over_an_http_producer_reads_ahead_through_its_cache() {
    // Issue 23: the download's cache reads ahead in the sampler's order.
    use harmonics_dataset::{SampledProducer, Sampler, SamplerOptions};
    let data = records(500, 5);
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let p = HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("d.cache"))).unwrap();
    let o = SamplerOptions {
        seed: 4,
        block_records: 8,
        ..SamplerOptions::default()
    };
    let mut sampled = SampledProducer::new(p, o).unwrap();
    let mut order = Sampler::new(500, o).unwrap();
    for k in 0..1200 {
        let i = order.next_index() as usize;
        assert!(sampled.next().unwrap() == data[i], "step {k}: record {i}");
    }
}
