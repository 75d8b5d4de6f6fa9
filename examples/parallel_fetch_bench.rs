//! Parallel ranged downloads (`HttpOptions::connections`) versus one connection and
//! versus `curl`, through a loopback proxy that throttles every connection to a fixed
//! rate (as object stores do), and against an unthrottled nginx on loopback.
//!
//! ```text
//! cargo run --release --example parallel_fetch_bench -- [SIZE_MB] [RATE_MB_S] [K] [ROUNDS]
//! cargo run --release --example parallel_fetch_bench -- 1024 40 8 3
//! cargo run --release --example parallel_fetch_bench -- 1024 0 8 5   # unthrottled only
//! ```
//!
//! - Throttled: a SIZE_MB object (float32 wire records, served by nginx from
//!   `/identity/`: strong ETag, ranges, no gzip) through `tests/support/throttle_proxy.rs`
//!   at RATE_MB_S per connection: `curl -o /dev/null`, `HttpProducer` on one connection,
//!   and `HttpProducer` over K connections. Target: K connections >= 6x both.
//! - Unthrottled: the same object straight from nginx, one connection vs the default
//!   (4 connections at >= 64 MiB) vs K, ROUNDS interleaved rounds (medians); and a
//!   16 MiB object (below the threshold) with the default options vs one connection.
//!
//! Every fetch runs in a child process (this binary again) into a fresh cache file,
//! timed from spawn to exit; the child reports its peak RSS. Data and caches live
//! under `$HTTP_BENCH_DIR` (default `target/http-bench`).

#[path = "../tests/support/nginx.rs"]
mod nginx;
#[path = "../tests/support/throttle_proxy.rs"]
mod throttle_proxy;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harmonics_dataset::{HttpOptions, HttpProducer, Producer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2], &args[3], args[4].parse().unwrap());
        return;
    }
    let arg = |i: usize, d: u64| args.get(i).map(|s| s.parse().unwrap()).unwrap_or(d);
    let size_mb = arg(1, 1024);
    let rate_mb = arg(2, 40);
    let k = arg(3, 8) as u32;
    let rounds = arg(4, 3) as usize;

    let base = std::env::var_os("HTTP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/http-bench"));
    std::fs::create_dir_all(&base).unwrap();
    let base = std::fs::canonicalize(&base).unwrap();
    let server = nginx::Nginx::start();
    // Records of float32[16384] (64 KiB + 13 bytes).
    let dims = 16384usize;
    let rec = (13 + 4 * dims) as u64;
    let big = (size_mb << 20) / rec;
    let small = (16u64 << 20) / rec;
    generate(&server.www().join("big.bin"), big as usize, dims);
    generate(&server.www().join("small.bin"), small as usize, dims);
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

fn throttled(server: &nginx::Nginx, exe: &Path, cache: &Path, rate_mb: u64, k: u32, big_len: u64) {
    let proxy = throttle_proxy::ThrottleProxy::start(server.port(), rate_mb * 1_000_000);
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

fn unthrottled(server: &nginx::Nginx, exe: &Path, cache: &Path, k: u32, rounds: usize) {
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
    let t = Instant::now();
    let st = Command::new("curl")
        .args(["-s", "-o", "/dev/null", url])
        .status()
        .expect("curl");
    assert!(st.success(), "curl failed");
    t.elapsed().as_secs_f64()
}

/// One fetch in a child process into a fresh cache file: (seconds, peak RSS KiB).
fn run_child(exe: &Path, url: &str, cache: &Path, k: u32) -> (f64, u64) {
    let path = cache.join("bench.cache");
    let _ = std::fs::remove_file(&path);
    let t = Instant::now();
    let out = Command::new(exe)
        .arg("child")
        .arg(url)
        .arg(&path)
        .arg(k.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("child");
    let el = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "fetch child failed");
    let _ = std::fs::remove_file(&path);
    (
        el,
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
    )
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
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    println!("{}", ru.ru_maxrss);
}

fn generate(path: &Path, records: usize, dims: usize) {
    let tmp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).unwrap());
    let mut rec = Vec::with_capacity(13 + 4 * dims);
    for i in 0..records {
        rec.clear();
        rec.push(0u8); // float32
        rec.extend_from_slice(&1u32.to_le_bytes());
        rec.extend_from_slice(&(dims as u32).to_le_bytes());
        rec.extend_from_slice(&((4 * dims) as u32).to_le_bytes());
        for j in 0..dims {
            rec.extend_from_slice(&((i * 31 + j) as f32).to_le_bytes());
        }
        out.write_all(&rec).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&tmp, path).unwrap();
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(0.0, f64::max)
}
