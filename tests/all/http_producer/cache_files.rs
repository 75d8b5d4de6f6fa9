//! Cache files: a published cache file fetched by URL (a flipped byte refused),
//! validation of shapes, revalidation (304 keeps, 200 replaces), a damaged cache
//! downloaded again, a legacy cache file used offline.

use super::*;

/// A cache file in the current format, as `cache_cli`/DiskCacheProducer publish it.
fn published_cache(data: &[Tensor], dir: &Path) -> Vec<u8> {
    let path = dir.join("published.cache");
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut w = CacheWriter::create(&path, Metadata::new("tok", "csv:train.csv"), &lock).unwrap();
    for t in data {
        w.push(t.as_ref()).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn a_published_cache_file_is_fetched_by_url_and_a_flipped_byte_is_refused() {
    let src = tempfile::tempdir().unwrap();
    let data = records(6, 5);
    let file = published_cache(&data, src.path());
    let server = TestServer::serving(file.clone());

    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let url = server.url("/published.cache");
    let mut p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(epoch(&mut p), data);
    assert_eq!(CacheReader::open(&cache).unwrap().metadata().source, url);
    // Also without a persistent cache.
    let mut p = HttpProducer::from_url(
        &url,
        HttpOptions {
            cache: false,
            ..opts(&cache)
        },
    )
    .unwrap();
    assert_eq!(epoch(&mut p), data);

    // A flipped byte in the last record's data: the CRC check refuses the body.
    let mut damaged = file.clone();
    let at = records_end(&damaged) - 3;
    damaged[at] ^= 0x10;
    let bad = TestServer::serving(damaged);
    let dir = tempfile::tempdir().unwrap();
    let msg = expect_http_error(
        &bad.url("/p"),
        opts(&dir.path().join("c.cache")),
        dir.path(),
    );
    println!("{msg}");
    assert!(
        msg.contains("CRC mismatch") && msg.contains("record 5"),
        "{msg}"
    );

    // A flipped byte in the header: refused as well.
    let mut damaged = file;
    damaged[100] ^= 0x01;
    let bad = TestServer::serving(damaged);
    let msg = expect_http_error(
        &bad.url("/p"),
        opts(&dir.path().join("c.cache")),
        dir.path(),
    );
    println!("{msg}");
    assert!(msg.contains("published cache file"), "{msg}");
}

#[test]
fn validate_refuses_a_record_of_another_shape() {
    let mut data = records(3, 4);
    data.push(Tensor::from_f32(&[1.0, 2.0]));
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let err = HttpProducer::from_url(
        &server.url("/"),
        HttpOptions {
            validate: true,
            ..opts(&cache)
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("record 3") && msg.contains("float32[2]") && msg.contains("float32[4]"),
        "{msg}"
    );
    assert_nothing_left(dir.path(), "c.cache");
    // Without validation the same body is accepted.
    let mut p = HttpProducer::from_url(&server.url("/"), opts(&cache)).unwrap();
    assert_eq!(epoch(&mut p), data);
}

#[test]
fn revalidation_304_keeps_the_cache_and_200_replaces_it() {
    let v1 = records(3, 2);
    let v2 = records(5, 3);
    let current = std::sync::Arc::new(std::sync::Mutex::new((
        String::from("\"v1\""),
        wire_body(&v1),
    )));
    let server = {
        let current = current.clone();
        TestServer::start(move |c| {
            let (etag, body) = current.lock().unwrap().clone();
            if c.req.header("if-none-match") == Some(etag.as_str()) {
                c.head("304 Not Modified", 0, &[("ETag", etag)]);
            } else {
                c.respond(
                    "200 OK",
                    &[
                        ("ETag", etag),
                        ("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT".into()),
                    ],
                    &body,
                );
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let url = server.url("/d");
    let mut p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Created);
    assert_eq!(epoch(&mut p), v1);
    let meta = CacheReader::open(&cache).unwrap().metadata().clone();
    assert_eq!(meta.etag, "\"v1\"");
    assert_eq!(meta.last_modified, "Wed, 25 Nov 2026 10:00:00 GMT");

    let reval = HttpOptions {
        revalidate: true,
        ..opts(&cache)
    };
    // Default policy: no request at all.
    let p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(server.request_count(), 1);
    // Revalidation: conditional GET, 304 keeps the cache.
    let mut p = HttpProducer::from_url(&url, reval.clone()).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Revalidated);
    assert_eq!(epoch(&mut p), v1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("if-none-match"), Some("\"v1\""));
    assert_eq!(
        reqs[1].header("if-modified-since"),
        Some("Wed, 25 Nov 2026 10:00:00 GMT")
    );
    // The dataset changed on the server: 200 replaces the cache.
    *current.lock().unwrap() = ("\"v2\"".into(), wire_body(&v2));
    let mut p = HttpProducer::from_url(&url, reval.clone()).unwrap();
    assert_eq!(
        p.outcome(),
        CacheOutcome::Rebuilt("revalidation: the server has another version".into())
    );
    assert_eq!(epoch(&mut p), v2);
    assert_eq!(CacheReader::open(&cache).unwrap().metadata().etag, "\"v2\"");
    drop(p);
    // Revalidation with the server gone: the cache is kept, with a warning.
    server.stop();
    let mut p = HttpProducer::from_url(&url, reval).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(epoch(&mut p), v2);
}

#[test]
fn a_damaged_cache_is_downloaded_again() {
    let data = records(4, 16);
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let url = server.url("/d");
    drop(HttpProducer::from_url(&url, opts(&cache)).unwrap());
    assert_eq!(server.request_count(), 1);

    // A flipped byte in the last record's data: found when that record is read.
    let mut bytes = std::fs::read(&cache).unwrap();
    let at = records_end(&bytes) - 2;
    bytes[at] ^= 0x04;
    std::fs::write(&cache, &bytes).unwrap();
    let mut p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(epoch(&mut p), data, "the damaged record was never served");
    assert_eq!(
        p.outcome(),
        CacheOutcome::Rebuilt("the cache file was found damaged while reading".into())
    );
    assert_eq!(server.request_count(), 2);

    // A damaged header: found at open, downloaded again.
    let mut bytes = std::fs::read(&cache).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&cache, &bytes).unwrap();
    let mut p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert!(
        matches!(&p.outcome(), CacheOutcome::Rebuilt(why) if why.contains("magic")),
        "{:?}",
        p.outcome()
    );
    assert_eq!(epoch(&mut p), data);
    assert_eq!(server.request_count(), 3);

    // Damaged and no server: a clear error naming the URL.
    let mut bytes = std::fs::read(&cache).unwrap();
    let at = records_end(&bytes) - 2;
    bytes[at] ^= 0x04;
    std::fs::write(&cache, &bytes).unwrap();
    server.stop();
    let mut p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    let mut last = Ok(());
    for _ in 0..4 {
        if let Err(e) = p.next() {
            last = Err(e);
            break;
        }
    }
    let msg = last.unwrap_err().to_string();
    println!("{msg}");
    assert!(msg.contains(&url) && msg.contains("CRC mismatch"), "{msg}");
}

#[test]
fn a_legacy_cache_file_is_used_offline() {
    let data = records(3, 3);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("old.cache");
    std::fs::write(&cache, wire_body(&data)).unwrap();
    // Nothing listens on port 9 of 127.0.0.1 (discard): a request would fail.
    let mut p = HttpProducer::new("127.0.0.1", 9, "/data", true, cache.to_str().unwrap()).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(epoch(&mut p), data);
}
