//! `PartialHttpProducer` (per-node partial fetch) at the C boundary. The handle is
//! an ordinary `HarmonicsProducer`: `harmonics_producer_size`/`next`/`view_at`/`at`
//! work on it, `view_at` taking GLOBAL record indices (a record this node does not
//! hold: `HARMONICS_STATUS_INDEX_OUT_OF_RANGE`, the message naming the ranks held).

use std::ffi::c_char;

use super::error::{guard, HarmonicsStatus};
use super::handle::{arg_bytes, arg_ref, arg_str, check_out};
use super::http::{options, HarmonicsHttpOptions};
use super::producer::{new_handle, HarmonicsProducer, ProducerKind};
use super::sampler::HarmonicsSamplerOptions;
use crate::PartialHttpProducer;

/// Fetches from the published cache at `url` (`http(s)://` or `s3://`) only the
/// records the sampler `sampler` (its `rank` ignored) gives each of the `n_ranks`
/// ranks in `ranks` at `epoch`, into the local partial cache `opts->cache_path`
/// (required), or reopens that partial cache without any request when it was made for
/// exactly this. `opts` is required (it names the partial cache).
///
/// # Safety
/// `url` is a NUL-terminated string; `sampler` is readable; `ranks` has `n_ranks`
/// readable values; `opts` is readable; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_partial_http_producer_new(
    url: *const c_char,
    sampler: *const HarmonicsSamplerOptions,
    ranks: *const u64,
    n_ranks: usize,
    epoch: u64,
    opts: *const HarmonicsHttpOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let url = arg_str(url, "url")?;
        let sampler = *arg_ref(sampler, "sampler")?;
        let ranks = arg_bytes(ranks, n_ranks, "ranks")?;
        // Required: its cache_path names the partial cache.
        arg_ref(opts, "opts")?;
        let p = PartialHttpProducer::new(url, sampler.into(), ranks, epoch, options(opts)?)?;
        new_handle(out, ProducerKind::Any(Box::new(p)))
    })
}
