//! Parallel ranged downloads (issue 16, DESIGN §10), against a real nginx (strong
//! ETag, ranges, `If-Match`) behind the in-process fault proxy, and in-process servers:
//! - a published cache file and a legacy wire body fetched over several connections
//!   give exactly the records of a single-connection download, and the ranged GETs are
//!   pinned to the first response's ETag with `If-Match`;
//! - one connection cut mid-range: that range is resumed from the byte it reached
//!   (the requests are counted), the result is exact;
//! - the object replaced between two ranged GETs: the download restarts and serves the
//!   new version only; an object that keeps changing is a clear error after a bounded
//!   number of restarts;
//! - no range support, a weak ETag, an object below the threshold: one connection;
//! - the byte limit applies; no temp file is left after a failure.

mod support;
use support::fault_proxy;
use support::http_server;
use support::nginx;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fault_proxy::{Exchange, FaultProxy, Faults};
use harmonics_dataset::cache::{CacheWriter, Metadata};
use harmonics_dataset::http::{AsyncHttpProducer, HttpOptions, HttpProducer};
use harmonics_dataset::{Error, Producer, Tensor};
use http_server::{wire_body, TestServer};
use nginx::Nginx;

/// `n` records of float32[256] (1 KiB each): about `n` KiB.
fn data(n: usize, salt: usize) -> Vec<Tensor> {
    (0..n)
        .map(|i| {
            let v: Vec<f32> = (0..256).map(|j| (salt + i * 1000 + j) as f32).collect();
            Tensor::from_f32(&v)
        })
        .collect()
}

fn published_cache(records: &[Tensor]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.cache");
    let mut w = CacheWriter::create(&path, Metadata::new("", "test publisher")).unwrap();
    for r in records {
        w.push(r.as_ref()).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// Parallel over `k` connections whatever the size.
fn parallel(cache: &Path, k: u32) -> HttpOptions {
    HttpOptions {
        cache_path: cache.to_str().unwrap().to_string(),
        retries: 2,
        connections: k,
        parallel_min_bytes: 1,
        ..HttpOptions::default()
    }
}

fn single(cache: &Path) -> HttpOptions {
    HttpOptions {
        connections: 1,
        ..parallel(cache, 1)
    }
}

fn epoch(p: &mut dyn Producer) -> Vec<Tensor> {
    let n = p.size().unwrap();
    (0..n).map(|_| p.next().unwrap()).collect()
}

fn assert_records(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("{what}: record {i} differs");
    }
}

/// Files in `dir` other than lock companions.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().ends_with(".lock"))
        .collect();
    v.sort();
    v
}

/// `bytes=A-B` of a request, if it has one.
fn range(e: &Exchange) -> Option<(u64, u64)> {
    let spec = e.request_header("range")?.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The exchanges once every one of them is finished (the proxy records the end of a
/// response a moment after the client has it).
fn finished_exchanges(proxy: &FaultProxy) -> Vec<Exchange> {
    for _ in 0..2000 {
        let ex = proxy.exchanges();
        if ex.iter().all(|e| e.finished) {
            return ex;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("exchanges never finished: {:#?}", proxy.exchanges());
}

/// Every ranged GET is pinned with `If-Match` to `etag` and the ranges, with the
/// first response's prefix, cover `0..len` exactly once.
fn assert_ranges_cover(ex: &[Exchange], etag: &str, len: u64) {
    let mut ranges: Vec<(u64, u64)> = ex
        .iter()
        .filter_map(|e| range(e).map(|r| (e, r)))
        .map(|(e, r)| {
            assert_eq!(e.request_header("if-match"), Some(etag), "{e:#?}");
            assert_eq!(e.status, 206, "{e:#?}");
            r
        })
        .collect();
    ranges.sort();
    assert!(ranges.len() >= 3, "few ranged GETs: {ranges:?}");
    // The first response carries piece 0: the ranges start where it ends.
    let mut at = ranges[0].0;
    assert!(at > 0, "{ranges:?}");
    for (a, b) in &ranges {
        assert_eq!(*a, at, "ranges do not tile the object: {ranges:?}");
        at = b + 1;
    }
    assert_eq!(at, len, "{ranges:?}");
}

fn download(url: &str, o: HttpOptions) -> Vec<Tensor> {
    let mut p = HttpProducer::from_url(url, o).unwrap();
    epoch(&mut p)
}

#[test]
fn a_published_cache_file_over_four_connections_gives_the_single_connection_records() {
    let recs = data(3000, 0);
    let file = published_cache(&recs);
    let server = Nginx::start();
    server.publish("shared.cache", &file);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let url = proxy.url("/identity/shared.cache");
    let dir = tempfile::tempdir().unwrap();

    let one = download(&url, single(&dir.path().join("one.cache")));
    assert_eq!(proxy.requests(), 1, "{:#?}", proxy.exchanges());
    let four = download(&url, parallel(&dir.path().join("four.cache"), 4));
    assert_records(&one, &recs, "single connection");
    assert_records(&four, &recs, "four connections");
    let ex = finished_exchanges(&proxy);
    let etag = ex[1].response_header("etag").unwrap().to_string();
    assert!(!etag.starts_with("W/"), "{etag}");
    assert_ranges_cover(&ex[2..], &etag, file.len() as u64);
    let conns: std::collections::HashSet<usize> = ex[1..].iter().map(|e| e.connection).collect();
    assert!(conns.len() >= 4, "connections used: {conns:?}");
    // Reopened offline: a complete, valid cache.
    drop(proxy);
    drop(server);
    let again = download(&url, parallel(&dir.path().join("four.cache"), 4));
    assert_records(&again, &recs, "reopened");
}

#[test]
fn a_legacy_wire_body_over_four_connections_gives_the_single_connection_records() {
    let recs = data(3000, 7);
    let body = wire_body(&recs);
    let server = Nginx::start();
    server.publish("data.bin", &body);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let url = proxy.url("/identity/data.bin");
    let dir = tempfile::tempdir().unwrap();
    let one = download(&url, single(&dir.path().join("one.cache")));
    let four = download(&url, parallel(&dir.path().join("four.cache"), 4));
    assert_records(&one, &recs, "single connection");
    assert_records(&four, &recs, "four connections");
    let ex = finished_exchanges(&proxy);
    let etag = ex[1].response_header("etag").unwrap().to_string();
    assert_ranges_cover(&ex[2..], &etag, body.len() as u64);
    // Both caches hold the same records in the same format.
    assert_eq!(
        std::fs::metadata(dir.path().join("one.cache"))
            .unwrap()
            .len(),
        std::fs::metadata(dir.path().join("four.cache"))
            .unwrap()
            .len()
    );
}

#[test]
fn the_async_producer_over_four_connections_serves_the_exact_records() {
    let recs = data(2000, 3);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let mut p = AsyncHttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        parallel(&dir.path().join("a.cache"), 4),
    )
    .unwrap();
    let got: Vec<Tensor> = (0..recs.len()).map(|_| p.next().unwrap()).collect();
    assert_records(&got, &recs, "async, four connections");
    drop(p);
    let ex = finished_exchanges(&proxy);
    assert!(
        ex.iter().filter(|e| range(e).is_some()).count() >= 3,
        "{ex:#?}"
    );
}

#[test]
fn one_connection_cut_mid_range_resumes_that_range_and_the_result_is_exact() {
    let recs = data(3000, 1);
    let body = wire_body(&recs);
    let server = Nginx::start();
    server.publish("data.bin", &body);
    // Exchange 1 is the first ranged GET (exchange 0 is the first, whole GET).
    let cut_at = 10_000u64;
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            cut: vec![(1, cut_at)],
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &proxy.url("/identity/data.bin"),
        parallel(&dir.path().join("c.cache"), 4),
    );
    assert_records(&got, &recs, "after a cut range");
    let ex = finished_exchanges(&proxy);
    let cut = &ex[1];
    assert!(cut.cut, "{cut:#?}");
    let (a, b) = range(cut).unwrap();
    // The rest of that range was asked for, from where the cut left it, pinned.
    let resumed: Vec<&Exchange> = ex
        .iter()
        .filter(|e| range(e) == Some((a + cut_at, b)))
        .collect();
    assert_eq!(resumed.len(), 1, "{ex:#?}");
    assert_eq!(resumed[0].status, 206);
    assert_eq!(
        resumed[0].request_header("if-match"),
        ex[0].response_header("etag")
    );
    // Not restarted: one whole GET, and no other request for that range's start.
    assert_eq!(
        ex.iter().filter(|e| range(e).is_none()).count(),
        1,
        "{ex:#?}"
    );
    assert_eq!(
        ex.iter()
            .filter(|e| range(e).map(|r| r.0) == Some(a))
            .count(),
        1
    );
    // The ranges still tile the object once the resumed part replaces the cut one.
    let ranged: u64 = ex.iter().filter_map(range).map(|(a, b)| b - a + 1).sum();
    let piece0 = ex.iter().filter_map(range).map(|r| r.0).min().unwrap();
    assert_eq!(ranged - (b - a + 1 - cut_at) + piece0, body.len() as u64);
}

/// nginx serves version 1; the proxy cuts the first ranged GET, and before the
/// connection closes the file is replaced by version 2 (another size: another ETag).
#[test]
fn the_object_replaced_between_ranged_gets_restarts_and_serves_one_version() {
    // The scenario runs in a child (this test binary again) whose stderr is read: the
    // restart must say so.
    const CHILD: &str = "HARMONICS_TEST_PARALLEL_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let name = "the_object_replaced_between_ranged_gets_restarts_and_serves_one_version";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        let warning = stderr
            .lines()
            .find(|l| l.contains("warning") && l.contains("changed during the download"))
            .unwrap_or_else(|| panic!("no warning of the restart in: {stderr}"));
        assert!(warning.contains("restarting the download"), "{warning}");
        assert!(warning.contains("/identity/data.bin"), "{warning}");
        return;
    }
    let v1 = data(3000, 0);
    let v2 = data(3100, 500_000);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&v1));
    let www = server.www();
    let v2_body = wire_body(&v2);
    let replaced = Arc::new(AtomicUsize::new(0));
    let r = replaced.clone();
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            cut: vec![(1, 5_000)],
            on_cut: Some(Arc::new(move || {
                nginx::publish_file(&www, "data.bin", &v2_body, None);
                r.fetch_add(1, Ordering::SeqCst);
            })),
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let got = match HttpProducer::from_url(
        &proxy.url("/identity/data.bin"),
        parallel(&dir.path().join("r.cache"), 4),
    ) {
        Ok(mut p) => epoch(&mut p),
        Err(e) => panic!("{e}: {:#?}", proxy.exchanges()),
    };
    assert_eq!(replaced.load(Ordering::SeqCst), 1);
    assert_records(&got, &v2, "after the object changed");
    let ex = finished_exchanges(&proxy);
    // A ranged GET pinned to version 1 met 412, then a new whole GET started over.
    assert!(ex.iter().any(|e| e.status == 412), "{ex:#?}");
    let whole: Vec<&Exchange> = ex.iter().filter(|e| range(e).is_none()).collect();
    assert_eq!(whole.len(), 2, "{ex:#?}");
    let etag2 = whole[1].response_header("etag").unwrap();
    assert_ne!(Some(etag2), whole[0].response_header("etag"));
    // After the restart every ranged GET is pinned to version 2.
    for e in ex
        .iter()
        .filter(|e| e.index > whole[1].index && range(e).is_some())
    {
        assert_eq!(e.request_header("if-match"), Some(etag2), "{e:#?}");
    }
    assert_eq!(leftovers(dir.path()), vec![dir.path().join("r.cache")]);
}

/// A server whose ETag changes with every request: each ranged GET is refused by
/// `If-Match`.
#[test]
fn an_object_that_keeps_changing_is_a_clear_error_after_bounded_restarts() {
    let body = wire_body(&data(300, 0));
    let server = TestServer::start(move |c| {
        let etag = format!("\"v{}\"", c.n);
        let common = [
            ("ETag", etag.clone()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        if c.req.header("if-match").is_some() {
            c.respond("412 Precondition Failed", &common, b"");
        } else {
            c.respond("200 OK", &common, &body);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/d.bin");
    let err = HttpProducer::from_url(&url, parallel(&dir.path().join("k.cache"), 4)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Http { .. }), "{msg}");
    assert!(
        msg.contains(&url) && msg.contains("changed 4 times"),
        "{msg}"
    );
    let whole = server
        .requests()
        .iter()
        .filter(|r| r.header("range").is_none())
        .count();
    assert_eq!(whole, 4, "one first GET per attempt");
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}

fn whole_gets_only(ex: &[Exchange]) {
    assert_eq!(ex.len(), 1, "{ex:#?}");
    assert!(range(&ex[0]).is_none() && ex[0].request_header("if-match").is_none());
}

#[test]
fn a_server_without_range_support_gets_a_single_connection() {
    let recs = data(2000, 0);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &proxy.url("/noranges/data.bin"),
        parallel(&dir.path().join("n.cache"), 4),
    );
    assert_records(&got, &recs, "no ranges");
    let ex = finished_exchanges(&proxy);
    assert_ne!(ex[0].response_header("accept-ranges"), Some("bytes"));
    whole_gets_only(&ex);
}

#[test]
fn a_weak_etag_or_no_accept_ranges_gets_a_single_connection() {
    let recs = data(2000, 0);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    for (strip, add) in [
        ("etag", Some(("ETag", "W/\"weak\""))),
        ("etag", None),
        ("accept-ranges", None),
    ] {
        let faults = Faults {
            strip_response_headers: vec![strip.to_string()],
            add_response_headers: add
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Faults::default()
        };
        let proxy = FaultProxy::start(server.port(), faults);
        let dir = tempfile::tempdir().unwrap();
        let got = download(
            &proxy.url("/identity/data.bin"),
            parallel(&dir.path().join("w.cache"), 4),
        );
        assert_records(&got, &recs, strip);
        whole_gets_only(&finished_exchanges(&proxy));
    }
}

#[test]
fn an_object_below_the_threshold_gets_a_single_connection_by_default() {
    let recs = data(2000, 0);
    let server = Nginx::start();
    server.publish("data.bin", &wire_body(&recs));
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let o = HttpOptions {
        cache_path: dir.path().join("d.cache").to_str().unwrap().to_string(),
        ..HttpOptions::default()
    };
    assert_eq!((o.connections, o.parallel_min_bytes), (0, 64 << 20));
    let got = download(&proxy.url("/identity/data.bin"), o);
    assert_records(&got, &recs, "default options");
    whole_gets_only(&finished_exchanges(&proxy));
}

#[test]
fn the_byte_limit_applies_to_a_parallel_download() {
    let body = wire_body(&data(2000, 0));
    let server = Nginx::start();
    server.publish("data.bin", &body);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let url = proxy.url("/identity/data.bin");
    let o = HttpOptions {
        max_bytes: Some(body.len() as u64 - 1),
        ..parallel(&dir.path().join("l.cache"), 4)
    };
    let msg = HttpProducer::from_url(&url, o).unwrap_err().to_string();
    assert!(msg.contains(&url) && msg.contains("max_bytes"), "{msg}");
    whole_gets_only(&finished_exchanges(&proxy));
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
    // At the limit exactly: downloaded in parallel.
    let o = HttpOptions {
        max_bytes: Some(body.len() as u64),
        ..parallel(&dir.path().join("l.cache"), 4)
    };
    assert_eq!(HttpProducer::from_url(&url, o).unwrap().len(), 2000);
    assert!(finished_exchanges(&proxy).len() > 2);
}

#[test]
fn a_range_that_keeps_failing_is_an_error_and_leaves_no_temp_file() {
    let body = wire_body(&data(2000, 0));
    let server = Nginx::start();
    server.publish("data.bin", &body);
    // No retries: the cut range cannot be resumed, the download fails.
    let proxy = FaultProxy::start(
        server.port(),
        Faults {
            cut: vec![(2, 1000)],
            ..Faults::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let url = proxy.url("/identity/data.bin");
    let o = HttpOptions {
        retries: 0,
        ..parallel(&dir.path().join("f.cache"), 4)
    };
    let msg = HttpProducer::from_url(&url, o).unwrap_err().to_string();
    assert!(msg.contains(&url) && msg.contains("cut"), "{msg}");
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
    // A damaged record in a published cache file: the CRC check fails the
    // parallel download too, leaving nothing.
    let mut file = published_cache(&data(2000, 0));
    // In the middle of the records (a version-2 file ends with its offset index, not
    // with the last record).
    let n = file.len();
    file[n / 2] ^= 0xff;
    server.publish("bad.cache", &file);
    let msg = HttpProducer::from_url(
        &proxy.url("/identity/bad.cache"),
        parallel(&dir.path().join("b.cache"), 4),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("CRC mismatch"), "{msg}");
    assert_eq!(leftovers(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn the_c_connection_fields_reach_the_download() {
    use harmonics_dataset::ffi::http::*;
    use harmonics_dataset::ffi::producer::harmonics_producer_free;
    use harmonics_dataset::ffi::{HarmonicsProducer, HarmonicsStatus};
    let body = wire_body(&data(2000, 0));
    let server = Nginx::start();
    server.publish("data.bin", &body);
    let proxy = FaultProxy::start(server.port(), Faults::none());
    let dir = tempfile::tempdir().unwrap();
    let url = std::ffi::CString::new(proxy.url("/identity/data.bin")).unwrap();
    let mut o = harmonics_http_options_default();
    assert_eq!((o.connections, o.parallel_min_bytes), (0, 64 << 20));
    let path = std::ffi::CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
    o.cache_path = path.as_ptr();
    o.connections = 4;
    o.parallel_min_bytes = 1;
    let mut out: *mut HarmonicsProducer = std::ptr::null_mut();
    // SAFETY: valid C string, options and out pointer.
    let status = unsafe { harmonics_http_producer_from_url(url.as_ptr(), &o, &mut out) };
    assert_eq!(status as u32, HarmonicsStatus::Ok as u32);
    // SAFETY: a producer handle from the call above, freed once.
    unsafe { harmonics_producer_free(out) };
    let ex = finished_exchanges(&proxy);
    let etag = ex[0].response_header("etag").unwrap().to_string();
    assert_ranges_cover(&ex[1..], &etag, body.len() as u64);
}

/// A server that announces `Accept-Ranges: bytes` with a strong ETag but answers
/// every ranged GET with the whole object.
#[test]
fn a_server_that_ignores_ranges_it_announced_is_downloaded_again_on_one_connection() {
    let recs = data(1000, 0);
    let body = wire_body(&recs);
    let server = TestServer::start(move |c| {
        let h = [
            ("ETag", "\"v1\"".to_string()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        c.respond("200 OK", &h, &body);
    });
    let dir = tempfile::tempdir().unwrap();
    let got = download(
        &server.url("/d.bin"),
        parallel(&dir.path().join("i.cache"), 4),
    );
    assert_records(&got, &recs, "after falling back to one connection");
    let reqs = server.requests();
    let whole = reqs.iter().filter(|r| r.header("range").is_none()).count();
    assert_eq!(
        whole, 2,
        "the first GET, then the single-connection one: {reqs:#?}"
    );
    assert_eq!(leftovers(dir.path()), vec![dir.path().join("i.cache")]);
}

/// The unnamed temp file of a parallel download in `dir` (`/dir/#inode (deleted)`):
/// its allocated bytes.
fn temp_file_allocated(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if t.starts_with(&*dir.to_string_lossy()) && t.contains("(deleted)") {
            if let Ok(m) = std::fs::metadata(e.path()) {
                return Some(m.blocks() * 512);
            }
        }
    }
    None
}

/// The last piece is held back by the server: everything before it has been decoded,
/// and the temp file no longer holds it.
#[test]
fn the_decoded_prefix_is_released_from_the_temp_file_during_the_download() {
    let recs = data(12_000, 0);
    let body = Arc::new(wire_body(&recs));
    let len = body.len() as u64;
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Ranged requests received, and answered.
    let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let (b, r, n) = (body.clone(), release.clone(), counts.clone());
    let server = TestServer::start(move |c| {
        let mut h = vec![
            ("ETag", "\"v1\"".to_string()),
            ("Accept-Ranges", "bytes".to_string()),
        ];
        let Some(range) = c.req.header("range") else {
            return c.respond("200 OK", &h, &b);
        };
        let (a, z) = range.trim_start_matches("bytes=").split_once('-').unwrap();
        let (a, z): (usize, usize) = (a.parse().unwrap(), z.parse().unwrap());
        n.0.fetch_add(1, Ordering::SeqCst);
        while z + 1 == b.len() && !r.load(Ordering::SeqCst) {
            if !c.sleep(std::time::Duration::from_millis(10)) {
                return;
            }
        }
        h.push(("Content-Range", format!("bytes {a}-{z}/{}", b.len())));
        c.respond("206 Partial Content", &h, &b[a..=z]);
        n.1.fetch_add(1, Ordering::SeqCst);
    });
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/d.bin");
    let o = parallel(&dir.path().join("p.cache"), 4);
    let fetch = std::thread::spawn(move || download(&url, o));
    // Bounded waits (guards against a hang, not timing assertions): until every
    // piece but the held-back last one has been served (the pieces are requested in
    // order, so the last one's request comes after the others')...
    let piece = len.div_ceil(32).clamp(64 << 10, 8 << 20);
    let ranged = (len.div_ceil(piece) - 1) as usize;
    for _ in 0..4000 {
        if counts.0.load(Ordering::SeqCst) == ranged
            && counts.1.load(Ordering::SeqCst) == ranged - 1
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(counts.1.load(Ordering::SeqCst), ranged - 1);
    // ...then until the decoder, caught up with them, has given their space back.
    let mut allocated = None;
    for _ in 0..2000 {
        allocated = temp_file_allocated(dir.path());
        if allocated.is_some_and(|a| a < len / 2) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    release.store(true, Ordering::SeqCst);
    let got = fetch.join().unwrap();
    let allocated = allocated.expect("the temp file of the download was never seen");
    assert!(
        allocated < len / 2,
        "the temp file still holds {allocated} of {len} bytes while only the last piece is missing"
    );
    assert_records(&got, &recs, "after the held-back piece");
}
