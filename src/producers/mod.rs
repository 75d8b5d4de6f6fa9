//! Producers: the `Producer` trait — a source of records that cycles back to the first
//! after the last — the simple in-memory producer, and every producer of the crate:
//!
//! - `csv`: `CsvProducer`, rows of a CSV file;
//! - `disk_cache`: `DiskCacheProducer`, any producer persisted in a cache file;
//! - `http`: `HttpProducer`, a dataset downloaded once by URL;
//! - `async_http`: `AsyncHttpProducer`, the same with the download in a thread;
//! - `partial_http`: `PartialHttpProducer`, only some ranks' records, by ranged GETs;
//! - `sampled`: `SampledProducer` and the original runtime's wrappers over a sampler;
//! - `streaming`: `StreamingProducer`, a published cache larger than the disk read in
//!   the training order through a bounded node cache.
//!
//! The transport the HTTP producers use is `crate::http`; the store is `crate::cache`.

mod async_http;
mod csv;
mod disk_cache;
mod http;
mod partial_http;
mod sampled;
mod streaming;

pub use async_http::AsyncHttpProducer;
pub use csv::CsvProducer;
#[doc(hidden)]
pub use csv::CsvStats;
pub use disk_cache::{CacheOutcome, DiskCacheProducer, TokenFn};
pub use http::HttpProducer;
pub use partial_http::{FetchStats, PartialHttpProducer};
pub use sampled::{random_seed, BatchProducer, SampledProducer, ShardProducer, ShuffleProducer};
pub use streaming::{StreamOptions, StreamState, StreamStats, StreamingProducer};

/// The `validate` check lives in a leaf module (the transport's decoder uses it too).
pub(crate) use crate::shape_check::ShapeCheck;

use crate::cache::ReadOrder;
use crate::error::{Error, Result};
use crate::identity::{match_generic, IdentityMatch, SourceIdentity, SourceKind};
pub use crate::tensor::RecordSink;
use crate::tensor::{DType, Tensor, TensorRef};

/// A dataset: `size()` records, handed out in order by `next_view()`, cycling back to
/// record 0 after the last one (as the original runtime's producers did).
pub trait Producer: Send {
    /// The next record, borrowed until the next call on this producer.
    fn next_view(&mut self) -> Result<TensorRef<'_>>;

    /// The next record, owned: `next_into` a new tensor.
    fn next(&mut self) -> Result<Tensor> {
        let mut t = Tensor::new(DType::UInt8, Vec::new(), Vec::new());
        self.next_into(&mut t)?;
        Ok(t)
    }

    /// The copying read: the next record copied into `out` (a `Tensor`, its buffers
    /// reused, or any `RecordSink`). What `out` holds on Ok is exactly a record of the
    /// data, whatever another program does to a cache file meanwhile: the default copies
    /// `next_view()` and confirms it with `view_intact`; producers serving a cache file
    /// check the CRC on the copy `out` holds (`CacheReader::next_into`). On Err, what
    /// `out` holds is unspecified.
    fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        out.copy(self.next_view()?)?;
        self.view_intact()
    }

    /// Confirms, after the caller has read or copied the view returned last, that its
    /// bytes were not cut or rewritten under it by another program (a memory-mapped
    /// cache file changed in place). Producers that do not map files return Ok.
    fn view_intact(&self) -> Result<()> {
        Ok(())
    }

    /// Number of records.
    fn size(&mut self) -> Result<usize>;

    /// Advances past `n` records. Producers that can seek override this.
    fn skip(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.next_view()?;
        }
        Ok(())
    }

    /// A one-line description of where the records come from (stored in cache metadata).
    fn source(&self) -> String;

    /// Random access: record `index` (0-based, no cycling), borrowed until the next
    /// call on this producer; CRC-checked where the records are stored with a CRC.
    /// `Error::IndexOutOfRange` past the end; `Error::NoRandomAccess` by default.
    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        let _ = index;
        Err(Error::NoRandomAccess(self.source()))
    }

    /// Random access, owned: `at_into` a new tensor.
    fn at(&mut self, index: u64) -> Result<Tensor> {
        let mut t = Tensor::new(DType::UInt8, Vec::new(), Vec::new());
        self.at_into(index, &mut t)?;
        Ok(t)
    }

    /// The copying random access: record `index` (as `view_at`) copied into `out`,
    /// with the guarantee of `next_into`.
    fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        out.copy(self.view_at(index)?)?;
        self.view_intact()
    }

    /// True when `view_at` is supported, in O(1) of the record count.
    fn has_random_access(&self) -> bool {
        false
    }

    /// Tells a random-access producer the indices its `view_at`/`at_into` will be
    /// asked for next, in order (a `Sampler` positioned at the next read, say), so it
    /// can read ahead: a cache looks the records up in batches, prefetches their bytes
    /// and, when the file is not in the page cache, asks the disk for many of them at
    /// once (`CacheReader::read_ahead`). Reads in another order are still served
    /// exactly, without the read-ahead. Replaces an earlier order. The default ignores
    /// it.
    fn read_ahead(&mut self, order: ReadOrder) {
        let _ = order;
    }

    /// The next `n` records (as `n` calls of `next_into`) stacked into `out`: shape
    /// `[n, …record shape]`, the records' data one after the other, its buffers reused.
    /// The records must share dtype and shape (else `Error::ShapeMismatch`). Each record
    /// is copied once, into `out`, and checked there as `next_into` checks its copy.
    /// Producers that know the batch's records in advance issue their reads together.
    /// On Err the producer has moved past the records read before the failing one, and
    /// what `out` holds is unspecified.
    fn next_batch(&mut self, n: usize, out: &mut Tensor) -> Result<()> {
        let mut stack = Stack::new(out, n)?;
        for _ in 0..n {
            self.next_into(&mut stack)?;
            stack.done();
        }
        Ok(())
    }

    /// Who this source is, cheaply: no parse, no `size()`, no `next()`, no request.
    /// Stored in a cache's metadata when the cache is written (so after `size()` and the
    /// records were read: a producer may then report what it actually read, such as a
    /// CSV's content digest). None (the default): unknown, the size-based rule applies.
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        Ok(None)
    }

    /// Compares the identity recorded in a cache holding `cached` records with this
    /// source now, without reading records. The default compares `identity()` by the
    /// rule of its kind (`identity::match_generic`). See `IdentityMatch::Grew` for what
    /// a producer that answers it promises.
    fn match_identity(&mut self, recorded: &SourceIdentity, cached: u64) -> Result<IdentityMatch> {
        let _ = cached;
        Ok(match self.identity()? {
            Some(now) => match_generic(recorded, &now),
            None => IdentityMatch::Unknown,
        })
    }
}

impl<P: Producer + ?Sized> Producer for Box<P> {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        (**self).next_view()
    }
    fn next(&mut self) -> Result<Tensor> {
        (**self).next()
    }
    fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        (**self).next_into(out)
    }
    fn view_intact(&self) -> Result<()> {
        (**self).view_intact()
    }
    fn at(&mut self, index: u64) -> Result<Tensor> {
        (**self).at(index)
    }
    fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        (**self).at_into(index, out)
    }
    fn size(&mut self) -> Result<usize> {
        (**self).size()
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        (**self).skip(n)
    }
    fn source(&self) -> String {
        (**self).source()
    }
    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        (**self).view_at(index)
    }
    fn has_random_access(&self) -> bool {
        (**self).has_random_access()
    }
    fn read_ahead(&mut self, order: ReadOrder) {
        (**self).read_ahead(order)
    }
    fn next_batch(&mut self, n: usize, out: &mut Tensor) -> Result<()> {
        (**self).next_batch(n, out)
    }
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        (**self).identity()
    }
    fn match_identity(&mut self, recorded: &SourceIdentity, cached: u64) -> Result<IdentityMatch> {
        (**self).match_identity(recorded, cached)
    }
}

/// The sink of `next_batch`: record `k` is copied to the end of `out`'s data (a retry
/// of the same record replaces its copy), its dtype and shape checked against the
/// first record's.
pub(crate) struct Stack<'a> {
    out: &'a mut Tensor,
    n: usize,
    /// Records complete, and where the record being copied starts in `out.data`.
    k: usize,
    start: usize,
}

impl<'a> Stack<'a> {
    pub(crate) fn new(out: &'a mut Tensor, n: usize) -> Result<Stack<'a>> {
        if n == 0 {
            return Err(Error::InvalidArgument("a batch of 0 records".into()));
        }
        // The first record's copy sets `out`'s dtype and shape and clears its data.
        Ok(Stack {
            out,
            n,
            k: 0,
            start: 0,
        })
    }

    /// The record last copied is complete: the next copy goes after it.
    pub(crate) fn done(&mut self) {
        self.k += 1;
        self.start = self.out.data.len();
    }
}

impl RecordSink for Stack<'_> {
    fn copy(&mut self, t: TensorRef<'_>) -> Result<()> {
        let out = &mut *self.out;
        if self.k == 0 {
            out.dtype = t.dtype;
            out.shape.clear();
            out.shape.push(self.n);
            out.shape.extend_from_slice(t.shape);
            out.data.clear();
            out.data.reserve(t.data.len().saturating_mul(self.n));
        } else if t.dtype != out.dtype || t.shape != &out.shape[1..] {
            return Err(Error::ShapeMismatch {
                index: self.k as u64,
                expected: crate::tensor::describe(out.dtype, &out.shape[1..]),
                found: t.describe(),
            });
        }
        out.data.truncate(self.start);
        out.data.extend_from_slice(t.data);
        Ok(())
    }

    fn copied(&self) -> &[u8] {
        &self.out.data[self.start..]
    }
}

/// Records held in memory. Useful in tests and for small generated datasets.
#[derive(Clone, Debug, Default)]
pub struct VecProducer {
    records: Vec<Tensor>,
    cursor: usize,
    name: String,
}

impl VecProducer {
    pub fn new(records: Vec<Tensor>) -> VecProducer {
        VecProducer {
            records,
            cursor: 0,
            name: "memory".into(),
        }
    }

    /// Sets the description returned by `source()`.
    pub fn with_source(mut self, name: impl Into<String>) -> VecProducer {
        self.name = name.into();
        self
    }

    pub fn push(&mut self, t: Tensor) {
        self.records.push(t);
    }
}

impl Producer for VecProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        if self.records.is_empty() {
            return Err(Error::Empty(self.name.clone()));
        }
        let i = self.cursor % self.records.len();
        self.cursor = (i + 1) % self.records.len();
        Ok(self.records[i].as_ref())
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.records.len())
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if !self.records.is_empty() {
            self.cursor = (self.cursor + n) % self.records.len();
        }
        Ok(())
    }

    fn source(&self) -> String {
        self.name.clone()
    }

    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        let len = self.records.len() as u64;
        match self
            .records
            .get(usize::try_from(index).unwrap_or(usize::MAX))
        {
            Some(t) => Ok(t.as_ref()),
            None => Err(Error::IndexOutOfRange {
                source_name: self.name.clone(),
                index,
                len,
            }),
        }
    }

    fn has_random_access(&self) -> bool {
        true
    }

    /// Kind `memory` with the description: a cache made from a differently named
    /// `VecProducer` is rebuilt; otherwise the size-based rule (records pushed later
    /// are appended).
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        Ok(Some(SourceIdentity::new(SourceKind::Memory, &self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_producer_cycles_and_skips() {
        let mut p = VecProducer::new((0..3).map(|i| Tensor::from_f32(&[i as f32])).collect());
        assert_eq!(p.size().unwrap(), 3);
        let got: Vec<f32> = (0..5).map(|_| p.next().unwrap().to_f32()[0]).collect();
        assert_eq!(got, [0.0, 1.0, 2.0, 0.0, 1.0]);
        p.skip(4).unwrap();
        assert_eq!(p.next().unwrap().to_f32()[0], 0.0);
    }

    #[test]
    fn vec_producer_random_access_leaves_the_cursor_alone() {
        let mut p = VecProducer::new((0..3).map(|i| Tensor::from_f32(&[i as f32])).collect());
        assert!(p.has_random_access());
        assert_eq!(p.view_at(2).unwrap().to_owned().to_f32()[0], 2.0);
        assert_eq!(p.next().unwrap().to_f32()[0], 0.0);
        let err = p.view_at(3).unwrap_err().to_string();
        assert_eq!(
            err,
            "memory: record index 3 is out of range (the dataset has 3 records)"
        );
    }

    #[test]
    fn empty_producer_is_an_error() {
        assert!(VecProducer::new(vec![]).next().is_err());
    }
}
