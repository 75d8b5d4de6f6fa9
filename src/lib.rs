//! harmonics-dataset: the dataset caching layer of the harmonics ML runtime.
//!
//! The main types are at the crate root, their one public path: the records
//! ([`Tensor`], [`TensorRef`], [`DType`], [`write_tensor`], [`read_tensor`]), the
//! [`Producer`] trait and every producer ([`VecProducer`], [`CsvProducer`],
//! [`DiskCacheProducer`], [`HttpProducer`], [`AsyncHttpProducer`],
//! [`PartialHttpProducer`], [`SampledProducer`] and the original runtime's wrappers),
//! their options and outcome ([`HttpOptions`], [`CacheOutcome`]), the
//! training order ([`Sampler`]), what a cache was built from ([`SourceIdentity`]),
//! [`publish`], and [`Error`]. Three modules are namespaces of their own: [`cache`] (the
//! store: cache paths, reading and writing cache files, locking, maintenance), [`http`]
//! (transport settings: `s3://` configuration, defaults) and [`log`] (diagnostics).
//!
//! Layers, from the records up (one line per module; a lower layer never names a
//! higher one, which `layers.rs` checks):
//!
//! - `tensor`: `Tensor`, `DType` and the wire codec of the original `write_tensor`.
//! - `identity`: what a cache was built from, and how an open decides from it.
//! - `cache`: the store: cache directory, the CRC-framed cache file format (its only
//!   owner), reader, writer, locking, recovery, maintenance, publishing a file.
//! - `http`: the transport: options, client, retries, resumable and ranged parallel
//!   downloads, the body decoder, `s3://` signing, the publish upload.
//! - `producers`: the `Producer` trait and every producer.
//! - `sampler`: the training order: a shuffled, sharded, resumable index sequence in
//!   O(1) memory.
//! - `stream`: streaming a dataset larger than the disk: the node-partitioned block
//!   order and the bounded node cache under [`StreamingProducer`].
//! - `log`: diagnostics (levels, `HARMONICS_LOG`, a host's sink); `progress`: download
//!   progress on a terminal; `error`, `redact`, `shape_check`: leaves used by all.
//! - `ffi`: the C ABI (`include/harmonics_dataset.h`, its documentation); public for the
//!   crate's own tests of the C boundary, hidden from the Rust docs.
//!
//! The cargo feature `testing` (used by this crate's own tests and benchmarks only)
//! makes internals reachable, hidden from the docs: the cache file format
//! (`cache::Header`, `cache::Commit`, ...), the `tensor` and `sampler` modules.
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

/// Re-exports crate internals: public (hidden from the docs) with the `testing`
/// feature, for the crate's own tests and benchmarks (see Cargo.toml); crate-private
/// otherwise.
macro_rules! testing_pub_use {
    ($($tree:tt)*) => {
        #[cfg(feature = "testing")]
        #[doc(hidden)]
        pub use $($tree)*;
        #[cfg(not(feature = "testing"))]
        #[allow(unused_imports)]
        pub(crate) use $($tree)*;
    };
}

pub mod cache;
mod error;
#[doc(hidden)]
pub mod ffi;
pub mod http;
mod identity;
#[cfg(test)]
mod layers;
pub mod log;
mod producers;
mod progress;
mod redact;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod sampler;
#[cfg(not(feature = "testing"))]
mod sampler;
mod shape_check;
// The streaming internals (block order, node cache): the crate's tests and benchmarks
// size their limits with them.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod stream;
#[cfg(not(feature = "testing"))]
#[allow(unused_imports, dead_code)] // the parts only the tests and benchmarks use
mod stream;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod tensor;
#[cfg(not(feature = "testing"))]
mod tensor;

pub use error::{Error, HttpErrorKind, Result};
pub use http::options::HttpOptions;
pub use http::publish::{publish, PublishSummary};
pub use identity::{FileStamp, IdentityMatch, SourceIdentity, SourceKind};
#[doc(hidden)]
pub use producers::CsvStats;
pub use producers::{
    random_seed, AsyncHttpProducer, BatchProducer, CacheOutcome, CsvProducer, DiskCacheProducer,
    FetchStats, HttpProducer, PartialHttpProducer, Producer, RecordSink, SampledProducer,
    ShardProducer, ShuffleProducer, StreamOptions, StreamState, StreamStats, StreamingProducer,
    TokenFn, VecProducer,
};
pub use sampler::{Sampler, SamplerOptions, SamplerState};
pub use tensor::{read_tensor, write_tensor, DType, Tensor, TensorRef};
