//! The HTTP(S) and `s3://` transport under the HTTP producers (`HttpProducer`,
//! `AsyncHttpProducer`, `PartialHttpProducer`, at the crate root): how a dataset is
//! fetched by URL into the cache, and how a cache file is published. This module never
//! names the producers (a test in `crate::layers` keeps the layers apart).
//!
//! - Offline-first: with `cache` on and a `cache_path`, a valid cache file is used
//!   without any network request. `revalidate` opts into a conditional GET
//!   (If-None-Match / If-Modified-Since from the stored ETag / Last-Modified): 304
//!   keeps the cache, 200 replaces it.
//! - A download streams the body through the record decoder into a temp file next to
//!   the cache (under the cache's exclusive lock), renamed into place only when the
//!   whole body decoded cleanly. Without a persistent cache, the same happens in an
//!   anonymous temp file (in `$TMPDIR`) that is unlinked once complete: the body is
//!   never held in memory in any mode.
//! - A large object (`HttpOptions::parallel_min_bytes`, default 64 MiB) may be
//!   downloaded over several connections at once when the first response allows it
//!   (Content-Length, `Accept-Ranges: bytes`, a strong ETag, no content coding):
//!   `HttpOptions::connections` K, or by default one connection that splits into 4
//!   only when it is measured to be the limit and a second one to help: ranged GETs
//!   pinned to the ETag (`ranged.rs`), each resumable on its own, written at their
//!   offsets into an unnamed temp file that the record decoder follows (see
//!   `parallel.rs`). A changed object restarts the download (never a
//!   splice); otherwise, or below the threshold, one connection as before. The async
//!   producer uses the same path: the decoder follows the contiguous prefix, so its first
//!   record still arrives with the first bytes of the first response.
//! - Any failure is `Error::Http` naming the URL, with its kind (connect, TLS, timeout,
//!   status and its code, changed object, body), and leaves no cache file behind.
//! - Source identity: a cache file records the URL it was downloaded from (the
//!   metadata's `source`, or its `identity` when written by a `DiskCacheProducer`) and
//!   the body's validators (`etag`, `last_modified`). A cache file at `cache_path` made
//!   from another URL (compared normalised: scheme and host case, default port, empty
//!   path) or by another kind of producer is never served: it is downloaded again, with
//!   a warning naming both, and the producer's `outcome()` is `CacheOutcome::Rebuilt`
//!   saying why. A headerless legacy file has no metadata and is trusted, as before.
//! - `AsyncHttpProducer` downloads in a background thread and serves each record as
//!   soon as it has been written and decoded.

mod client;
mod decode;
mod fetch;
pub(crate) mod options;
mod parallel;
pub(crate) mod publish;
pub(crate) mod ranged;
mod remote_index;
mod resume;
mod retry;
pub mod s3;
mod source;

pub use options::{DEFAULT_CONNECTIONS, DEFAULT_PARALLEL_MIN_BYTES};
pub use publish::MAX_SINGLE_PUT;

// Public at the crate root (their one public path); named here for the crate's modules.
pub(crate) use options::{HttpOptions, HttpOutcome};
pub(crate) use publish::publish;

pub(crate) use client::shared_client;
pub(crate) use fetch::{NoObserver, Observer};
pub(crate) use remote_index::{record_wire, RemoteIndex};
pub(crate) use source::{check_url, http_identity, url_from_parts, Source, StopFlag};
