//! HTTP under hostile and careless servers and users (DESIGN §8, issue 12's HTTP items
//! and issue 11's empty body), against in-process servers on 127.0.0.1:
//! - a resume after a cut never splices two versions: without a strong validator
//!   (only `Accept-Ranges`, only a weak ETag, a Last-Modified as new as the Date —
//!   also from a real nginx whose file was rewritten within one second) the download
//!   restarts from byte 0; with a strong Last-Modified it resumes under `If-Range`;
//! - a 206 is accepted only when it answers the range asked for, with the same total;
//! - `HttpOptions::max_bytes` stops an endless body (and refuses a Content-Length
//!   beyond it) naming the URL and the limit, leaving no cache file;
//! - a body cut with the server then gone says where it was cut, and what the
//!   retries then hit;
//! - an empty 200 is an error naming the URL, not a dataset of zero records;
//! - dropping an `AsyncHttpProducer` returns while its thread is still blocked
//!   (another process's cache lock, a server that never answers);
//! - views served while following a download are 8-byte aligned (Rust and C view).

mod support;
use support::fault_proxy;
use support::http_server;
use support::nginx;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use fault_proxy::{FaultProxy, Faults};
use harmonics_dataset::cache::lock_path;
use harmonics_dataset::http::{AsyncHttpProducer, HttpOptions, HttpProducer};
use harmonics_dataset::{DType, Error, Producer, Tensor};
use http_server::{records, wire_body, Conn, TestServer};
use nginx::Nginx;

fn opts(cache: &Path) -> HttpOptions {
    HttpOptions {
        cache_path: cache.to_str().unwrap().to_string(),
        retries: 2,
        ..HttpOptions::default()
    }
}

/// Files in `dir` other than the lock companion (which holds no data).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !(n.starts_with('.') && n.ends_with(".lock"))
        })
        .collect();
    v.sort();
    v
}

fn epoch(p: &mut dyn Producer) -> Vec<Tensor> {
    let n = p.size().unwrap();
    (0..n).map(|_| p.next().unwrap()).collect()
}

/// The HTTP error of opening `url`, checked to name the URL and leave no cache.
fn http_error(url: &str, o: HttpOptions, dir: &Path) -> String {
    let msg = match HttpProducer::from_url(url, o) {
        Ok(p) => panic!("{url} gave a producer of {} records", p.len()),
        Err(e @ Error::Http { .. }) => e.to_string(),
        Err(e) => panic!("not an HTTP error: {e}"),
    };
    assert!(msg.contains(url), "{msg:?} does not name {url}");
    assert_eq!(leftovers(dir), Vec::<PathBuf>::new(), "after: {msg}");
    msg
}

/// An HTTP date `secs` seconds from now (negative: in the past).
fn http_date(secs: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs((-secs) as u64)
    };
    httpdate::fmt_http_date(t)
}

// ---------------------------------------------------------------------------
// Resume only with a strong validator

/// A server whose resource changes from version A to version B (same length) the
/// moment it cuts the first response half-way. It honours `Range: bytes=N-` with a
/// 206 of the *current* version, whatever If-Range says (as a server must, when the
/// validator it was given is weak or absent). `headers` are sent on every response.
fn changing_server(a: Vec<u8>, b: Vec<u8>, headers: Vec<(&'static str, String)>) -> TestServer {
    assert_eq!(a.len(), b.len());
    TestServer::start(move |c: &mut Conn<'_>| {
        let h: Vec<(&str, String)> = headers.clone();
        if let Some(r) = c.req.header("range") {
            let start: usize = r
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            let mut h = h;
            h.push((
                "Content-Range",
                format!("bytes {start}-{}/{}", b.len() - 1, b.len()),
            ));
            c.respond("206 Partial Content", &h, &b[start..]);
        } else if c.n == 0 {
            c.head("200 OK", a.len(), &h);
            let _ = c.stream.write_all(&a[..a.len() / 2]);
        } else {
            c.respond("200 OK", &h, &b);
        }
    })
}

/// Another version of `records`: same shapes and lengths, other values.
fn negated(records: &[Tensor]) -> Vec<Tensor> {
    records
        .iter()
        .map(|t| Tensor::from_f32(&t.to_f32().iter().map(|v| -v - 1.0).collect::<Vec<_>>()))
        .collect()
}

/// Downloads from a `changing_server` with `headers`; returns the records and
/// whether any request asked for a Range.
fn download_across_a_change(headers: Vec<(&'static str, String)>) -> (bool, Vec<Tensor>) {
    let (a, b) = (records(40, 16), negated(&records(40, 16)));
    let server = changing_server(wire_body(&a), wire_body(&b), headers);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache")))
        .expect("the download recovers from the cut");
    let got = epoch(&mut p);
    let ranged = server
        .requests()
        .iter()
        .any(|r| r.header("range").is_some());
    assert_eq!(got, b, "records of version A were mixed into version B");
    (ranged, got)
}

#[test]
fn resume_with_only_accept_ranges_restarts_from_zero_instead_of_splicing() {
    let (ranged, _) = download_across_a_change(vec![("Accept-Ranges", "bytes".into())]);
    assert!(!ranged, "resumed with Range without any validator");
}

#[test]
fn resume_with_only_a_weak_etag_restarts_from_zero_instead_of_splicing() {
    let (ranged, _) = download_across_a_change(vec![
        ("Accept-Ranges", "bytes".into()),
        ("ETag", "W/\"v\"".into()),
    ]);
    assert!(!ranged, "resumed with Range on a weak ETag");
}

#[test]
fn resume_with_a_last_modified_as_new_as_the_date_restarts_from_zero() {
    // RFC 9110 §8.8.2.2: a Last-Modified less than a second before the Date is weak
    // (the file may change again within the same second).
    let now = http_date(0);
    let (ranged, _) = download_across_a_change(vec![
        ("Accept-Ranges", "bytes".into()),
        ("Last-Modified", now.clone()),
        ("Date", now),
    ]);
    assert!(!ranged, "resumed with Range on a weak Last-Modified");
}

#[test]
fn resume_with_a_strong_last_modified_uses_if_range() {
    let body = wire_body(&records(40, 16));
    let lm = http_date(-3600);
    let server = {
        let (body, lm) = (body.clone(), lm.clone());
        TestServer::start(move |c| {
            let h = vec![
                ("Last-Modified", lm.clone()),
                ("Date", http_date(0)),
                ("Accept-Ranges", "bytes".to_string()),
            ];
            match c.req.header("range") {
                Some(r) if c.req.header("if-range") == Some(lm.as_str()) => {
                    let start: usize = r
                        .trim_start_matches("bytes=")
                        .trim_end_matches('-')
                        .parse()
                        .unwrap();
                    let mut h = h;
                    let cr = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
                    h.push(("Content-Range", cr));
                    c.respond("206 Partial Content", &h, &body[start..]);
                }
                _ if c.n == 0 => {
                    c.head("200 OK", body.len(), &h);
                    let _ = c.stream.write_all(&body[..body.len() / 2]);
                }
                _ => c.respond("200 OK", &h, &body),
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    assert_eq!(epoch(&mut p), records(40, 16));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[1].header("if-range"), Some(lm.as_str()), "{reqs:#?}");
    assert!(reqs[1].header("range").is_some());
}

/// A whole second `secs` from now: nginx's Last-Modified has second resolution.
fn whole_second(secs: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(now + secs)
}

/// nginx serving version A at `/identity/data.bin` with `mtime`, behind a proxy that
/// hides its ETag (so Last-Modified is the only validator) and cuts the first
/// response half-way, replacing the file by `b` (same length) with `b_mtime` then.
fn nginx_cut_and_replace(
    a: &[Tensor],
    b: &[Tensor],
    mtime: SystemTime,
    b_mtime: SystemTime,
) -> (Nginx, FaultProxy) {
    let server = Nginx::start();
    let (body_a, body_b) = (wire_body(a), wire_body(b));
    assert_eq!(body_a.len(), body_b.len());
    server.publish_with_mtime("data.bin", &body_a, mtime);
    let www = server.www();
    let faults = Faults {
        cut: vec![(0, body_a.len() as u64 / 2)],
        strip_response_headers: vec!["ETag".into()],
        on_cut: Some(Arc::new(move || {
            nginx::publish_file(&www, "data.bin", &body_b, Some(b_mtime));
        })),
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), faults);
    (server, proxy)
}

#[test]
fn nginx_file_rewritten_within_its_last_modified_second_is_restarted_not_spliced() {
    // Both versions carry the same Last-Modified (rewritten within one second, as
    // a job writing a dataset twice does): If-Range with it would match and nginx
    // would send the tail of B after the head of A. The Last-Modified is not older
    // than the Date, hence weak: the client must not resume at all.
    let (a, b) = (records(400, 16), negated(&records(400, 16)));
    let t = whole_second(30);
    let (_server, proxy) = nginx_cut_and_replace(&a, &b, t, t);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        opts(&dir.path().join("c.cache")),
    )
    .unwrap();
    let got = epoch(&mut p);
    let ex = proxy.exchanges();
    assert!(ex[0].cut, "{ex:#?}");
    assert!(
        ex.iter().all(|e| e.status != 206),
        "a part was used: {ex:#?}"
    );
    assert_eq!(
        ex[1].range_start(),
        None,
        "the retry starts over: {:#?}",
        ex[1]
    );
    assert_eq!(got, b, "records of version A were mixed into version B");
}

#[test]
fn nginx_without_etag_resumes_under_if_range_with_a_strong_last_modified() {
    // The same without a change: a Last-Modified an hour old is strong, and the
    // resume is a 206 guarded by it.
    let a = records(400, 16);
    let t = whole_second(0) - Duration::from_secs(3600);
    let (_server, proxy) = nginx_cut_and_replace(&a, &a, t, t);
    let dir = tempfile::tempdir().unwrap();
    let mut p = HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        opts(&dir.path().join("c.cache")),
    )
    .unwrap();
    assert_eq!(epoch(&mut p), a);
    let ex = proxy.exchanges();
    assert_eq!(ex.len(), 2, "{ex:#?}");
    assert!(ex[1].range_start().is_some_and(|s| s > 0), "{:#?}", ex[1]);
    assert_eq!(
        ex[1].request_header("if-range"),
        ex[0].response_header("last-modified")
    );
    assert_eq!(ex[1].status, 206);
}

// ---------------------------------------------------------------------------
// A 206 only as the answer to the range asked for

#[test]
fn a_206_to_a_request_without_range_is_an_error_not_a_complete_dataset() {
    let body = wire_body(&records(10, 16));
    let half = body.len() / 2;
    let server = {
        let body = body.clone();
        TestServer::start(move |c| {
            let cr = (
                "Content-Range",
                format!("bytes 0-{}/{}", half - 1, body.len()),
            );
            c.respond("206 Partial Content", &[cr], &body[..half]);
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/d");
    let msg = http_error(&url, opts(&dir.path().join("c.cache")), dir.path());
    println!("{msg}");
    assert!(msg.contains("206"), "{msg}");
    assert!(!dir.path().join("c.cache").exists());
}

#[test]
fn a_206_resume_with_another_total_restarts_from_zero() {
    // After the cut, the resource grew: the server answers the resume with a 206
    // whose start is right but whose total is not the body's. Its tail must not be
    // appended to the head already received.
    let a = records(40, 16);
    let b = negated(&records(60, 16));
    let (body_a, body_b) = (wire_body(&a), wire_body(&b));
    let server = {
        TestServer::start(move |c| {
            let h = vec![("ETag", "\"x\"".to_string())];
            if let Some(r) = c.req.header("range") {
                let start: usize = r
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                let mut h = h;
                let cr = format!("bytes {start}-{}/{}", body_b.len() - 1, body_b.len());
                h.push(("Content-Range", cr));
                c.respond("206 Partial Content", &h, &body_b[start..]);
            } else if c.n == 0 {
                c.head("200 OK", body_a.len(), &h);
                let _ = c.stream.write_all(&body_a[..body_a.len() / 2]);
            } else {
                c.respond("200 OK", &h, &body_b);
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        HttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    let got = epoch(&mut p);
    assert_eq!(
        got.len(),
        b.len(),
        "a spliced body of {} records",
        got.len()
    );
    assert_eq!(got, b);
    let last = server.requests().pop().unwrap();
    assert_eq!(last.header("range"), None, "the final request starts over");
}

// ---------------------------------------------------------------------------
// Download limit

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

fn last_error() -> String {
    use harmonics_dataset::ffi::error::harmonics_last_error_message;
    // SAFETY: returns a NUL-terminated thread-local string (or null).
    unsafe {
        let p = harmonics_last_error_message();
        assert!(!p.is_null());
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// Dropping an AsyncHttpProducer while its thread is blocked

/// Drops `p` in another thread; true when the drop returned within a generous
/// guard (which only keeps a failing test from hanging).
fn drop_returns(p: AsyncHttpProducer) -> bool {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        drop(p);
        let _ = tx.send(started.elapsed());
    });
    match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(took) => {
            println!("drop took {took:?}");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn dropping_while_another_process_holds_the_cache_lock_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let server = TestServer::serving(wire_body(&records(5, 4)));
    // Another open file description of the lock file: flock conflicts with it as it
    // would with another process.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(lock_path(&cache))
        .unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let p = AsyncHttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    // Give the thread time to reach the lock (not a limit: it blocks there anyway).
    std::thread::sleep(Duration::from_millis(200));
    let returned = drop_returns(p);
    let still_locked = {
        let again = std::fs::File::open(lock_path(&cache)).unwrap();
        // SAFETY: a valid descriptor.
        unsafe { libc::flock(again.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
    };
    drop(lock);
    assert!(returned, "drop waited for the cache lock held elsewhere");
    assert!(still_locked, "the lock was still held when drop returned");
    // The detached thread, once it gets the lock, must not download or publish.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.request_count(), 0, "a request after the drop");
    assert!(!cache.exists(), "a cache was published after the drop");
}

#[test]
fn dropping_while_the_server_never_answers_returns_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/d", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    // Accepts and holds the connection without a byte of answer.
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let _ = tx.send(());
        std::thread::sleep(Duration::from_secs(60));
        drop(s);
    });
    let dir = tempfile::tempdir().unwrap();
    let p = AsyncHttpProducer::from_url(&url, opts(&dir.path().join("c.cache"))).unwrap();
    rx.recv_timeout(Duration::from_secs(15))
        .expect("the producer connected");
    assert!(
        drop_returns(p),
        "drop waited for a server that never answers"
    );
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}

// ---------------------------------------------------------------------------
// Aligned views while following

/// Records whose wire headers have different lengths (1-D, 2-D, 3-D), of 8-byte
/// elements, so that every data offset modulo 8 differs.
fn mixed_records(n: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| {
            let shape = match i % 3 {
                0 => vec![3],
                1 => vec![2, 3],
                _ => vec![1, 2, 2],
            };
            let count: usize = shape.iter().product();
            let data: Vec<u8> = (0..count)
                .flat_map(|j| ((i * 100 + j) as f64).to_le_bytes())
                .collect();
            Tensor::new(DType::Float64, shape, data)
        })
        .collect()
}

/// Sends the first `first` records, then holds the rest back until `release`.
fn held_back(records: &[Tensor], first: usize, release: Arc<AtomicBool>) -> TestServer {
    let head = wire_body(&records[..first]);
    let rest = wire_body(&records[first..]);
    TestServer::start(move |c| {
        c.head("200 OK", head.len() + rest.len(), &[]);
        let _ = c.stream.write_all(&head);
        let _ = c.stream.flush();
        while !release.load(Ordering::Relaxed) {
            if !c.sleep(Duration::from_millis(5)) {
                return;
            }
        }
        let _ = c.stream.write_all(&rest);
    })
}

#[test]
fn views_served_while_following_are_8_byte_aligned() {
    let recs = mixed_records(30);
    let release = Arc::new(AtomicBool::new(false));
    let server = held_back(&recs, 9, release.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        AsyncHttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    // The rest is held back: these 9 come from the growing temp file.
    for (i, want) in recs[..9].iter().enumerate() {
        let v = p.next_view().unwrap();
        assert_eq!(
            v.data.as_ptr() as usize % 8,
            0,
            "record {i} while following"
        );
        assert_eq!((v.shape, v.data), (&want.shape[..], &want.data[..]));
    }
    release.store(true, Ordering::Relaxed);
    for (i, want) in recs.iter().enumerate().skip(9) {
        let v = p.next_view().unwrap();
        assert_eq!(v.data.as_ptr() as usize % 8, 0, "record {i}");
        assert_eq!((v.shape, v.data), (&want.shape[..], &want.data[..]));
    }
}

#[test]
fn c_views_served_while_following_are_8_byte_aligned() {
    use harmonics_dataset::ffi::http::*;
    use harmonics_dataset::ffi::producer::*;
    use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus, HarmonicsTensorView};
    let recs = mixed_records(12);
    let release = Arc::new(AtomicBool::new(false));
    let server = held_back(&recs, 6, release.clone());
    let url = std::ffi::CString::new(server.url("/d")).unwrap();
    let mut out: *mut HarmonicsProducer = std::ptr::null_mut();
    // SAFETY: valid C string; null options mean the defaults (no persistent cache).
    let status =
        unsafe { harmonics_async_http_producer_from_url(url.as_ptr(), std::ptr::null(), &mut out) };
    assert_eq!(
        status as u32,
        HarmonicsStatus::Ok as u32,
        "{}",
        last_error()
    );
    for (i, want) in recs.iter().enumerate() {
        if i == 6 {
            release.store(true, Ordering::Relaxed);
        }
        let mut v = std::mem::MaybeUninit::<HarmonicsTensorView>::uninit();
        // SAFETY: a live handle and a writable view.
        let st = unsafe { harmonics_producer_next_view(out, v.as_mut_ptr()) };
        assert_eq!(st as u32, HarmonicsStatus::Ok as u32, "{}", last_error());
        // SAFETY: written by the successful call.
        let v = unsafe { v.assume_init() };
        assert_eq!(v.data as usize % 8, 0, "C view of record {i}");
        // SAFETY: the view is valid until the next call on the handle.
        let data = unsafe { std::slice::from_raw_parts(v.data, v.nbytes) };
        assert_eq!(data, &want.data[..], "record {i}");
    }
    // SAFETY: the handle from the constructor, freed once.
    unsafe { harmonics_producer_free(out) };
}

#[test]
fn dropping_mid_download_returns_at_once_and_the_thread_publishes_nothing_later() {
    // The server sends a few records, then stalls until it is stopped. The default
    // read timeout (30 s) keeps the thread blocked in its read long after the drop.
    let recs = records(50, 64);
    let body = wire_body(&recs);
    let server = http_server::stalling(body, 4000);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("c.cache");
    let mut p = AsyncHttpProducer::from_url(&server.url("/d"), opts(&cache)).unwrap();
    // Every complete record sent: the thread is then blocked reading the rest.
    let sent = 4000 / wire_body(&recs[..1]).len();
    for want in &recs[..sent] {
        assert_eq!(&p.next().unwrap(), want, "following the download");
    }
    let temps = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".c.cache.") && !n.ends_with(".lock"))
            .count()
    };
    assert_eq!(temps(), 1, "the download's temp file");
    assert!(drop_returns(p), "drop waited for the stalled read");
    // Unblock the detached thread: its read ends, and it must remove its temp file
    // without publishing anything.
    server.stop();
    let mut waited = 0;
    while temps() > 0 && waited < 1500 {
        std::thread::sleep(Duration::from_millis(10));
        waited += 1;
    }
    assert_eq!(temps(), 0, "the temp file outlived the thread");
    assert!(
        !cache.exists(),
        "a cut download was published after the drop"
    );
}
