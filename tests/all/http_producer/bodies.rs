//! Bodies: chunked and gzip decoding, a dropped connection resumed with Range (at
//! the decoded offset for gzip), a restart without range support.

use super::*;

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
    assert_eq!(epoch(&mut p), data);
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
    assert_eq!(epoch(&mut p), data);
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
    assert_eq!(epoch(&mut p), data);
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
    assert_eq!(epoch(&mut p), data);
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
        if let Some(start) = c.req.range_start() {
            c.respond_partial(start, &[etag], &body);
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
    assert_eq!(epoch(&mut p), data);
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
