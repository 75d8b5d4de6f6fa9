//! The harness every benchmark shares, included with
//! `#[path = "../common/mod.rs"] mod common;` (and by `tests/all/bench_smoke.rs`):
//! medians, wall and CPU time, interleaved rounds, child processes and their peak RSS,
//! the `curl` baseline, generated wire-format data and an nginx on 127.0.0.1.
//!
//! Nothing here prints a figure: each benchmark prints its own table, every ratio
//! against a baseline measured in the same run.

#![allow(dead_code)] // each includer uses a subset

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub type R<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// (measured value, CPU seconds of this process and its children; NaN when n/a).
pub type Sample = (f64, f64);

/// The median (the mean of the middle two for an even count). Panics on empty input.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn min(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::INFINITY, f64::min)
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().cloned().fold(0.0, f64::max)
}

/// The arguments cargo gives a `harness = false` benchmark, without the program name
/// and the `--bench` flag `cargo bench` adds.
pub fn bench_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}

fn rusage_cpu(who: libc::c_int) -> f64 {
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// CPU seconds (user + system) of this process and of the children it waited for.
pub fn cpu_seconds() -> f64 {
    rusage_cpu(libc::RUSAGE_SELF) + rusage_cpu(libc::RUSAGE_CHILDREN)
}

/// CPU seconds (user + system) of all waited-for children so far (grandchildren
/// included).
pub fn children_cpu() -> f64 {
    rusage_cpu(libc::RUSAGE_CHILDREN)
}

/// Wall seconds and CPU seconds (of this process and of the children it waited for)
/// spent in `f`. CPU time is printed beside the wall ratio because this machine is
/// shared: a run-queue wait stretches wall time but not CPU time.
pub fn timed(f: impl FnOnce() -> R<()>) -> R<Sample> {
    let (c0, t) = (cpu_seconds(), Instant::now());
    f()?;
    Ok((t.elapsed().as_secs_f64(), cpu_seconds() - c0))
}

/// Alternates baseline and subject for `rounds` rounds; each closure returns the
/// measured value of its run.
pub fn interleave(
    rounds: usize,
    mut base: impl FnMut() -> R<Sample>,
    mut subj: impl FnMut() -> R<Sample>,
) -> R<(Vec<Sample>, Vec<Sample>)> {
    let (mut b, mut s) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.push(base()?);
        s.push(subj()?);
    }
    Ok((b, s))
}

/// Peak resident set (VmHWM) of this process, in KiB.
pub fn vm_hwm_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Current resident set (VmRSS) of this process, in KiB.
pub fn vm_rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Private memory (RssAnon: anonymous pages, no file pages) of this process, in KiB.
pub fn rss_anon_kib() -> u64 {
    status_kib("RssAnon:")
}

fn status_kib(field: &str) -> u64 {
    proc_status_kib("self", field)
}

/// A `/proc/<pid>/status` field in KiB (0 when the process or the field is gone).
fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `exe args…` as a child and returns (its stdout, its ru_maxrss in KiB from
/// wait4's rusage). Caution: Rust spawns with posix_spawn (a vfork sharing the
/// parent's memory), and Linux folds the pre-exec memory's high-water mark into the
/// child's ru_maxrss at exec, so this figure is at least the parent's own peak. Child
/// roles therefore also print their own VmHWM (fresh after exec, [`vm_hwm_kib`]),
/// which is what the benchmarks report.
pub fn child_peak_rss(exe: &Path, args: &[String]) -> R<(String, u64)> {
    let child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.ok_or("child without stdout")?;
    let mut raw = Vec::new();
    stdout
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the output of {}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut status = 0;
    // SAFETY: rusage is plain data; pid is our own unwaited child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "child {} {:?} failed (status {status}): {text}",
            exe.display(),
            args
        )
        .into());
    }
    Ok((text, ru.ru_maxrss as u64))
}

/// Runs `exe args…` as a child while sampling its private memory (RssAnon, from
/// `/proc/<pid>/status`) every 2 ms; returns (its stdout, the highest sample in KiB).
/// The kernel keeps no high-water mark of RssAnon (VmHWM counts file pages too), so
/// this is a sampled peak: a spike shorter than the interval may be missed.
pub fn child_peak_rss_anon(exe: &Path, args: &[String]) -> R<(String, u64)> {
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let pid = child.id().to_string();
    let mut stdout = child.stdout.take().ok_or("child without stdout")?;
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let _ = stdout.read_to_end(&mut raw);
        raw
    });
    let mut peak = 0;
    let status = loop {
        peak = peak.max(proc_status_kib(&pid, "RssAnon:"));
        if let Some(st) = child.try_wait()? {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let text = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if !status.success() {
        return Err(format!(
            "child {} {:?} failed ({status}): {text}",
            exe.display(),
            args
        )
        .into());
    }
    Ok((text, peak))
}

/// The number after `key` in a child's `key=value` report.
pub fn field(out: &str, key: &str) -> Option<u64> {
    field_as(out, key)
}

/// The value after `key` in a child's `key=value` report, parsed as `T`.
pub fn field_as<T: std::str::FromStr>(out: &str, key: &str) -> Option<T> {
    out.split(key)
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Writes `s` to stdout and flushes (child roles report through stdout).
pub fn say(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

/// The HTTP baseline: `curl -s -f -o OUT URL`; returns its wall seconds.
pub fn curl(url: &str, out: &str) -> R<f64> {
    let t = Instant::now();
    let st = Command::new("curl")
        .args(["-s", "-f", "-o", out, url])
        .status()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !st.success() {
        return Err(format!("curl {url} failed: {st}").into());
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Writes `records` float32[`dims`] records in the wire format (an HTTP dataset body)
/// to `path`, element `j` of record `i` being `i * 31 + j`; a file already there with
/// the right size is kept. Written beside and renamed, so a server never serves half a
/// file. Returns the size.
pub fn write_wire(path: &Path, records: usize, dims: usize) -> R<u64> {
    let rec_len = 13 + 4 * dims;
    let want = (records * rec_len) as u64;
    if std::fs::metadata(path).map(|m| m.len()).ok() == Some(want) {
        return Ok(want);
    }
    let tmp = path.with_extension("tmp");
    let file =
        std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut rec = Vec::with_capacity(rec_len);
    for i in 0..records {
        rec.clear();
        rec.push(0u8); // float32
        rec.extend_from_slice(&1u32.to_le_bytes());
        rec.extend_from_slice(&(dims as u32).to_le_bytes());
        rec.extend_from_slice(&((4 * dims) as u32).to_le_bytes());
        for j in 0..dims {
            rec.extend_from_slice(&((i * 31 + j) as f32).to_le_bytes());
        }
        out.write_all(&rec)?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    Ok(want)
}

/// Where the HTTP benchmarks keep their data and caches: `$HTTP_BENCH_DIR`, default
/// `target/http-bench` (cargo runs a benchmark in the package root); created,
/// returned absolute.
pub fn http_bench_dir() -> R<PathBuf> {
    let dir = std::env::var_os("HTTP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/http-bench"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(std::fs::canonicalize(&dir)?)
}

/// nginx on a free 127.0.0.1 port (`Nginx::serve_for_benchmarks(root)`: sendfile on,
/// no gzip, no access log), from the test harness so that both share one launcher.
#[path = "../../tests/support/nginx.rs"]
mod nginx;
#[allow(unused_imports)] // not every benchmark serves over HTTP
pub use nginx::Nginx;
