//! Parallel ranged downloads (`HttpOptions::connections`): the automatic default and K
//! connections versus one, through a loopback proxy that throttles every connection to
//! a fixed rate (as object stores do), and against an unthrottled nginx on loopback.
//!
//! ```text
//! cargo bench --bench parallel_fetch -- [SIZE_MB] [RATE_MB_S] [K] [ROUNDS]
//! cargo bench --bench parallel_fetch -- 1024 40 8 3
//! cargo bench --bench parallel_fetch -- 1024 0 8 5   # unthrottled only
//! ```
//!
//! - Throttled: a SIZE_MB object (float32 wire records, served by nginx from
//!   `/identity/`: strong ETag, ranges, no gzip) through `tests/support/fault_proxy/throttle.rs`
//!   at RATE_MB_S per connection, ROUNDS interleaved rounds (medians) of `HttpProducer`
//!   on one connection, with the default options (automatic: one connection, split
//!   into 4 when measured to help) and over K connections; `curl -o /dev/null` once as
//!   a reference. Targets: default >= 3.5x one connection, K = 8 >= 6x.
//! - Unthrottled: the same object straight from nginx, one connection vs the default
//!   vs K, ROUNDS interleaved rounds (medians); and a 16 MiB object (below the
//!   threshold) with the default options vs one connection. Target: default >= 0.95x.
//!
//! Every fetch runs in a child process (this binary again) into a fresh cache file,
//! timed from spawn to exit; the child reports its peak RSS, and its CPU time (user +
//! sys, `RUSAGE_CHILDREN`) is printed beside the wall time. The order of the modes
//! rotates every round. The load average is printed before and after: the machine may
//! be shared. Data and caches live under `$HTTP_BENCH_DIR` (default
//! `target/http-bench`).
//!
//! The server is the test harness's nginx (`tests/support/nginx.rs`: ETag, ranges,
//! `/identity/` without gzip), which the figures above were measured against.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../tests/support/fault_proxy/mod.rs"]
mod fault_proxy;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bench_args, child_peak_rss, children_cpu, max, median, min, vm_hwm_kib, write_wire};
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
        loadavg()
    );

    // Warm the page cache with the served files.
    let direct = |p: &str| server.url(&format!("/identity/{p}"));
    run_curl(&direct("big.bin"));
    run_curl(&direct("small.bin"));

    // --- Throttled (RATE_MB_S 0: skipped).
    if rate_mb > 0 {
        throttled(&server, &exe, &cache, rate_mb, k, big_len, rounds);
    }

    // --- Unthrottled.
    unthrottled(&server, &exe, &cache, k, rounds);
    println!("\nload at the end {}", loadavg());
    let _ = std::fs::remove_dir_all(&cache);
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// One mode's runs: wall seconds, CPU seconds, peak RSS (KiB), connections opened.
#[derive(Default)]
struct Runs {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    rss: u64,
    conns: Vec<f64>,
}

/// `rounds` interleaved rounds of `modes` (label, URL, connections), the order rotated
/// every round; `conns()` counts the connections opened so far (0 when unknown).
fn rounds_of(
    modes: &[(String, String, u32)],
    exe: &Path,
    cache: &Path,
    rounds: usize,
    conns: &dyn Fn() -> usize,
) -> Vec<Runs> {
    let mut runs: Vec<Runs> = modes.iter().map(|_| Runs::default()).collect();
    for round in 0..rounds {
        for j in 0..modes.len() {
            let i = (j + round) % modes.len();
            let (_, url, k) = &modes[i];
            let (c0, n0) = (children_cpu(), conns());
            let (t, rss) = run_child(exe, url, cache, *k);
            let r = &mut runs[i];
            r.cpu.push(children_cpu() - c0);
            r.conns.push((conns() - n0) as f64);
            r.wall.push(t);
            r.rss = r.rss.max(rss);
        }
        eprint!("round {round} done\r");
    }
    eprintln!();
    runs
}

fn table(modes: &[(String, String, u32)], runs: &[Runs], len: Option<u64>) {
    println!(
        "{:<28} {:>8} {:>17} {:>9} {:>8} {:>10} {:>6}",
        "what", "median", "min-max", "MB/s", "CPU", "peak RSS", "conns"
    );
    for ((what, ..), r) in modes.iter().zip(runs) {
        let m = median(&r.wall);
        println!(
            "{what:<28} {m:>7.3}s {:>7.3}-{:<7.3}s {:>9} {:>7.3}s {:>7.1}MiB {:>6}",
            min(&r.wall),
            max(&r.wall),
            len.map_or("-".into(), |l| format!("{:.1}", l as f64 / 1e6 / m)),
            median(&r.cpu),
            r.rss as f64 / 1024.0,
            if r.conns.iter().all(|&c| c == 0.0) {
                "-".into()
            } else {
                format!("{}", median(&r.conns))
            }
        );
    }
}

fn throttled(
    server: &common::Nginx,
    exe: &Path,
    cache: &Path,
    rate_mb: u64,
    k: u32,
    big_len: u64,
    rounds: usize,
) {
    let proxy = fault_proxy::ThrottleProxy::start(server.port(), rate_mb * 1_000_000);
    let url = proxy.url("/identity/big.bin");
    println!(
        "\nthrottled: {rate_mb} MB/s per connection through a loopback proxy, {rounds} \
         interleaved rounds (medians)"
    );
    let curl = run_curl(&url);
    println!(
        "curl -o /dev/null (once)      {curl:>7.3}s                   {:>9.1}",
        big_len as f64 / 1e6 / curl
    );
    let modes: Vec<(String, String, u32)> = vec![
        ("1 connection".into(), url.clone(), 1),
        ("default (automatic)".into(), url.clone(), 0),
        (format!("{k} connections"), url.clone(), k),
    ];
    let runs = rounds_of(&modes, exe, cache, rounds, &|| proxy.connections());
    table(&modes, &runs, Some(big_len));
    let m = |i: usize| median(&runs[i].wall);
    println!(
        "throughput ratio vs 1 connection: default {:.2}x, {k} connections {:.2}x \
         (targets: >= 3.5x, >= 6x); {k} connections vs curl {:.2}x",
        m(0) / m(1),
        m(0) / m(2),
        curl / m(2)
    );
}

fn unthrottled(server: &common::Nginx, exe: &Path, cache: &Path, k: u32, rounds: usize) {
    let direct = |p: &str| server.url(&format!("/identity/{p}"));
    println!("\nunthrottled nginx on loopback, {rounds} interleaved rounds (medians)");
    let url = direct("big.bin");
    let small_url = direct("small.bin");
    let modes: Vec<(String, String, u32)> = vec![
        ("big, 1 connection".into(), url.clone(), 1),
        ("big, default (automatic)".into(), url.clone(), 0),
        (format!("big, {k} connections"), url.clone(), k),
        ("small, 1 connection".into(), small_url.clone(), 1),
        ("small, default".into(), small_url.clone(), 0),
    ];
    let runs = rounds_of(&modes, exe, cache, rounds, &|| 0);
    table(&modes, &runs, None);
    let m = |i: usize| median(&runs[i].wall);
    let c = |i: usize| median(&runs[i].cpu);
    println!(
        "throughput ratio vs 1 connection: default {:.2}x (target >= 0.95x), {k} connections \
         {:.2}x; small object default {:.2}x; CPU vs 1 connection: default {:.2}x, {k} \
         connections {:.2}x",
        m(0) / m(1),
        m(0) / m(2),
        m(3) / m(4),
        c(1) / c(0),
        c(2) / c(0)
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
