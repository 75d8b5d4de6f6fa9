//! HTTP failures are typed: a caller tells a 404 from a refused connection, a TLS
//! failure, a timeout and a broken body by `Error::http_kind` and `Error::http_status`,
//! without reading the message. (The messages themselves are checked in `failures`.)

use std::net::TcpListener;

use harmonics_dataset::HttpErrorKind;

use super::*;

/// The error of opening `url` with `o` (no retries unless `o` says so), and the
/// message, which still names the URL.
fn failure(url: &str, o: HttpOptions) -> Error {
    let e = HttpProducer::from_url(url, o).unwrap_err();
    assert!(e.to_string().contains(url), "{e}");
    e
}

fn kind_and_status(e: &Error) -> (Option<HttpErrorKind>, Option<u16>) {
    (e.http_kind(), e.http_status())
}

#[test]
fn a_404_is_a_status_failure_carrying_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server::status("404 Not Found");
    let e = failure(&server.url("/missing"), opts(&dir.path().join("c.cache")));
    assert_eq!(
        kind_and_status(&e),
        (Some(HttpErrorKind::Status), Some(404)),
        "{e}"
    );
    assert!(
        matches!(
            e,
            Error::Http {
                status: Some(404),
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_server_error_that_outlasts_the_retries_keeps_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server::status("503 Service Unavailable");
    let o = HttpOptions {
        retries: 1,
        ..opts(&dir.path().join("c.cache"))
    };
    let e = failure(&server.url("/busy"), o);
    assert_eq!(
        kind_and_status(&e),
        (Some(HttpErrorKind::Status), Some(503)),
        "{e}"
    );
    assert_eq!(server.request_count(), 2, "one retry");
}

#[test]
fn a_refused_connection_is_a_connect_failure_without_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = failure(
        &format!("http://127.0.0.1:{port}/x"),
        opts(&dir.path().join("c.cache")),
    );
    assert_eq!(
        kind_and_status(&e),
        (Some(HttpErrorKind::Connect), None),
        "{e}"
    );
}

#[test]
fn https_to_a_server_that_answers_in_plain_http_is_a_tls_failure() {
    // The server writes an HTTP answer as soon as it accepts: the client's TLS
    // handshake reads it instead of a ServerHello.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let e = failure(
        &format!("https://127.0.0.1:{port}/x"),
        opts(&dir.path().join("c.cache")),
    );
    assert_eq!(kind_and_status(&e), (Some(HttpErrorKind::Tls), None), "{e}");
}

#[test]
fn a_stalled_body_is_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = http_server::stalling(wire_body(&records(3, 4)), 10);
    let o = HttpOptions {
        read_timeout: Duration::from_millis(300),
        ..opts(&dir.path().join("c.cache"))
    };
    let e = failure(&server.url("/slow"), o);
    assert_eq!(
        kind_and_status(&e),
        (Some(HttpErrorKind::Timeout), None),
        "{e}"
    );
}

#[test]
fn a_cut_or_garbled_body_is_a_body_failure() {
    let body = wire_body(&records(3, 4));
    for server in [
        http_server::truncated(body.clone(), body.len() - 5),
        TestServer::serving(b"<html>this is not a dataset</html>".to_vec()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let e = failure(&server.url("/d"), opts(&dir.path().join("c.cache")));
        assert_eq!(
            kind_and_status(&e),
            (Some(HttpErrorKind::Body), None),
            "{e}"
        );
    }
}

#[test]
fn an_error_that_is_not_http_has_no_http_kind() {
    let e = HttpProducer::from_url(
        "http://127.0.0.1:9/x",
        HttpOptions::cached_at(true, "../escapes"),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidName { .. }), "{e}");
    assert_eq!(kind_and_status(&e), (None, None));
}
