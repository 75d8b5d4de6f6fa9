//! `cache_cli`, `tools/cache_cli` and `scripts/clear-cache.sh`, run as processes
//! against cache directories made by the library in temp dirs.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harmonics_dataset::cache::{CacheLock, CacheReader, Metadata};
use harmonics_dataset::{DiskCacheProducer, Tensor, TokenFn, VecProducer};
use serde_json::Value;

use crate::support;
use support::cache_files;
use support::http_server::wire_body;

mod inspect;
mod list;
mod prune;
mod remove;
mod scripts;
mod stream;

const BIN: &str = env!("CARGO_BIN_EXE_cache_cli");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn records(n: usize, seed: f32) -> Vec<Tensor> {
    (0..n)
        .map(|i| Tensor::from_f32(&[seed + i as f32; 16]))
        .collect()
}

/// A current-format cache populated through `DiskCacheProducer`, with a token.
fn make_cache(path: &Path, n: usize, token: &str) {
    let producer = VecProducer::new(records(n, 1.0)).with_source("vec:test");
    let t = token.to_string();
    let token: Option<TokenFn> = Some(Box::new(move || Ok(t.clone())));
    let p = DiskCacheProducer::open_at(Box::new(producer), path.to_path_buf(), token).unwrap();
    assert_eq!(p.len(), n);
}

/// A current-format cache written with `CacheWriter` directly.
fn write_cache(path: &Path, n: usize) {
    cache_files::write_cache(path, Metadata::new("", "writer:test"), &records(n, 7.0));
}

/// The original headerless format: concatenated `write_tensor` records.
fn write_legacy(path: &Path, n: usize) {
    std::fs::write(path, wire_body(&records(n, 3.0))).unwrap();
}

/// Flips the byte `from_end` bytes before the end of the last record (a first
/// population writes the offset index right after it, at the commit's `index_at`).
fn flip_byte(path: &Path, from_end: usize) {
    let mut b = std::fs::read(path).unwrap();
    let index_at = harmonics_dataset::cache::Header::decode(&b)
        .unwrap()
        .commit
        .index_at as usize;
    let end = if index_at > 0 { index_at } else { b.len() };
    let at = end - from_end;
    b[at] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

/// A directory holding every kind of file `list` must tell apart:
/// a.cache (current, token "v1"), sub/c.cache (current), old.cache (legacy),
/// bad.cache (damaged magic), flipped.cache (current, one data byte flipped),
/// plus a lock, a writer's temp file and the old runtime's token side file.
fn populated(dir: &Path) {
    make_cache(&dir.join("a.cache"), 5, "v1");
    write_cache(&dir.join("sub/c.cache"), 3);
    write_legacy(&dir.join("old.cache"), 4);
    std::fs::write(dir.join("old.cache.token"), "v0\n").unwrap();
    write_cache(&dir.join("bad.cache"), 2);
    let mut b = std::fs::read(dir.join("bad.cache")).unwrap();
    b[1] ^= 0x01; // "HMNCACHE" -> "HLNCACHE"
    std::fs::write(dir.join("bad.cache"), b).unwrap();
    write_cache(&dir.join("flipped.cache"), 6);
    flip_byte(&dir.join("flipped.cache"), 3);
    std::fs::write(dir.join(".stale.cache.Ab12Cd.tmp"), b"partial").unwrap();
    assert!(dir.join(".a.cache.lock").exists());
}

/// Runs the binary with `HARMONICS_CACHE_DIR` set to `cache_dir` (or unset) in `cwd`.
fn run_in(cwd: &Path, cache_dir: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(cwd);
    match cache_dir {
        Some(d) => c.env("HARMONICS_CACHE_DIR", d),
        None => c.env_remove("HARMONICS_CACHE_DIR"),
    };
    c.output().unwrap()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    run_in(Path::new("/"), Some(dir.to_str().unwrap()), args)
}

/// Runs like [`run`], asserts exit 0 (the message is stderr) and returns stdout.
fn run_ok(dir: &Path, args: &[&str]) -> String {
    let o = run(dir, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn no_backtrace(o: &Output) {
    let e = stderr(o);
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "{e}"
    );
}

const PLAIN_NAMES: [&str; 6] = [
    "a.cache",
    "bad.cache",
    "flipped.cache",
    "old.cache",
    "old.cache.token",
    "sub/c.cache",
];
