//! Offline-first: a second open makes no request and works with nginx stopped;
//! ranks opening one cache at once cause one request, and without a cache every
//! open downloads again.

use super::*;

#[test]
fn second_open_makes_no_request_and_works_with_nginx_stopped() {
    let mut server = Nginx::start();
    let records = dataset(120, 1);
    server.publish("data.bin", &wire_body(&records));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut first = open(proxy.port(), "/data.bin", options(&cache));
    assert!(matches!(first.outcome(), CacheOutcome::Created));
    assert_eq!(first.url(), proxy.url("/data.bin"));
    assert_eq!(first.cache_path(), Some(cache.as_path()));
    assert_records(&epoch(&mut first), &records, "first open");
    assert_eq!(first.next().unwrap(), records[0], "cycles back to record 0");
    drop(first);
    assert!(cache.is_file(), "the download left a cache file");
    let log = server.wait_log("the download", |l| l.len() == 1);
    assert_eq!(log[0].status, 200);
    assert_eq!(proxy.requests(), 1);

    // Second open, server up: no connection at all (the proxy counts accepts).
    let mut second = open(proxy.port(), "/data.bin", options(&cache));
    assert!(matches!(second.outcome(), CacheOutcome::Reused));
    assert_records(&epoch(&mut second), &records, "second open (cache)");
    assert_eq!(
        proxy.connections(),
        1,
        "the second open connected to the server"
    );
    assert_eq!(server.access_log().len(), 1, "nginx saw a second request");

    // Third open with nginx gone, through the original constructor, at the same URL
    // (a cache made from another URL would be downloaded again).
    let port = server.port();
    server.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let mut third = HttpProducer::new(
        "127.0.0.1",
        proxy.port(),
        "/data.bin",
        true,
        cache.to_str().unwrap(),
    )
    .unwrap();
    assert!(matches!(third.outcome(), CacheOutcome::Reused));
    assert_records(&epoch(&mut third), &records, "open with nginx stopped");
}

// Sharing one cache.

#[test]
fn concurrent_opens_of_one_cache_make_a_single_request() {
    // Data-parallel ranks on one node open the same dataset at once: one downloads
    // under the cache lock, the others wait and read its cache. The proxy holds the
    // first response back a moment so the other ranks really arrive mid-download.
    let server = Nginx::start();
    let records = dataset(300, 18);
    server.publish("data.bin", &wire_body(&records));
    let slow = Faults {
        delay_response: vec![(0, Duration::from_millis(300))],
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), slow);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let barrier = std::sync::Barrier::new(4);
    let results: Vec<(Vec<Tensor>, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut p = open(proxy.port(), "/data.bin", options(&cache));
                    let downloaded = matches!(p.outcome(), CacheOutcome::Created);
                    (epoch(&mut p), downloaded)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (got, _)) in results.iter().enumerate() {
        assert_records(got, &records, &format!("rank {i}"));
    }
    let downloads = results.iter().filter(|(_, d)| *d).count();
    assert_eq!(downloads, 1, "exactly one rank downloads");
    let log = server.wait_log("the download", |l| !l.is_empty());
    assert_eq!(log.len(), 1, "nginx served the dataset once: {log:#?}");
    assert_eq!(proxy.requests(), 1);
}

#[test]
fn without_a_cache_every_open_downloads_again() {
    let server = Nginx::start();
    let records = dataset(40, 19);
    server.publish("data.bin", &wire_body(&records));
    let opts = HttpOptions {
        cache: false,
        ..HttpOptions::default()
    };
    for round in 1..=2 {
        let mut p = open(server.port(), "/data.bin", opts.clone());
        assert_eq!(p.cache_path(), None);
        assert!(matches!(p.outcome(), CacheOutcome::Created));
        assert_records(&epoch(&mut p), &records, "no cache");
        drop(p);
        server.wait_log("a request per open", |l| l.len() == round);
    }
}
