//! Shared by the reliability suites (tests/all/reliability_*.rs): deterministic records,
//! a slow producer that leaves a marker per record so a parent can kill it at a known
//! point, and the re-exec pattern for child processes (the test binary runs itself with
//! `--exact <child test>`; the child test returns at once unless its role variable is set).

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harmonics_dataset::cache::CacheReader;
use harmonics_dataset::{DType, Producer, Result, Tensor, TensorRef, TokenFn};

/// Environment variable selecting a child's role.
pub const ROLE: &str = "HRM_REL_ROLE";

/// Record `i` of dataset generation `gen`: its values name both, so a record from the
/// wrong position or the wrong generation (a stale token) can never pass for another.
pub fn record(i: usize, gen: u32) -> Tensor {
    let len = 1 + (i * 7 + gen as usize) % 13;
    let values: Vec<f32> = (0..len)
        .map(|j| gen as f32 * 100_000.0 + i as f32 * 16.0 + j as f32 * 0.25)
        .collect();
    let mut t = Tensor::from_f32(&values);
    if i % 5 == 3 {
        t = Tensor::new(
            DType::UInt8,
            vec![2, len],
            vec![(i as u8) ^ (gen as u8); 2 * len],
        );
    }
    t
}

pub fn dataset(n: usize, gen: u32) -> Vec<Tensor> {
    (0..n).map(|i| record(i, gen)).collect()
}

/// A producer of `dataset(n, gen)`. With a marker file, each record handed out appends
/// one byte to it (O_APPEND) and then the producer sleeps `delay`; with a read log,
/// each record handed out appends one line to it (shared by processes).
pub struct Slow {
    pub n: usize,
    pub gen: u32,
    cursor: usize,
    cur: Tensor,
    marker: Option<File>,
    delay: Duration,
    handed_out: usize,
    stall_at: Option<usize>,
}

impl Slow {
    pub fn new(n: usize, gen: u32) -> Slow {
        Slow {
            n,
            gen,
            cursor: 0,
            cur: record(0, gen),
            marker: None,
            delay: Duration::ZERO,
            handed_out: 0,
            stall_at: None,
        }
    }

    pub fn with_marker(mut self, path: &Path, delay: Duration) -> Slow {
        self.marker = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap(),
        );
        self.delay = delay;
        self
    }

    /// After handing out `k` records, blocks for good (until killed).
    pub fn stall_at(mut self, k: usize) -> Slow {
        self.stall_at = Some(k);
        self
    }
}

impl Producer for Slow {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let i = self.cursor;
        self.cursor = (i + 1) % self.n;
        self.cur = record(i, self.gen);
        if let Some(m) = &mut self.marker {
            m.write_all(b"r").unwrap();
            std::thread::sleep(self.delay);
        }
        self.handed_out += 1;
        if self.stall_at == Some(self.handed_out) {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Ok(self.cur.as_ref())
    }
    fn size(&mut self) -> Result<usize> {
        Ok(self.n)
    }
    fn skip(&mut self, k: usize) -> Result<()> {
        self.cursor = (self.cursor + k) % self.n;
        Ok(())
    }
    fn source(&self) -> String {
        format!("slow:{}:{}", self.n, self.gen)
    }
}

pub fn token(value: &str) -> Option<TokenFn> {
    if value.is_empty() {
        return None;
    }
    let v = value.to_string();
    Some(Box::new(move || Ok(v.clone())))
}

/// This test binary again, running only `test` (its path in the binary, e.g.
/// `child_x` or `module::child_x`), with `ROLE=role` and `envs` set.
pub fn child_command(test: &str, role: &str, envs: &[(&str, String)]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// Starts [`child_command`] with its output discarded (shown with `HRM_REL_VERBOSE`).
pub fn spawn_child(test: &str, role: &str, envs: &[(&str, String)]) -> Child {
    child_command(test, role, envs)
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("HRM_REL_VERBOSE").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap()
}

/// Runs [`child_command`] to its end: what it printed after `RESULT: `, and its stderr.
pub fn child_result(test: &str, role: &str, envs: &[(&str, String)]) -> (String, String) {
    let out = child_command(test, role, envs).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let result = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT: ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("child {role} printed no result: {stdout}\n{stderr}"));
    (result, stderr)
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Polls until `path` holds at least `n` bytes; false if the child exited first.
pub fn wait_for_marker(path: &Path, n: u64, child: &mut Child) -> bool {
    loop {
        if file_len(path) >= n {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return file_len(path) >= n;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// SIGKILLs the child; true if it died of the signal (false if it had exited already).
pub fn sigkill(child: &mut Child) -> bool {
    use std::os::unix::process::ExitStatusExt;
    // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let status = child.wait().unwrap();
    status.signal() == Some(libc::SIGKILL)
}

/// Temporary files (`.*.tmp`) in `dir`.
pub fn temps_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// All committed records of the cache at `path`, read with no source: `None` if
/// there is no file, else (token, records) or the error.
pub fn read_cache(path: &Path) -> Option<Result<(String, Vec<Tensor>)>> {
    let mut r = match CacheReader::open(path) {
        Err(harmonics_dataset::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return None
        }
        Err(e) => return Some(Err(e)),
        Ok(r) => r,
    };
    let mut out = Vec::new();
    for _ in 0..r.len() {
        match r.next_view() {
            Ok(t) => out.push(t.to_owned()),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok((r.metadata().token.clone(), out)))
}

pub fn env_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var(name).unwrap())
}

pub fn env_num(name: &str) -> usize {
    std::env::var(name).unwrap().parse().unwrap()
}
