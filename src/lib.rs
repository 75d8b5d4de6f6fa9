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
//!
//! # Example
//!
//! Any producer cached on disk, then read in a shuffled order that a 96-byte
//! [`SamplerState`] resumes (a URL works the same way, through [`HttpProducer`]):
//!
//! ```
//! use harmonics_dataset::{
//!     DiskCacheProducer, Producer, SampledProducer, SamplerOptions, Tensor, VecProducer,
//! };
//!
//! # fn main() -> harmonics_dataset::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let records: Vec<Tensor> = (0..10).map(|i| Tensor::from_f32(&[i as f32, 0.5])).collect();
//! let name = dir.path().join("train.cache"); // a relative name goes under $HARMONICS_CACHE_DIR
//! let cache = DiskCacheProducer::open(VecProducer::new(records), name.to_str().unwrap())?;
//!
//! let order = SamplerOptions { seed: 2024, ..Default::default() };
//! let mut train = SampledProducer::new(cache, order)?;
//! let mut firsts = Vec::new();
//! for _ in 0..train.size()? {
//!     let x = train.next_view()?; // borrows the mapped cache file: no copy
//!     firsts.push(x.data[0..4].try_into().map(f32::from_le_bytes).unwrap());
//! }
//! let checkpoint = train.state(); // the next epoch, position 0
//! assert_eq!(checkpoint.epoch, 1);
//! firsts.sort_by(f32::total_cmp);
//! assert_eq!(firsts, (0..10).map(|i| i as f32).collect::<Vec<_>>()); // every record once
//! # Ok(())
//! # }
//! ```

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
    HttpProducer, Producer, SampledProducer, ShapeCheck, ShardProducer, ShuffleProducer, TokenFn,
    VecProducer,
};
pub use sampler::{Sampler, SamplerOptions, SamplerState};
pub use tensor::{DType, Tensor, TensorRef};
