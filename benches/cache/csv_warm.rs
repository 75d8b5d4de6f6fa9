//! `cargo bench --bench cache -- --csv-warm [50,500] [--dir D]`: issue 11's figure.
//!
//! For each size (MB) a CSV file is generated in a temporary directory (removed at the
//! end), then, in the same run:
//! - baseline: a cold parse — `CsvProducer::open` + `size()` + the first record;
//! - subject: a warm open — `CsvProducer::open` + `DiskCacheProducer::open_at` (the
//!   cache is reused from the identity, the CSV is not parsed) + the first record;
//! - context: the first warm open of a racily clean cache (its stamp was taken within
//!   2 s of the file's last change: the file is hashed, not parsed, and once out of the
//!   window the verified stamp is recorded by rewriting the cache) and the cold open
//!   that populates the cache.
//!
//! Median of `--rounds` (default 5) runs each. The page cache is warm for every run
//! (the file was just written and read), so the cold parse is CPU-bound: the ratio is
//! what the cache saves in computation.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use harmonics_dataset::{CacheOutcome, CsvProducer, DiskCacheProducer, Producer};

use crate::common::{median, timed, R};

const WIDTH: usize = 16;

fn write_csv(path: &Path, bytes: u64) -> R<u64> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let (mut written, mut i) = (0u64, 0u64);
    let mut line = String::new();
    while written < bytes {
        line.clear();
        for j in 0..WIDTH {
            use std::fmt::Write as _;
            let v = ((i * 7919 + j as u64 * 104_729) % 1_000_000) as f32 / 997.0;
            let _ = write!(line, "{}{v:.4}", if j == 0 { "" } else { "," });
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
        i += 1;
    }
    w.flush()?;
    Ok(i)
}

/// Wall seconds of `f`.
fn time(f: impl FnOnce() -> R<()>) -> R<f64> {
    Ok(timed(f)?.0)
}

fn cold_parse(csv: &Path) -> R<()> {
    let mut p = CsvProducer::open(csv, false)?;
    p.size()?;
    std::hint::black_box(p.next_view()?.data.len());
    Ok(())
}

fn warm_open(csv: &Path, cache: &Path, want: &CacheOutcome) -> R<()> {
    let p = CsvProducer::open(csv, false)?;
    let mut d = DiskCacheProducer::open_at(Box::new(p), cache.to_path_buf(), None)?;
    if d.outcome() != want {
        return Err(format!("expected {want:?}, got {:?}", d.outcome()).into());
    }
    std::hint::black_box(d.next_view()?.data.len());
    Ok(())
}

/// Waits until `path`'s last change is more than the racy window (2 s) in the past.
fn wait_out_racy_window(path: &Path) -> R<()> {
    let m = std::fs::metadata(path)?;
    let changed = m.modified()?;
    let until = changed + Duration::from_millis(2100);
    if let Ok(d) = until.duration_since(SystemTime::now()) {
        std::thread::sleep(d);
    }
    Ok(())
}

pub fn run(sizes_mb: &[u64], dir: &Path, rounds: usize) -> R<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::tempdir_in(dir)?;
    println!(
        "| CSV | rows | cold parse (s) | warm open + first record (s) | warm/cold | first racy warm (s) | racy/cold | cold populate (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &mb in sizes_mb {
        let csv = tmp.path().join(format!("{mb}mb.csv"));
        let cache = tmp.path().join(format!("{mb}mb.cache"));
        let rows = write_csv(&csv, mb * 1_000_000)?;
        // A cache stamped right after the file was written: racily clean.
        let populate = time(|| warm_open(&csv, &cache, &CacheOutcome::Created))?;
        let racy = time(|| warm_open(&csv, &cache, &CacheOutcome::Reused))?;
        // Rebuilt with a stamp taken outside the racy window: trusted alone.
        std::fs::remove_file(&cache)?;
        wait_out_racy_window(&csv)?;
        warm_open(&csv, &cache, &CacheOutcome::Created)?;
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            cold.push(time(|| cold_parse(&csv))?);
            warm.push(time(|| warm_open(&csv, &cache, &CacheOutcome::Reused))?);
        }
        let (cold, warm) = (median(&cold), median(&warm));
        println!(
            "| {mb} MB | {rows} | {cold:.3} | {warm:.6} | {:.3}% | {racy:.4} | {:.1}% | {populate:.3} |",
            100.0 * warm / cold,
            100.0 * racy / cold
        );
        std::fs::remove_file(&csv)?;
        std::fs::remove_file(&cache)?;
    }
    Ok(())
}
