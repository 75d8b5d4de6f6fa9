//! Producers that read another producer in a training order, at the C boundary:
//! `harmonics_sampled_producer_*` and the original runtime's shuffle, shard and batch
//! wrappers. Each returns a new `HarmonicsProducer` handle (free it with
//! `harmonics_producer_free`) that shares `source`/`inner`, which stays alive as long
//! as the new handle does.

use super::error::{guard, Failure, HarmonicsStatus};
use super::handle::{arg_ref, check_out, write_out, BoxHandle};
use super::producer::{new_handle, with_sampled, HarmonicsProducer, ProducerKind, SharedBase};
use super::sampler::{
    options_arg, HarmonicsSampler, HarmonicsSamplerOptions, HarmonicsSamplerState,
};
use crate::{BatchProducer, Producer, Result, SampledProducer, ShardProducer, ShuffleProducer};

/// `source` read in a sampler's order: each `next` is `source` at `sampler.next()`;
/// `size` is the rank's count per epoch. `source` must have random access
/// (else `HARMONICS_STATUS_NO_RANDOM_ACCESS`). `options` may be null (defaults).
///
/// # Safety
/// `source` is null or a live handle; `options` is null or readable; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampled_producer_new(
    source: *mut HarmonicsProducer,
    options: *const HarmonicsSamplerOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        let source = arg_ref(source, "source")?;
        check_out(out, "out")?;
        let p = SampledProducer::new(source.share(), options_arg(options))?;
        new_handle(out, ProducerKind::Sampled(Box::new(p)))
    })
}

/// A copy of the sampled producer's sampler, at its current place.
///
/// # Safety
/// `producer` is null or a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampled_producer_sampler(
    producer: *const HarmonicsProducer,
    out: *mut *mut HarmonicsSampler,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let sampler = with_sampled(producer, |p| Ok(p.sampler().clone()))?;
        write_out(out, "out", HarmonicsSampler { sampler }.into_raw())
    })
}

/// The index of the source record the next `next` returns (nothing moves). With
/// `harmonics_producer_at` on the source and `harmonics_producer_skip(producer, 1)`, a
/// caller reads the record into its own memory with one copy (the C++ `next()` does).
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampled_producer_peek(
    producer: *const HarmonicsProducer,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let i = with_sampled(producer, |p| Ok(p.peek_index()))?;
        write_out(out, "out", i)
    })
}

/// Tells a random-access `producer` (a disk cache) that its next random reads
/// (`harmonics_producer_view_at`, `_at`, `_at_copy_to`) follow `sampler` from its
/// current place: the indices `harmonics_sampler_next` would return, in order. The
/// producer keeps a copy of the sampler (`sampler` itself does not move) and reads ahead:
/// offsets looked up in batches, the next records' bytes prefetched, and on a cache
/// not in the page cache many disk reads queued at once. Reads in another order are
/// served exactly as before, without the read-ahead. A sampled producer does this
/// itself. Replaces an earlier order; a producer that cannot read ahead ignores it.
///
/// # Safety
/// `producer` and `sampler` are null or live handles.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_read_ahead(
    producer: *mut HarmonicsProducer,
    sampler: *const HarmonicsSampler,
) -> HarmonicsStatus {
    guard(|| {
        let order = arg_ref(sampler, "sampler")?.sampler.clone();
        let mut p = arg_ref(producer, "producer")?.share();
        p.read_ahead(Box::new(order));
        Ok(())
    })
}

/// The sampled producer's state (see `harmonics_sampler_state`).
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampled_producer_state(
    producer: *const HarmonicsProducer,
    out: *mut HarmonicsSamplerState,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let st = with_sampled(producer, |p| Ok(p.state()))?;
        write_out(out, "out", st.into())
    })
}

/// Continues from `state` (see `harmonics_sampler_restore`).
///
/// # Safety
/// `producer` is null or a live handle; `state` is null or readable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampled_producer_restore(
    producer: *mut HarmonicsProducer,
    state: *const HarmonicsSamplerState,
) -> HarmonicsStatus {
    guard(|| {
        let st = *arg_ref(state, "state")?;
        with_sampled(producer, |p| p.restore(&st.into()))
    })
}

/// Starts epoch `epoch` at its first position.
///
/// # Safety
/// `producer` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampled_producer_set_epoch(
    producer: *mut HarmonicsProducer,
    epoch: u64,
) -> HarmonicsStatus {
    guard(|| {
        with_sampled(producer, |p| {
            p.set_epoch(epoch);
            Ok(())
        })
    })
}

/// The original `ShuffleProducer(inner)`: every record once per epoch, a new order each
/// epoch. With `has_seed` the order is the sampler's global shuffle for `seed`; without,
/// a seed is drawn. O(1) memory over a random-access `inner`; otherwise its records are
/// loaded into memory now.
///
/// # Safety
/// `inner` is null or a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_shuffle_producer_new(
    inner: *mut HarmonicsProducer,
    has_seed: bool,
    seed: u64,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        wrap(inner, out, |base| {
            ShuffleProducer::new(base, has_seed.then_some(seed))
        })
    })
}

/// The original `ShardProducer(inner, shard_idx, num_shards)`: the `shard_idx`-th of
/// `num_shards` contiguous slices (the first `size % num_shards` one record longer),
/// cycling. O(1) memory over a random-access `inner`; otherwise the shard's records are
/// loaded into memory now.
///
/// # Safety
/// `inner` is null or a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_shard_producer_new(
    inner: *mut HarmonicsProducer,
    shard_idx: usize,
    num_shards: usize,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        wrap(inner, out, |base| {
            ShardProducer::new(base, shard_idx, num_shards)
        })
    })
}

/// The original `BatchProducer(inner, batch)`: `batch` consecutive records stacked into
/// one tensor of shape `[batch, …]`; size `size(inner) / batch`.
///
/// # Safety
/// `inner` is null or a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_batch_producer_new(
    inner: *mut HarmonicsProducer,
    batch: usize,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| wrap(inner, out, |base| BatchProducer::new(base, batch)))
}

/// The original runtime's wrappers: checks `inner` and `out`, then stores a new handle
/// owning `make(inner's producer, shared)`.
fn wrap<P: Producer + 'static>(
    inner: *const HarmonicsProducer,
    out: *mut *mut HarmonicsProducer,
    make: impl FnOnce(SharedBase) -> Result<P>,
) -> std::result::Result<(), Failure> {
    let inner = arg_ref(inner, "inner")?;
    check_out(out, "out")?;
    let p = make(inner.share())?;
    new_handle(out, ProducerKind::Any(Box::new(p)))
}
