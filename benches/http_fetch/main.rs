//! Cold HTTP fetch into the cache versus `curl -s -o /dev/null` of the same URL.
//!
//! Starts nginx on 127.0.0.1 (its own temp directory, sendfile, no gzip) serving a
//! generated file of float32 wire records, then times interleaved rounds of
//! `curl`, `HttpProducer` (sync, cache file), `AsyncHttpProducer` (cache file) and
//! `HttpProducer` with `cache = false` (anonymous temp file). Each fetch runs in a
//! child process (this binary again), timed from spawn to exit, so process start-up
//! counts for both sides; the child reports its peak RSS, and the CPU time (user +
//! sys, from `RUSAGE_CHILDREN`) of every run is printed too: much less noisy than
//! the wall time on a shared machine. Modes `curlfile` and
//! `curlsync` time `curl -o FILE` (and `sync FILE`) in the cache directory: the floor
//! of writing the body to a file at all.
//!
//! ```text
//! cargo bench --bench http_fetch -- [A|B|RECORDSxDIMS] [rounds] [modes]
//! cargo bench --bench http_fetch -- A 5 sync,async,anon
//! # before/after: MODE@BINARY runs the child of another build of this benchmark
//! cargo bench --bench http_fetch -- A 7 sync@/tmp/old-build,sync
//! ```
//!
//! The data and the caches live under `$HTTP_BENCH_DIR` (default: `target/http-bench`),
//! the same filesystem as the cache.

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bench_args, child_peak_rss, children_cpu, max, median, min, vm_hwm_kib};
use harmonics_dataset::Producer;
use harmonics_dataset::{AsyncHttpProducer, HttpOptions, HttpProducer};

fn main() {
    let args = bench_args();
    if args.first().map(String::as_str) == Some("child") {
        child(&args[1], &args[2], &args[3]);
        return;
    }
    let spec = args.first().map(String::as_str).unwrap_or("A");
    let (records, dims) = match spec {
        "A" => (200_000usize, 784usize),
        "B" => (1_000, 262_144),
        s => {
            let (r, d) = s.split_once('x').expect("RECORDSxDIMS");
            (r.parse().unwrap(), d.parse().unwrap())
        }
    };
    let rounds: usize = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(5);
    let modes: Vec<String> = args
        .get(2)
        .map(String::as_str)
        .unwrap_or("sync,async,anon")
        .split(',')
        .map(String::from)
        .collect();

    let base = common::http_bench_dir().unwrap();
    let www = base.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let name = format!("data-{records}x{dims}.bin");
    let data = www.join(&name);
    let size = common::write_wire(&data, records, dims).unwrap();
    let nginx = common::Nginx::serve_for_benchmarks(&www).unwrap();
    let url = format!("{}/{name}", nginx.url(""));
    let cache = base.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let exe = std::env::current_exe().unwrap();

    println!(
        "{records} x float32[{dims}] = {:.1} MB, {rounds} interleaved rounds, {url}; load {}",
        size as f64 / 1e6,
        loadavg()
    );
    // Warm the served file into the page cache and the binaries.
    run_curl(&url);
    let mut curl_t = Vec::new();
    let mut curl_cpu = Vec::new();
    // (mode, wall times, peak RSS in KiB, CPU times user+sys of the fetch)
    let mut ours: Vec<Runs> = modes
        .iter()
        .map(|m| (m.clone(), vec![], vec![], vec![]))
        .collect();
    let out = |mode: &str| cache.join(format!("{}.cache", mode.replace(['@', '/'], "_")));
    for round in 0..rounds {
        // Every output of the previous round goes first, outside any timing, and the
        // order of the modes rotates: which run gets the just-freed page-cache pages
        // (much cheaper to write into on a VM than fresh ones) changes every round.
        for (mode, ..) in &ours {
            let _ = std::fs::remove_file(out(mode));
        }
        let c0 = children_cpu();
        curl_t.push(run_curl(&url).as_secs_f64());
        curl_cpu.push(children_cpu() - c0);
        let k = ours.len();
        for i in 0..k {
            let (mode, times, rss, cpu) = &mut ours[(i + round) % k];
            let c0 = children_cpu();
            let (t, kib) = run_child(&exe, &url, &out(mode), mode);
            cpu.push(children_cpu() - c0);
            times.push(t.as_secs_f64());
            rss.push(kib);
        }
        eprint!("round {round} done\r");
    }
    eprintln!();
    let curl_med = median(&curl_t);
    println!(
        "{:<20} {:>8} {:>17} {:>7} {:>10} {:>8} {:>6}",
        "what", "median", "min-max", "ratio", "peak RSS", "CPU", "ratio"
    );
    let curl_c = median(&curl_cpu);
    println!(
        "{:<20} {:>7.3}s {:>7.3}-{:<7.3}s {:>7} {:>10} {:>7.3}s {:>6}",
        "curl",
        curl_med,
        min(&curl_t),
        max(&curl_t),
        "1.00x",
        "-",
        curl_c,
        "1.00x"
    );
    for (mode, times, rss, cpu) in &ours {
        let m = median(times);
        println!(
            "{:<20} {:>7.3}s {:>7.3}-{:<7.3}s {:>6.2}x {:>7.1}MiB {:>7.3}s {:>5.2}x",
            mode,
            m,
            min(times),
            max(times),
            m / curl_med,
            *rss.iter().max().unwrap() as f64 / 1024.0,
            median(cpu),
            median(cpu) / curl_c
        );
    }
    let find = |m: &str| ours.iter().find(|(mode, ..)| mode == m);
    if let (Some((_, dt, _, dc)), Some((_, ot, _, oc))) = (find("sync"), find("one")) {
        println!(
            "default (automatic connections) vs one connection: throughput {:.2}x, CPU {:.2}x",
            median(ot) / median(dt),
            median(dc) / median(oc)
        );
    }
    println!("load at the end {}", loadavg());
    let _ = std::fs::remove_dir_all(&cache);
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A mode, its wall times, peak RSS (KiB) and CPU times.
type Runs = (String, Vec<f64>, Vec<u64>, Vec<f64>);

fn run_curl(url: &str) -> Duration {
    Duration::from_secs_f64(common::curl(url, "/dev/null").unwrap())
}

/// Baselines for the floor of writing the body to a file: `curl -o FILE` without and
/// with an fsync of the file (`sync FILE`), in the cache's filesystem.
fn run_curl_file(url: &str, path: &Path, fsync: bool) -> Duration {
    let t = Instant::now();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(if fsync {
            "curl -s -o \"$2\" \"$1\" && sync \"$2\""
        } else {
            "curl -s -o \"$2\" \"$1\""
        })
        .arg("sh")
        .arg(url)
        .arg(path);
    assert!(cmd.status().expect("curl").success(), "curl failed");
    t.elapsed()
}

fn run_child(exe: &Path, url: &str, path: &Path, mode: &str) -> (Duration, u64) {
    if mode == "curlfile" || mode == "curlsync" {
        return (run_curl_file(url, path, mode == "curlsync"), 0);
    }
    // `MODE@BINARY` runs another build of this example (before/after comparisons).
    let (mode, exe) = match mode.split_once('@') {
        Some((m, e)) => (m, Path::new(e)),
        None => (mode, exe),
    };
    let args = ["child", url, &path.display().to_string(), mode].map(String::from);
    let t = Instant::now();
    let (out, _) = child_peak_rss(exe, &args).unwrap();
    let el = t.elapsed();
    (el, out.trim().parse().unwrap())
}

/// The fetch itself: returns once the cache is complete (and, for `anon`, unlinked).
fn child(url: &str, path: &str, mode: &str) {
    // `one`: a single connection; `kN`: N connections; otherwise the default (0).
    let connections = match mode {
        "one" => 1,
        m => m
            .strip_prefix('k')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    };
    let opts = HttpOptions {
        cache: mode != "anon",
        cache_path: path.to_string(),
        connections,
        ..HttpOptions::default()
    };
    let n = match mode {
        "async" => {
            // `size` waits for the end of the body; dropping the producer waits for
            // the cache to be finished (fsync and rename) in the background thread.
            let mut p = AsyncHttpProducer::from_url(url, opts).expect("fetch");
            p.size().expect("size")
        }
        _ => HttpProducer::from_url(url, opts)
            .expect("fetch")
            .size()
            .expect("size"),
    };
    assert!(n > 0);
    println!("{}", vm_hwm_kib());
}
