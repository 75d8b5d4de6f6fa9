//! The reference documentation's training loop, in Rust: download a dataset over
//! HTTP into `dataset.cache`, keep the training copy in `train.cache`, iterate.
//! The second run reads the caches and makes no request.
//!
//! usage: cargo run --release --example training_loop [URL]
//! (default URL: http://127.0.0.1:8080/data; caches under $HARMONICS_CACHE_DIR)

use std::process::ExitCode;
use std::time::Instant;

use harmonics_dataset::http::{HttpOptions, HttpProducer};
use harmonics_dataset::{DiskCacheProducer, Producer};

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
    println!("train.cache: {:?}", cached.outcome());
    println!(
        "records: {} ({:.1} MB), checksum {:.6e}",
        cached.size()?,
        bytes as f64 / 1e6,
        checksum
    );
    println!("elapsed: {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
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
