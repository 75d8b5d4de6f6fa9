//! The original runtime's raw-socket server, then offline with the server stopped;
//! no cache; IPv6 loopback and hostnames; bad URLs; a relative cache path under
//! `HARMONICS_CACHE_DIR`.

use super::*;

#[test]
fn original_style_server_then_offline_with_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = records(5, 3);
    let server = TestServer::serving(wire_body(&data));
    let port = server.port();
    let cache = dir.path().join("dataset.cache");

    let mut p =
        HttpProducer::new("127.0.0.1", port, "/data", true, cache.to_str().unwrap()).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Created);
    assert_eq!(p.url(), format!("http://127.0.0.1:{port}/data"));
    assert_eq!(p.cache_path(), Some(cache.as_path()));
    assert_eq!(epoch(&mut p), data);
    // next() cycles back to the first record.
    assert_eq!(p.next().unwrap(), data[0]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/data")
    );
    let meta = CacheReader::open(&cache).unwrap().metadata().clone();
    assert_eq!(meta.source, format!("http://127.0.0.1:{port}/data"));
    drop(p);
    server.stop();

    // Offline: the server is gone; the cache is used without a request.
    let mut p =
        HttpProducer::new("127.0.0.1", port, "data", true, cache.to_str().unwrap()).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(p.size().unwrap(), 5);
    assert_eq!(epoch(&mut p), data);
}

#[test]
fn without_a_cache_nothing_is_written_and_each_open_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let data = records(4, 2);
    let server = TestServer::serving(wire_body(&data));
    for cache in [false, true] {
        // cache=true with an empty cache_path is not persistent either.
        let mut p = HttpProducer::new("127.0.0.1", server.port(), "/", cache, "").unwrap();
        assert_eq!(p.cache_path(), None);
        assert_eq!(p.outcome(), CacheOutcome::Created);
        assert_eq!(epoch(&mut p), data);
    }
    // cache=false with a path: the path is ignored.
    let path = dir.path().join("ignored.cache");
    let mut p = HttpProducer::new(
        "127.0.0.1",
        server.port(),
        "/",
        false,
        path.to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(epoch(&mut p), data);
    assert!(files(dir.path()).is_empty());
    assert_eq!(server.request_count(), 3);
}

#[test]
fn ipv6_loopback_and_hostnames() {
    let data = records(2, 2);
    let body = wire_body(&data);
    match TestServer::start_on("[::1]:0", {
        let body = body.clone();
        move |c| c.respond("200 OK", &[], &body)
    }) {
        Ok(server) => {
            let mut p = HttpProducer::new("::1", server.port(), "/v6", false, "").unwrap();
            assert_eq!(p.url(), format!("http://[::1]:{}/v6", server.port()));
            assert_eq!(epoch(&mut p), data);
            let mut p = HttpProducer::from_url(&server.url("/v6"), HttpOptions::default()).unwrap();
            assert_eq!(epoch(&mut p), data);
        }
        Err(e) => println!("skipped the IPv6 part: cannot bind [::1] on this machine ({e})"),
    }
    // A hostname (resolved to loopback).
    let server = TestServer::serving(body);
    let mut p = HttpProducer::new("localhost", server.port(), "/h", false, "");
    match &mut p {
        Ok(p) => assert_eq!(epoch(p), data),
        // localhost may resolve to ::1 first where the v4 server is not listening;
        // reqwest tries every address, so this only fails without any loopback name.
        Err(e) => panic!("localhost: {e}"),
    }
}

#[test]
fn bad_urls_are_refused() {
    for bad in ["ftp://x/y", "not a url", "http://", "file:///etc/passwd"] {
        let err = HttpProducer::from_url(bad, HttpOptions::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad}: {err}");
    }
    let err = HttpProducer::new("", 80, "/", false, "").unwrap_err();
    assert!(err.to_string().contains("host"), "{err}");
    let err = HttpProducer::new("127.0.0.1", 80, "/", true, "../escape").unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
}

/// A relative `cache_path` resolves under `$HARMONICS_CACHE_DIR` (checked in a child
/// process, since the variable is process-wide).
#[test]
fn a_relative_cache_path_lives_under_harmonics_cache_dir() {
    const CHILD: &str = "HARMONICS_HTTP_TEST_CHILD_URL";
    if let Ok(url) = std::env::var(CHILD) {
        let p = HttpProducer::from_url(
            &url,
            HttpOptions {
                cache_path: "sub/dataset.cache".into(),
                retries: 0,
                ..HttpOptions::default()
            },
        )
        .unwrap();
        println!("CHILD-OK {} {}", p.len(), p.cache_path().unwrap().display());
        return;
    }
    let data = records(3, 2);
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            &support::test_name(
                module_path!(),
                "a_relative_cache_path_lives_under_harmonics_cache_dir",
            ),
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, server.url("/d"))
        .env("HARMONICS_CACHE_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = dir.path().join("sub/dataset.cache");
    assert!(
        stdout.contains(&format!("CHILD-OK 3 {}", expected.display())),
        "{stdout}"
    );
    let mut p = HttpProducer::from_url(&server.url("/d"), opts(&expected)).unwrap();
    assert_eq!(p.outcome(), CacheOutcome::Reused);
    assert_eq!(epoch(&mut p), data);
}
