//! HTTP figures (4, 5) of the `cache` benchmark, against nginx on 127.0.0.1 serving
//! the benchmark's data directory (scripts/bench.sh starts it and passes `--http`).

use std::path::Path;
use std::time::Instant;

use harmonics_dataset::{AsyncHttpProducer, CacheOutcome, HttpOptions, HttpProducer, Producer};

// `super::`: its siblings, at the benchmark's crate root or in the test module that
// includes them.
use super::common::{vm_hwm_kib, R};
use super::work::{touch, Synth};

/// Writes `n` float32[`elems`] records in the wire format (an HTTP dataset body) to
/// `path`; returns its size.
pub fn write_body(path: &Path, n: usize, elems: usize) -> R<u64> {
    let mut out = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path)?);
    let mut s = Synth::new(n, elems);
    for _ in 0..n {
        harmonics_dataset::write_tensor(&mut out, s.next_view()?)?;
    }
    std::io::Write::flush(&mut out)?;
    Ok(std::fs::metadata(path)?.len())
}

fn opts(cache: &Path) -> HttpOptions {
    HttpOptions {
        cache_path: cache.display().to_string(),
        ..Default::default()
    }
}

/// Child role: a cold fetch of `url` into the cache file `cache` (removed first),
/// then reports records and own peak RSS.
pub fn fetch_role(url: &str, cache: &Path) -> R<String> {
    let _ = std::fs::remove_file(cache);
    let p = HttpProducer::from_url(url, opts(cache))?;
    if p.outcome() != CacheOutcome::Created {
        return Err(format!("cold fetch of {url}: outcome {:?}", p.outcome()).into());
    }
    Ok(format!("records={} hwm_kib={}", p.len(), vm_hwm_kib()))
}

/// An AsyncHttpProducer cold download of `n` records: (seconds to the first record,
/// seconds to the last). Removes `cache` first.
pub fn async_first_and_all(url: &str, cache: &Path, n: usize) -> R<(f64, f64)> {
    let _ = std::fs::remove_file(cache);
    let t0 = Instant::now();
    let mut p = AsyncHttpProducer::from_url(url, opts(cache))?;
    let first = p.next_view()?;
    let sum0 = touch(first.data);
    let t_first = t0.elapsed().as_secs_f64();
    let mut sum = sum0;
    for _ in 1..n {
        sum += touch(p.next_view()?.data);
    }
    let t_all = t0.elapsed().as_secs_f64();
    std::hint::black_box(sum);
    if p.size()? != n {
        return Err(format!(
            "async download of {url}: {} records, expected {n}",
            p.size()?
        )
        .into());
    }
    Ok((t_first, t_all))
}
