//! HTTP sources: identified by URL and validators, skip by seeking, and a cache name
//! shared with a CSV disk cache is rebuilt each way.

use super::*;

fn http_opts(cache: &Path) -> HttpOptions {
    HttpOptions {
        cache_path: cache.to_str().unwrap().to_string(),
        retries: 0,
        ..HttpOptions::default()
    }
}

fn http_all(p: &mut HttpProducer) -> Vec<Tensor> {
    (0..p.len()).map(|_| p.next().unwrap()).collect()
}

#[test]
fn another_url_with_the_same_cache_path_is_downloaded_again() {
    let (ra, rb) = (records(3, 2), records(5, 1));
    let (ba, bb) = (wire_body(&ra), wire_body(&rb));
    let server = TestServer::start(move |c| {
        let body = if c.req.path == "/a" { &ba } else { &bb };
        c.respond("200 OK", &[], body)
    });
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("d.cache");
    let mut a = HttpProducer::from_url(&server.url("/a"), http_opts(&cache)).unwrap();
    assert_eq!(a.outcome(), CacheOutcome::Created);
    assert_eq!(http_all(&mut a), ra);
    // The same URL spelled otherwise is the same source: no request.
    let same = server.url("/a").replace("http://", "HTTP://");
    let a2 = HttpProducer::from_url(&same, http_opts(&cache)).unwrap();
    assert_eq!(a2.outcome(), CacheOutcome::Reused);
    assert_eq!(server.request_count(), 1);

    let mut b = HttpProducer::from_url(&server.url("/b"), http_opts(&cache)).unwrap();
    let CacheOutcome::Rebuilt(why) = b.outcome() else {
        panic!(
            "{:?}: the cache of another URL was not rebuilt",
            b.outcome()
        )
    };
    assert!(
        why.contains(&server.url("/a")) && why.contains(&server.url("/b")),
        "{why}"
    );
    assert_eq!(http_all(&mut b), rb);
    assert_eq!(server.requests().last().unwrap().path, "/b");
    // Offline-first still holds for the new URL.
    let b2 = HttpProducer::from_url(&server.url("/b"), http_opts(&cache)).unwrap();
    assert_eq!(b2.outcome(), CacheOutcome::Reused);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn an_http_cache_name_reused_by_a_csv_disk_cache_is_rebuilt_and_back() {
    let body = wire_body(&records(4, 3));
    let server = TestServer::serving(body);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("mixed.cache");
    let csv = dir.path().join("m.csv");
    write_csv(&csv, 0..2, 2, 0.0, false);
    drop(HttpProducer::from_url(&server.url("/data"), http_opts(&cache)).unwrap());

    let (mut p, _) = open_csv(&csv, &cache);
    let why = rebuilt_reason(&p);
    assert!(
        why.contains(&server.url("/data")) && why.contains("m.csv"),
        "{why}"
    );
    assert_eq!(all(&mut p), [row(0, 2, 0.0), row(1, 2, 0.0)]);
    drop(p);

    // And a CSV cache reused by an HttpProducer is downloaded again.
    let mut h = HttpProducer::from_url(&server.url("/data"), http_opts(&cache)).unwrap();
    let CacheOutcome::Rebuilt(why) = h.outcome() else {
        panic!("{:?}: the CSV cache was not rebuilt", h.outcome())
    };
    assert!(
        why.contains("csv") && why.contains(&server.url("/data")),
        "{why}"
    );
    assert_eq!(http_all(&mut h), records(4, 3));
    assert_eq!(server.request_count(), 2);
}

#[test]
fn a_disk_cache_over_http_is_reused_by_url_and_validators() {
    let body = wire_body(&records(3, 2));
    let server =
        TestServer::start(move |c| c.respond("200 OK", &[("ETag", "\"v1\"".to_string())], &body));
    let dir = tempfile::tempdir().unwrap();
    let (dl, outer) = (dir.path().join("dl.cache"), dir.path().join("outer.cache"));
    let h = HttpProducer::from_url(&server.url("/x"), http_opts(&dl)).unwrap();
    let p = DiskCacheProducer::open_at(Box::new(h), outer.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Created);
    let id = p.metadata().identity.clone().unwrap();
    assert_eq!((id.kind, id.etag.as_str()), (SourceKind::Http, "\"v1\""));
    drop(p);
    let h = HttpProducer::from_url(&server.url("/x"), http_opts(&dl)).unwrap();
    let p = DiskCacheProducer::open_at(Box::new(h), outer, None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(server.request_count(), 1);
}

#[test]
fn http_producers_skip_by_seeking_and_report_their_identity() {
    let recs = records(6, 2);
    let server = TestServer::serving(wire_body(&recs));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("s.cache");
    let mut h = HttpProducer::from_url(&server.url("/d"), http_opts(&cache)).unwrap();
    h.skip(4).unwrap();
    assert_eq!(h.next().unwrap(), recs[4]);
    let id = h.identity().unwrap().unwrap();
    assert_eq!((id.kind, id.id), (SourceKind::Http, server.url("/d")));
    let mut a =
        harmonics_dataset::AsyncHttpProducer::from_url(&server.url("/d"), http_opts(&cache))
            .unwrap();
    assert_eq!(a.outcome(), CacheOutcome::Reused);
    a.skip(3).unwrap();
    assert_eq!(a.next().unwrap(), recs[3]);
    a.skip(7).unwrap(); // cycles: 4 + 7 = 11 = 5 (mod 6)
    assert_eq!(a.next().unwrap(), recs[5]);
    assert_eq!(a.identity().unwrap().unwrap().kind, SourceKind::Http);
    assert_eq!(server.request_count(), 1);
}
