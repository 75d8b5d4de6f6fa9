//! `StreamingProducer` (a published cache larger than the disk, read in the training
//! order through the node's bounded stream cache) at the C boundary. The handle is an
//! ordinary `HarmonicsProducer`: `harmonics_producer_next`/`next_view`/`size` work on
//! it (`size`: records per rank per epoch; `next` crosses into the next epoch after
//! `size` calls).
//!
//! Methods: `harmonics_streaming_producer_new`, `_num_records`, `_epoch`,
//! `_set_epoch`, `_state`, `_restore`, `_stats`; options from
//! `harmonics_stream_options_default`.

use std::ffi::c_char;

use super::error::{guard, Failure, HarmonicsStatus};
use super::handle::{arg_ref, arg_str, check_out, write_out};
use super::http::{options as http_options, HarmonicsHttpOptions};
use super::producer::{new_handle, with_kind, HarmonicsProducer, ProducerKind};
use super::sampler::{options_arg, HarmonicsSamplerOptions};
use crate::{StreamOptions, StreamState, StreamStats, StreamingProducer};

/// Options of a stream (C++ `harmonics::StreamOptions`). Caller-allocated: fill it
/// with `harmonics_stream_options_default()`, which sets `struct_size` to
/// `sizeof(HarmonicsStreamOptions)` of this version; the library reads only what a
/// struct of that size holds and refuses a `struct_size` it does not know.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsStreamOptions {
    /// `sizeof(HarmonicsStreamOptions)`, set by `harmonics_stream_options_default`.
    pub struct_size: usize,
    /// Bytes of local disk the node's stream cache may hold, every file counted; 0: no
    /// limit. Below the stream's minimum: refused, the minimum named in bytes.
    pub cache_limit: u64,
    /// Fetch unit: runs of whole records of about this many bytes; 0: automatic.
    pub block_bytes: u64,
    /// Ranks sharing this node's disk (node = rank / ranks_per_node); default 1.
    pub ranks_per_node: u64,
    /// Deal the blocks to the nodes anew every epoch.
    pub redeal: bool,
    /// The node's stream cache under `$HARMONICS_CACHE_DIR` (absolute: as given); NULL
    /// or "": named from the URL. Borrowed for the duration of the call.
    pub cache_name: *const c_char,
    /// Connections, timeouts, CA file, retries (`cache`, `cache_path`, `validate`,
    /// `revalidate` do not apply).
    pub http: HarmonicsHttpOptions,
}

/// Where a stream is (C++ `harmonics::StreamState`): save it, give it back to
/// `harmonics_streaming_producer_restore` (same layout) to continue exactly.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct HarmonicsStreamState {
    pub seed: u64,
    pub epoch: u64,
    /// Steps taken in `epoch` (the same on every rank).
    pub step: u64,
    pub num_records: u64,
    pub world_size: u64,
    pub ranks_per_node: u64,
    pub rank: u64,
    pub block_bytes: u64,
    pub shuffle: bool,
    pub drop_last: bool,
    pub redeal: bool,
}

/// This process's view of a stream since it was opened (C++ `harmonics::StreamStats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct HarmonicsStreamStats {
    /// Body bytes this process fetched from the remote.
    pub bytes_fetched: u64,
    pub blocks_fetched: u64,
    pub blocks_evicted: u64,
    /// Allocated bytes of the node's stream cache now (all its files).
    pub disk_bytes: u64,
    /// The most this process has seen it hold.
    pub disk_high_water: u64,
    /// Time `next` spent waiting for data.
    pub wait_seconds: f64,
}

mirror!(HarmonicsStreamState <=> StreamState {
    seed,
    epoch,
    step,
    num_records,
    world_size,
    ranks_per_node,
    rank,
    block_bytes,
    shuffle,
    drop_last,
    redeal,
});

mirror!(StreamStats => HarmonicsStreamStats {
    bytes_fetched,
    blocks_fetched,
    blocks_evicted,
    disk_bytes,
    disk_high_water,
    wait_seconds,
});

/// The defaults: no limit, automatic blocks, one rank per node, stable dealing, a
/// cache named from the URL, the HTTP defaults; `struct_size` set.
#[no_mangle]
pub extern "C" fn harmonics_stream_options_default() -> HarmonicsStreamOptions {
    let d = StreamOptions::default();
    HarmonicsStreamOptions {
        struct_size: std::mem::size_of::<HarmonicsStreamOptions>(),
        cache_limit: d.cache_limit,
        block_bytes: d.block_bytes,
        ranks_per_node: d.ranks_per_node,
        redeal: d.redeal,
        cache_name: std::ptr::null(),
        http: super::http::harmonics_http_options_default(),
    }
}

fn stream_options(p: *const HarmonicsStreamOptions) -> Result<StreamOptions, Failure> {
    // SAFETY: `p` is null or readable (C contract); only `struct_size` is read before
    // it is checked.
    let Some(size) = (unsafe { p.as_ref() }).map(|o| o.struct_size) else {
        return Ok(StreamOptions::default());
    };
    let known = std::mem::size_of::<HarmonicsStreamOptions>();
    if size != known {
        return Err(Failure::invalid(format!(
            "opts.struct_size is {size}, this library's HarmonicsStreamOptions has {known} \
             bytes: fill the options with harmonics_stream_options_default()"
        )));
    }
    // SAFETY: as above, and the struct is of this version's size.
    let o = unsafe { &*p };
    let cache_name = if o.cache_name.is_null() {
        String::new()
    } else {
        arg_str(o.cache_name, "opts.cache_name")?.to_string()
    };
    Ok(StreamOptions {
        cache_limit: o.cache_limit,
        block_bytes: o.block_bytes,
        ranks_per_node: o.ranks_per_node,
        redeal: o.redeal,
        cache_name,
        http: http_options(&o.http)?,
    })
}

/// Opens the published cache at `url` (`https://`, `http://` or `s3://`) as the stream
/// of rank `order->rank` of `order->world_size` (`order->block_records` does not
/// apply). `order` and `opts` may be null (defaults). A `cache_limit` below the
/// stream's minimum is refused at once (`HARMONICS_STATUS_INVALID_ARGUMENT`, the
/// message naming the minimum in bytes).
///
/// # Safety
/// `url` is a NUL-terminated string; `order` and `opts` are null or readable; `out` is
/// writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_new(
    url: *const c_char,
    order: *const HarmonicsSamplerOptions,
    opts: *const HarmonicsStreamOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let url = arg_str(url, "url")?;
        let p = StreamingProducer::new(url, options_arg(order), stream_options(opts)?)?;
        new_handle(out, ProducerKind::Streaming(Box::new(p)))
    })
}

/// Runs `f` on the handle's streaming producer, locked.
fn with_streaming<R>(
    producer: *const HarmonicsProducer,
    f: impl FnOnce(&mut StreamingProducer) -> crate::Result<R>,
) -> Result<R, Failure> {
    with_kind(producer, |k| match k {
        ProducerKind::Streaming(s) => f(s).map_err(Failure::from),
        _ => Err(Failure::invalid(
            "producer is not a streaming producer".into(),
        )),
    })
}

/// The getters: `f`'s answer written to `*out` (null refused before any work).
fn read_out<T>(
    producer: *const HarmonicsProducer,
    out: *mut T,
    f: impl FnOnce(&mut StreamingProducer) -> T,
) -> Result<(), Failure> {
    check_out(out, "out")?;
    let v = with_streaming(producer, |p| Ok(f(p)))?;
    write_out(out, "out", v)
}

/// The dataset's record count.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_num_records(
    producer: *const HarmonicsProducer,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| read_out(producer, out, |p| p.num_records()))
}

/// The epoch the next record belongs to.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_epoch(
    producer: *const HarmonicsProducer,
    out: *mut u64,
) -> HarmonicsStatus {
    guard(|| read_out(producer, out, |p| p.epoch()))
}

/// Starts epoch `epoch` at its first record.
///
/// # Safety
/// `producer` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_set_epoch(
    producer: *mut HarmonicsProducer,
    epoch: u64,
) -> HarmonicsStatus {
    guard(|| {
        with_streaming(producer, |p| {
            p.set_epoch(epoch);
            Ok(())
        })
    })
}

/// Where the stream is (O(1)).
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_state(
    producer: *const HarmonicsProducer,
    out: *mut HarmonicsStreamState,
) -> HarmonicsStatus {
    guard(|| read_out(producer, out, |p| p.state().into()))
}

/// Continues from `state` (O(1)); a state of another layout, block size, seed or
/// options is refused (`HARMONICS_STATUS_INVALID_ARGUMENT`, naming both).
///
/// # Safety
/// `producer` is null or a live handle; `state` is null or readable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_restore(
    producer: *mut HarmonicsProducer,
    state: *const HarmonicsStreamState,
) -> HarmonicsStatus {
    guard(|| {
        let st = *arg_ref(state, "state")?;
        with_streaming(producer, |p| p.restore(&st.into()))
    })
}

/// This process's view of the stream.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_streaming_producer_stats(
    producer: *const HarmonicsProducer,
    out: *mut HarmonicsStreamStats,
) -> HarmonicsStatus {
    guard(|| read_out(producer, out, |p| p.stats().into()))
}
