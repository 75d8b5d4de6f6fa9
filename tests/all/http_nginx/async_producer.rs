//! AsyncHttpProducer over nginx: the same records and revalidation as the blocking
//! producer.

use super::*;

#[test]
fn async_producer_over_nginx_gives_the_same_records_as_the_blocking_one() {
    let mut server = Nginx::start();
    let records = dataset(250, 10);
    server.publish("data.bin", &wire_body(&records));
    let cache_dir = tempfile::tempdir().unwrap();
    let blocking_cache = cache_dir.path().join("blocking.cache");
    let async_cache = cache_dir.path().join("async.cache");

    // Through a proxy that counts connections (the cache records this URL).
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let mut blocking = open(proxy.port(), "/data.bin", options(&blocking_cache));
    let from_blocking = epoch(&mut blocking);
    let downloads = proxy.connections();

    let mut background = open_async(server.port(), "/data.bin", options(&async_cache));
    // Records as they arrive (next() before size()), then a full epoch.
    let streamed: Vec<Tensor> = (0..records.len())
        .map(|_| background.next().unwrap())
        .collect();
    assert_eq!(background.size().unwrap(), records.len());
    let from_async = epoch(&mut background);
    drop(background);

    assert_records(&from_blocking, &records, "blocking");
    assert_records(&streamed, &records, "async, streamed");
    assert_records(&from_async, &records, "async, second epoch");
    assert!(async_cache.is_file(), "the async download left its cache");
    // The blocking producer's cache file holds the same records, read by the async one.
    let mut cached = open_async(proxy.port(), "/data.bin", options(&blocking_cache));
    assert!(matches!(cached.outcome(), CacheOutcome::Reused));
    assert_records(
        &epoch(&mut cached),
        &records,
        "async, from the blocking cache",
    );
    assert_eq!(
        proxy.connections(),
        downloads,
        "a valid cache makes no request"
    );

    server.stop();
    let mut offline = open_async(server.port(), "/data.bin", options(&async_cache));
    assert_records(
        &epoch(&mut offline),
        &records,
        "async, offline from its cache",
    );
}

#[test]
fn async_producer_revalidates_like_the_blocking_one() {
    let server = Nginx::start();
    let old = dataset(80, 15);
    let new = dataset(80, 16);
    server.publish_with_mtime("data.bin", &wire_body(&old), past(7200));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let open = |opts| open_async(server.port(), "/data.bin", opts);

    assert_records(&epoch(&mut open(options(&cache))), &old, "async download");
    let before = stamp(&cache);
    let mut unchanged = open(revalidating(&cache));
    assert_records(&epoch(&mut unchanged), &old, "async, after 304");
    assert!(matches!(unchanged.outcome(), CacheOutcome::Revalidated));
    drop(unchanged);
    assert_eq!(
        stamp(&cache),
        before,
        "a 304 leaves the cache file untouched"
    );

    server.publish_with_mtime("data.bin", &wire_body(&new), past(3600));
    let mut changed = open(revalidating(&cache));
    assert_records(&epoch(&mut changed), &new, "async, after the file changed");
    // As the blocking producer says it: the cache file was replaced, and why.
    assert!(
        matches!(changed.outcome(), CacheOutcome::Rebuilt(ref why) if why.contains("revalidation")),
        "{:?}",
        changed.outcome()
    );
    drop(changed);
    let log = server.wait_log("three requests", |l| l.len() == 3);
    let statuses: Vec<u16> = log.iter().map(|l| l.status).collect();
    assert_eq!(statuses, [200, 304, 200], "{log:#?}");
    assert_records(&epoch(&mut open(options(&cache))), &new, "async, new cache");
}
