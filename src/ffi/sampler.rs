//! The sampler at the C boundary: options and state as plain structs, the sampler as
//! an opaque handle (`harmonics_sampler_new` … `harmonics_sampler_free`).
//!
//! Methods of `HarmonicsSampler`: new, clone, free, size, num_records, index, next,
//! fill, set_epoch, epoch, state, restore, options. A sampler is plain state with no
//! lock: use one from one thread at a time (copies with `harmonics_sampler_clone`).

use super::error::{guard, Failure, HarmonicsStatus};
use super::handle::{arg_ref, check_out, write_out, BoxHandle};
use crate::sampler::{Sampler, SamplerOptions, SamplerState};

/// How a sampler orders and splits the records. Start from
/// `harmonics_sampler_options_default()`, then set the fields you need; never fill one
/// field by field from scratch: later releases add fields at the end (with defaults that
/// keep the earlier behaviour), and only the default function fills those in (a release
/// that adds one changes `HARMONICS_DATASET_ABI_VERSION`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HarmonicsSamplerOptions {
    /// Selects the order (default 0); the same seed gives the same order everywhere.
    pub seed: u64,
    /// False: the record order 0, 1, 2, … (default true).
    pub shuffle: bool,
    /// This sampler's rank, below `world_size` (default 0).
    pub rank: u64,
    /// Number of ranks (default 1).
    pub world_size: u64,
    /// True: drop the remainder of `num_records / world_size`; false (default): pad the
    /// last step by wrapping to the start of the order.
    pub drop_last: bool,
    /// 0 (default): global shuffle; B > 0: blocks of B records shuffled, mixed within
    /// windows of 64 to 127 blocks.
    pub block_records: u64,
}

/// Where a sampler is (96 bytes, plain data: store it in a checkpoint as it is).
/// `position` is the global position of rank 0's next index in `epoch`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HarmonicsSamplerState {
    pub seed: u64,
    pub epoch: u64,
    pub position: u64,
    pub num_records: u64,
    pub world_size: u64,
    pub rank: u64,
    /// The options of the sampler that saved the state.
    pub options: HarmonicsSamplerOptions,
}

mirror!(HarmonicsSamplerOptions <=> SamplerOptions {
    seed,
    shuffle,
    rank,
    world_size,
    drop_last,
    block_records,
});

mirror!(HarmonicsSamplerState <=> SamplerState {
    seed,
    epoch,
    position,
    num_records,
    world_size,
    rank,
    options,
});

/// Options from a pointer argument; null means the defaults.
pub(crate) fn options_arg(p: *const HarmonicsSamplerOptions) -> SamplerOptions {
    // SAFETY: non-null pointers handed to us point to live objects (C contract).
    unsafe { p.as_ref() }.map_or_else(SamplerOptions::default, |o| (*o).into())
}

/// An opaque sampler. Free with `harmonics_sampler_free`.
pub struct HarmonicsSampler {
    pub(crate) sampler: Sampler,
}

impl BoxHandle for HarmonicsSampler {}

fn arg_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: non-null handles point to live objects not used concurrently (C contract).
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// The default options: seed 0, shuffle, rank 0 of 1, pad, global shuffle.
#[no_mangle]
pub extern "C" fn harmonics_sampler_options_default() -> HarmonicsSamplerOptions {
    SamplerOptions::default().into()
}

/// A sampler over `num_records` records at epoch 0. `options` may be null (defaults).
///
/// # Safety
/// `options` is null or readable; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_new(
    num_records: u64,
    options: *const HarmonicsSamplerOptions,
    out: *mut *mut HarmonicsSampler,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let sampler = Sampler::new(num_records, options_arg(options))?;
        write_out(out, "out", HarmonicsSampler { sampler }.into_raw())
    })
}

/// A copy of `sampler`, at the same place.
///
/// # Safety
/// `sampler` is null or a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_clone(
    sampler: *const HarmonicsSampler,
    out: *mut *mut HarmonicsSampler,
) -> HarmonicsStatus {
    guard(|| {
        let s = arg_ref(sampler, "sampler")?;
        check_out(out, "out")?;
        let copy = HarmonicsSampler {
            sampler: s.sampler.clone(),
        };
        write_out(out, "out", copy.into_raw())
    })
}

/// Frees a sampler; null is a no-op.
///
/// # Safety
/// `sampler` is null or a live handle not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_free(sampler: *mut HarmonicsSampler) {
    guard(|| {
        // SAFETY: per the contract above.
        unsafe { HarmonicsSampler::free_raw(sampler) };
        Ok(())
    });
}

/// Indices per rank per epoch (the same on every rank).
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_size(
    sampler: *const HarmonicsSampler,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| write_out(out, "out", arg_ref(sampler, "sampler")?.sampler.size()))
}

/// The number of records the sampler orders.
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_num_records(
    sampler: *const HarmonicsSampler,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| {
        write_out(
            out,
            "out",
            arg_ref(sampler, "sampler")?.sampler.num_records(),
        )
    })
}

/// The `k`-th index of this rank in a full epoch `epoch()`; pure (does not move).
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_index(
    sampler: *const HarmonicsSampler,
    k: u64,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| {
        let s = arg_ref(sampler, "sampler")?;
        check_out(out, "out")?;
        write_out(out, "out", s.sampler.index(k)?)
    })
}

/// The next index of this rank (the next epoch begins after `size()` calls).
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_next(
    sampler: *mut HarmonicsSampler,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| {
        let s = arg_mut(sampler, "sampler")?;
        check_out(out, "out")?;
        write_out(out, "out", s.sampler.next_index())
    })
}

/// Writes the next `n` indices to `out` (bulk `next`, for throughput).
///
/// # Safety
/// `sampler` is null or a live handle; `out` has room for `n` values (may be null when
/// `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_fill(
    sampler: *mut HarmonicsSampler,
    out: *mut u64,
    n: usize,
) -> HarmonicsStatus {
    guard(|| {
        let s = arg_mut(sampler, "sampler")?;
        if n == 0 {
            return Ok(());
        }
        check_out(out, "out")?;
        // SAFETY: the caller provides room for `n` values at `out`.
        let dst = unsafe { std::slice::from_raw_parts_mut(out, n) };
        s.sampler.fill(dst);
        Ok(())
    })
}

/// Starts epoch `epoch` at its first position.
///
/// # Safety
/// `sampler` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_set_epoch(
    sampler: *mut HarmonicsSampler,
    epoch: u64,
) -> HarmonicsStatus {
    guard(|| {
        arg_mut(sampler, "sampler")?.sampler.set_epoch(epoch);
        Ok(())
    })
}

/// The epoch the next index belongs to.
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_epoch(
    sampler: *const HarmonicsSampler,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| write_out(out, "out", arg_ref(sampler, "sampler")?.sampler.epoch()))
}

/// The sampler's options.
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_options(
    sampler: *const HarmonicsSampler,
    out: *mut HarmonicsSamplerOptions,
) -> HarmonicsStatus {
    guard(|| {
        let o = *arg_ref(sampler, "sampler")?.sampler.options();
        write_out(out, "out", o.into())
    })
}

/// Where the sampler is, to save in a checkpoint.
///
/// # Safety
/// `sampler` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_state(
    sampler: *const HarmonicsSampler,
    out: *mut HarmonicsSamplerState,
) -> HarmonicsStatus {
    guard(|| {
        write_out(
            out,
            "out",
            arg_ref(sampler, "sampler")?.sampler.state().into(),
        )
    })
}

/// Continues from `state` (saved by any rank at any world size): keeps this sampler's
/// rank and world size, takes the epoch and global position. O(1). A state for
/// another record count, seed or order options is refused (invalid argument).
///
/// # Safety
/// `sampler` is null or a live handle; `state` is null or readable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_sampler_restore(
    sampler: *mut HarmonicsSampler,
    state: *const HarmonicsSamplerState,
) -> HarmonicsStatus {
    guard(|| {
        let s = arg_mut(sampler, "sampler")?;
        let st = *arg_ref(state, "state")?;
        s.sampler.restore(&st.into()).map_err(Failure::from)
    })
}
