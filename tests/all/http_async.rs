//! AsyncHttpProducer against in-process servers on 127.0.0.1: records are served
//! while the body is still arriving, `size` waits only until the count is known, a
//! background failure surfaces on the next call, results equal HttpProducer's.

use crate::support;
use support::http_server;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harmonics_dataset::cache::{CacheLock, CacheWriter, Metadata};
use harmonics_dataset::{
    AsyncHttpProducer, CacheOutcome, Error, HttpOptions, HttpProducer, Producer, Tensor,
};
use http_server::{records, wire_body, wire_chunks, TestServer};
use support::http_fixtures::{cache_options, files, published_cache};

fn opts(cache_path: &Path) -> HttpOptions {
    cache_options(cache_path, 0)
}

#[test]
fn the_first_record_arrives_before_the_body_completes() {
    let n = 8;
    let data = records(n, 64);
    let sent = Arc::new(AtomicUsize::new(0));
    let server = http_server::slow(
        wire_chunks(&data),
        Duration::from_millis(300),
        sent.clone(),
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("slow.cache");

    let t0 = Instant::now();
    let mut p = AsyncHttpProducer::from_url(&server.url("/slow"), opts(&cache)).unwrap();
    let first = p.next().unwrap();
    let t_first = t0.elapsed();
    let sent_at_first = sent.load(Ordering::SeqCst);
    assert_eq!(first, data[0]);
    let mut got = vec![first];
    for _ in 1..n {
        got.push(p.next().unwrap());
    }
    let t_all = t0.elapsed();
    println!(
        "async: first record after {:.0} ms (server had sent {sent_at_first} of {n} records), \
         all {n} after {:.0} ms",
        t_first.as_secs_f64() * 1e3,
        t_all.as_secs_f64() * 1e3
    );
    assert!(
        sent_at_first < n,
        "record 0 was only returned after the whole body ({sent_at_first} of {n} sent)"
    );
    assert_eq!(got, data);
    // size() is known; next() cycles; the cache was published under its name.
    assert_eq!(p.size().unwrap(), n);
    assert_eq!(p.next().unwrap(), data[0]);
    assert_eq!(p.outcome(), CacheOutcome::Created);
    assert_eq!(files(dir.path()), [".slow.cache.lock", "slow.cache"]);
    drop(p);

    // Same results as HttpProducer reading the cache it left; and with the server
    // stopped, the async producer opens the cache without a thread.
    // (The same URL: a cache made from another URL would be downloaded again.)
    let url = server.url("/slow");
    server.stop();
    let mut a = AsyncHttpProducer::from_url(&url, opts(&cache)).unwrap();
    assert_eq!(a.outcome(), CacheOutcome::Reused);
    let mut s = HttpProducer::from_url(&url, opts(&cache)).unwrap();
    for t in &data {
        assert_eq!(&a.next().unwrap(), t);
        assert_eq!(&s.next().unwrap(), t);
    }
}

#[test]
fn size_waits_until_the_count_is_known() {
    let n = 5;
    let data = records(n, 8);
    let sent = Arc::new(AtomicUsize::new(0));
    let server = http_server::slow(
        wire_chunks(&data),
        Duration::from_millis(100),
        sent.clone(),
        false,
    );
    let mut p = AsyncHttpProducer::from_url(
        &server.url("/"),
        HttpOptions {
            cache: false,
            ..HttpOptions::default()
        },
    )
    .unwrap();
    // Concatenated records carry no count: size() waits for the end of the body.
    assert_eq!(p.size().unwrap(), n);
    assert_eq!(sent.load(Ordering::SeqCst), n);
    let got: Vec<Tensor> = (0..n).map(|_| p.next().unwrap()).collect();
    assert_eq!(got, data);
}

#[test]
fn a_published_cache_file_gives_its_size_before_the_body_completes() {
    let n = 6;
    let data = records(n, 32);
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("pub.cache");
    let lock = CacheLock::exclusive(&path).unwrap();
    let mut w = CacheWriter::create(&path, Metadata::new("", "test"), &lock).unwrap();
    for t in &data {
        w.push(t.as_ref()).unwrap();
    }
    w.finish().unwrap();
    drop(lock);
    let file = std::fs::read(&path).unwrap();
    // First chunk: header and first frame; the rest in two slow chunks.
    let cut1 = 64 * 4;
    let cut2 = file.len() - 40;
    let chunks = vec![
        file[..cut1].to_vec(),
        file[cut1..cut2].to_vec(),
        file[cut2..].to_vec(),
    ];
    let sent = Arc::new(AtomicUsize::new(0));
    let server = http_server::slow(chunks, Duration::from_millis(300), sent.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let mut p = AsyncHttpProducer::from_url(&server.url("/pub.cache"), opts(&dir.path().join("c")))
        .unwrap();
    assert_eq!(p.size().unwrap(), n);
    let sent_at_size = sent.load(Ordering::SeqCst);
    println!("size() returned when {sent_at_size} of 3 chunks had been sent");
    assert!(sent_at_size < 3, "size() waited for the whole body");
    let got: Vec<Tensor> = (0..n).map(|_| p.next().unwrap()).collect();
    assert_eq!(got, data);
}

#[test]
fn a_failure_mid_body_surfaces_on_the_next_call_and_leaves_no_cache() {
    let data = records(3, 16);
    let sent = Arc::new(AtomicUsize::new(0));
    let server = http_server::slow(
        wire_chunks(&data),
        Duration::from_millis(150),
        sent.clone(),
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/broken");
    let mut p = AsyncHttpProducer::from_url(&url, opts(&dir.path().join("c.cache"))).unwrap();
    // The records that arrived are served...
    for t in &data {
        assert_eq!(&p.next().unwrap(), t);
    }
    // ...then the truncated body surfaces as an error naming the URL, on every call.
    let err = p.next().unwrap_err();
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, Error::Http { .. }), "{msg}");
    assert!(msg.contains(&url) && msg.contains("truncated"), "{msg}");
    let again = p.next().unwrap_err().to_string();
    assert!(again.contains(&url), "{again}");
    assert!(p.size().is_err());
    drop(p);
    assert_eq!(files(dir.path()), [".c.cache.lock"]);
}

#[test]
fn a_restarted_download_keeps_serving_in_order() {
    // The first response is cut after 3 records (no Range support): the download
    // restarts from scratch while the reader has already consumed records.
    let data = records(6, 10);
    let chunks = wire_chunks(&data);
    let server = TestServer::start(move |c| {
        let total: usize = chunks.iter().map(Vec::len).sum();
        c.head("200 OK", total, &[]);
        let upto = if c.n == 0 { 3 } else { chunks.len() };
        for chunk in &chunks[..upto] {
            let _ = c.stream.write_all(chunk);
            let _ = c.stream.flush();
            if !c.sleep(Duration::from_millis(80)) {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        retries: 1,
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = AsyncHttpProducer::from_url(&server.url("/r"), o).unwrap();
    let got: Vec<Tensor> = (0..data.len()).map(|_| p.next().unwrap()).collect();
    assert_eq!(got, data);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn dropping_mid_download_stops_the_thread_and_leaves_nothing() {
    let data = records(50, 4);
    let sent = Arc::new(AtomicUsize::new(0));
    let server = http_server::slow(
        wire_chunks(&data),
        Duration::from_millis(200),
        sent.clone(),
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        AsyncHttpProducer::from_url(&server.url("/d"), opts(&dir.path().join("c.cache"))).unwrap();
    assert_eq!(p.next().unwrap(), data[0]);
    let t = Instant::now();
    drop(p);
    println!(
        "drop joined the download thread after {:.0} ms, {} of 50 records sent",
        t.elapsed().as_secs_f64() * 1e3,
        sent.load(Ordering::SeqCst)
    );
    assert!(sent.load(Ordering::SeqCst) < 50);
    assert_eq!(files(dir.path()), [".c.cache.lock"]);
}

#[test]
fn validate_applies_while_streaming() {
    let mut data = records(3, 4);
    data.push(Tensor::from_f32(&[1.0]));
    let server = TestServer::serving(wire_body(&data));
    let mut p = AsyncHttpProducer::from_url(
        &server.url("/"),
        HttpOptions {
            cache: false,
            validate: true,
            retries: 0,
            ..HttpOptions::default()
        },
    )
    .unwrap();
    let mut first_err = None;
    for _ in 0..5 {
        if let Err(e) = p.next() {
            first_err = Some(e.to_string());
            break;
        }
    }
    let msg = first_err.expect("the odd record was refused");
    assert!(
        msg.contains("record 3") && msg.contains("float32[1]"),
        "{msg}"
    );
}

/// The C ABI: options, both producers by URL and by host/port/path, the ordinary
/// producer calls on the handles, a disk cache over an HTTP handle, null arguments.
#[test]
fn the_c_abi_drives_both_producers() {
    use harmonics_dataset::ffi::disk_cache::harmonics_disk_cache_new;
    use harmonics_dataset::ffi::error::harmonics_last_error_message;
    use harmonics_dataset::ffi::http::*;
    use harmonics_dataset::ffi::producer::*;
    use harmonics_dataset::ffi::{HarmonicsStatus, HarmonicsTensorView};
    use std::ffi::{CStr, CString};

    let data = records(4, 3);
    let server = TestServer::serving(wire_body(&data));
    let dir = tempfile::tempdir().unwrap();
    let cache = CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
    let url = CString::new(server.url("/d")).unwrap();
    let host = CString::new("127.0.0.1").unwrap();
    let last_error = || {
        unsafe { CStr::from_ptr(harmonics_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    };
    unsafe {
        let mut o = harmonics_http_options_default();
        assert!(o.cache && o.cache_path.is_null() && o.retries == 3);
        assert_eq!((o.connect_timeout_ms, o.read_timeout_ms), (10_000, 30_000));
        o.cache_path = cache.as_ptr();
        o.retries = 0;

        type Ctor = unsafe extern "C" fn(
            *const std::ffi::c_char,
            *const HarmonicsHttpOptions,
            *mut *mut HarmonicsProducer,
        ) -> HarmonicsStatus;
        for ctor in [
            harmonics_http_producer_from_url as Ctor,
            harmonics_async_http_producer_from_url as Ctor,
        ] {
            let mut p = std::ptr::null_mut();
            assert_eq!(
                ctor(url.as_ptr(), &o, &mut p),
                HarmonicsStatus::Ok,
                "{}",
                last_error()
            );
            let mut n = 0usize;
            assert_eq!(harmonics_producer_size(p, &mut n), HarmonicsStatus::Ok);
            assert_eq!(n, 4);
            for t in data.iter().chain(data.iter().take(1)) {
                let mut v = std::mem::zeroed::<HarmonicsTensorView>();
                assert_eq!(harmonics_producer_next_view(p, &mut v), HarmonicsStatus::Ok);
                let bytes = std::slice::from_raw_parts(v.data, v.nbytes);
                assert_eq!(bytes, t.data.as_slice());
            }
            harmonics_producer_free(p);
        }
        // Host/port/path, no cache (NULL options = defaults, path NULL = "/").
        for ctor in [
            harmonics_http_producer_new,
            harmonics_async_http_producer_new,
        ] {
            let mut p = std::ptr::null_mut();
            let path = CString::new("d").unwrap();
            assert_eq!(
                ctor(
                    host.as_ptr(),
                    server.port(),
                    path.as_ptr(),
                    std::ptr::null(),
                    &mut p
                ),
                HarmonicsStatus::Ok,
                "{}",
                last_error()
            );
            // A disk cache over the HTTP handle reads it Rust-side.
            let name = CString::new(dir.path().join("dc.cache").to_str().unwrap()).unwrap();
            let mut dc = std::ptr::null_mut();
            assert_eq!(
                harmonics_disk_cache_new(p, name.as_ptr(), std::ptr::null(), &mut dc),
                HarmonicsStatus::Ok,
                "{}",
                last_error()
            );
            let mut n = 0usize;
            assert_eq!(harmonics_producer_size(dc, &mut n), HarmonicsStatus::Ok);
            assert_eq!(n, 4);
            harmonics_producer_free(dc);
            harmonics_producer_free(p);
        }
        // Errors: null arguments, an HTTP failure naming the URL.
        let mut p = std::ptr::null_mut();
        assert_eq!(
            harmonics_http_producer_from_url(std::ptr::null(), &o, &mut p),
            HarmonicsStatus::NullArgument
        );
        assert!(last_error().contains("url"));
        assert_eq!(
            harmonics_http_producer_from_url(url.as_ptr(), &o, std::ptr::null_mut()),
            HarmonicsStatus::NullArgument
        );
        let status_server = http_server::status("404 Not Found");
        let missing404 = CString::new(status_server.url("/missing")).unwrap();
        o.cache_path = std::ptr::null();
        assert_eq!(
            harmonics_async_http_producer_from_url(missing404.as_ptr(), &o, &mut p),
            HarmonicsStatus::Ok
        );
        let mut n = 0usize;
        assert_eq!(harmonics_producer_size(p, &mut n), HarmonicsStatus::Http);
        assert!(
            last_error().contains(missing404.to_str().unwrap()),
            "{}",
            last_error()
        );
        harmonics_producer_free(p);
        assert_eq!(
            harmonics_http_producer_from_url(missing404.as_ptr(), &o, &mut p),
            HarmonicsStatus::Http
        );
        assert!(last_error().contains("404"), "{}", last_error());
    }
}

// The object changes mid-download (issue 20, defect 5): never a mix of two versions

/// Version B of `records(n, width)`: the same shapes, other values.
fn version_b(n: usize, width: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| Tensor::from_f32(&vec![-(i as f32) - 0.5; width]))
        .collect()
}

/// A server whose object is `a` (ETag "a") until `release` is set, then `b` (ETag "b").
/// - A whole-object GET of `a` sends its first `keep` bytes, waits for `release`,
///   then drops the connection (the object changes at that moment); with `keep` at
///   the full length, it sends all of `a` (a parallel download's piece 0).
/// - A ranged GET with `If-Match` (a parallel download's piece) waits for `release`,
///   then is answered 412 unless the ETag still matches; with `If-Range`, a 206 if the
///   validator matches, else a 200 with the whole current object (RFC 9110).
fn swapping_server(a: Vec<u8>, b: Vec<u8>, keep: usize, release: Arc<AtomicBool>) -> TestServer {
    TestServer::start(move |c| {
        let wait = |c: &http_server::Conn<'_>| {
            while !release.load(Ordering::SeqCst) {
                if !c.sleep(Duration::from_millis(5)) {
                    return false;
                }
            }
            true
        };
        let changed = |c: &http_server::Conn<'_>| {
            c.req.header("range").is_some() && c.req.header("if-match").is_some()
        };
        if changed(c) && !wait(c) {
            return;
        }
        let v = release.load(Ordering::SeqCst);
        let (body, etag) = if v { (&b, "\"b\"") } else { (&a, "\"a\"") };
        let h = vec![
            ("ETag", etag.to_string()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        let range = c.req.header("range").map(|r| {
            let (x, y) = r.trim_start_matches("bytes=").split_once('-').unwrap();
            let last = if y.is_empty() {
                body.len() - 1
            } else {
                y.parse().unwrap()
            };
            (x.parse::<usize>().unwrap(), last)
        });
        let validator = c.req.header("if-match").or(c.req.header("if-range"));
        match (range, validator) {
            (Some(_), Some(t)) if t != etag && c.req.header("if-match").is_some() => {
                c.respond("412 Precondition Failed", &h, b"")
            }
            (Some((x, y)), Some(t)) if t == etag => {
                let mut h = h.clone();
                h.push(("Content-Range", format!("bytes {x}-{y}/{}", body.len())));
                c.respond("206 Partial Content", &h, &body[x..=y]);
            }
            _ if !v && keep < body.len() => {
                c.head("200 OK", body.len(), &h);
                let _ = c.stream.write_all(&body[..keep]);
                let _ = c.stream.flush();
                wait(c); // then the connection is dropped mid-body
            }
            _ => c.respond("200 OK", &h, body),
        }
    })
}

/// Reads `p` until a call fails, setting `release` once 100 records were served
/// (the object then changes): every record served must be `a`'s (`b`: the other
/// version, named in the message when a record is one of its). Returns the count
/// served and the error, checked to name `url` and that count.
fn read_until_the_change(
    p: &mut AsyncHttpProducer,
    a: &[Tensor],
    b: &[Tensor],
    release: &AtomicBool,
    url: &str,
) -> (usize, Error) {
    let mut served = 0;
    let err = loop {
        if served == 100 {
            release.store(true, Ordering::SeqCst);
        }
        match p.next() {
            Ok(t) => {
                assert!(
                    t == a[served],
                    "record {served} is not version A's (version B's: {})",
                    b.get(served) == Some(&t)
                );
                served += 1;
                assert!(
                    served < a.len(),
                    "the whole epoch was served across the change"
                );
            }
            Err(e) => break e,
        }
    };
    let msg = err.to_string();
    assert!(served >= 100, "{msg}");
    assert!(matches!(err, Error::Http { .. }), "{msg}");
    assert!(msg.contains(url), "{msg}");
    let want = format!("the object changed after {served} records were served");
    assert!(msg.contains(&want), "{msg}");
    (served, err)
}

/// Opens `url` over `connections`, reads across the change (`read_until_the_change`),
/// checks that later calls fail the same way and that a later open reads `b` whole.
fn across_a_change(url: &str, connections: u32, a: &[Tensor], b: &[Tensor], release: &AtomicBool) {
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        retries: 3,
        connections,
        parallel_min_bytes: 1,
        ..opts(&dir.path().join("c.cache"))
    };
    let mut p = AsyncHttpProducer::from_url(url, o.clone()).unwrap();
    let (served, err) = read_until_the_change(&mut p, a, b, release, url);
    println!("{connections} connection(s): {served} records of A served, then: {err}");
    let want = format!("the object changed after {served} records were served");
    assert!(p.next().unwrap_err().to_string().contains(&want));
    assert!(p.size().unwrap_err().to_string().contains(&want));
    drop(p);
    let mut q = AsyncHttpProducer::from_url(url, o).unwrap();
    let n = q.size().unwrap();
    let got: Vec<Tensor> = (0..n).map(|_| q.next().unwrap()).collect();
    assert_eq!(got, b, "a later open");
}

/// `across_a_change` on a `swapping_server` serving `a_body` then `b_body`.
fn read_across_a_change(connections: u32, a_body: Vec<u8>, b_body: Vec<u8>, keep: usize) {
    let (a, b) = (records(4000, 64), version_b(4000, 64));
    let release = Arc::new(AtomicBool::new(false));
    let server = swapping_server(a_body, b_body, keep, release.clone());
    across_a_change(&server.url("/changing"), connections, &a, &b, &release);
}

#[test]
fn an_object_changed_mid_download_is_an_error_not_a_mix_on_one_connection() {
    let (a, b) = (
        wire_body(&records(4000, 64)),
        wire_body(&version_b(4000, 64)),
    );
    let keep = a.len() * 3 / 10;
    read_across_a_change(1, a, b, keep);
}

#[test]
fn an_object_changed_mid_download_is_an_error_not_a_mix_on_four_connections() {
    let (a, b) = (
        wire_body(&records(4000, 64)),
        wire_body(&version_b(4000, 64)),
    );
    let keep = a.len();
    read_across_a_change(4, a, b, keep);
}

#[test]
fn an_object_that_grew_mid_download_is_an_error_once_its_size_was_reported() {
    // Published cache files: the count is in the header, so size() answers early. The
    // new version begins with the same 4000 records (it grew by 100): the records
    // served are the new version's too, but the count the caller was given is not.
    let a = records(4000, 64);
    let (a_body, b_body) = (published_cache(&a), published_cache(&records(4100, 64)));
    let keep = a_body.len() * 3 / 10;
    let release = Arc::new(AtomicBool::new(false));
    let server = swapping_server(a_body, b_body, keep, release.clone());
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        retries: 3,
        connections: 1,
        ..opts(&dir.path().join("c.cache"))
    };
    let url = server.url("/growing");
    let mut p = AsyncHttpProducer::from_url(&url, o.clone()).unwrap();
    assert_eq!(p.size().unwrap(), 4000);
    let (served, err) = read_until_the_change(&mut p, &a, &[], &release, &url);
    println!("{served} records served, then: {err}");
    drop(p);
    let mut q = AsyncHttpProducer::from_url(&url, o).unwrap();
    assert_eq!(q.size().unwrap(), 4100, "a later open");
}

/// The same against a real nginx (its strong ETag guards the resume and the pieces),
/// behind the fault proxy: the first response is cut after `cut` bytes and, while the
/// connection is held, the test reads 100 records; then the file is replaced by
/// version B (another mtime) and the connection closed.
fn nginx_changed_mid_download(connections: u32, cut: u64) {
    use support::fault_proxy::{FaultProxy, Faults};
    use support::nginx::{self, Nginx};
    let (a, b) = (records(4000, 64), version_b(4000, 64));
    let server = Nginx::start();
    let t = std::time::SystemTime::now() - Duration::from_secs(3600);
    server.publish_with_mtime("data.bin", &wire_body(&a), t);
    let (www, body_b) = (server.www(), wire_body(&b));
    let ready = Arc::new(AtomicBool::new(false));
    let seen = ready.clone();
    let faults = Faults {
        cut: vec![(0, cut)],
        on_cut: Some(Arc::new(move || {
            // A guard, not a limit: a failed test must not leave the proxy waiting.
            for _ in 0..6000 {
                if seen.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let later = t + Duration::from_secs(60);
            nginx::publish_file(&www, "data.bin", &body_b, Some(later));
        })),
        ..Faults::none()
    };
    let proxy = FaultProxy::start(server.port(), faults);
    across_a_change(
        &proxy.url("/identity/data.bin"),
        connections,
        &a,
        &b,
        &ready,
    );
}

#[test]
fn nginx_file_replaced_mid_download_is_an_error_not_a_mix_on_one_connection() {
    nginx_changed_mid_download(1, 300 << 10);
}

#[test]
fn nginx_file_replaced_mid_download_is_an_error_not_a_mix_on_four_connections() {
    nginx_changed_mid_download(4, 40 << 10);
}
