//! Every failure mode names the URL and leaves no cache: statuses, truncation,
//! garbage, a refused connection, a stalled server; a server error then success is
//! retried.

use super::*;

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
    assert_eq!(epoch(&mut p), data);
    assert_eq!(server.request_count(), 2);
}
