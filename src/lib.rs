//! harmonics-dataset: the dataset caching layer of the harmonics ML runtime.
//!
//! - [`tensor`]: `Tensor`, `DType` and the wire codec of the original `write_tensor`.
//! - [`Producer`]: a cycling source of records; [`CsvProducer`], [`VecProducer`].
//! - [`identity`]: what a cache was built from, and how an open decides from it.
//! - [`cache`]: cache directory, versioned CRC-framed cache files, locking.
//! - [`DiskCacheProducer`]: persists any producer's records, appends what is new,
//!   drops the cache when the token changes, rebuilds it when it is damaged.
//! - [`http`]: `HttpProducer` and `AsyncHttpProducer`, streaming into the cache.
//! - [`log`]: diagnostics (levels, `HARMONICS_LOG`, a host's sink); [`progress`]:
//!   download progress on a terminal.
//! - [`sampler`]: the training order: a shuffled, sharded, resumable index sequence in
//!   O(1) memory; [`SampledProducer`] and the original runtime's wrappers over it.
//! - `ffi`: the C ABI (`include/harmonics_dataset.h`).

pub mod cache;
mod csv_producer;
mod disk_cache;
mod error;
pub mod ffi;
pub mod http;
pub mod identity;
pub mod log;
mod producer;
pub mod progress;
mod sampled;
pub mod sampler;
pub mod tensor;

pub use csv_producer::CsvProducer;
#[doc(hidden)]
pub use csv_producer::CsvStats;
pub use disk_cache::{CacheOutcome, DiskCacheProducer, TokenFn};
pub use error::{Error, Result};
pub use http::{
    publish, AsyncHttpProducer, HttpOptions, HttpOutcome, HttpProducer, PublishSummary,
};
pub use identity::{IdentityMatch, SourceIdentity, SourceKind};
pub use producer::{Producer, ShapeCheck, VecProducer};
pub use sampled::{random_seed, BatchProducer, SampledProducer, ShardProducer, ShuffleProducer};
pub use sampler::{Sampler, SamplerOptions, SamplerState};
pub use tensor::{DType, Tensor, TensorRef};
