//! Producers that read another producer in a training order: [`SampledProducer`]
//! (any [`Sampler`] order over a random-access producer) and the original runtime's
//! wrappers, [`ShuffleProducer`], [`ShardProducer`] and [`BatchProducer`].
//!
//! Over a random-access producer (a cache) the wrappers hold O(1) memory: they keep
//! indices, not records. Over any other producer they behave as the original did and
//! load the records they serve into memory once, at construction.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::error::{Error, Result};
use crate::producers::Producer;
use crate::sampler::{Sampler, SamplerOptions, SamplerState};
use crate::tensor::{DType, Tensor, TensorRef};

/// `source` read in the order of a [`Sampler`]: `next()` is
/// `source.view_at(sampler.next())`, `size()` the rank's count per epoch. The record
/// count is the source's size at construction.
pub struct SampledProducer<P> {
    source: P,
    sampler: Sampler,
}

impl<P: Producer> SampledProducer<P> {
    /// Fails with `Error::NoRandomAccess` when `source` has no random access.
    pub fn new(mut source: P, options: SamplerOptions) -> Result<SampledProducer<P>> {
        if !source.has_random_access() {
            return Err(Error::NoRandomAccess(source.source()));
        }
        let n = source.size()? as u64;
        let sampler = Sampler::new(n, options)?;
        let mut p = SampledProducer { source, sampler };
        p.plan();
        Ok(p)
    }

    /// Tells the source the order from here on (`Producer::read_ahead`): the sampler's
    /// future, which is a pure function of its state.
    fn plan(&mut self) {
        self.source.read_ahead(Box::new(self.sampler.clone()));
    }

    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// The index the next record comes from (the sampler does not move).
    pub fn peek_index(&mut self) -> u64 {
        self.sampler.current()
    }

    /// Starts epoch `epoch` at its first position.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.sampler.set_epoch(epoch);
        self.plan();
    }

    pub fn state(&self) -> SamplerState {
        self.sampler.state()
    }

    pub fn restore(&mut self, state: &SamplerState) -> Result<()> {
        self.sampler.restore(state)?;
        self.plan();
        Ok(())
    }

    pub fn source_mut(&mut self) -> &mut P {
        &mut self.source
    }

    pub fn into_inner(self) -> P {
        self.source
    }
}

impl<P: Producer> Producer for SampledProducer<P> {
    /// The sampler moves only when the record was read: a failed read can be retried.
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let i = self.sampler.current();
        let view = self.source.view_at(i)?;
        self.sampler.advance();
        Ok(view)
    }

    /// The source's copying random access (`at_into`: checked on the copy).
    fn next_into(&mut self, out: &mut dyn crate::producers::RecordSink) -> Result<()> {
        let i = self.sampler.current();
        self.source.at_into(i, out)?;
        self.sampler.advance();
        Ok(())
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.sampler.size() as usize)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.sampler.advance();
        }
        if n > 0 {
            self.plan();
        }
        Ok(())
    }

    fn source(&self) -> String {
        format!("sampled {}", self.source.source())
    }
}

/// Records held in memory for the wrappers over a producer without random access.
fn load_all<P: Producer>(inner: &mut P, keep: std::ops::Range<usize>) -> Result<Vec<Tensor>> {
    let n = inner.size()?;
    let mut records = Vec::with_capacity(keep.len().min(n));
    for i in 0..n {
        let t = inner.next_view()?;
        if keep.contains(&i) {
            records.push(t.to_owned());
        }
    }
    Ok(records)
}

enum Records<P> {
    /// Read through `view_at`: O(1) memory.
    Random(P),
    /// Loaded at construction (the original behaviour).
    Memory(Vec<Tensor>, String),
}

impl<P: Producer> Records<P> {
    fn new(mut inner: P, keep: impl FnOnce(usize) -> std::ops::Range<usize>) -> Result<Records<P>> {
        if inner.has_random_access() {
            Ok(Records::Random(inner))
        } else {
            let n = inner.size()?;
            let records = load_all(&mut inner, keep(n))?;
            Ok(Records::Memory(records, inner.source()))
        }
    }

    fn get(&mut self, i: u64) -> Result<TensorRef<'_>> {
        match self {
            Records::Random(p) => p.view_at(i),
            Records::Memory(v, _) => Ok(v[i as usize].as_ref()),
        }
    }

    fn source(&self) -> String {
        match self {
            Records::Random(p) => p.source(),
            Records::Memory(_, s) => s.clone(),
        }
    }

    /// Over a random-access producer, tells it the order of the reads to come.
    fn read_ahead(&mut self, order: impl FnOnce() -> crate::cache::ReadOrder) {
        if let Records::Random(p) = self {
            p.read_ahead(order())
        }
    }
}

/// The original `ShuffleProducer(inner)`: every record once per epoch, in a new random
/// order each epoch. The order is the [`Sampler`]'s global shuffle for `seed`; without
/// a seed (as the original, seeded from `std::random_device`) each object draws one.
pub struct ShuffleProducer<P> {
    records: Records<P>,
    /// None for an empty dataset.
    sampler: Option<Sampler>,
}

/// A seed nobody chose: from the OS-seeded hasher keys of the standard library.
pub fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

impl<P: Producer> ShuffleProducer<P> {
    pub fn new(mut inner: P, seed: Option<u64>) -> Result<ShuffleProducer<P>> {
        let n = inner.size()? as u64;
        let options = SamplerOptions {
            seed: seed.unwrap_or_else(random_seed),
            ..SamplerOptions::default()
        };
        let sampler = if n == 0 {
            None
        } else {
            Some(Sampler::new(n, options)?)
        };
        let mut records = Records::new(inner, |n| 0..n)?;
        if let Some(s) = &sampler {
            records.read_ahead(|| Box::new(s.clone()));
        }
        Ok(ShuffleProducer { records, sampler })
    }

    /// The order's state, for a checkpoint (None for an empty dataset).
    pub fn sampler(&self) -> Option<&Sampler> {
        self.sampler.as_ref()
    }
}

impl<P: Producer> Producer for ShuffleProducer<P> {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let Some(sampler) = self.sampler.as_mut() else {
            return Err(Error::Empty(self.records.source()));
        };
        let i = sampler.current();
        let view = self.records.get(i)?;
        sampler.advance();
        Ok(view)
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.sampler.as_ref().map_or(0, |s| s.size() as usize))
    }

    fn source(&self) -> String {
        format!("shuffled {}", self.records.source())
    }
}

/// The original `ShardProducer(inner, shard_idx, num_shards)`: the `shard_idx`-th of
/// `num_shards` contiguous slices of `inner` (the first `size % num_shards` shards
/// hold one record more), cycling over its own records.
pub struct ShardProducer<P> {
    records: Records<P>,
    start: u64,
    count: u64,
    cursor: u64,
}

impl<P: Producer> ShardProducer<P> {
    pub fn new(mut inner: P, shard_idx: usize, num_shards: usize) -> Result<ShardProducer<P>> {
        if num_shards == 0 || shard_idx >= num_shards {
            return Err(Error::InvalidArgument(format!(
                "invalid shard parameters: shard {shard_idx} of {num_shards}"
            )));
        }
        let n = inner.size()?;
        let (base, extra) = (n / num_shards, n % num_shards);
        let start = shard_idx * base + shard_idx.min(extra);
        let count = base + usize::from(shard_idx < extra);
        let random = inner.has_random_access();
        let records = Records::new(inner, |_| start..start + count)?;
        let mut p = ShardProducer {
            records,
            start: if random { start as u64 } else { 0 },
            count: count as u64,
            cursor: 0,
        };
        p.plan();
        Ok(p)
    }

    /// The shard's records from the cursor on, cycling: the order of the reads to come.
    fn plan(&mut self) {
        let (start, count, cursor) = (self.start, self.count, self.cursor);
        if count > 0 {
            self.records
                .read_ahead(|| Box::new((start..start + count).cycle().skip(cursor as usize)));
        }
    }
}

impl<P: Producer> Producer for ShardProducer<P> {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        if self.count == 0 {
            return Err(Error::Empty(self.source()));
        }
        let i = self.start + self.cursor;
        self.cursor = (self.cursor + 1) % self.count;
        self.records.get(i)
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.count as usize)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if self.count > 0 {
            self.cursor = (self.cursor + n as u64 % self.count) % self.count;
            self.plan();
        }
        Ok(())
    }

    fn source(&self) -> String {
        format!("shard of {}", self.records.source())
    }
}

/// The original `BatchProducer(inner, batch)`: `batch` consecutive records of `inner`
/// stacked along a new leading dimension (`[batch, …record shape]`); `size()` is
/// `inner.size() / batch`. Records of a batch must share dtype and shape.
pub struct BatchProducer<P> {
    inner: P,
    batch: usize,
    /// Reused for every batch: no allocation per batch once it has grown.
    out: Tensor,
}

impl<P: Producer> BatchProducer<P> {
    pub fn new(inner: P, batch: usize) -> Result<BatchProducer<P>> {
        if batch == 0 {
            return Err(Error::InvalidArgument("BatchProducer: batch size 0".into()));
        }
        Ok(BatchProducer {
            inner,
            batch,
            out: Tensor::new(DType::UInt8, Vec::new(), Vec::new()),
        })
    }
}

impl<P: Producer> Producer for BatchProducer<P> {
    /// `inner.next_batch(batch)` into a tensor reused for every batch: each record is
    /// copied once and checked on that copy; over a `SampledProducer` the batch's reads
    /// were issued ahead (read-ahead in the sampler's order).
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.inner.next_batch(self.batch, &mut self.out)?;
        Ok(self.out.as_ref())
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.inner.size()? / self.batch)
    }

    fn source(&self) -> String {
        format!("batches of {} of {}", self.batch, self.inner.source())
    }
}
