//! The source of an HTTP producer: the URL (checked), its options and resolved cache
//! file, and `Source::acquire`, the offline-first decision between the cache file and
//! a download (the file's source identity, revalidation, the exclusive lock).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use reqwest::blocking::Client;

use super::fetch::{self, Download, Observer};
use super::{s3, HttpOptions, HttpOutcome};
use crate::cache::{resolve_cache_path, CacheLock, CacheReader};
use crate::error::{Error, Result};
use crate::identity::{normalise_url, SourceIdentity, SourceKind};
use crate::log::warn;

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
    if !url.contains("://") {
        // "host/path" or "host:port/path": the parser would say "relative URL without a
        // base" (or take the host for a scheme); say what to add instead.
        return Err(Error::InvalidArgument(format!(
            "invalid URL {url:?}: it has no scheme; add http://, https:// or s3:// in front \
             (for example \"http://{url}\")"
        )));
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

    /// The process's shared client for these options (`client::shared_client`), asked
    /// each time: a producer used in a forked child gets the child's own.
    fn client(&self) -> Result<Client> {
        super::client::shared_client(&self.opts).map_err(|e| e.for_url(&self.url))
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
            let d = fetch::download(&client, &self.url, &self.opts, &tmp, None, None, obs, stop)?;
            return match d {
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
        let Some(lock) = CacheLock::exclusive_unless_stopped(&path, stop)? else {
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
        }
        // Known before the download: an asynchronous producer may report it while the
        // body is still arriving (a 304 or a failed revalidation keeps the cache and
        // clears it below).
        self.set_replaced(why.clone());
        let client = self.client()?;
        let conditional = existing.as_ref().map(|r| r.metadata().clone());
        let result = fetch::download(
            &client,
            &self.url,
            &self.opts,
            &path,
            Some(&lock),
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
                // The file written is the file served: not the path opened again.
                let r = w.finish_reader()?;
                self.set_replaced(why);
                Ok((r, HttpOutcome::Downloaded))
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
        // An empty file (the only one read as a legacy file of no records) is no cache.
        Ok(r) if r.format() == crate::cache::Format::Legacy && r.is_empty() => Ok(Err(None)),
        // The reader checked is the one served (the path is not looked at again).
        Ok(r) => match made_elsewhere(&r, url) {
            None => Ok(Ok(r)),
            Some(why) => say(format!("{}: {why}", path.display())),
        },
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
}
