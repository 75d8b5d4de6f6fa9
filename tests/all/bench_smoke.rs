//! Runs the `cache` benchmark's code paths (benches/cache/work.rs) and the shared
//! harness (benches/common) at tiny sizes, so CI keeps them compiling and correct. No
//! timing is asserted: these tests check that each path does the work the benchmark
//! claims to time.

// The benchmarks' files include their own copies of tests/support/nginx.rs (in
// `common`) and tests/support/cache_policy.rs (in `streaming`), which this binary also
// has as `crate::support`'s: the copies here are the benchmarks', compiled as they are.
#![allow(clippy::duplicate_mod)]

#[path = "../../benches/common/mod.rs"]
mod common;
#[path = "../../benches/cache/work.rs"]
mod work;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{child_peak_rss, vm_hwm_kib};
use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::Producer;
use work::*;

const ELEMS: usize = 784;

/// The checksum a pass over `n` records of `Synth::new(n, elems)` must produce.
fn expected_checksum(n: usize, elems: usize) -> f64 {
    let mut s = Synth::new(n, elems);
    (0..n).map(|_| touch(s.next_view().unwrap().data)).sum()
}

#[test]
fn populate_then_view_pass_reads_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cache");
    let size = populate(&path, 50, ELEMS).unwrap();
    assert!(size > (50 * ELEMS * 4) as u64, "file of {size} bytes");
    let (sum, bytes) = view_pass(&path, 50, 2).unwrap();
    assert_eq!(bytes, (2 * 50 * ELEMS * 4) as u64);
    assert_eq!(sum, 2.0 * expected_checksum(50, ELEMS));
}

#[test]
fn touch_reads_one_float_per_line_and_the_last() {
    let data: Vec<u8> = (0..40u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
    // Lines start at elements 0, 16, 32; the last element is 39.
    assert_eq!(touch(&data), 0.0 + 16.0 + 32.0 + 39.0);
    assert_eq!(touch(&[]), 0.0);
}

#[test]
fn warm_open_never_reads_the_source_and_a_wrong_count_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.cache");
    populate(&path, 100, 8).unwrap();
    assert_eq!(open_warm(&path, 100).unwrap().len(), 100);
    // A base that claims more records makes the cache append, which reads Absent.
    let err =
        harmonics_dataset::DiskCacheProducer::open_at(Box::new(Absent(101)), path.clone(), None)
            .unwrap_err();
    assert!(err.to_string().contains("read its source"), "{err}");
}

#[test]
fn append_then_restore_returns_the_file_to_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ap.cache");
    populate(&path, 20, ELEMS).unwrap();
    let before = std::fs::read(&path).unwrap();
    let snap = Snapshot::take(&path).unwrap();
    for _ in 0..3 {
        assert_eq!(append(&path, 20, 7, ELEMS).unwrap(), 27);
        assert_eq!(CacheReader::open(&path).unwrap().len(), 27);
        snap.restore().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
    let (sum, _) = view_pass(&path, 20, 1).unwrap();
    assert_eq!(sum, expected_checksum(20, ELEMS));
}

#[test]
fn baselines_run_and_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.cache");
    populate(&path, 10, ELEMS).unwrap();
    cat(&path).unwrap();
    let dd = dir.path().join("dd.out");
    dd_fsync(&dd, 3 << 20).unwrap();
    assert!(!dd.exists());
}

#[test]
fn child_peak_rss_reports_the_childs_own_peak() {
    let (out, kib) = child_peak_rss(Path::new("seq"), &["3".into()]).unwrap();
    assert_eq!(out, "1\n2\n3\n");
    assert!(kib > 0, "seq's ru_maxrss {kib} KiB");
    assert!(vm_hwm_kib() > 0);
    assert!(child_peak_rss(Path::new("false"), &[]).is_err());
}

/// Directory holding the libharmonics_dataset.so of this test build: target/<profile>/deps,
/// where `cargo test` builds it, unless the copy a `cargo build` left in target/<profile>
/// is at least as new (an older `cargo build` leaves a stale copy there that lacks what
/// this build added).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let profile = deps.parent().unwrap().to_path_buf();
    let mtime = |d: &Path| {
        std::fs::metadata(d.join("libharmonics_dataset.so"))
            .and_then(|m| m.modified())
            .ok()
    };
    match (mtime(&profile), mtime(&deps)) {
        (Some(p), Some(d)) if p >= d => profile,
        (Some(_), None) => profile,
        _ => deps,
    }
}

#[test]
fn cpp_warm_pass_compiles_and_every_mode_reads_the_records_of_its_order() {
    let lib = lib_dir();
    assert!(
        lib.join("libharmonics_dataset.so").exists(),
        "no libharmonics_dataset.so in {}",
        lib.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("warm_pass");
    let st = Command::new("g++")
        .args(["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("benches/cpp/warm_pass.cpp"))
        .arg("-L")
        .arg(&lib)
        .arg("-lharmonics_dataset")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&bin)
        .status()
        .unwrap();
    assert!(st.success(), "g++ failed");
    // Two batches of 256 and a remainder; blocks of 64 records.
    let n = 600;
    let rec = (ELEMS * 4) as u64;
    let path = dir.path().join("a.cache");
    populate(&path, n, ELEMS).unwrap();

    let next = CppPass::new(CppMode::Next);
    let seq = next.run(&bin, &path, n).unwrap();
    next.verify(&seq, n, rec, None).unwrap();
    let sum = expected_checksum(n, ELEMS);
    assert!((seq.checksum - sum).abs() <= 1e-9 * sum, "{seq:?} vs {sum}");
    let sampled = CppPass::new(CppMode::Sampled).seed(5);
    let mut orders = vec![seq.order];
    for pass in [
        CppPass::new(CppMode::View),
        sampled,
        sampled.block(64),
        CppPass::new(CppMode::ViewSampled).seed(5),
        CppPass::new(CppMode::ViewSampled).seed(6).block(64),
    ] {
        let got = pass.run(&bin, &path, n).unwrap();
        pass.verify(&got, n, rec, Some(seq.checksum))
            .unwrap_or_else(|e| panic!("{pass:?}: {e}"));
        orders.push(got.order);
    }
    // The same records, each mode in its own order (the view pass in file order).
    assert_eq!(orders[1], orders[0]);
    assert_eq!(orders[4], orders[2], "view(i) in the same sampler order");
    for (a, b) in [(0, 2), (2, 3), (3, 5), (2, 5)] {
        assert_ne!(orders[a], orders[b], "orders {a} and {b}");
    }

    // The batch pass reads 2 batches: the first 512 records of the sampled order.
    let batch = CppPass::new(CppMode::Batch(256)).seed(5);
    let got = batch.run(&bin, &path, n).unwrap();
    let first = sampled.reads(512);
    let want = first.run(&bin, &path, n).unwrap();
    first.verify(&want, n, rec, None).unwrap();
    batch.verify(&got, n, rec, Some(want.checksum)).unwrap();
    assert_eq!(
        got, want,
        "the same records in the same order, summed alike"
    );

    // Another seed's report is not this pass's: the order hash tells them apart.
    let other = sampled.seed(6).run(&bin, &path, n).unwrap();
    let err = sampled
        .verify(&other, n, rec, Some(seq.checksum))
        .unwrap_err();
    assert!(err.to_string().contains("order hash"), "{err}");
    // A wrong record count means the cache would read the (absent) source: an error.
    // Its message is captured (not inherited): an expected failure must not look like one.
    let out = Command::new(&bin)
        .arg(&path)
        .arg((n + 1).to_string())
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a warm cache read its source"), "{err}");
}

#[path = "../../benches/cache/http.rs"]
mod http;

/// Serves `body` to every connection on 127.0.0.1 (HTTP/1.1, Content-Length,
/// Connection: close) from a thread; returns the base URL.
fn serve(body: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn
                .write_all(head.as_bytes())
                .and_then(|_| conn.write_all(&body));
        }
    });
    format!("http://{addr}")
}

#[test]
fn http_fetch_and_async_first_record_paths_work() {
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("b.wire");
    let n = 12;
    let size = http::write_body(&body_path, n, ELEMS).unwrap();
    assert_eq!(size, (n * (13 + ELEMS * 4)) as u64);
    let url = format!("{}/b.wire", serve(std::fs::read(&body_path).unwrap()));
    let cache = dir.path().join("http.cache");

    let report = http::fetch_role(&url, &cache).unwrap();
    assert!(report.starts_with(&format!("records={n} ")), "{report}");
    let (sum, _) = view_pass(&cache, n, 1).unwrap();
    assert_eq!(sum, expected_checksum(n, ELEMS));

    let (first, all) = http::async_first_and_all(&url, &cache, n).unwrap();
    assert!(first > 0.0 && first <= all, "first {first} s, all {all} s");
    let (sum, _) = view_pass(&cache, n, 1).unwrap();
    assert_eq!(sum, expected_checksum(n, ELEMS));
}

#[test]
fn median_takes_the_middle_or_the_mean_of_the_middle_two() {
    assert_eq!(common::median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(common::median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(common::min(&[2.0, 0.5, 3.0]), 0.5);
    assert_eq!(common::max(&[2.0, 0.5, 3.0]), 3.0);
}

#[test]
fn interleave_alternates_baseline_and_subject() {
    let order = std::cell::RefCell::new(Vec::new());
    let (b, s) = common::interleave(
        3,
        || {
            order.borrow_mut().push('b');
            Ok((1.0, f64::NAN))
        },
        || {
            order.borrow_mut().push('s');
            Ok((2.0, f64::NAN))
        },
    )
    .unwrap();
    assert_eq!(order.into_inner(), ['b', 's', 'b', 's', 'b', 's']);
    assert_eq!((b.len(), s.len()), (3, 3));
    assert!(s.iter().all(|x| x.0 == 2.0));
    let (wall, cpu) = common::timed(|| Ok(())).unwrap();
    assert!(wall >= 0.0 && cpu >= 0.0);
}

#[test]
fn bench_nginx_serves_generated_wire_records_to_curl_and_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.bin");
    let (records, dims) = (5, 3);
    let size = common::write_wire(&data, records, dims).unwrap();
    assert_eq!(size, (records * (13 + 4 * dims)) as u64);
    // Element j of record i is i * 31 + j.
    let bytes = std::fs::read(&data).unwrap();
    let rec = 13 + 4 * dims;
    let elem = |i: usize, j: usize| {
        let at = i * rec + 13 + 4 * j;
        f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    };
    assert_eq!((elem(0, 0), elem(2, 1), elem(4, 2)), (0.0, 63.0, 126.0));
    // A file of the right size is kept as it is.
    let mtime = std::fs::metadata(&data).unwrap().modified().unwrap();
    common::write_wire(&data, records, dims).unwrap();
    assert_eq!(std::fs::metadata(&data).unwrap().modified().unwrap(), mtime);

    let server = common::Nginx::serve_for_benchmarks(dir.path()).unwrap();
    let url = format!("{}/d.bin", server.url(""));
    let out = dir.path().join("curl.out");
    assert!(common::curl(&url, out.to_str().unwrap()).unwrap() >= 0.0);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert!(common::curl(&format!("{}/missing", server.url("")), "/dev/null").is_err());

    let opts = harmonics_dataset::HttpOptions {
        cache_path: dir.path().join("d.cache").display().to_string(),
        ..Default::default()
    };
    let p = harmonics_dataset::HttpProducer::from_url(&url, opts).unwrap();
    assert_eq!(p.len(), records);
}

#[test]
fn child_reports_parse_by_key() {
    let out = "records=12 hwm_kib=9000\n";
    assert_eq!(common::field(out, "records="), Some(12));
    assert_eq!(common::field(out, "hwm_kib="), Some(9000));
    assert_eq!(common::field(out, "bytes="), None);
}

#[path = "../../benches/streaming/work.rs"]
mod streaming;
// benches/streaming/work.rs uses the cache benchmark's work as `super::cache_work`.
use work as cache_work;

#[test]
fn streaming_bench_paths_read_every_record_and_count_their_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let (n, dims) = (2000, 256);
    let d = streaming::dataset(dir.path(), &www, n, dims).unwrap();
    assert!(d.bytes > (n * dims * 4) as u64);
    // A second call keeps the files.
    let mtime = std::fs::metadata(&d.published).unwrap().modified().unwrap();
    streaming::dataset(dir.path(), &www, n, dims).unwrap();
    assert_eq!(
        std::fs::metadata(&d.published).unwrap().modified().unwrap(),
        mtime
    );
    let server = common::Nginx::serve_for_benchmarks(&www).unwrap();
    let url = server.url(&format!(
        "/{}",
        d.published.file_name().unwrap().to_str().unwrap()
    ));

    // Two epochs of the stream: every record once per epoch, the same records as a
    // SampledProducer epoch over the local cache (same checksum), the second epoch
    // fetching nothing (the share fits).
    let (epochs, stats) =
        streaming::stream_epochs(&url, &dir.path().join("a.stream"), 0, 2, 2).unwrap();
    let sampled = streaming::sampled_epochs(&d.local, n, 1).unwrap();
    assert_eq!(epochs.len(), 2);
    for e in &epochs {
        assert_eq!(e.records, n as u64);
        assert_eq!(e.bytes, (n * dims * 4) as u64);
        assert!((e.checksum - sampled[0].checksum).abs() <= 1e-6 * sampled[0].checksum.abs());
    }
    assert!(epochs[0].blocks_fetched > 0);
    assert_eq!(epochs[1].blocks_fetched, 0);
    assert!(stats.bytes_fetched >= d.bytes - (n * 8) as u64);

    let (secs, records) = streaming::download(&url, &dir.path().join("download.cache"), 2).unwrap();
    assert!(secs > 0.0 && records == n);

    // Half the share: the stream fetches less than LRU in the second epoch, MIN no more
    // than either.
    let f = streaming::fetch_fraction(&url, &dir.path().join("f.stream"), d.bytes, 0.5, 2).unwrap();
    assert!(f.f > 0.4 && f.f < 0.6, "{f:?}");
    assert!(
        f.belady_second <= f.lru_second && f.stream_second < f.lru_second,
        "{f:?}"
    );
    assert!(f.disk_high_water <= f.limit, "{f:?}");
}

#[test]
fn child_peak_rss_anon_samples_the_childs_private_memory() {
    // A shell holding a few MiB of its own for a moment.
    let (out, kib) = common::child_peak_rss_anon(
        Path::new("sh"),
        &[
            "-c".into(),
            "x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 0.1; echo ${#x}".into(),
        ],
    )
    .unwrap();
    assert_eq!(out.trim(), "4000000");
    assert!(kib > 1000, "{kib} KiB");
    assert!(common::rss_anon_kib() > 0);
    assert_eq!(
        common::field_as::<f64>(" e0_secs=1.5 x=2", " e0_secs="),
        Some(1.5)
    );
}
