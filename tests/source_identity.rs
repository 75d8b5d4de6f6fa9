//! Source identity (issue 11): a warm cache skips its source entirely, and a changed
//! or different source is never served.

mod support;
use support::http_server;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use harmonics_dataset::cache::{CacheReader, CacheWriter, Metadata};
use harmonics_dataset::{
    CacheOutcome, CsvProducer, DiskCacheProducer, HttpOptions, HttpOutcome, HttpProducer, Producer,
    SourceKind, Tensor,
};
use http_server::{records, wire_body, TestServer};

/// Writes `rows` CSV rows of `width` values; row i holds i*1000+j (+ `seed`).
fn write_csv(path: &Path, rows: std::ops::Range<usize>, width: usize, seed: f32, append: bool) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .unwrap();
    let mut w = std::io::BufWriter::new(f);
    for i in rows {
        let cells: Vec<String> = (0..width)
            .map(|j| format!("{}", (i * 1000 + j) as f32 + seed))
            .collect();
        writeln!(w, "{}", cells.join(",")).unwrap();
    }
    w.flush().unwrap();
}

fn row(i: usize, width: usize, seed: f32) -> Vec<f32> {
    (0..width).map(|j| (i * 1000 + j) as f32 + seed).collect()
}

fn open_csv(
    csv: &Path,
    cache: &Path,
) -> (
    DiskCacheProducer,
    std::sync::Arc<harmonics_dataset::CsvStats>,
) {
    let p = CsvProducer::open(csv, false).unwrap();
    let stats = p.stats();
    let d = DiskCacheProducer::open_at(Box::new(p), cache.to_path_buf(), None).unwrap();
    (d, stats)
}

fn all(p: &mut DiskCacheProducer) -> Vec<Vec<f32>> {
    (0..p.len()).map(|_| p.next().unwrap().to_f32()).collect()
}

fn rebuilt_reason(p: &DiskCacheProducer) -> String {
    match p.outcome() {
        CacheOutcome::Rebuilt(r) => r.clone(),
        other => panic!("expected Rebuilt, got {other:?}"),
    }
}

#[test]
fn warm_50_mb_csv_is_not_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("train.csv"), dir.path().join("train.cache"));
    let (rows, width) = (400_000, 16);
    write_csv(&csv, 0..rows, width, 0.25, false);
    let bytes = std::fs::metadata(&csv).unwrap().len();
    assert!(bytes >= 50_000_000, "{bytes} bytes");
    let (cold, stats) = open_csv(&csv, &cache);
    assert_eq!(cold.outcome(), &CacheOutcome::Created);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 1);
    drop(cold);

    let (mut warm, stats) = open_csv(&csv, &cache);
    assert_eq!(warm.outcome(), &CacheOutcome::Reused);
    assert_eq!(
        stats.parses.load(Ordering::Relaxed),
        0,
        "the CSV was parsed"
    );
    assert_eq!(stats.rows.load(Ordering::Relaxed), 0);
    assert_eq!(warm.len(), rows);
    assert_eq!(warm.next().unwrap().to_f32(), row(0, width, 0.25));
    let id = warm.metadata().identity.clone().unwrap();
    assert_eq!(id.kind, SourceKind::Csv);
    assert_eq!(
        id.id,
        std::fs::canonicalize(&csv).unwrap().to_str().unwrap()
    );
}

#[test]
fn warm_csv_recorded_after_the_racy_window_is_not_even_read() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("old.csv"), dir.path().join("old.cache"));
    write_csv(&csv, 0..50, 3, 0.0, false);
    // The stamp must be taken out of the racy window of the file's last change.
    std::thread::sleep(Duration::from_millis(2100));
    let (cold, _) = open_csv(&csv, &cache);
    assert_eq!(cold.outcome(), &CacheOutcome::Created);
    drop(cold);
    let (warm, stats) = open_csv(&csv, &cache);
    assert_eq!(warm.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
    assert_eq!(
        stats.bytes_hashed.load(Ordering::Relaxed),
        0,
        "the CSV was read"
    );
}

#[test]
fn another_csv_under_the_same_cache_name_is_rebuilt_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    let cache = dir.path().join("shared.cache");
    write_csv(&a, 0..10, 2, 0.0, false);
    write_csv(&b, 0..10, 2, 0.5, false);
    drop(open_csv(&a, &cache));
    let (mut p, _) = open_csv(&b, &cache);
    let why = rebuilt_reason(&p);
    assert!(
        why.contains("another file") && why.contains("a.csv") && why.contains("b.csv"),
        "{why}"
    );
    assert_eq!(
        all(&mut p),
        (0..10).map(|i| row(i, 2, 0.5)).collect::<Vec<_>>()
    );
}

#[test]
fn the_same_csv_edited_in_place_with_the_same_size_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("e.csv"), dir.path().join("e.cache"));
    std::fs::write(&csv, "1,2\n3,4\n").unwrap();
    drop(open_csv(&csv, &cache));
    std::fs::write(&csv, "1,2\n3,5\n").unwrap();
    let (mut p, _) = open_csv(&csv, &cache);
    let why = rebuilt_reason(&p);
    assert!(why.contains("edited"), "{why}");
    assert_eq!(all(&mut p), [vec![1.0, 2.0], vec![3.0, 5.0]]);
}

#[test]
fn an_edit_whose_mtime_was_restored_by_utimes_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("u.csv"), dir.path().join("u.cache"));
    std::fs::write(&csv, "1,2\n3,4\n").unwrap();
    let old = SystemTime::now() - Duration::from_secs(3600);
    let set_mtime = |t| {
        std::fs::File::options()
            .write(true)
            .open(&csv)
            .unwrap()
            .set_modified(t)
            .unwrap()
    };
    set_mtime(old);
    drop(open_csv(&csv, &cache));
    let before = std::fs::metadata(&csv).unwrap();
    std::fs::write(&csv, "9,2\n3,4\n").unwrap();
    set_mtime(old);
    let after = std::fs::metadata(&csv).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap())
    );
    let (mut p, _) = open_csv(&csv, &cache);
    let why = rebuilt_reason(&p);
    assert!(why.contains("edited"), "{why}");
    assert_eq!(all(&mut p), [vec![9.0, 2.0], vec![3.0, 4.0]]);
}

#[test]
fn rows_appended_to_a_csv_are_appended_parsing_only_the_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("g.csv"), dir.path().join("g.cache"));
    write_csv(&csv, 0..200, 4, 0.0, false);
    let (p, _) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Created);
    drop(p);
    write_csv(&csv, 200..260, 4, 0.0, true);
    let (mut p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Appended { from: 200, to: 260 });
    assert_eq!(
        stats.rows.load(Ordering::Relaxed),
        60,
        "only the new rows are parsed"
    );
    assert_eq!(
        all(&mut p),
        (0..260).map(|i| row(i, 4, 0.0)).collect::<Vec<_>>()
    );
    drop(p);
    // The header now records the grown file: the next open reuses it.
    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
}

#[test]
fn a_bad_cell_in_appended_rows_names_its_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("bad.csv"), dir.path().join("bad.cache"));
    write_csv(&csv, 0..20, 2, 0.0, false);
    drop(open_csv(&csv, &cache));
    let mut f = std::fs::OpenOptions::new().append(true).open(&csv).unwrap();
    f.write_all(b"1,2\n3,oops\n").unwrap();
    let p = CsvProducer::open(&csv, false).unwrap();
    let err = DiskCacheProducer::open_at(Box::new(p), cache.clone(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("bad.csv: row 22, column 2: \"oops\" is not a number"),
        "{err}"
    );
    // The cache was left as it was.
    assert_eq!(CacheReader::open(&cache).unwrap().len(), 20);
}

#[test]
fn a_cache_without_identity_is_adopted_once_then_reused_without_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("t.csv"), dir.path().join("t.cache"));
    write_csv(&csv, 0..5, 2, 0.0, false);
    // A cache as the previous version wrote it: source description, no identity.
    let source = format!("csv:{}", csv.display());
    let mut w = CacheWriter::create(&cache, Metadata::new("", &source)).unwrap();
    for i in 0..5 {
        w.push(Tensor::from_f32(&row(i, 2, 0.0)).as_ref()).unwrap();
    }
    w.finish().unwrap();
    assert!(CacheReader::open(&cache)
        .unwrap()
        .metadata()
        .identity
        .is_none());

    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(
        stats.parses.load(Ordering::Relaxed),
        1,
        "trusted once by the size rule"
    );
    assert!(p.metadata().identity.is_some(), "the identity is recorded");
    drop(p);
    let (mut p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
    assert_eq!(
        all(&mut p),
        (0..5).map(|i| row(i, 2, 0.0)).collect::<Vec<_>>()
    );

    // An old cache whose description names another source is rebuilt.
    let mut w = CacheWriter::create(&cache, Metadata::new("", "csv:other.csv")).unwrap();
    w.push(Tensor::from_f32(&[7.0]).as_ref()).unwrap();
    w.finish().unwrap();
    let (mut p, _) = open_csv(&csv, &cache);
    let why = rebuilt_reason(&p);
    assert!(why.contains("other.csv") && why.contains("t.csv"), "{why}");
    assert_eq!(all(&mut p).len(), 5);
}

fn http_opts(cache: &Path) -> HttpOptions {
    HttpOptions {
        cache_path: cache.to_str().unwrap().to_string(),
        retries: 0,
        ..HttpOptions::default()
    }
}

fn http_all(p: &mut HttpProducer) -> Vec<Tensor> {
    (0..p.len()).map(|_| p.next().unwrap()).collect()
}

#[test]
fn another_url_with_the_same_cache_path_is_downloaded_again() {
    let (ra, rb) = (records(3, 2), records(5, 1));
    let (ba, bb) = (wire_body(&ra), wire_body(&rb));
    let server = TestServer::start(move |c| {
        let body = if c.req.path == "/a" { &ba } else { &bb };
        c.respond("200 OK", &[], body)
    });
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("d.cache");
    let mut a = HttpProducer::from_url(&server.url("/a"), http_opts(&cache)).unwrap();
    assert_eq!(a.outcome(), HttpOutcome::Downloaded);
    assert_eq!(a.replaced_reason(), None);
    assert_eq!(http_all(&mut a), ra);
    // The same URL spelled otherwise is the same source: no request.
    let same = server.url("/a").replace("http://", "HTTP://");
    let a2 = HttpProducer::from_url(&same, http_opts(&cache)).unwrap();
    assert_eq!(a2.outcome(), HttpOutcome::FromCache);
    assert_eq!(server.request_count(), 1);

    let mut b = HttpProducer::from_url(&server.url("/b"), http_opts(&cache)).unwrap();
    assert_eq!(b.outcome(), HttpOutcome::Downloaded);
    let why = b.replaced_reason().expect("a reason");
    assert!(
        why.contains(&server.url("/a")) && why.contains(&server.url("/b")),
        "{why}"
    );
    assert_eq!(http_all(&mut b), rb);
    assert_eq!(server.requests().last().unwrap().path, "/b");
    // Offline-first still holds for the new URL.
    let b2 = HttpProducer::from_url(&server.url("/b"), http_opts(&cache)).unwrap();
    assert_eq!(b2.outcome(), HttpOutcome::FromCache);
    assert_eq!(server.request_count(), 2);
}

#[test]
fn an_http_cache_name_reused_by_a_csv_disk_cache_is_rebuilt_and_back() {
    let body = wire_body(&records(4, 3));
    let server = TestServer::serving(body);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("mixed.cache");
    let csv = dir.path().join("m.csv");
    write_csv(&csv, 0..2, 2, 0.0, false);
    drop(HttpProducer::from_url(&server.url("/data"), http_opts(&cache)).unwrap());

    let (mut p, _) = open_csv(&csv, &cache);
    let why = rebuilt_reason(&p);
    assert!(
        why.contains(&server.url("/data")) && why.contains("m.csv"),
        "{why}"
    );
    assert_eq!(all(&mut p), [row(0, 2, 0.0), row(1, 2, 0.0)]);
    drop(p);

    // And a CSV cache reused by an HttpProducer is downloaded again.
    let mut h = HttpProducer::from_url(&server.url("/data"), http_opts(&cache)).unwrap();
    assert_eq!(h.outcome(), HttpOutcome::Downloaded);
    let why = h.replaced_reason().expect("a reason");
    assert!(
        why.contains("csv") && why.contains(&server.url("/data")),
        "{why}"
    );
    assert_eq!(http_all(&mut h), records(4, 3));
    assert_eq!(server.request_count(), 2);
}

#[test]
fn a_disk_cache_over_http_is_reused_by_url_and_validators() {
    let body = wire_body(&records(3, 2));
    let server =
        TestServer::start(move |c| c.respond("200 OK", &[("ETag", "\"v1\"".to_string())], &body));
    let dir = tempfile::tempdir().unwrap();
    let (dl, outer) = (dir.path().join("dl.cache"), dir.path().join("outer.cache"));
    let h = HttpProducer::from_url(&server.url("/x"), http_opts(&dl)).unwrap();
    let p = DiskCacheProducer::open_at(Box::new(h), outer.clone(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Created);
    let id = p.metadata().identity.clone().unwrap();
    assert_eq!((id.kind, id.etag.as_str()), (SourceKind::Http, "\"v1\""));
    drop(p);
    let h = HttpProducer::from_url(&server.url("/x"), http_opts(&dl)).unwrap();
    let p = DiskCacheProducer::open_at(Box::new(h), outer, None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(server.request_count(), 1);
}

mod c_api {
    use std::ffi::{c_char, c_void};
    use std::ptr::{null, null_mut};

    use harmonics_dataset::ffi::disk_cache::*;
    use harmonics_dataset::ffi::error::HarmonicsStatus;
    use harmonics_dataset::ffi::producer::*;
    use harmonics_dataset::ffi::tensor::HarmonicsTensorView;

    /// A C producer: `n` records {i}, a fingerprint, counters of next/skip calls.
    struct Src {
        n: usize,
        cursor: usize,
        value: f32,
        fp: &'static str,
        nexts: usize,
        skips: usize,
        shape: [usize; 1],
    }

    unsafe extern "C" fn next(u: *mut c_void, out: *mut HarmonicsTensorView) -> HarmonicsStatus {
        let s = unsafe { &mut *(u as *mut Src) };
        s.nexts += 1;
        s.value = s.cursor as f32;
        s.cursor = (s.cursor + 1) % s.n;
        unsafe {
            *out = HarmonicsTensorView {
                dtype: 0,
                ndims: 1,
                shape: s.shape.as_ptr(),
                data: (&s.value as *const f32).cast(),
                nbytes: 4,
            }
        };
        HarmonicsStatus::Ok
    }
    unsafe extern "C" fn size(u: *mut c_void, out: *mut usize) -> HarmonicsStatus {
        unsafe { *out = (*(u as *mut Src)).n };
        HarmonicsStatus::Ok
    }
    unsafe extern "C" fn skip(u: *mut c_void, k: usize) -> HarmonicsStatus {
        let s = unsafe { &mut *(u as *mut Src) };
        s.skips += 1;
        s.cursor = (s.cursor + k) % s.n;
        HarmonicsStatus::Ok
    }
    unsafe extern "C" fn fingerprint(
        u: *mut c_void,
        ptr: *mut *const c_char,
        len: *mut usize,
    ) -> HarmonicsStatus {
        let s = unsafe { &*(u as *mut Src) };
        unsafe {
            *ptr = s.fp.as_ptr().cast();
            *len = s.fp.len();
        }
        HarmonicsStatus::Ok
    }

    /// Opens a cache over a C source; returns (outcome, reason, next calls, skip calls).
    fn open(name: &std::ffi::CStr, n: usize, fp: &'static str) -> (u32, String, usize, usize) {
        let src = Box::into_raw(Box::new(Src {
            n,
            cursor: 0,
            value: 0.0,
            fp,
            nexts: 0,
            skips: 0,
            shape: [1],
        }));
        let cb = HarmonicsProducerCallbacks {
            userdata: src.cast(),
            next: Some(next),
            size: Some(size),
            free: None,
            skip: Some(skip),
            fingerprint: Some(fingerprint),
        };
        unsafe {
            let (mut base, mut cache) = (null_mut(), null_mut());
            assert_eq!(
                harmonics_producer_from_callbacks(&cb, null(), &mut base),
                HarmonicsStatus::Ok
            );
            assert_eq!(
                harmonics_disk_cache_new(base, name.as_ptr(), null(), &mut cache),
                HarmonicsStatus::Ok
            );
            let mut o = std::mem::MaybeUninit::<HarmonicsCacheOutcome>::uninit();
            assert_eq!(
                harmonics_disk_cache_outcome(cache, o.as_mut_ptr()),
                HarmonicsStatus::Ok
            );
            let kind = o.assume_init().kind as u32;
            let mut len = 0usize;
            assert_eq!(
                harmonics_disk_cache_outcome_reason(cache, null_mut(), 0, &mut len),
                HarmonicsStatus::Ok
            );
            let mut buf = vec![0 as c_char; len + 1];
            assert_eq!(
                harmonics_disk_cache_outcome_reason(cache, buf.as_mut_ptr(), buf.len(), &mut len),
                HarmonicsStatus::Ok
            );
            let why = std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_str()
                .unwrap()
                .to_string();
            assert_eq!(why.len(), len);
            // A short buffer gets a NUL-terminated prefix and the full length.
            let mut short = [1 as c_char; 5];
            assert_eq!(
                harmonics_disk_cache_outcome_reason(cache, short.as_mut_ptr(), 5, &mut len),
                HarmonicsStatus::Ok
            );
            assert_eq!(short[why.len().min(4)], 0);
            let (nexts, skips) = ((*src).nexts, (*src).skips);
            harmonics_producer_free(cache);
            harmonics_producer_free(base);
            drop(Box::from_raw(src));
            (kind, why, nexts, skips)
        }
    }

    #[test]
    fn c_callbacks_fingerprint_and_skip_decide_and_the_reason_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
        let (kind, why, nexts, _) = open(&name, 4, "v1");
        assert_eq!(
            (kind, why.as_str(), nexts),
            (HarmonicsCacheOutcomeKind::Created as u32, "", 4)
        );
        let (kind, _, nexts, skips) = open(&name, 4, "v1");
        assert_eq!(
            (kind, nexts, skips),
            (HarmonicsCacheOutcomeKind::Reused as u32, 0, 0)
        );
        let (kind, why, _, _) = open(&name, 4, "v2");
        assert_eq!(kind, HarmonicsCacheOutcomeKind::Rebuilt as u32);
        assert!(why.contains("\"v1\"") && why.contains("\"v2\""), "{why}");
        // Without a fingerprint: the size rule, and the append skips then reads 2.
        let (kind, _, nexts, skips) = open(&name, 6, "");
        assert_eq!(
            (kind, nexts, skips),
            (HarmonicsCacheOutcomeKind::Appended as u32, 2, 1)
        );
    }

    #[test]
    fn an_oversized_fingerprint_is_an_error_not_a_huge_header() {
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::CString::new(dir.path().join("big.cache").to_str().unwrap()).unwrap();
        let fp: &'static str = Box::leak("x".repeat(MAX_FINGERPRINT + 1).into_boxed_str());
        let mut src = Src {
            n: 1,
            cursor: 0,
            value: 0.0,
            fp,
            nexts: 0,
            skips: 0,
            shape: [1],
        };
        let cb = HarmonicsProducerCallbacks {
            userdata: (&mut src as *mut Src).cast(),
            next: Some(next),
            size: Some(size),
            free: None,
            skip: None,
            fingerprint: Some(fingerprint),
        };
        unsafe {
            let (mut base, mut cache) = (null_mut(), null_mut());
            assert_eq!(
                harmonics_producer_from_callbacks(&cb, null(), &mut base),
                HarmonicsStatus::Ok
            );
            let st = harmonics_disk_cache_new(base, name.as_ptr(), null(), &mut cache);
            assert_eq!(st, HarmonicsStatus::Foreign);
            let msg = std::ffi::CStr::from_ptr(
                harmonics_dataset::ffi::error::harmonics_last_error_message(),
            );
            assert!(
                msg.to_str().unwrap().contains("fingerprint is 65537 bytes"),
                "{msg:?}"
            );
            harmonics_producer_free(base);
        }
    }
}

#[test]
fn http_producers_skip_by_seeking_and_report_their_identity() {
    let recs = records(6, 2);
    let server = TestServer::serving(wire_body(&recs));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("s.cache");
    let mut h = HttpProducer::from_url(&server.url("/d"), http_opts(&cache)).unwrap();
    h.skip(4).unwrap();
    assert_eq!(h.next().unwrap(), recs[4]);
    let id = h.identity().unwrap().unwrap();
    assert_eq!((id.kind, id.id), (SourceKind::Http, server.url("/d")));
    let mut a =
        harmonics_dataset::AsyncHttpProducer::from_url(&server.url("/d"), http_opts(&cache))
            .unwrap();
    assert_eq!(a.outcome(), HttpOutcome::FromCache);
    a.skip(3).unwrap();
    assert_eq!(a.next().unwrap(), recs[3]);
    a.skip(7).unwrap(); // cycles: 4 + 7 = 11 = 5 (mod 6)
    assert_eq!(a.next().unwrap(), recs[5]);
    assert_eq!(a.identity().unwrap().unwrap().kind, SourceKind::Http);
    assert_eq!(server.request_count(), 1);
}

#[test]
fn a_racy_or_touched_stamp_verified_by_content_is_recorded_so_later_opens_read_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, cache) = (dir.path().join("r.csv"), dir.path().join("r.cache"));
    write_csv(&csv, 0..30, 3, 0.0, false);
    drop(open_csv(&csv, &cache)); // stamped right after the write: racily clean
    let racy = |p: &DiskCacheProducer| {
        p.metadata()
            .identity
            .clone()
            .unwrap()
            .stamp
            .unwrap()
            .is_racy()
    };
    let (p, stats) = open_csv(&csv, &cache);
    assert!(
        racy(&p),
        "still within the window: verified, not re-recorded"
    );
    assert!(stats.bytes_hashed.load(Ordering::Relaxed) > 0);
    drop(p);
    std::thread::sleep(Duration::from_millis(2100));
    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert!(
        stats.bytes_hashed.load(Ordering::Relaxed) > 0,
        "verified by content"
    );
    assert!(!racy(&p), "the verified stamp was recorded");
    drop(p);
    let (mut p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert_eq!(stats.bytes_hashed.load(Ordering::Relaxed), 0);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
    assert_eq!(all(&mut p).len(), 30);
    drop(p);
    // A touch (mtime moved back an hour, same bytes): reused, verified by content (its
    // ctime is new, so that stamp is racy and is not recorded yet).
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&csv)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (p, stats) = open_csv(&csv, &cache);
    assert_eq!(p.outcome(), &CacheOutcome::Reused);
    assert!(stats.bytes_hashed.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.parses.load(Ordering::Relaxed), 0);
}
