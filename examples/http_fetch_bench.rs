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
//! cargo run --release --example http_fetch_bench -- [A|B|RECORDSxDIMS] [rounds] [modes]
//! cargo run --release --example http_fetch_bench -- A 5 sync,async,anon
//! # before/after: MODE@BINARY runs the child of another build of this example
//! cargo run --release --example http_fetch_bench -- A 7 sync@/tmp/old-build,sync
//! ```
//!
//! The data and the caches live under `$HTTP_BENCH_DIR` (default: `target/http-bench`),
//! the same filesystem as the cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harmonics_dataset::Producer;
use harmonics_dataset::{AsyncHttpProducer, HttpOptions, HttpProducer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2], &args[3], &args[4]);
        return;
    }
    let spec = args.get(1).map(String::as_str).unwrap_or("A");
    let (records, dims) = match spec {
        "A" => (200_000usize, 784usize),
        "B" => (1_000, 262_144),
        s => {
            let (r, d) = s.split_once('x').expect("RECORDSxDIMS");
            (r.parse().unwrap(), d.parse().unwrap())
        }
    };
    let rounds: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(5);
    let modes: Vec<String> = args
        .get(3)
        .map(String::as_str)
        .unwrap_or("sync,async,anon")
        .split(',')
        .map(String::from)
        .collect();

    let base = std::env::var_os("HTTP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/http-bench"));
    let base = std::fs::canonicalize({
        std::fs::create_dir_all(&base).unwrap();
        &base
    })
    .unwrap();
    let www = base.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let name = format!("data-{records}x{dims}.bin");
    let data = www.join(&name);
    generate(&data, records, dims);
    let size = std::fs::metadata(&data).unwrap().len();
    let nginx = Nginx::start(&base);
    let url = format!("http://127.0.0.1:{}/{name}", nginx.port);
    let cache = base.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let exe = std::env::current_exe().unwrap();

    println!(
        "{records} x float32[{dims}] = {:.1} MB, {rounds} interleaved rounds, {url}",
        size as f64 / 1e6
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
    let _ = std::fs::remove_dir_all(&cache);
}

/// A mode, its wall times, peak RSS (KiB) and CPU times.
type Runs = (String, Vec<f64>, Vec<u64>, Vec<f64>);

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

/// CPU time (user + sys) of all waited-for children so far (grandchildren included).
fn children_cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

fn run_curl(url: &str) -> Duration {
    let t = Instant::now();
    let st = Command::new("curl")
        .args(["-s", "-o", "/dev/null", url])
        .status()
        .expect("curl");
    assert!(st.success(), "curl failed");
    t.elapsed()
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
    let t = Instant::now();
    let out = Command::new(exe)
        .arg("child")
        .arg(url)
        .arg(path)
        .arg(mode)
        .stderr(Stdio::inherit())
        .output()
        .expect("child");
    let el = t.elapsed();
    assert!(out.status.success(), "fetch child failed");
    let kib = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (el, kib)
}

/// The fetch itself: returns once the cache is complete (and, for `anon`, unlinked).
fn child(url: &str, path: &str, mode: &str) {
    let opts = HttpOptions {
        cache: mode != "anon",
        cache_path: path.to_string(),
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
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    println!("{}", ru.ru_maxrss);
}

fn generate(path: &Path, records: usize, dims: usize) {
    let want = (records * (13 + 4 * dims)) as u64;
    if std::fs::metadata(path).map(|m| m.len()).ok() == Some(want) {
        return;
    }
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

struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Nginx {
    fn start(base: &Path) -> Nginx {
        let dir = base.join("nginx");
        std::fs::create_dir_all(dir.join("temp")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let www = base.join("www");
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n sendfile on;\n tcp_nopush on;\n\
             client_body_temp_path {d}/temp/body;\n proxy_temp_path {d}/temp/proxy;\n\
             fastcgi_temp_path {d}/temp/fastcgi;\n uwsgi_temp_path {d}/temp/uwsgi;\n\
             scgi_temp_path {d}/temp/scgi;\n default_type application/octet-stream;\n\
             server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            www.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Nginx { child, port };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nginx did not start");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
