//! A cache file cut or overwritten in place by another program while a process reads
//! it must not kill that process with SIGBUS (DESIGN.md §8): the reader reports an
//! error naming the file, or serves correct records (rebuilt from the source). And a
//! SIGBUS that is not about our mappings still reaches the host's own handler, or the
//! default action.
//!
//! The readers run in child processes (this test binary re-executed with
//! `HD_SIGBUS_ROLE` set, running one `children::child_*` test), so a signal death shows up as
//! the child's exit status instead of taking the harness down.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harmonics_dataset::cache::{repaired_faults, CacheReader};
use harmonics_dataset::{CacheOutcome, DiskCacheProducer, Producer, Tensor, VecProducer};

use crate::support;

mod chaining;
mod children;
mod truncation;

const RECORDS: usize = 2000;
const ELEMS: usize = 1000; // 4 KB of data per record: the cache spans ~2000 pages
const ROLE: &str = "HD_SIGBUS_ROLE";
const PATH: &str = "HD_SIGBUS_PATH";

/// Record `i`: `ELEMS` floats, all equal to `seed + i`.
fn record(i: usize, seed: f32) -> Tensor {
    Tensor::from_f32(&vec![seed + i as f32; ELEMS])
}

fn source(seed: f32) -> VecProducer {
    VecProducer::new((0..RECORDS).map(|i| record(i, seed)).collect())
        .with_source(format!("sigbus test seed {seed}"))
}

fn build(path: &Path, seed: f32) {
    let _ = std::fs::remove_file(path);
    let p = DiskCacheProducer::open_at(Box::new(source(seed)), path.to_path_buf(), None).unwrap();
    assert_eq!(p.outcome(), &CacheOutcome::Created);
}

/// Runs `role` in a child process reading `path`; returns it once it printed "ready".
/// (The caller waits for it, in `finish`.)
#[allow(clippy::zombie_processes)]
fn spawn(role: &str, path: &Path) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &support::test_name(module_path!(), &format!("children::child_{role}")),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(PATH, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait().unwrap();
            panic!("child exited before it was ready: {status}");
        }
        // libtest may print "test child_x ... " on the same line first.
        if line.trim_end().ends_with("ready") {
            return (child, out);
        }
    }
}

/// Waits (bounded) for the child; returns its exit status and the rest of its stdout.
fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    (status, rest)
}

fn assert_survived(status: std::process::ExitStatus, out: &str) {
    assert_eq!(
        status.signal(),
        None,
        "the reader was killed by signal {:?}; it printed: {out}",
        status.signal()
    );
    assert!(status.success(), "reader failed ({status}): {out}");
}

fn say(s: &str) {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{s}").unwrap();
    o.flush().unwrap();
}

fn role() -> Option<(String, PathBuf)> {
    Some((
        std::env::var(ROLE).ok()?,
        PathBuf::from(std::env::var_os(PATH)?),
    ))
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A scratch directory holding a fresh `train.cache` (seed 0), and the cache's path.
fn built_cache() -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let path = dir.path().join("train.cache");
    build(&path, 0.0);
    (dir, path)
}

/// Runs the `role` child over `path`, applies `damage` to the file once the child is
/// reading, and waits for the child: its exit status and the rest of its stdout.
fn child_over(
    role: &str,
    path: &Path,
    damage: impl FnOnce(&Path),
) -> (std::process::ExitStatus, String) {
    let (child, out) = spawn(role, path);
    damage(path);
    finish(child, out)
}

/// Cuts the file to `len` bytes in place (as `truncate -s` does).
fn cut(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}
