//! Per-node partial fetch: a producer that serves only the records of some ranks of
//! a world, fetched by ranged GETs from a published cache file (`cache_cli
//! publish`: a version-2 cache with its index at the head).
//!
//! **What is fetched.** The records the sampler gives the node's ranks in ONE epoch:
//! for each rank `r` of `ranks`, `Sampler::new(n, SamplerOptions { rank: r, .. })`
//! at `epoch`, indices `index(0..size)`. With `shuffle` a rank's records change every
//! epoch; this producer holds epoch `epoch`'s. A later epoch needs another
//! `PartialHttpProducer` (fetching more on demand is not implemented). Without
//! shuffle the records are the same every epoch.
//!
//! **How.** The published head is read by `http::RemoteIndex` (one ranged GET of the
//! head, more only for a long header or index), then the records' bytes, adjacent
//! records coalesced into one `Range` (gaps up to `MAX_GAP` bytes read through, runs up
//! to `MAX_RUN` bytes). Every range is one of the object pinned at the first answer to
//! its strong ETag and length (`http::RangedObject`): a changed object is an error,
//! never a splice. Every record's CRC is checked. After the index, up to `HttpOptions::connections` ranges (0: 4)
//! are fetched at once, one connection each; records are written in global order.
//!
//! **The partial cache.** A local version-2 cache file at `HttpOptions::cache_path`
//! holding the fetched records in ascending global order, followed by one extra
//! record: an int64 tensor of their global indices (the mapping global → local).
//! Its metadata token describes what it holds (URL, ETag, world size, ranks, seed,
//! shuffle, epoch); a file whose token matches is used as it is, without network.
//! It is written under a temporary name and published by rename like every cache:
//! a crash mid-fetch leaves nothing at the name. It is fetched under the cache's lock:
//! the ranks of one node opening the same partial cache at once make one fetch, the
//! others wait and use its file.
//!
//! **Serving.** `view_at(g)` / [`PartialHttpProducer::get`] take GLOBAL indices; a
//! record not held is `Error::NotHeld` naming the index and the ranks held.
//! `next_view` cycles over the held records in ascending global order; a
//! `SampledProducer` per rank over the same sampler options gives each rank's order.

use std::path::PathBuf;

use crate::cache::{resolve_cache_path, CacheLock, CacheReader, CacheWriter, Metadata};
use crate::error::{Error, Result};
use crate::http::{record_wire, HttpOptions, RemoteIndex};
use crate::producers::Producer;
use crate::sampler::{Sampler, SamplerOptions};
use crate::tensor::{DType, Tensor, TensorRef};

/// Gap between two needed records read through rather than split into two GETs
/// (about what a request's own headers cost).
const MAX_GAP: u64 = 512;
/// The largest coalesced range (bytes held in memory at once).
const MAX_RUN: u64 = 8 << 20;

/// Bytes and requests a partial fetch took (zero when the local cache was used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub requests: u64,
    pub body_bytes: u64,
    /// The published object's size.
    pub object_bytes: u64,
}

/// A producer of the records of `ranks` (of `SamplerOptions::world_size`) in one
/// epoch, fetched from a published cache file (see the module documentation).
pub struct PartialHttpProducer {
    url: String,
    reader: CacheReader,
    /// Global indices held, ascending: local record `j` is global `globals[j]`.
    globals: Vec<u64>,
    ranks: Vec<u64>,
    world_size: u64,
    pos: usize,
    stats: FetchStats,
}

impl std::fmt::Debug for PartialHttpProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialHttpProducer")
            .field("url", &self.url)
            .field("held", &self.globals.len())
            .field("ranks", &self.ranks)
            .finish()
    }
}

impl PartialHttpProducer {
    /// Fetches (or reopens) the records the sampler `sampler` (its `rank` is ignored)
    /// gives each rank of `ranks` at `epoch`, from the published cache at `url`
    /// (`http(s)://` or `s3://`). `opts.cache_path` names the local partial cache
    /// (required).
    pub fn new(
        url: &str,
        sampler: SamplerOptions,
        ranks: &[u64],
        epoch: u64,
        opts: HttpOptions,
    ) -> Result<PartialHttpProducer> {
        crate::http::check_url(url)?;
        if opts.cache_path.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{url}: a partial fetch needs HttpOptions::cache_path (the local partial cache)"
            )));
        }
        let world = sampler.world_size.max(1);
        if ranks.is_empty() || ranks.iter().any(|&r| r >= world) {
            return Err(Error::InvalidArgument(format!(
                "{url}: ranks {ranks:?} must be non-empty and below the world size {world}"
            )));
        }
        let mut ranks = ranks.to_vec();
        ranks.sort_unstable();
        ranks.dedup();
        let path = resolve_cache_path(&opts.cache_path)?;
        let describe = |etag: &str| {
            format!(
                "partial url={url} etag={etag} world={world} ranks={ranks:?} seed={} shuffle={} \
                 drop_last={} block={} epoch={epoch}",
                sampler.seed, sampler.shuffle, sampler.drop_last, sampler.block_records
            )
        };
        // A partial cache made for exactly this: used as it is.
        let made_for_this = || {
            let r = CacheReader::open(&path).ok()?;
            let etag = r.metadata().etag.clone();
            (r.metadata().token == describe(&etag))
                .then(|| Self::from_reader(url, r, ranks.clone(), world).ok())
                .flatten()
        };
        if let Some(p) = made_for_this() {
            return Ok(p);
        }
        // One fetch per node: the ranks of a node opening the same partial cache wait
        // for the one that fetches, then use its file.
        let lock = CacheLock::exclusive(&path)?;
        if let Some(p) = made_for_this() {
            return Ok(p);
        }
        let never = || false;
        let remote = RemoteIndex::open(url, &opts, "partial fetch", &never)?;
        let (records, end) = (remote.records, remote.end);
        let offsets = remote.offsets(&never)?;
        let object = &remote.object;
        let etag = object.etag().to_string();
        let mut needed = Vec::new();
        for &r in &ranks {
            let mut s = Sampler::new(
                records,
                SamplerOptions {
                    rank: r,
                    world_size: world,
                    ..sampler
                },
            )?;
            s.set_epoch(epoch);
            for k in 0..s.size() {
                needed.push(s.index(k)?);
            }
        }
        needed.sort_unstable();
        needed.dedup();
        let frame_end = |i: u64| -> u64 { offsets.get(i as usize + 1).copied().unwrap_or(end) };
        let mut meta = Metadata::new(&describe(&etag), &crate::http::s3::source_description(url));
        meta.etag = etag.clone();
        let mut w = CacheWriter::create_indexed(&path, meta, needed.len() as u64 + 1, &lock)?;
        // The runs: needed records close together, at most MAX_RUN bytes each.
        let mut runs = Vec::new();
        let mut k = 0;
        while k < needed.len() {
            let start = offsets[needed[k] as usize];
            let mut last = k;
            while last + 1 < needed.len() {
                let next = offsets[needed[last + 1] as usize];
                let gap = next.saturating_sub(frame_end(needed[last]));
                if gap > MAX_GAP || frame_end(needed[last + 1]) - start > MAX_RUN {
                    break;
                }
                last += 1;
            }
            runs.push((k, last, start, frame_end(needed[last])));
            k = last + 1;
        }
        // Fetched `connections` runs at a time (one connection each), written in order.
        let connections = match opts.connections {
            0 => crate::http::DEFAULT_CONNECTIONS,
            n => n,
        } as usize;
        let read = |start: u64, stop: u64| {
            object
                .read(start, stop, &never)
                .map_err(|f| f.into_error(url))
        };
        for batch in runs.chunks(connections) {
            let fetched: Vec<Result<Vec<u8>>> = if batch.len() == 1 {
                let (_, _, start, stop) = batch[0];
                vec![read(start, stop)]
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = batch
                        .iter()
                        .map(|&(_, _, start, stop)| scope.spawn(move || read(start, stop)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a partial-fetch worker panicked"))
                        .collect()
                })
            };
            for (&(k, last, start, _), got) in batch.iter().zip(fetched) {
                let bytes = got?;
                for &g in &needed[k..=last] {
                    let at = (offsets[g as usize] - start) as usize;
                    let len = (frame_end(g) - offsets[g as usize]) as usize;
                    w.push_wire(record_wire(&bytes[at..at + len], g, url)?)?;
                }
            }
        }
        let mut map = Vec::with_capacity(needed.len() * 8);
        for g in &needed {
            map.extend_from_slice(&(*g as i64).to_le_bytes());
        }
        w.push(Tensor::new(DType::Int64, vec![needed.len()], map).as_ref())?;
        // The file just written, from its own descriptor: never the path a second time.
        let mut p = Self::from_reader(url, w.finish_reader()?, ranks, world)?;
        p.stats = FetchStats {
            requests: object.requests(),
            body_bytes: object.body_bytes(),
            object_bytes: object.len(),
        };
        Ok(p)
    }

    fn from_reader(
        url: &str,
        mut reader: CacheReader,
        ranks: Vec<u64>,
        world_size: u64,
    ) -> Result<PartialHttpProducer> {
        let path = reader.path().to_path_buf();
        let bad = |d: &str| Error::corrupt(&path, format!("not a partial cache: {d}"));
        let n = reader.len();
        if n == 0 {
            return Err(bad("no mapping record"));
        }
        let map = reader.view_at(n - 1)?;
        if map.dtype != DType::Int64 || map.shape != [n as usize - 1] {
            return Err(bad("the last record is not the int64 mapping"));
        }
        let globals: Vec<u64> = map
            .data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u64)
            .collect();
        if globals.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("the mapping is not ascending"));
        }
        Ok(PartialHttpProducer {
            url: url.to_string(),
            reader,
            globals,
            ranks,
            world_size,
            pos: 0,
            stats: FetchStats::default(),
        })
    }

    /// Global indices held, ascending.
    pub fn held(&self) -> &[u64] {
        &self.globals
    }

    /// What the fetch took (zero when the local partial cache was reused).
    pub fn stats(&self) -> FetchStats {
        self.stats
    }

    /// Where the partial cache is.
    pub fn cache_path(&self) -> PathBuf {
        self.reader.path().to_path_buf()
    }

    /// The record of GLOBAL index `g`; `Error::NotHeld` when this node does not hold it.
    pub fn get(&mut self, g: u64) -> Result<TensorRef<'_>> {
        match self.globals.binary_search(&g) {
            Ok(local) => self.reader.view_at(local as u64),
            Err(_) => Err(Error::NotHeld {
                source_name: self.url.clone(),
                index: g,
                detail: format!(
                    "the partial cache holds only the records of ranks {:?} of world size {} \
                     ({} records)",
                    self.ranks,
                    self.world_size,
                    self.globals.len()
                ),
            }),
        }
    }
}

impl Producer for PartialHttpProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        if self.globals.is_empty() {
            return Err(Error::Empty(self.url.clone()));
        }
        let local = self.pos as u64;
        self.pos = (self.pos + 1) % self.globals.len();
        self.reader.view_at(local)
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.globals.len())
    }

    fn source(&self) -> String {
        format!("partial {}", self.url)
    }

    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        self.get(index)
    }

    fn has_random_access(&self) -> bool {
        true
    }
}
