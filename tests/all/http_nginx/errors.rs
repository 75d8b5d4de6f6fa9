//! Errors naming the URL that leave nothing behind: 404, 500 after retries, a cut
//! body without retries, a refused connection; redirects are followed.

use super::*;

#[test]
fn not_found_is_an_error_naming_the_url_and_leaves_nothing_behind() {
    let server = Nginx::start();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("missing.cache");
    let url = server.url("/missing.bin");

    let err = match HttpProducer::with_options(
        "127.0.0.1",
        server.port(),
        "/missing.bin",
        options(&cache),
    ) {
        Ok(_) => panic!("a 404 produced a producer"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&url), "the error names the URL: {err}");
    assert!(err.contains("404"), "the error gives the status: {err}");
    assert!(!cache.exists());
    assert_eq!(leftovers(cache_dir.path()), Vec::<PathBuf>::new());
    let log = server.wait_log("the 404", |l| !l.is_empty());
    assert!(log.iter().all(|l| l.status == 404), "{log:#?}");
    assert_eq!(log.len(), 1, "a 404 is not retried: {log:#?}");

    // The async producer reports it too (at construction or on first use).
    let err = match AsyncHttpProducer::with_options(
        "127.0.0.1",
        server.port(),
        "/missing.bin",
        options(&cache),
    ) {
        Err(e) => e.to_string(),
        Ok(mut p) => match p.size() {
            Err(e) => e.to_string(),
            Ok(n) => panic!("a 404 produced {n} records"),
        },
    };
    assert!(err.contains(&url), "the async error names the URL: {err}");
    assert!(!cache.exists());
    assert_eq!(leftovers(cache_dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn dropped_connection_with_no_retries_is_an_error_and_leaves_nothing_behind() {
    let server = Nginx::start();
    let records = dataset(400, 20);
    let body = wire_body(&records);
    server.publish("data.bin", &body);
    let cut = body.len() as u64 * 2 / 5;
    let proxy = FaultProxy::start(server.port(), Faults::cut_first_response_after(cut));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let url = proxy.url("/identity/data.bin");
    let opts = HttpOptions {
        retries: 0,
        ..options(&cache)
    };

    let err = match HttpProducer::from_url(&url, opts.clone()) {
        Ok(_) => panic!("a truncated body produced a producer"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&url), "the error names the URL: {err}");
    assert_eq!(proxy.requests(), 1, "retries: 0 means one request");
    assert!(!cache.exists());
    assert_eq!(leftovers(cache_dir.path()), Vec::<PathBuf>::new());

    // The async producer: the background failure surfaces from the next call,
    // after the records that did arrive, and nothing is left behind either.
    proxy.set_faults(Faults {
        cut: vec![(1, cut)],
        ..Faults::none()
    });
    let mut p = AsyncHttpProducer::from_url(&url, opts).unwrap();
    let mut served = 0;
    let err = loop {
        match p.next() {
            Ok(t) => {
                assert_eq!(t, records[served], "record {served} before the failure");
                served += 1;
                assert!(served < records.len(), "all records served from a cut body");
            }
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains(&url), "the async error names the URL: {err}");
    drop(p);
    assert!(!cache.exists());
    assert_eq!(leftovers(cache_dir.path()), Vec::<PathBuf>::new());
    println!("cut with no retries: {served} records served before: {err}");
}

#[test]
fn server_error_is_retried_then_reported_naming_the_url() {
    let server = Nginx::start();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let url = server.url("/error500/data.bin");
    let opts = HttpOptions {
        retries: 2,
        ..options(&cache)
    };
    let err = match HttpProducer::from_url(&url, opts) {
        Ok(_) => panic!("a 500 produced a producer"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&url), "the error names the URL: {err}");
    assert!(err.contains("500"), "the error gives the status: {err}");
    let log = server.wait_log("three attempts", |l| l.len() >= 3);
    assert_eq!(log.len(), 3, "1 attempt + 2 retries: {log:#?}");
    assert!(log.iter().all(|l| l.status == 500));
    assert!(!cache.exists());
    assert_eq!(leftovers(cache_dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn redirect_from_nginx_is_followed_and_cached() {
    let mut server = Nginx::start();
    let records = dataset(50, 14);
    server.publish("data.bin", &wire_body(&records));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let url = server.url("/moved/data.bin");

    let mut p = HttpProducer::from_url(&url, options(&cache)).unwrap();
    assert_eq!(p.url(), url);
    assert_records(&epoch(&mut p), &records, "through a redirect");
    drop(p);
    let log = server.wait_log("redirect and download", |l| l.len() == 2);
    assert_eq!((log[0].status, log[0].path()), (302, "/moved/data.bin"));
    assert_eq!((log[1].status, log[1].path()), (200, "/data.bin"));

    server.stop();
    let mut offline = HttpProducer::from_url(&url, options(&cache)).unwrap();
    assert!(matches!(offline.outcome(), CacheOutcome::Reused));
    assert_records(&epoch(&mut offline), &records, "redirected, offline");
}

#[test]
fn stopped_nginx_without_a_cache_is_an_error_naming_the_url() {
    let mut server = Nginx::start();
    let port = server.port();
    server.stop();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("data.cache");
    let opts = HttpOptions {
        retries: 1,
        ..options(&cache)
    };
    let url = format!("http://127.0.0.1:{port}/data.bin");
    let err = match HttpProducer::with_options("127.0.0.1", port, "/data.bin", opts) {
        Ok(_) => panic!("no server and no cache, yet a producer"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&url), "the error names the URL: {err}");
    assert!(!cache.exists());
    assert_eq!(leftovers(cache_dir.path()), Vec::<PathBuf>::new());
}
