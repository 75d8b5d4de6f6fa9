//! The reference documentation's training loop, in Rust: download a dataset over
//! HTTP into `dataset.cache`, keep the training copy in `train.cache`, iterate.
//! The second run reads the caches and makes no request.
//!
//! usage: cargo run --release --example training_loop [URL]
//! (default URL: http://127.0.0.1:8080/data; caches under $HARMONICS_CACHE_DIR)

use std::process::ExitCode;
use std::time::Instant;

use harmonics_dataset::{CacheOutcome, DiskCacheProducer, HttpOptions, HttpProducer, Producer};

fn run(url: &str) -> harmonics_dataset::Result<()> {
    let start = Instant::now();
    let loader = HttpProducer::from_url(
        url,
        HttpOptions {
            cache_path: "dataset.cache".into(),
            ..HttpOptions::default()
        },
    )?;
    let mut cached = DiskCacheProducer::open(loader, "train.cache")?;

    // The documented loop: one pass over the samples.
    for _ in 0..cached.len() {
        let _sample = cached.next_view()?;
        // feed `_sample` into the network here
    }
    // A second pass that touches every element: a checksum of the dataset.
    // Zero-copy: each view borrows the cache file's mapped bytes until the next call.
    let mut checksum = 0f64;
    let mut bytes = 0usize;
    for _ in 0..cached.len() {
        let sample = cached.next_view()?;
        for chunk in sample.data.chunks_exact(4) {
            checksum += f32::from_le_bytes(chunk.try_into().expect("4 bytes")) as f64;
        }
        bytes += sample.data.len();
    }
    // The same lines as examples/training_loop.cpp prints.
    println!("train.cache: {}", outcome_name(cached.outcome()));
    println!(
        "records: {} ({:.1} MB), two passes, checksum {}",
        cached.size()?,
        bytes as f64 / 1e6,
        c_exp(checksum)
    );
    println!("elapsed: {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

fn outcome_name(o: &CacheOutcome) -> &'static str {
    match o {
        CacheOutcome::Reused => "reused (read from the cache)",
        CacheOutcome::Created => "created (downloaded and cached)",
        CacheOutcome::Appended { .. } => "appended (new records cached)",
        CacheOutcome::Rebuilt(_) => "rebuilt",
        // CacheOutcome is #[non_exhaustive]: a later release may add outcomes.
        _ => "another outcome",
    }
}

/// `x` as C's `%.6e` prints it (`1.234568e+07`), so both examples print the same line.
fn c_exp(x: f64) -> String {
    let s = format!("{x:.6e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let e: i32 = exp.parse().unwrap_or(0);
            format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s, // inf, NaN
    }
}

fn main() -> ExitCode {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/data".to_string());
    match run(&url) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("training_loop: {e}");
            ExitCode::FAILURE
        }
    }
}
