//! Revalidation with ETag and Last-Modified: a 304 keeps the cache file untouched,
//! a changed file replaces it, an unreachable server keeps the cache.

use super::*;

#[test]
fn revalidating_an_unchanged_file_gets_304_and_keeps_the_cache_file() {
    let server = Nginx::start();
    let records = dataset(60, 3);
    server.publish_with_mtime("data.bin", &wire_body(&records), past(3600));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut first = open(server.port(), "/data.bin", options(&cache));
    assert!(matches!(first.outcome(), CacheOutcome::Created));
    assert_records(&epoch(&mut first), &records, "download");
    drop(first);
    let log = server.wait_log("the download", |l| l.len() == 1);
    let etag = log[0].etag.clone().expect("nginx sends an ETag");
    let stored = CacheReader::open(&cache).unwrap().metadata().clone();
    assert_eq!(
        stored.etag, etag,
        "the cache stores the ETag as nginx sent it"
    );
    assert!(!stored.last_modified.is_empty(), "and Last-Modified");
    let before = stamp(&cache);

    let mut second = open(server.port(), "/data.bin", revalidating(&cache));
    assert!(
        matches!(second.outcome(), CacheOutcome::Revalidated),
        "revalidation of an unchanged file"
    );
    assert_records(&epoch(&mut second), &records, "after 304");
    let log = server.wait_log("the revalidation", |l| l.len() == 2);
    assert_eq!(log[1].status, 304, "{log:#?}");
    let sent = log[1].if_none_match.as_deref().expect("If-None-Match sent");
    assert_eq!(strip_weak(sent), strip_weak(&etag));
    assert_eq!(log[1].body_bytes_sent, 0);
    assert_eq!(
        stamp(&cache),
        before,
        "a 304 must leave the cache file untouched"
    );
}

#[test]
fn revalidating_a_changed_file_gets_200_and_serves_the_new_records() {
    let mut server = Nginx::start();
    let old = dataset(60, 4);
    let new = dataset(60, 5);
    let (old_body, new_body) = (wire_body(&old), wire_body(&new));
    // Same length: only the mtime (hence ETag and Last-Modified) tells them apart.
    assert_eq!(old_body.len(), new_body.len());
    assert_ne!(old_body, new_body);
    server.publish_with_mtime("data.bin", &old_body, past(7200));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut first = open(server.port(), "/data.bin", options(&cache));
    assert_records(&epoch(&mut first), &old, "first download");
    drop(first);
    let log = server.wait_log("the download", |l| l.len() == 1);
    let old_etag = log[0].etag.clone().expect("ETag");

    server.publish_with_mtime("data.bin", &new_body, past(3600));
    let mut second = open(server.port(), "/data.bin", revalidating(&cache));
    assert_eq!(
        second.outcome(),
        CacheOutcome::Rebuilt("revalidation: the server has another version".into())
    );
    assert_records(&epoch(&mut second), &new, "after the file changed");
    drop(second);
    let log = server.wait_log("the revalidation", |l| l.len() == 2);
    assert_eq!(log[1].status, 200, "{log:#?}");
    assert_eq!(
        log[1].if_none_match.as_deref().map(strip_weak),
        Some(strip_weak(&old_etag)),
        "revalidated with the stored ETag"
    );
    assert_ne!(log[1].etag, log[0].etag);

    // The new validators were stored with the new records: revalidating again is a 304.
    let mut third = open(server.port(), "/data.bin", revalidating(&cache));
    assert!(matches!(third.outcome(), CacheOutcome::Revalidated));
    assert_records(&epoch(&mut third), &new, "after a second revalidation");
    drop(third);
    let log = server.wait_log("the second revalidation", |l| l.len() == 3);
    assert_eq!(log[2].status, 304, "{log:#?}");
    assert_eq!(
        log[2].if_none_match.as_deref().map(strip_weak),
        log[1].etag.as_deref().map(strip_weak)
    );

    // The replacement is what the cache now holds: offline, it serves the new data.
    server.stop();
    let mut offline = open(server.port(), "/data.bin", options(&cache));
    assert!(matches!(offline.outcome(), CacheOutcome::Reused));
    assert_records(&epoch(&mut offline), &new, "offline after replacement");
}

#[test]
fn revalidation_without_an_etag_uses_if_modified_since() {
    // The proxy hides nginx's ETag, so Last-Modified is the only validator stored.
    let server = Nginx::start();
    let records = dataset(40, 6);
    server.publish_with_mtime("data.bin", &wire_body(&records), past(600));
    let no_etag = Faults {
        strip_response_headers: vec!["ETag".into()],
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), no_etag);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");

    let mut first = open(proxy.port(), "/data.bin", options(&cache));
    assert_records(&epoch(&mut first), &records, "download");
    drop(first);
    let before = stamp(&cache);
    let last_modified = proxy.exchanges()[0]
        .response_header("last-modified")
        .expect("nginx sends Last-Modified")
        .to_string();

    let mut second = open(proxy.port(), "/data.bin", revalidating(&cache));
    assert!(matches!(second.outcome(), CacheOutcome::Revalidated));
    assert_records(&epoch(&mut second), &records, "after 304");
    let log = server.wait_log("the revalidation", |l| l.len() == 2);
    assert_eq!(log[1].status, 304, "{log:#?}");
    assert_eq!(log[1].if_none_match, None);
    assert_eq!(
        log[1].if_modified_since.as_deref(),
        Some(last_modified.as_str())
    );
    assert_eq!(stamp(&cache), before);
}

#[test]
fn revalidation_with_nginx_stopped_keeps_serving_the_cache() {
    // Offline-first still holds when revalidation is on: no server, the cache is used.
    let mut server = Nginx::start();
    let records = dataset(40, 17);
    server.publish("data.bin", &wire_body(&records));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let mut first = open(server.port(), "/data.bin", options(&cache));
    assert_records(&epoch(&mut first), &records, "download");
    drop(first);
    let before = stamp(&cache);
    server.stop();
    let opts = HttpOptions {
        retries: 0,
        ..revalidating(&cache)
    };
    let mut p = HttpProducer::with_options("127.0.0.1", server.port(), "/data.bin", opts)
        .expect("an unreachable server does not make a valid cache unusable");
    assert!(matches!(p.outcome(), CacheOutcome::Reused));
    assert_records(&epoch(&mut p), &records, "revalidation offline");
    assert_eq!(stamp(&cache), before);
}
