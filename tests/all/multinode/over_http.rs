//! Partial fetches over plain HTTP from nginx: a directory published for it works,
//! an unpublished cache is refused with a clear error and no file, an object
//! replaced mid-fetch is an error, never a splice.

use super::*;

/// A cache of RECORDS records at `dir/name` (index after the records).
pub(crate) fn source_cache(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(dir).unwrap();
    let lock = CacheLock::exclusive(&src).unwrap();
    let mut w = CacheWriter::create(&src, Metadata::new("t", "multinode"), &lock).unwrap();
    for i in 0..RECORDS {
        w.push(record(i).as_ref()).unwrap();
    }
    w.finish().unwrap();
    src
}

#[test]
fn partial_fetch_over_plain_http_from_a_directory_published_for_nginx() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = source_cache(&tmp.path().join("cache"), "train.cache");
    // `cache_cli publish NAME DIR` into the directory nginx serves; read through its
    // gzip-off location (nginx serves no byte ranges of a gzipped response).
    let s = harmonics_dataset::publish(
        src.to_str().unwrap(),
        server.www().to_str().unwrap(),
        &HttpOptions::default(),
    )
    .unwrap();
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let url = format!("http://127.0.0.1:{}/identity/train.cache", proxy.port());
    let local = tmp.path().join("node/part.cache");
    let mut p = PartialHttpProducer::new(
        &url,
        sampler_options(),
        &[5],
        EPOCH,
        HttpOptions::cached_at(true, local.to_str().unwrap()),
    )
    .unwrap();
    let want = rank_indices(5);
    let mut sorted = want.clone();
    sorted.sort_unstable();
    assert_eq!(p.held(), sorted);
    // In rank 5's order, by global index: exactly the sampler's records.
    for &g in &want {
        assert_eq!(p.view_at(g).unwrap().to_owned(), record(g as usize));
    }
    // Sequentially: the held records in ascending global order, cycling.
    for &g in sorted.iter().chain(sorted.iter().take(3)) {
        assert_eq!(p.next().unwrap(), record(g as usize));
    }
    let not_held = (0..RECORDS as u64)
        .find(|g| sorted.binary_search(g).is_err())
        .unwrap();
    let e = p.view_at(not_held).unwrap_err();
    assert!(matches!(e, Error::NotHeld { .. }), "{e}");
    assert!(e.to_string().contains("ranks [5] of world size 8"), "{e}");
    assert!(p.view_at(RECORDS as u64 + 7).is_err());

    // Every range came back as a 206 pinned to the ETag: If-Match on all but the first.
    let ex = proxy.exchanges();
    assert!(ex.iter().all(|e| e.request_header("range").is_some()));
    assert!(ex
        .iter()
        .skip(1)
        .all(|e| e.request_header("if-match").is_some()));
    // The benchmark figure of issue 16: a node serving 1/8 of the ranks is sent at
    // most 15% of the object (a byte count, not a time).
    let ratio = proxy.body_bytes() as f64 / s.bytes as f64;
    eprintln!(
        "partial fetch, 1 rank of 8: {} of {} bytes = {:.1}% of the object, {} requests",
        proxy.body_bytes(),
        s.bytes,
        ratio * 100.0,
        proxy.requests()
    );
    assert!(ratio <= 0.15, "{ratio}");
}

#[test]
fn a_cache_that_is_not_published_is_refused_with_a_clear_error_and_no_file() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    // Served as it is (index after the records), not through `publish`.
    let src = source_cache(&tmp.path().join("cache"), "raw.cache");
    server.publish("raw.cache", &std::fs::read(&src).unwrap());
    let local = tmp.path().join("node/part.cache");
    let e = PartialHttpProducer::new(
        &server.url("/identity/raw.cache"),
        sampler_options(),
        &[0],
        0,
        HttpOptions::cached_at(true, local.to_str().unwrap()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cache_cli publish"), "{e}");
    assert!(e.to_string().contains("raw.cache"), "{e}");
    assert!(!local.exists());
    // Ranks outside the world and a missing cache path are refused up front.
    let bad = PartialHttpProducer::new(
        &server.url("/identity/raw.cache"),
        sampler_options(),
        &[8],
        0,
        HttpOptions::cached_at(true, local.to_str().unwrap()),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("world size 8"), "{bad}");
    let none = PartialHttpProducer::new(
        &server.url("/identity/raw.cache"),
        sampler_options(),
        &[0],
        0,
        HttpOptions::default(),
    )
    .unwrap_err();
    assert!(none.to_string().contains("cache_path"), "{none}");
}

#[test]
fn an_object_replaced_mid_fetch_is_an_error_never_a_splice() {
    let server = nginx::Nginx::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = source_cache(&tmp.path().join("cache"), "train.cache");
    harmonics_dataset::publish(
        src.to_str().unwrap(),
        server.www().to_str().unwrap(),
        &HttpOptions::default(),
    )
    .unwrap();
    // Exchanges 0-2 are the header and the index; the answer to the 5th is held
    // back while the file is replaced, so the later ranges meet another version.
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            delay_response: vec![(4, Duration::from_secs(2))],
            ..Faults::none()
        },
    );
    let url = format!("http://127.0.0.1:{}/identity/train.cache", proxy.port());
    let local = tmp.path().join("node/part.cache");
    let fetch = {
        let (url, local) = (url.clone(), local.clone());
        std::thread::spawn(move || {
            PartialHttpProducer::new(
                &url,
                sampler_options(),
                &[3],
                EPOCH,
                HttpOptions {
                    connections: 1,
                    ..HttpOptions::cached_at(true, local.to_str().unwrap())
                },
            )
        })
    };
    let guard = Instant::now();
    while proxy.requests() < 5 {
        assert!(
            guard.elapsed() < Duration::from_secs(60),
            "the fetch never got that far"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut other = std::fs::read(server.www().join("train.cache")).unwrap();
    let n = other.len();
    other[n - 1] ^= 1;
    // nginx's ETag is "mtime-size": the new version gets another mtime.
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    server.publish_with_mtime("train.cache", &other, later);
    let e = fetch.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("changed"), "{e}");
    assert!(!local.exists(), "no partial cache from two versions");
}
