//! The download limit (an endless body, a Content-Length beyond it, the C field),
//! the message of a body cut with the server then gone, and an empty 200.

use super::*;

#[test]
fn an_endless_body_stops_at_the_download_limit_naming_url_and_limit() {
    // No Content-Length, records forever, until the client goes away.
    let chunk = wire_body(&records(64, 256));
    let server = TestServer::start(move |c| {
        let _ = c
            .stream
            .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        while !c.stop.load(Ordering::Relaxed) {
            if c.stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/endless");
    let limit = 1u64 << 20;
    let o = HttpOptions {
        max_bytes: Some(limit),
        ..opts(&dir.path().join("c.cache"))
    };
    let msg = http_error(&url, o, dir.path());
    println!("{msg}");
    assert!(msg.contains(&limit.to_string()), "{msg}");
    assert!(msg.contains("limit"), "{msg}");
    assert_eq!(server.request_count(), 1, "the limit is not retried");
}

#[test]
fn a_content_length_beyond_the_download_limit_is_refused_before_reading() {
    let body = wire_body(&records(100, 64));
    let len = body.len();
    let server = TestServer::serving(body);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/big");
    let o = HttpOptions {
        max_bytes: Some(1000),
        ..opts(&dir.path().join("c.cache"))
    };
    let msg = http_error(&url, o, dir.path());
    println!("{msg}");
    assert!(
        msg.contains("1000") && msg.contains(&len.to_string()),
        "{msg}"
    );
    // A body within the limit is unaffected.
    let o = HttpOptions {
        max_bytes: Some(len as u64),
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = HttpProducer::from_url(&url, o).unwrap();
    assert_eq!(epoch(&mut p), records(100, 64));
}

#[test]
fn the_c_download_limit_field_reaches_the_download() {
    use harmonics_dataset::ffi::http::*;
    use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus};
    let server = TestServer::serving(wire_body(&records(100, 64)));
    let url = std::ffi::CString::new(server.url("/big")).unwrap();
    let mut o = harmonics_http_options_default();
    assert_eq!(o.max_bytes, 0, "no limit by default");
    o.max_bytes = 1000;
    let mut out: *mut HarmonicsProducer = std::ptr::null_mut();
    // SAFETY: valid C string, options and out pointer.
    let status = unsafe { harmonics_http_producer_from_url(url.as_ptr(), &o, &mut out) };
    assert_ne!(status as u32, HarmonicsStatus::Ok as u32);
    assert!(out.is_null());
    let msg = last_error();
    assert!(msg.contains("limit of 1000 bytes"), "{msg}");
}

// Messages

#[test]
fn a_body_cut_with_the_server_then_gone_says_where_it_was_cut() {
    let body = wire_body(&records(20, 64));
    let keep = body.len() / 3;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/d", listener.local_addr().unwrap());
    let total = body.len();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        // No validator: the retries are new requests, which find nobody.
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body[..keep]).unwrap();
        // The listener closes with the connection: retries find nobody.
    });
    let dir = tempfile::tempdir().unwrap();
    let o = opts(&dir.path().join("c.cache"));
    // The server thread ends (closing both) before the client's first retry.
    let msg = std::thread::scope(|sc| {
        let h = sc.spawn(|| http_error(&url, o, dir.path()));
        server.join().unwrap();
        h.join().unwrap()
    });
    println!("{msg}");
    assert!(
        msg.contains(&format!("cut after {keep} of {total} bytes")),
        "the message does not say where the body was cut: {msg}"
    );
    assert!(msg.contains("refused"), "nor what the retries hit: {msg}");
}

// Empty body (issue 11)

#[test]
fn an_empty_200_is_an_error_naming_the_url_and_leaves_no_cache() {
    let server = TestServer::serving(Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/empty");
    let msg = http_error(&url, opts(&dir.path().join("c.cache")), dir.path());
    println!("{msg}");
    assert!(msg.contains("empty"), "{msg}");
    // The async producer reports it from its first call, and leaves nothing either.
    let mut p = AsyncHttpProducer::from_url(&url, opts(&dir.path().join("c.cache"))).unwrap();
    let err = p.size().unwrap_err().to_string();
    assert!(err.contains(&url) && err.contains("empty"), "{err}");
    drop(p);
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}
