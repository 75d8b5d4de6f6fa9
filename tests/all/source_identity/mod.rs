//! Source identity (issue 11): a warm cache skips its source entirely, and a changed
//! or different source is never served.

use crate::support;
use support::http_server;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use harmonics_dataset::cache::{CacheLock, CacheReader, CacheWriter, Metadata};
use harmonics_dataset::{
    CacheOutcome, CsvProducer, DiskCacheProducer, HttpOptions, HttpProducer, Producer, SourceKind,
    Tensor,
};
use http_server::{records, wire_body, TestServer};

mod c_api;
mod changed;
mod http;
mod warm;

/// Writes `rows` CSV rows of `width` values; row i holds i*1000+j (+ `seed`).
fn write_csv(path: &Path, rows: std::ops::Range<usize>, width: usize, seed: f32, append: bool) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .unwrap();
    let mut w = std::io::BufWriter::new(f);
    for i in rows {
        let cells: Vec<String> = (0..width)
            .map(|j| format!("{}", (i * 1000 + j) as f32 + seed))
            .collect();
        writeln!(w, "{}", cells.join(",")).unwrap();
    }
    w.flush().unwrap();
}

fn row(i: usize, width: usize, seed: f32) -> Vec<f32> {
    (0..width).map(|j| (i * 1000 + j) as f32 + seed).collect()
}

fn open_csv(
    csv: &Path,
    cache: &Path,
) -> (
    DiskCacheProducer,
    std::sync::Arc<harmonics_dataset::CsvStats>,
) {
    let p = CsvProducer::open(csv, false).unwrap();
    let stats = p.stats();
    let d = DiskCacheProducer::open_at(Box::new(p), cache.to_path_buf(), None).unwrap();
    (d, stats)
}

fn all(p: &mut DiskCacheProducer) -> Vec<Vec<f32>> {
    (0..p.len()).map(|_| p.next().unwrap().to_f32()).collect()
}

fn rebuilt_reason(p: &DiskCacheProducer) -> String {
    match p.outcome() {
        CacheOutcome::Rebuilt(r) => r.clone(),
        other => panic!("expected Rebuilt, got {other:?}"),
    }
}

/// Opens the cache over `csv`, asserts that it was rebuilt for a reason containing
/// `reason`, and returns its records.
fn rebuilt_records(csv: &Path, cache: &Path, reason: &str) -> Vec<Vec<f32>> {
    let (mut p, _) = open_csv(csv, cache);
    let why = rebuilt_reason(&p);
    assert!(why.contains(reason), "{why}");
    all(&mut p)
}

/// Sets the file's modification time (what `touch -m -d` does).
fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap()
}
