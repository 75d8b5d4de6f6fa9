//! HTTP: `HttpProducer` and `AsyncHttpProducer` fetch a dataset by URL into the cache.
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
//! - A large object (`HttpOptions::parallel_min_bytes`, default 64 MiB) is downloaded
//!   over `HttpOptions::connections` connections at once (default 4) when the first
//!   response allows it (Content-Length, `Accept-Ranges: bytes`, a strong ETag, no
//!   content coding): ranged GETs pinned to the ETag with `If-Match`, each resumable on
//!   its own, written at their offsets into an unnamed temp file that the record decoder
//!   follows (see `parallel.rs`). A changed object restarts the download (never a
//!   splice); otherwise, or below the threshold, one connection as before. The async
//!   producer uses the same path: the decoder follows the contiguous prefix, so its first
//!   record still arrives with the first bytes of the first response.
//! - Any failure is `Error::Http` naming the URL, and leaves no cache file behind.
//! - Source identity: a cache file records the URL it was downloaded from (the
//!   metadata's `source`, or its `identity` when written by a `DiskCacheProducer`) and
//!   the body's validators (`etag`, `last_modified`). A cache file at `cache_path` made
//!   from another URL (compared normalised: scheme and host case, default port, empty
//!   path) or by another kind of producer is never served: it is downloaded again, with
//!   a warning naming both, and `replaced_reason()` says why. A headerless legacy file
//!   has no metadata and is trusted, as before.
//! - `AsyncHttpProducer` downloads in a background thread and serves each record as
//!   soon as it has been written and decoded.

mod fetch;
mod parallel;
mod partial;
mod publish;
pub mod s3;
mod stream;

pub use partial::{FetchStats, PartialHttpProducer};
pub use publish::{publish, PublishSummary, MAX_SINGLE_PUT};
pub use stream::AsyncHttpProducer;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::Client;

use crate::cache::{read_with_recovery, resolve_cache_path, CacheLock, CacheReader};
use crate::disk_cache::warn;
use crate::error::{Error, Result};
use crate::identity::{normalise_url, SourceIdentity, SourceKind};
use crate::producer::{Producer, ShapeCheck};
use crate::tensor::TensorRef;
use fetch::{Download, Observer};

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
    /// Connections a large object is downloaded over at once (ranged GETs, see
    /// `parallel_min_bytes`). 0 (the default): automatic, `DEFAULT_CONNECTIONS` (4);
    /// 1: always a single connection.
    pub connections: u32,
    /// Objects of at least this many bytes are downloaded over `connections`
    /// connections; smaller ones over one. Default 64 MiB. Whatever the size, the
    /// parallel download is used only when the first response shows it is safe: a
    /// Content-Length, `Accept-Ranges: bytes`, a strong ETag and no content coding;
    /// otherwise the single connection of before is kept.
    pub parallel_min_bytes: u64,
}

/// The connections of a parallel download when `HttpOptions::connections` is 0.
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

/// Where an HTTP producer's records came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpOutcome {
    /// A valid cache file was used; no request was made (or revalidation could not
    /// reach the server and the cache was kept, with a warning).
    FromCache,
    /// The body was downloaded (into the cache when there is one).
    Downloaded,
    /// Revalidation was answered 304: the cache was kept.
    NotModified,
}

/// `http://{host}:{port}{path}`, bracketing IPv6 literals and adding a leading '/'.
pub(crate) fn url_from_parts(host: &str, port: u16, path: &str) -> Result<String> {
    if host.is_empty() {
        return Err(Error::InvalidArgument("the host is empty".into()));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    Ok(format!("http://{host}:{port}{slash}{path}"))
}

/// Checks that `url` is an absolute http(s) URL with a host, or an `s3://` URL.
pub(crate) fn check_url(url: &str) -> Result<String> {
    if s3::is_s3(url) {
        s3::check(url)?;
        return Ok(url.to_string());
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::InvalidArgument(format!("invalid URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::InvalidArgument(format!(
            "invalid URL {url:?}: only http://, https:// and s3:// are supported"
        )));
    }
    if parsed.host_str().map_or(true, str::is_empty) {
        return Err(Error::InvalidArgument(format!(
            "invalid URL {url:?}: no host"
        )));
    }
    Ok(url.to_string())
}

/// What a producer needs to (re)fetch its dataset.
#[derive(Clone)]
pub(crate) struct Source {
    pub url: String,
    pub opts: HttpOptions,
    /// The resolved persistent cache file, if any.
    pub cache_path: Option<PathBuf>,
    client: Option<Client>,
    /// Why the last acquire replaced an existing cache file (shared by the clones a
    /// producer and its download thread hold).
    replaced: Arc<Mutex<Option<String>>>,
}

impl Source {
    pub fn new(url: &str, opts: HttpOptions) -> Result<Source> {
        let url = check_url(url)?;
        let cache_path = if opts.cache && !opts.cache_path.is_empty() {
            Some(resolve_cache_path(&opts.cache_path)?)
        } else {
            None
        };
        Ok(Source {
            url,
            opts,
            cache_path,
            client: None,
            replaced: Arc::default(),
        })
    }

    /// Why the last acquire replaced an existing cache file (None: there was none, or
    /// it was used).
    pub fn replaced_reason(&self) -> Option<String> {
        self.replaced.lock().ok().and_then(|g| g.clone())
    }

    fn set_replaced(&self, why: Option<String>) {
        if let Ok(mut g) = self.replaced.lock() {
            *g = why;
        }
    }

    fn client(&mut self) -> Result<Client> {
        if self.client.is_none() {
            self.client = Some(fetch::build_client(&self.opts).map_err(|e| match e {
                Error::Http { detail, .. } => Error::Http {
                    url: self.url.clone(),
                    detail,
                },
                e => e,
            })?);
        }
        Ok(self.client.clone().expect("set above"))
    }

    /// The existing cache file when it is usable without a request (made from this
    /// URL, undamaged). Quiet: the locked check in `acquire` warns.
    pub fn cached(&self) -> Result<Option<CacheReader>> {
        match (&self.cache_path, self.opts.revalidate) {
            (Some(p), false) => Ok(open_valid(p, &self.url, false)?.ok()),
            _ => Ok(None),
        }
    }

    /// Opens or fetches the dataset. `damaged`: the cache was found damaged while
    /// reading, download again whatever the file looks like now.
    pub fn acquire(
        &mut self,
        damaged: bool,
        obs: &mut dyn Observer,
        stop: Option<&AtomicBool>,
    ) -> Result<(CacheReader, HttpOutcome)> {
        let Some(path) = self.cache_path.clone() else {
            let client = self.client()?;
            let tmp = std::env::temp_dir().join("harmonics-http-download");
            obs.outcome(HttpOutcome::Downloaded);
            return match fetch::download(&client, &self.url, &self.opts, &tmp, None, obs, stop)? {
                Download::Complete(w) => Ok((w.finish_anonymous()?, HttpOutcome::Downloaded)),
                Download::NotModified => unreachable!("no conditional request was made"),
            };
        };
        if !damaged {
            if let Some(r) = self.cached()? {
                self.set_replaced(None);
                obs.outcome(HttpOutcome::FromCache);
                return Ok((r, HttpOutcome::FromCache));
            }
        }
        // A stopped download (its AsyncHttpProducer was destroyed) gives up the wait too.
        let Some(_lock) = CacheLock::exclusive_unless_stopped(&path, stop)? else {
            return Err(Error::Stopped(self.url.clone()));
        };
        // Another process may have populated the cache while we waited for the lock.
        let (existing, mut why) = if damaged {
            let why = "the cache file was found damaged while reading".to_string();
            (None, Some(why))
        } else {
            match open_valid(&path, &self.url, true)? {
                Ok(r) => (Some(r), None),
                Err(why) => (None, why),
            }
        };
        let existing = match existing {
            Some(r) if !self.opts.revalidate => {
                self.set_replaced(None);
                obs.outcome(HttpOutcome::FromCache);
                return Ok((r, HttpOutcome::FromCache));
            }
            other => other,
        };
        if existing.is_some() {
            why = Some("revalidation: the server has another version".into());
        } else {
            // Known before the download: an asynchronous producer may report it while
            // the body is still arriving.
            self.set_replaced(why.clone());
        }
        let client = self.client()?;
        let conditional = existing.as_ref().map(|r| r.metadata().clone());
        let result = fetch::download(
            &client,
            &self.url,
            &self.opts,
            &path,
            conditional.as_ref(),
            obs,
            stop,
        );
        match (result, existing) {
            (Ok(Download::NotModified), Some(r)) => {
                self.set_replaced(None);
                Ok((r, HttpOutcome::NotModified))
            }
            (Ok(Download::NotModified), None) => unreachable!("no conditional request was made"),
            (Ok(Download::Complete(w)), _) => {
                w.finish()?;
                self.set_replaced(why);
                Ok((CacheReader::open(&path)?, HttpOutcome::Downloaded))
            }
            (Err(e @ Error::Http { .. }), Some(r)) => {
                warn(&format!(
                    "revalidating {} failed, using the cached copy: {e}",
                    path.display()
                ));
                self.set_replaced(None);
                obs.outcome(HttpOutcome::FromCache);
                Ok((r, HttpOutcome::FromCache))
            }
            (Err(e), _) => Err(e),
        }
    }
}

/// Opens `path` if it holds a usable cache for `url`: `Err(None)` when it does not exist
/// or is empty, `Err(Some(why))` when it must be downloaded again: damaged, or made from
/// another URL or by another kind of producer (with a warning when `loud`).
fn open_valid(
    path: &Path,
    url: &str,
    loud: bool,
) -> Result<std::result::Result<CacheReader, Option<String>>> {
    let say = |why: String| {
        if loud {
            warn(&format!("{why}; downloading it again"));
        }
        Ok(Err(Some(why)))
    };
    match CacheReader::open(path) {
        Ok(r)
            if std::fs::metadata(path)
                .map(|m| m.len() > 0)
                .unwrap_or(false) =>
        {
            match made_elsewhere(&r, url) {
                None => Ok(Ok(r)),
                Some(why) => say(format!("{}: {why}", path.display())),
            }
        }
        Ok(_) => Ok(Err(None)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Err(None))
        }
        Err(e) if e.is_corruption() => say(e.to_string()),
        Err(e) => Err(e),
    }
}

/// Why the cache `r` was not made from `url` (None: it was, or cannot tell: a legacy
/// file without metadata).
fn made_elsewhere(r: &CacheReader, url: &str) -> Option<String> {
    if r.format() == crate::cache::Format::Legacy {
        return None;
    }
    let meta = r.metadata();
    // What a download of `url` records as its source (an s3:// object with its store,
    // a presigned URL without its signature): the comparison is between like spellings.
    let wanted = normalise_url(&s3::source_description(url));
    let recorded = match &meta.identity {
        Some(id) if id.kind == SourceKind::Http => id.id.clone(),
        Some(id) => return Some(format!("the cache was made from {id}, not from {wanted}")),
        None if meta.source.is_empty() => return None,
        None if check_url(&meta.source).is_ok() || meta.source == s3::source_description(url) => {
            meta.source.clone()
        }
        None => {
            return Some(format!(
                "the cache was made from {:?}, not from {wanted}",
                meta.source
            ))
        }
    };
    let recorded = normalise_url(&recorded);
    (recorded != wanted).then(|| format!("the cache was made from {recorded}, not from {wanted}"))
}

/// The identity of an HTTP source whose records `meta` describes.
pub(crate) fn http_identity(url: &str, meta: Option<&crate::cache::Metadata>) -> SourceIdentity {
    let url = s3::source_description(url);
    match meta {
        Some(m) => SourceIdentity::url(&url, &m.etag, &m.last_modified),
        None => SourceIdentity::url(&url, "", ""),
    }
}

/// Serves records from a cache reader; on damage found while reading, downloads
/// again and continues at the same record. Shared by both producers.
pub(crate) struct Served {
    pub source: Source,
    pub reader: CacheReader,
    pub outcome: HttpOutcome,
    check: Option<ShapeCheck>,
}

impl Served {
    pub fn new(source: Source, reader: CacheReader, outcome: HttpOutcome) -> Served {
        let check = source.opts.validate.then(ShapeCheck::default);
        Served {
            source,
            reader,
            outcome,
            check,
        }
    }

    /// Continues a shape check begun elsewhere (records seen while following).
    pub fn set_check(&mut self, c: ShapeCheck) {
        self.check = Some(c);
    }

    /// Downloads the dataset again after damage was found in its cache.
    fn rebuild(&mut self, e: Error) -> Result<()> {
        warn(&format!("{e}; downloading {} again", self.source.url));
        let (r, o) = self
            .source
            .acquire(true, &mut fetch::NoObserver, None)
            .map_err(|f| Error::Http {
                url: self.source.url.clone(),
                detail: format!("{e}; downloading it again failed: {f}"),
            })?;
        self.reader = r;
        self.outcome = o;
        Ok(())
    }

    pub fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let index = self.reader.position() % self.reader.len().max(1);
        let loc = read_with_recovery(self, |s| &mut s.reader, |r| r.advance(), Self::rebuild)?;
        let t = self.reader.view(loc);
        if let Some(c) = self.check.as_mut() {
            c.check(index, t)?;
        }
        Ok(t)
    }

    /// Record `index` of the cache (O(1), CRC-checked, the cursor unmoved). Damage is
    /// handled as in `next_view`: the dataset is downloaded again, then record `index`
    /// of the new cache is served.
    pub fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        let loc = read_with_recovery(
            self,
            |s| &mut s.reader,
            |r| r.check_at(index),
            Self::rebuild,
        )?;
        let t = self.reader.view_checked(loc);
        if let Some(c) = self.check.as_mut() {
            c.check(index, t)?;
        }
        Ok(t)
    }

    pub fn size(&self) -> usize {
        self.reader.len() as usize
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.reader.skip(n)
    }
}

/// Downloads a dataset over HTTP(S) once, then serves its records from the cache
/// file (`next` cycles after the last record).
pub struct HttpProducer {
    served: Served,
}

impl std::fmt::Debug for HttpProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProducer")
            .field("url", &s3::redact(&self.served.source.url))
            .field("outcome", &self.served.outcome)
            .field("records", &self.served.reader.len())
            .finish()
    }
}

impl HttpProducer {
    /// The original constructor: `http://{host}:{port}{path}`, cached at `cache_path`
    /// when `cache` is on and `cache_path` is not empty.
    pub fn new(
        host: &str,
        port: u16,
        path: &str,
        cache: bool,
        cache_path: &str,
    ) -> Result<HttpProducer> {
        Self::with_options(host, port, path, HttpOptions::cached_at(cache, cache_path))
    }

    pub fn with_options(
        host: &str,
        port: u16,
        path: &str,
        opts: HttpOptions,
    ) -> Result<HttpProducer> {
        Self::from_url(&url_from_parts(host, port, path)?, opts)
    }

    /// Any `http://` or `https://` URL (hostnames, IPv4, `[IPv6]`), or `s3://bucket/key`
    /// (signed with AWS Signature V4: see [`s3`]).
    pub fn from_url(url: &str, opts: HttpOptions) -> Result<HttpProducer> {
        let mut source = Source::new(url, opts)?;
        let (reader, outcome) = source.acquire(false, &mut fetch::NoObserver, None)?;
        Ok(HttpProducer {
            served: Served::new(source, reader, outcome),
        })
    }

    pub fn url(&self) -> &str {
        &self.served.source.url
    }

    pub fn outcome(&self) -> HttpOutcome {
        self.served.outcome
    }

    /// Why an existing cache file was replaced by the download: made from another URL
    /// or by another producer, damaged, or a newer version on revalidation. None when
    /// there was no cache file or it was used.
    pub fn replaced_reason(&self) -> Option<String> {
        self.served.source.replaced_reason()
    }

    /// The persistent cache file, if there is one.
    pub fn cache_path(&self) -> Option<&Path> {
        self.served.source.cache_path.as_deref()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.served.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Producer for HttpProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.served.next_view()
    }

    fn view_intact(&self) -> Result<()> {
        self.served.reader.intact()
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.served.size())
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.served.skip(n)
    }

    fn source(&self) -> String {
        self.served.source.url.clone()
    }

    /// Kind `http`: the normalised URL and the validators of the body served.
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        let meta = self.served.reader.metadata();
        Ok(Some(http_identity(&self.served.source.url, Some(meta))))
    }

    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        self.served.view_at(index)
    }

    fn has_random_access(&self) -> bool {
        true
    }
}

/// `stopped` flag shared with a background download.
pub(crate) type StopFlag = std::sync::Arc<AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_from_host_port_path() {
        let u = |h, p, path| url_from_parts(h, p, path).unwrap();
        assert_eq!(u("127.0.0.1", 8080, "/data"), "http://127.0.0.1:8080/data");
        assert_eq!(u("example.org", 80, "data"), "http://example.org:80/data");
        assert_eq!(u("::1", 9000, "/"), "http://[::1]:9000/");
        assert_eq!(u("[::1]", 9000, ""), "http://[::1]:9000/");
        assert!(url_from_parts("", 1, "/").is_err());
        for ok in [
            "http://[::1]:8/x",
            "https://example.org/d.cache",
            "http://h/p?q=1",
        ] {
            assert_eq!(check_url(ok).unwrap(), ok);
        }
        assert_eq!(check_url("s3://bucket/a/b c").unwrap(), "s3://bucket/a/b c");
        for bad in [
            "ftp://h/x",
            "http://",
            "relative/path",
            "file:///x",
            "s3://bucket",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

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
