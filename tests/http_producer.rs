//! HttpProducer against in-process servers on 127.0.0.1: the original runtime's
//! raw-socket server, offline reuse of the cache, every failure mode (no cache left
//! behind, the URL named), published cache files, validation, IPv6, revalidation,
//! damaged caches, retries with Range resume.

mod support;
use support::http_server;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use harmonics_dataset::cache::{CacheReader, CacheWriter, Metadata};
use harmonics_dataset::{Error, HttpOptions, HttpOutcome, HttpProducer, Producer, Tensor};
use http_server::{dropping_once_with_range, gzip_stored, records, wire_body, TestServer};

fn opts(cache_path: &Path) -> HttpOptions {
    HttpOptions {
        cache_path: cache_path.to_str().unwrap().to_string(),
        retries: 0,
        ..HttpOptions::default()
    }
}

/// Where the last record of a cache file ends: a first population writes the offset
/// index right after it (at the commit's `index_at`).
fn records_end(file: &[u8]) -> usize {
    let h = harmonics_dataset::cache::Header::decode(file, Path::new("cache")).unwrap();
    match h.commit.index_at as usize {
        0 => file.len(),
        at => at,
    }
}

fn all(p: &mut impl Producer) -> Vec<Tensor> {
    let n = p.size().unwrap();
    (0..n).map(|_| p.next().unwrap()).collect()
}

/// Every file in `dir` (dotfiles included), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// No cache and no temp file: at most the lock file.
fn assert_nothing_left(dir: &Path, name: &str) {
    let left: Vec<String> = files(dir)
        .into_iter()
        .filter(|f| *f != format!(".{name}.lock"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn original_style_server_then_offline_with_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = records(5, 3);
    let server = TestServer::serving(wire_body(&data));
    let port = server.port();
    let cache = dir.path().join("dataset.cache");

    let mut p =
        HttpProducer::new("127.0.0.1", port, "/data", true, cache.to_str().unwrap()).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(p.url(), format!("http://127.0.0.1:{port}/data"));
    assert_eq!(p.cache_path(), Some(cache.as_path()));
    assert_eq!(all(&mut p), data);
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
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(p.size().unwrap(), 5);
    assert_eq!(all(&mut p), data);
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
        assert_eq!(p.outcome(), HttpOutcome::Downloaded);
        assert_eq!(all(&mut p), data);
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
    assert_eq!(all(&mut p), data);
    assert!(files(dir.path()).is_empty());
    assert_eq!(server.request_count(), 3);
}

/// Opens `url` expecting an HTTP error; checks it names the URL and that nothing
/// was left in the cache directory. Returns the message.
fn expect_http_error(url: &str, o: HttpOptions, dir: &Path) -> String {
    let err = HttpProducer::from_url(url, o).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Http { .. }),
        "not an HTTP error: {msg}"
    );
    assert!(msg.contains(url), "{msg:?} does not name {url}");
    assert_nothing_left(dir, "c.cache");
    msg
}

#[test]
fn failures_name_the_url_and_leave_no_cache() {
    let data = records(3, 4);
    let body = wire_body(&data);

    let cases: Vec<(&str, TestServer, &str)> = vec![
        ("404", http_server::status("404 Not Found"), "404"),
        (
            "500",
            http_server::status("500 Internal Server Error"),
            "500",
        ),
        (
            "truncated mid-record (Content-Length announces more)",
            http_server::truncated(body.clone(), body.len() - 5),
            "truncated",
        ),
        (
            "truncated mid-record (no Content-Length, connection closed)",
            {
                let b = body.clone();
                TestServer::start(move |c| {
                    let _ = c
                        .stream
                        .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                    let _ = c.stream.write_all(&b[..b.len() - 5]);
                })
            },
            "record 2",
        ),
        (
            "bytes that are not records",
            TestServer::serving(b"<html>this is not a dataset</html>".to_vec()),
            "dtype",
        ),
        (
            "a record header claiming 4 GiB",
            {
                let mut b = vec![0u8, 1, 0, 0, 0, 1, 0, 0, 0];
                b.extend_from_slice(&u32::MAX.to_le_bytes());
                b.extend_from_slice(&[0u8; 64]);
                TestServer::serving(b)
            },
            "4294967295",
        ),
    ];
    for (what, server, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let url = server.url("/d");
        let msg = expect_http_error(&url, opts(&dir.path().join("c.cache")), dir.path());
        println!("{what}: {msg}");
        assert!(msg.contains(expect), "{what}: {msg:?} lacks {expect:?}");
    }
}

#[test]
fn connection_refused_is_an_http_error_after_the_retries() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/x");
    let o = HttpOptions {
        retries: 2,
        ..opts(&dir.path().join("c.cache"))
    };
    let msg = expect_http_error(&url, o, dir.path());
    println!("{msg}");
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(msg.contains("3 attempts"), "{msg}");
}

#[test]
fn a_stalled_server_hits_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let body = wire_body(&records(3, 4));
    let server = http_server::stalling(body, 10);
    let o = HttpOptions {
        read_timeout: Duration::from_millis(300),
        ..opts(&dir.path().join("c.cache"))
    };
    let msg = expect_http_error(&server.url("/slow"), o, dir.path());
    println!("{msg}");
    assert!(msg.contains("read timeout"), "{msg}");
}

#[test]
fn a_server_error_then_success_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let data = records(3, 2);
    let body = wire_body(&data);
    let server = TestServer::start(move |c| {
        if c.n == 0 {
            c.respond("503 Service Unavailable", &[], b"");
        } else {
            c.respond("200 OK", &[], &body);
        }
    });
    let o = HttpOptions {
        retries: 1,
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = HttpProducer::from_url(&server.url("/d"), o).unwrap();
    assert_eq!(all(&mut p), data);
    assert_eq!(server.request_count(), 2);
}

/// A cache file in the current format, as `cache_cli`/DiskCacheProducer publish it.
fn published_cache(data: &[Tensor], dir: &Path) -> Vec<u8> {
    let path = dir.join("published.cache");
    let mut w = CacheWriter::create(&path, Metadata::new("tok", "csv:train.csv")).unwrap();
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
    assert_eq!(all(&mut p), data);
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
    assert_eq!(all(&mut p), data);

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
    assert_eq!(all(&mut p), data);
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
            assert_eq!(all(&mut p), data);
            let mut p = HttpProducer::from_url(&server.url("/v6"), HttpOptions::default()).unwrap();
            assert_eq!(all(&mut p), data);
        }
        Err(e) => println!("skipped the IPv6 part: cannot bind [::1] on this machine ({e})"),
    }
    // A hostname (resolved to loopback).
    let server = TestServer::serving(body);
    let mut p = HttpProducer::new("localhost", server.port(), "/h", false, "");
    match &mut p {
        Ok(p) => assert_eq!(all(p), data),
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
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(all(&mut p), v1);
    let meta = CacheReader::open(&cache).unwrap().metadata().clone();
    assert_eq!(meta.etag, "\"v1\"");
    assert_eq!(meta.last_modified, "Wed, 25 Nov 2026 10:00:00 GMT");

    let reval = HttpOptions {
        revalidate: true,
        ..opts(&cache)
    };
    // Default policy: no request at all.
    let p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(server.request_count(), 1);
    // Revalidation: conditional GET, 304 keeps the cache.
    let mut p = HttpProducer::from_url(&url, reval.clone()).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::NotModified);
    assert_eq!(all(&mut p), v1);
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
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(all(&mut p), v2);
    assert_eq!(CacheReader::open(&cache).unwrap().metadata().etag, "\"v2\"");
    drop(p);
    // Revalidation with the server gone: the cache is kept, with a warning.
    server.stop();
    let mut p = HttpProducer::from_url(&url, reval).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(all(&mut p), v2);
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
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(all(&mut p), data, "the damaged record was never served");
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(server.request_count(), 2);

    // A damaged header: found at open, downloaded again.
    let mut bytes = std::fs::read(&cache).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(&cache, &bytes).unwrap();
    let mut p = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(p.outcome(), HttpOutcome::Downloaded);
    assert_eq!(all(&mut p), data);
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
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(all(&mut p), data);
}

#[test]
fn chunked_bodies_are_decoded() {
    let data = records(5, 7);
    let body = wire_body(&data);
    let server = TestServer::start(move |c| {
        let _ = c.stream.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        );
        for chunk in body.chunks(13) {
            let _ = write!(c.stream, "{:x}\r\n", chunk.len());
            let _ = c.stream.write_all(chunk);
            let _ = c.stream.write_all(b"\r\n");
        }
        let _ = c.stream.write_all(b"0\r\n\r\n");
    });
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/c"), opts(&dir.path().join("c.cache"))).unwrap();
    assert_eq!(all(&mut p), data);
}

#[test]
fn a_dropped_connection_is_resumed_with_range() {
    let data = records(50, 100);
    let body = wire_body(&data);
    let cut = body.len() / 2 + 7; // mid-record
    let server = dropping_once_with_range(body.clone(), cut);
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        retries: 2,
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = HttpProducer::from_url(&server.url("/d"), o).unwrap();
    assert_eq!(all(&mut p), data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].header("range"), None);
    assert_eq!(
        reqs[1].header("range"),
        Some(format!("bytes={cut}-").as_str())
    );
    assert_eq!(reqs[1].header("if-range"), Some("\"v1\""));
}

#[test]
fn without_range_support_a_dropped_download_restarts() {
    let data = records(20, 50);
    let body = wire_body(&data);
    let server = TestServer::start(move |c| {
        if c.n == 0 {
            c.head("200 OK", body.len(), &[]);
            let _ = c.stream.write_all(&body[..body.len() / 3]);
        } else {
            c.respond("200 OK", &[], &body);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        retries: 1,
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = HttpProducer::from_url(&server.url("/d"), o).unwrap();
    assert_eq!(all(&mut p), data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.header("range").is_none()));
    assert_eq!(files(dir.path()), [".c.cache.lock", "c.cache"]);
}

#[test]
fn gzip_bodies_are_decoded() {
    let data = records(30, 40);
    let body = wire_body(&data);
    let gz = gzip_stored(&body);
    let server = TestServer::start(move |c| {
        let gzip_ok = c
            .req
            .header("accept-encoding")
            .is_some_and(|e| e.contains("gzip"));
        if gzip_ok {
            c.respond("200 OK", &[("Content-Encoding", "gzip".into())], &gz);
        } else {
            c.respond("200 OK", &[], &body);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/gz"), opts(&dir.path().join("c.cache"))).unwrap();
    assert_eq!(all(&mut p), data);
    let reqs = server.requests();
    assert!(
        reqs[0]
            .header("accept-encoding")
            .unwrap_or("")
            .contains("gzip"),
        "{reqs:?}"
    );
}

#[test]
fn a_dropped_gzip_body_resumes_at_the_decoded_offset() {
    // The first response is gzip and dies mid-body; the resumed request asks for the
    // identity bytes from the decoded offset (a Range on a gzip body would count
    // compressed bytes).
    let data = records(40, 100);
    let body = wire_body(&data);
    let gz = gzip_stored(&body);
    let server = TestServer::start(move |c| {
        let etag = ("ETag", "\"v1\"".to_string());
        if let Some(r) = c.req.header("range") {
            let start: usize = r
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            let cr = (
                "Content-Range",
                format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
            );
            c.respond("206 Partial Content", &[etag, cr], &body[start..]);
        } else {
            c.head(
                "200 OK",
                gz.len(),
                &[
                    etag,
                    ("Content-Encoding", "gzip".into()),
                    ("Accept-Ranges", "bytes".into()),
                ],
            );
            let _ = c.stream.write_all(&gz[..gz.len() / 2]);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        retries: 2,
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = HttpProducer::from_url(&server.url("/gz"), o).unwrap();
    assert_eq!(all(&mut p), data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let range = reqs[1].header("range").expect("resumed with Range");
    let at: usize = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    println!("resumed at decoded byte {at} of {}", wire_body(&data).len());
    assert!(at > 0);
    assert_eq!(reqs[1].header("accept-encoding"), Some("identity"));
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
            "a_relative_cache_path_lives_under_harmonics_cache_dir",
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
    assert_eq!(p.outcome(), HttpOutcome::FromCache);
    assert_eq!(all(&mut p), data);
}
