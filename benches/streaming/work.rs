//! The code paths the `streaming` benchmark times, kept apart from the timing and the
//! child processes so `tests/all/bench_smoke.rs` can run each of them at tiny sizes
//! (`#[path]` include). Each function does one unit of work and returns what it did
//! (records, bytes, blocks, a checksum), so a test can check the work was done.

#![allow(dead_code)] // each includer uses a subset

#[path = "../../tests/support/cache_policy.rs"]
mod cache_policy;

// The includer also includes benches/cache/work.rs as `cache_work` (its Synth records,
// warm open and `touch`) and benches/common as `common`, beside this module (at the
// benchmark's crate root, or in the test module that includes all three); a second
// `#[path]` copy here would load those files twice.
use super::{cache_work, common};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harmonics_dataset::stream::node_cache::OVERHEAD;
use harmonics_dataset::{
    HttpOptions, HttpProducer, Producer, Result, SampledProducer, SamplerOptions, StreamOptions,
    StreamingProducer,
};

pub use cache_work::touch;

/// The benchmark's dataset: a local cache of float32[dims] records (what
/// `SampledProducer` reads) and its published copy (what the stream reads over HTTP).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub local: PathBuf,
    pub published: PathBuf,
    pub records: usize,
    /// Bytes of the published file.
    pub bytes: u64,
}

/// Writes the dataset of `records` float32[`dims`] records under `dir` (the local
/// cache) and publishes it into `www` (index at the head); both are kept when already
/// there, so reruns do not write them again.
pub fn dataset(dir: &Path, www: &Path, records: usize, dims: usize) -> Result<Dataset> {
    let name = format!("stream-{records}x{dims}.cache");
    let local = dir.join(&name);
    let published = www.join(&name);
    std::fs::create_dir_all(www).map_err(|e| ioe("cannot create", www, e))?;
    if cache_work::open_warm(&local, records).is_err() {
        cache_work::populate(&local, records, dims)?;
        let _ = std::fs::remove_file(&published);
    }
    if !published.exists() {
        harmonics_dataset::cache::write_compact(&local, &published)?;
    }
    let bytes = std::fs::metadata(&published)
        .map_err(|e| ioe("cannot stat", &published, e))?
        .len();
    Ok(Dataset {
        local,
        published,
        records,
        bytes,
    })
}

fn ioe(what: &'static str, path: &Path, source: std::io::Error) -> harmonics_dataset::Error {
    harmonics_dataset::Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Rank 0 of a world of 1 (its share is the dataset) over the stream cache `dir`.
pub fn open_stream(
    url: &str,
    dir: &Path,
    limit: u64,
    connections: u32,
) -> Result<StreamingProducer> {
    StreamingProducer::new(
        url,
        SamplerOptions {
            seed: 1,
            ..SamplerOptions::default()
        },
        StreamOptions {
            cache_limit: limit,
            cache_name: dir.to_str().expect("a UTF-8 path").to_string(),
            http: HttpOptions {
                connections,
                read_timeout: Duration::from_secs(120),
                ..HttpOptions::default()
            },
            ..StreamOptions::default()
        },
    )
}

/// One epoch as the consumer saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epoch {
    /// From the end of the previous epoch (the first: from before opening the stream).
    pub secs: f64,
    /// CPU seconds of the process (all its threads) over the same span: on a shared
    /// machine, steadier than wall time when the consumer is not waiting for data.
    pub cpu: f64,
    pub records: u64,
    /// Data bytes consumed.
    pub bytes: u64,
    /// Blocks this process fetched during the epoch (prefetch of the next included).
    pub blocks_fetched: u64,
    pub checksum: f64,
}

/// Consumes `n` records of `p` (each viewed and touched): an epoch timed from `since`
/// (wall clock, CPU seconds).
fn consume(p: &mut impl Producer, n: usize, since: (Instant, f64)) -> Result<Epoch> {
    let mut e = Epoch::default();
    for _ in 0..n {
        let v = p.next_view()?;
        e.checksum += touch(v.data);
        e.bytes += v.data.len() as u64;
    }
    e.records = n as u64;
    e.secs = since.0.elapsed().as_secs_f64();
    e.cpu = common::cpu_seconds() - since.1;
    Ok(e)
}

/// Opens the stream and consumes `epochs` epochs (every record viewed and touched).
/// Returns the epochs and the stream's final stats.
pub fn stream_epochs(
    url: &str,
    dir: &Path,
    limit: u64,
    connections: u32,
    epochs: usize,
) -> Result<(Vec<Epoch>, harmonics_dataset::StreamStats)> {
    let mut since = (Instant::now(), common::cpu_seconds());
    let mut p = open_stream(url, dir, limit, connections)?;
    let n = p.size()?;
    let mut out = Vec::new();
    let mut blocks = 0;
    for _ in 0..epochs {
        let mut e = consume(&mut p, n, since)?;
        since = (Instant::now(), common::cpu_seconds());
        let fetched = p.stats().blocks_fetched;
        e.blocks_fetched = fetched - blocks;
        blocks = fetched;
        out.push(e);
    }
    Ok((out, p.stats()))
}

/// The plain parallel download of the published file over `connections` ranged
/// connections into a local cache file at `path`. Returns (seconds, records).
pub fn download(url: &str, path: &Path, connections: u32) -> Result<(f64, usize)> {
    let _ = std::fs::remove_file(path);
    let t = Instant::now();
    let p = HttpProducer::from_url(
        url,
        HttpOptions {
            cache_path: path.to_str().expect("a UTF-8 path").to_string(),
            connections,
            // Ranged connections whatever the size (the stream uses them at any size).
            parallel_min_bytes: 0,
            read_timeout: Duration::from_secs(120),
            ..HttpOptions::default()
        },
    )?;
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, p.len()))
}

/// `epochs` epochs of a `SampledProducer` (global shuffle, seed 1) over the local
/// cache of `records` records at `local`, every record viewed and touched.
pub fn sampled_epochs(local: &Path, records: usize, epochs: usize) -> Result<Vec<Epoch>> {
    let cache = cache_work::open_warm(local, records)?;
    let mut p = SampledProducer::new(
        cache,
        SamplerOptions {
            seed: 1,
            ..SamplerOptions::default()
        },
    )?;
    let n = p.size()?;
    let mut out = Vec::new();
    for _ in 0..epochs {
        out.push(consume(&mut p, n, (Instant::now(), common::cpu_seconds()))?);
    }
    Ok(out)
}

/// What two epochs with a limit holding a fraction of the share fetched.
#[derive(Clone, Copy, Debug)]
pub struct Fraction {
    pub limit: u64,
    /// The fraction of the share's disk (its blocks' files) the limit holds, after
    /// the fixed files.
    pub f: f64,
    pub blocks: u64,
    /// Blocks fetched in epoch 1 (the second), by the stream, and by LRU and by MIN
    /// holding as many blocks as fit in the same bytes.
    pub stream_second: u64,
    pub lru_second: u64,
    pub belady_second: u64,
    pub lru_capacity: usize,
    pub disk_high_water: u64,
}

/// Two epochs of the stream with `cache_limit` = `f` × the published file's size
/// (`published_bytes`) plus the fixed files, against an LRU simulation of the same
/// reading order.
pub fn fetch_fraction(
    url: &str,
    dir: &Path,
    published_bytes: u64,
    f: f64,
    connections: u32,
) -> Result<Fraction> {
    let limit = OVERHEAD + (f * published_bytes as f64) as u64;
    let mut p = open_stream(url, dir, limit, connections)?;
    let n = p.size()? as u64;
    let t = p.blocks().clone();
    let alloc = |b: u64| {
        let (a, z) = t.byte_range(b);
        harmonics_dataset::stream::node_cache::block_allocation(t.block_records(b), z - a)
    };
    let share: u64 = (0..t.blocks()).map(alloc).sum();
    let largest = (0..t.blocks()).map(alloc).max().unwrap_or(1);
    let mut accesses = Vec::with_capacity(2 * n as usize);
    for e in 0..2 {
        for k in 0..n {
            accesses.push(t.block_of(p.index(e, k)));
        }
    }
    for _ in 0..n {
        touch(p.next_view()?.data);
    }
    let first = p.stats().blocks_fetched;
    for _ in 0..n {
        touch(p.next_view()?.data);
    }
    let st = p.stats();
    let capacity = ((limit - OVERHEAD) / largest) as usize;
    let l = cache_policy::lru(&accesses, capacity, n as usize);
    let m = cache_policy::belady(&accesses, capacity, n as usize);
    Ok(Fraction {
        limit,
        f: (limit - OVERHEAD) as f64 / share as f64,
        blocks: t.blocks(),
        stream_second: st.blocks_fetched - first,
        lru_second: l[1],
        belady_second: m[1],
        lru_capacity: capacity,
        disk_high_water: st.disk_high_water,
    })
}
