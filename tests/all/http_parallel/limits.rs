//! The byte limit, a range that keeps failing (no temp file left), the C connection
//! fields, and the decoded prefix released from the temp file during the download.

use super::*;

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
