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
//! **How.** Three small ranged GETs (the first 20 bytes, the header, the index frame
//! header), one of the index entries, then the records' bytes, adjacent records
//! coalesced into one `Range` (gaps up to `MAX_GAP` bytes read through, runs up to
//! `MAX_RUN` bytes). Every answer must be a 206 with the asked Content-Range of the
//! same total and the first answer's strong ETag, and every later request carries
//! `If-Match` with it: a changed object is an error, never a splice. Every record's
//! CRC is checked. After the index, up to `HttpOptions::connections` ranges (0: 4)
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

use std::io::Read;
use std::path::PathBuf;

use reqwest::blocking::Client;
use reqwest::header;
use reqwest::StatusCode;

use crate::cache::{
    parse_frame, resolve_cache_path, CacheLock, CacheReader, CacheWriter, Frame, Header, Metadata,
    FRAME_HEADER,
};
use crate::error::{Error, HttpCause, HttpErrorKind, Result};
use crate::http::{
    chain, check_partial, header_str, read_cause, send, send_cause, shared_client, HttpOptions,
};
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
        let mut f = Fetcher::new(url, &opts)?;
        let (records, offsets, end) = f.index()?;
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
        let mut meta = Metadata::new(
            &describe(&f.etag),
            &crate::http::s3::source_description(url),
        );
        meta.etag = f.etag.clone();
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
        for batch in runs.chunks(connections) {
            let fetched: Vec<Result<(Vec<u8>, FetchStats)>> = if batch.len() == 1 {
                let (_, _, start, stop) = batch[0];
                vec![f.range(start, stop).map(|b| (b, FetchStats::default()))]
            } else {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = batch
                        .iter()
                        .map(|&(_, _, start, stop)| {
                            let mut worker = f.clone();
                            worker.stats = FetchStats::default();
                            scope
                                .spawn(move || worker.range(start, stop).map(|b| (b, worker.stats)))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a partial-fetch worker panicked"))
                        .collect()
                })
            };
            for (&(k, last, start, _), got) in batch.iter().zip(fetched) {
                let (bytes, stats) = got?;
                f.stats.requests += stats.requests;
                f.stats.body_bytes += stats.body_bytes;
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
        w.finish()?;
        let mut p = Self::from_reader(url, CacheReader::open(&path)?, ranks, world)?;
        p.stats = f.stats;
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

/// The wire bytes of the record frame `frame` (global index `g`), CRC-checked.
fn record_wire<'a>(frame: &'a [u8], g: u64, url: &str) -> Result<&'a [u8]> {
    let bad = |d: String| {
        Error::http(
            HttpCause::of(HttpErrorKind::Body),
            url,
            format!("record {g}: {d}"),
        )
    };
    let fh: &[u8; FRAME_HEADER] = frame
        .get(..FRAME_HEADER)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("a truncated frame".into()))?;
    match parse_frame(fh, true).map_err(bad)? {
        Frame::Record {
            wire_at,
            wire_len,
            crc,
        } => {
            let wire = frame
                .get(wire_at..wire_at + wire_len)
                .ok_or_else(|| bad("the frame runs past its index entry".into()))?;
            if crc32fast::hash(wire) != crc {
                return Err(bad("CRC mismatch".into()));
            }
            Ok(wire)
        }
        Frame::Index { .. } => Err(bad("the index points at an index frame".into())),
    }
}

/// Ranged GETs of one object, pinned to its first answer's strong ETag.
#[derive(Clone)]
struct Fetcher<'a> {
    url: &'a str,
    client: Client,
    etag: String,
    total: Option<u64>,
    stats: FetchStats,
}

impl<'a> Fetcher<'a> {
    fn new(url: &'a str, opts: &HttpOptions) -> Result<Fetcher<'a>> {
        Ok(Fetcher {
            url,
            client: shared_client(opts)?,
            etag: String::new(),
            total: None,
            stats: FetchStats::default(),
        })
    }

    /// The object's bytes are not what a partial fetch needs (`HttpErrorKind::Body`).
    fn err(&self, detail: String) -> Error {
        self.fail(HttpCause::of(HttpErrorKind::Body), detail)
    }

    fn fail(&self, cause: HttpCause, detail: String) -> Error {
        Error::http(cause, self.url, detail)
    }

    /// Bytes `start..stop` of the object.
    fn range(&mut self, start: u64, stop: u64) -> Result<Vec<u8>> {
        if stop <= start || self.total.is_some_and(|t| stop > t) {
            return Err(self.err(format!("byte range {start}..{stop} is outside the object")));
        }
        let mut req = self
            .client
            .get(self.url)
            .header(header::RANGE, format!("bytes={start}-{}", stop - 1));
        if !self.etag.is_empty() {
            req = req.header(header::IF_MATCH, &self.etag);
        }
        let changed = HttpCause::of(HttpErrorKind::ChangedObject);
        let resp = send(req, self.url).map_err(|e| self.fail(send_cause(&e), chain(&e)))?;
        self.stats.requests += 1;
        if resp.status() == StatusCode::PRECONDITION_FAILED {
            return Err(self.fail(
                changed,
                "the object changed during the partial fetch (412 to If-Match)".into(),
            ));
        }
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            let status = HttpCause::status(resp.status().as_u16());
            if !resp.status().is_success() {
                return Err(self.fail(status, crate::http::s3::refusal(self.url, resp)));
            }
            return Err(self.fail(
                status,
                format!(
                    "the server answered HTTP {} to a Range request: a partial fetch needs ranges",
                    resp.status()
                ),
            ));
        }
        let h = resp.headers();
        let total = check_partial(h, start, Some(stop - 1), self.total).map_err(|d| self.err(d))?;
        let etag = header_str(h, header::ETAG);
        if etag.is_empty() || etag.starts_with("W/") {
            return Err(self.err("no strong ETag: a partial fetch cannot pin the object".into()));
        }
        if self.etag.is_empty() {
            self.etag = etag;
            self.total = Some(total);
            self.stats.object_bytes = total;
        } else if etag != self.etag {
            return Err(self.fail(
                changed,
                "the object changed during the partial fetch (ETag)".into(),
            ));
        }
        let want = (stop - start) as usize;
        let mut body = Vec::with_capacity(want);
        resp.take(want as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                self.fail(
                    read_cause(&e),
                    format!("reading bytes {start}..{stop}: {}", chain(&e)),
                )
            })?;
        if body.len() != want {
            return Err(self.err(format!("bytes {start}..{stop}: got {} bytes", body.len())));
        }
        self.stats.body_bytes += want as u64;
        Ok(body)
    }

    /// The record count, every record's frame offset (ascending) and the end of the
    /// data. The file must have its index at the head.
    fn index(&mut self) -> Result<(u64, Vec<u64>, u64)> {
        let first = self.range(0, 20)?;
        let region = Header::region_len(&first).map_err(|d| self.err(d))? as u64;
        let total = self.total.unwrap_or(0);
        let head = self.range(0, (region + FRAME_HEADER as u64 + 64).min(total))?;
        let h = Header::decode(&head, std::path::Path::new(self.url))?;
        let records = h.commit.records;
        let end = h.data_start + h.commit.data_len;
        if h.version < 2 || h.commit.index_at != h.data_start || end > total {
            return Err(self.err(
                "not a published cache (a version-2 file with its index at the head): \
                 publish it with `cache_cli publish`"
                    .into(),
            ));
        }
        let at = h.data_start as usize;
        let fh: &[u8; FRAME_HEADER] = head
            .get(at..at + FRAME_HEADER)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| self.err("the index frame is cut".into()))?;
        let Ok(Frame::Index { body_at, body_len }) = parse_frame(fh, true) else {
            return Err(self.err("no index frame at the head".into()));
        };
        // Never trust a count the bytes cannot hold.
        let need = records
            .checked_mul(8)
            .filter(|&n| n <= body_len as u64 && n <= total);
        let Some(need) = need else {
            return Err(self.err(format!("an index of {records} records does not fit")));
        };
        if records == 0 {
            return Ok((0, Vec::new(), end));
        }
        let body_start = h.data_start + body_at as u64;
        let body = self.range(body_start, body_start + need)?;
        let mut offsets = Vec::with_capacity(records as usize);
        for (i, c) in body.chunks_exact(8).enumerate() {
            let e = u64::from_le_bytes(c.try_into().unwrap());
            let off = crate::cache::entry_offset(i as u64, e)
                .filter(|&o| o >= body_start + need && o < end)
                .filter(|&o| offsets.last().map_or(true, |&p| o > p))
                .ok_or_else(|| self.err(format!("index entry {i} is damaged")))?;
            offsets.push(off);
        }
        Ok((records, offsets, end))
    }
}
