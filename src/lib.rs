//! harmonics-dataset: the dataset caching layer of the harmonics ML runtime.
//!
//! Layers, from the records up (one line per module):
//!
//! - [`tensor`]: `Tensor`, `DType` and the wire codec of the original `write_tensor`.
//! - [`identity`]: what a cache was built from, and how an open decides from it.
//! - [`cache`]: the store: cache directory, the CRC-framed cache file format (its only
//!   owner), reader, writer, locking, recovery, maintenance, publishing a file.
//! - [`http`]: the transport: options, client, retries, resumable and ranged parallel
//!   downloads, the body decoder, `s3://` signing, the publish upload.
//! - [`producers`]: the `Producer` trait and every producer: [`VecProducer`],
//!   [`CsvProducer`], [`DiskCacheProducer`], [`HttpProducer`], [`AsyncHttpProducer`],
//!   [`PartialHttpProducer`](http::PartialHttpProducer), [`SampledProducer`] and the
//!   original runtime's wrappers.
//! - [`sampler`]: the training order: a shuffled, sharded, resumable index sequence in
//!   O(1) memory.
//! - [`log`]: diagnostics (levels, `HARMONICS_LOG`, a host's sink).
//! - [`progress`]: download progress on a terminal.
//! - `ffi`: the C ABI (`include/harmonics_dataset.h`).

pub mod cache;
mod error;
pub mod ffi;
pub mod http;
pub mod identity;
pub mod log;
pub mod producers;
pub mod progress;
pub mod sampler;
pub mod tensor;

pub use error::{Error, Result};
pub use http::{publish, HttpOptions, HttpOutcome, PublishSummary};
pub use identity::{IdentityMatch, SourceIdentity, SourceKind};
#[doc(hidden)]
pub use producers::CsvStats;
pub use producers::{
    random_seed, AsyncHttpProducer, BatchProducer, CacheOutcome, CsvProducer, DiskCacheProducer,
    HttpProducer, Producer, RecordSink, SampledProducer, ShapeCheck, ShardProducer,
    ShuffleProducer, TokenFn, VecProducer,
};
pub use sampler::{Sampler, SamplerOptions, SamplerState};
pub use tensor::{DType, Tensor, TensorRef};
