//! Parallel ranged downloads (`HttpOptions::connections`) versus one connection and
//! versus `curl`, through a loopback proxy that throttles every connection to a fixed
//! rate (as object stores do), and against an unthrottled nginx on loopback.
//!
//! ```text
//! cargo bench --bench parallel_fetch -- [SIZE_MB] [RATE_MB_S] [K] [ROUNDS]
//! cargo bench --bench parallel_fetch -- 1024 40 8 3
//! cargo bench --bench parallel_fetch -- 1024 0 8 5   # unthrottled only
//! ```
//!
//! - Throttled: a SIZE_MB object (float32 wire records, served by nginx from
//!   `/identity/`: strong ETag, ranges, no gzip) through `tests/support/fault_proxy/throttle.rs`
//!   at RATE_MB_S per connection: `curl -o /dev/null`, `HttpProducer` on one connection,
//!   and `HttpProducer` over K connections. Target: K connections >= 6x both.
//! - Unthrottled: the same object straight from nginx, one connection vs the default
//!   (4 connections at >= 64 MiB) vs K, ROUNDS interleaved rounds (medians); and a
//!   16 MiB object (below the threshold) with the default options vs one connection.
//!
//! Every fetch runs in a child process (this binary again) into a fresh cache file,
//! timed from spawn to exit; the child reports its peak RSS. Data and caches live
//! under `$HTTP_BENCH_DIR` (default `target/http-bench`).
//!
//! The server is the test harness's nginx (`tests/support/nginx.rs`: ETag, ranges,
//! `/identity/` without gzip), which the figures above were measured against.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/fault_proxy/mod.rs"]
mod fault_proxy;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bench_args, child_peak_rss, max, median, min, vm_hwm_kib, write_wire};
use harmonics_dataset::{HttpOptions, HttpProducer, Producer};

fn main() {
    let args = bench_args();
    if args.first().map(String::as_str) == Some("child") {
        child(&args[1], &args[2], args[3].parse().unwrap());
        return;
    }
    let arg = |i: usize, d: u64| args.get(i).map(|s| s.parse().unwrap()).unwrap_or(d);
    let size_mb = arg(0, 1024);
    let rate_mb = arg(1, 40);
    let k = arg(2, 8) as u32;
    let rounds = arg(3, 3) as usize;

    let base = common::http_bench_dir().unwrap();
    let server = common::Nginx::start();
    // Records of float32[16384] (64 KiB + 13 bytes).
    let dims = 16384usize;
    let rec = (13 + 4 * dims) as u64;
    let big = (size_mb << 20) / rec;
    let small = (16u64 << 20) / rec;
    write_wire(&server.www().join("big.bin"), big as usize, dims).unwrap();
    write_wire(&server.www().join("small.bin"), small as usize, dims).unwrap();
    let cache = base.join("parallel-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let exe = std::env::current_exe().unwrap();
    let big_len = big * rec;
    println!(
        "object {:.0} MB ({big} records), small object {:.1} MB; {} cores, load {}",
        big_len as f64 / 1e6,
        (small * rec) as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // Warm the page cache with the served files.
    let direct = |p: &str| server.url(&format!("/identity/{p}"));
    run_curl(&direct("big.bin"));
    run_curl(&direct("small.bin"));

    // --- Throttled (RATE_MB_S 0: skipped).
    if rate_mb > 0 {
        throttled(&server, &exe, &cache, rate_mb, k, big_len);
    }

    // --- Unthrottled.
    unthrottled(&server, &exe, &cache, k, rounds);
    let _ = std::fs::remove_dir_all(&cache);
}

fn throttled(server: &common::Nginx, exe: &Path, cache: &Path, rate_mb: u64, k: u32, big_len: u64) {
    let proxy = fault_proxy::ThrottleProxy::start(server.port(), rate_mb * 1_000_000);
    let url = proxy.url("/identity/big.bin");
    println!("\nthrottled: {rate_mb} MB/s per connection through a loopback proxy");
    let b0 = proxy.bytes();
    let curl = run_curl(&url);
    let curl_bytes = proxy.bytes() - b0;
    let b0 = proxy.bytes();
    let (one, one_rss) = run_child(exe, &url, cache, 1);
    let one_bytes = proxy.bytes() - b0;
    let b0 = proxy.bytes();
    let c0 = proxy.connections();
    let (par, par_rss) = run_child(exe, &url, cache, k);
    let par_bytes = proxy.bytes() - b0;
    let par_conns = proxy.connections() - c0;
    let mbps = |t: f64| big_len as f64 / 1e6 / t;
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>12}",
        "what", "time", "MB/s", "peak RSS", "bytes sent"
    );
    let row = |what: &str, t: f64, rss: Option<u64>, bytes: u64| {
        println!(
            "{what:<28} {t:>7.2}s {:>10.1} {:>10} {bytes:>12}",
            mbps(t),
            rss.map_or("-".into(), |r| format!("{:.1}MiB", r as f64 / 1024.0)),
        )
    };
    row("curl -o /dev/null", curl, None, curl_bytes);
    row("HttpProducer, 1 connection", one, Some(one_rss), one_bytes);
    row(
        &format!("HttpProducer, {k} connections"),
        par,
        Some(par_rss),
        par_bytes,
    );
    println!(
        "ratio {k} connections / 1 connection: {:.2}x   / curl: {:.2}x   ({par_conns} connections \
         opened; object {big_len} bytes)",
        one / par,
        curl / par
    );
}

fn unthrottled(server: &common::Nginx, exe: &Path, cache: &Path, k: u32, rounds: usize) {
    let direct = |p: &str| server.url(&format!("/identity/{p}"));
    println!("\nunthrottled nginx on loopback, {rounds} interleaved rounds (medians)");
    let url = direct("big.bin");
    let small_url = direct("small.bin");
    let modes: Vec<(String, String, u32)> = vec![
        ("big, 1 connection".into(), url.clone(), 1),
        ("big, default (auto: 4)".into(), url.clone(), 0),
        (format!("big, {k} connections"), url.clone(), k),
        ("small, 1 connection".into(), small_url.clone(), 1),
        ("small, default (auto: 1)".into(), small_url.clone(), 0),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut rss: Vec<u64> = vec![0; modes.len()];
    for round in 0..rounds {
        for j in 0..modes.len() {
            // Rotate the order: whoever runs first after a deletion is not favoured.
            let i = (j + round) % modes.len();
            let (_, u, kk) = &modes[i];
            let (t, r) = run_child(exe, u, cache, *kk);
            times[i].push(t);
            rss[i] = rss[i].max(r);
        }
        eprint!("round {round} done\r");
    }
    eprintln!();
    println!(
        "{:<28} {:>8} {:>17} {:>10}",
        "what", "median", "min-max", "peak RSS"
    );
    for (i, (what, ..)) in modes.iter().enumerate() {
        println!(
            "{what:<28} {:>7.3}s {:>7.3}-{:<7.3}s {:>7.1}MiB",
            median(&times[i]),
            min(&times[i]),
            max(&times[i]),
            rss[i] as f64 / 1024.0
        );
    }
    let m = |i: usize| median(&times[i]);
    println!(
        "throughput ratio vs 1 connection: default {:.2}x, {k} connections {:.2}x; small object \
         default {:.2}x",
        m(0) / m(1),
        m(0) / m(2),
        m(3) / m(4)
    );
}

fn run_curl(url: &str) -> f64 {
    common::curl(url, "/dev/null").unwrap()
}

/// One fetch in a child process into a fresh cache file: (seconds, peak RSS KiB).
fn run_child(exe: &Path, url: &str, cache: &Path, k: u32) -> (f64, u64) {
    let path = cache.join("bench.cache");
    let _ = std::fs::remove_file(&path);
    let args = ["child", url, &path.display().to_string(), &k.to_string()].map(String::from);
    let t = Instant::now();
    let (out, _) = child_peak_rss(exe, &args).unwrap();
    let el = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    (el, out.trim().parse().unwrap())
}

fn child(url: &str, path: &str, k: u32) {
    let opts = HttpOptions {
        cache_path: path.to_string(),
        connections: k,
        read_timeout: Duration::from_secs(120),
        ..HttpOptions::default()
    };
    let mut p = HttpProducer::from_url(url, opts).expect("fetch");
    assert!(p.size().unwrap() > 0);
    println!("{}", vm_hwm_kib());
}
