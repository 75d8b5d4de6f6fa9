//! `HttpOptions` (how an HTTP producer fetches and caches, with its defaults) and
//! `HttpOutcome` (what the transport did; the producers report it, with the reason a
//! cache file was replaced, as a `CacheOutcome`).

use std::time::Duration;

/// How an HTTP producer fetches and caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Keep the dataset in a persistent cache file (needs `cache_path`). Default true.
    pub cache: bool,
    /// Cache file: relative names resolve under `$HARMONICS_CACHE_DIR`, absolute paths
    /// are used as given. Empty: no persistent cache.
    pub cache_path: String,
    /// Every record must share the first record's dtype and shape.
    pub validate: bool,
    /// Revalidate an existing cache with a conditional GET instead of trusting it.
    pub revalidate: bool,
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for the response head or for any read of the body. Default 30 s.
    pub read_timeout: Duration,
    /// Further attempts after a transport failure or a 5xx, with exponential backoff;
    /// a body is resumed with `Range` when the server supports it. Default 3.
    pub retries: u32,
    /// A PEM file of extra root certificates trusted for `https://` besides the
    /// bundled web PKI roots (a private CA of a company's dataset server). Default none.
    pub ca_cert: Option<std::path::PathBuf>,
    /// The most body bytes (decoded) a download may take; beyond it the download
    /// fails naming the URL and the limit, and leaves no cache file. A body whose
    /// Content-Length already exceeds it is refused before any byte is read.
    /// Default `None`: no limit (a dataset may legitimately be any size; a full disk
    /// still ends the download with an error and removes the temp file).
    pub max_bytes: Option<u64>,
    /// Connections a large object is downloaded over at once (ranged GETs pinned to
    /// its ETag, see `parallel_min_bytes`).
    /// - 0 (the default): automatic. The download starts on one connection and
    ///   measures it; it splits into `DEFAULT_CONNECTIONS` (4) only when the
    ///   connection is the limit (the decoder waits for bytes at least 15/16 of
    ///   the time) and a second connection, tried for 250 ms, makes the two together at
    ///   least 1.4 times as fast as one: a link that caps each connection, a far
    ///   server. Against a fast server close by it stays on one connection.
    /// - 1: always a single connection.
    /// - K >= 2: K connections from the start, measured or not.
    pub connections: u32,
    /// Objects of at least this many bytes may be downloaded over several
    /// connections (`connections`); smaller ones over one. Default 64 MiB. Whatever
    /// the size, ranges are used only when the first response shows it is safe: a
    /// Content-Length, `Accept-Ranges: bytes`, a strong ETag and no content coding;
    /// otherwise the single connection of before is kept.
    pub parallel_min_bytes: u64,
}

/// The most connections of a parallel download when `HttpOptions::connections` is 0
/// (automatic), and the prefetch threads of the partial fetch and the stream.
pub const DEFAULT_CONNECTIONS: u32 = 4;
/// The default `HttpOptions::parallel_min_bytes`: 64 MiB.
pub const DEFAULT_PARALLEL_MIN_BYTES: u64 = 64 << 20;

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            cache: true,
            cache_path: String::new(),
            validate: false,
            revalidate: false,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retries: 3,
            ca_cert: None,
            max_bytes: None,
            connections: 0,
            parallel_min_bytes: DEFAULT_PARALLEL_MIN_BYTES,
        }
    }
}

impl HttpOptions {
    /// The defaults with the original constructors' `cache` and `cache_path`.
    pub fn cached_at(cache: bool, cache_path: &str) -> HttpOptions {
        HttpOptions {
            cache,
            cache_path: cache_path.to_string(),
            ..HttpOptions::default()
        }
    }
}

/// Where an HTTP producer's records came from, as the transport knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpOutcome {
    /// A valid cache file was used; no request was made (or revalidation could not
    /// reach the server and the cache was kept, with a warning).
    FromCache,
    /// The body was downloaded (into the cache when there is one).
    Downloaded,
    /// Revalidation was answered 304: the cache was kept.
    NotModified,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options() {
        let o = HttpOptions::default();
        assert!(o.cache && !o.validate && !o.revalidate && o.cache_path.is_empty());
        assert_eq!(o.connect_timeout, Duration::from_secs(10));
        assert_eq!(o.read_timeout, Duration::from_secs(30));
        assert_eq!(o.retries, 3);
        assert_eq!(o.max_bytes, None);
        assert_eq!((o.connections, o.parallel_min_bytes), (0, 64 << 20));
    }
}
