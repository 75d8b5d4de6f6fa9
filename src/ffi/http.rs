//! `HttpProducer` and `AsyncHttpProducer` at the C boundary. They return ordinary
//! `HarmonicsProducer` handles: `harmonics_producer_next`/`next_view`/`size`/`free`
//! and `harmonics_disk_cache_new` work on them.

use std::ffi::c_char;
use std::time::Duration;

use super::error::{guard, Failure, HarmonicsStatus};
use super::handle::{arg_str, check_out, write_out};
use super::producer::{copy_out_str, new_handle, with_kind, HarmonicsProducer, ProducerKind};
use crate::http::{url_from_parts, HttpOptions};
use crate::{AsyncHttpProducer, CacheOutcome, HttpProducer};

/// Options of the HTTP producers. Start from `harmonics_http_options_default()`, then
/// set the fields you need; never fill one field by field from scratch: later releases
/// add fields at the end (with defaults that keep the earlier behaviour), and only the
/// default function fills those in. (A release that adds one changes
/// `HARMONICS_DATASET_ABI_VERSION`: rebuild against the header of the library you run.)
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsHttpOptions {
    /// Keep the dataset in a persistent cache file (needs `cache_path`).
    pub cache: bool,
    /// Cache file (relative: under `$HARMONICS_CACHE_DIR`); NULL or "" for none.
    pub cache_path: *const c_char,
    /// Every record must share the first record's dtype and shape.
    pub validate: bool,
    /// Revalidate an existing cache with a conditional GET instead of trusting it.
    pub revalidate: bool,
    pub connect_timeout_ms: u32,
    /// Longest wait for the response head or any read of the body.
    pub read_timeout_ms: u32,
    /// Further attempts after a transport failure or a 5xx (exponential backoff).
    pub retries: u32,
    /// PEM file of extra root certificates trusted for https:// (a private CA);
    /// NULL or "" for none. Borrowed for the duration of the call.
    pub ca_cert_path: *const c_char,
    /// The most body bytes a download may take (see `HttpOptions::max_bytes`);
    /// 0 for no limit (the default).
    pub max_bytes: u64,
    /// Connections a large object is downloaded over at once (ranged GETs pinned to
    /// its ETag, see `HttpOptions::connections`): 0 automatic (one, split into 4 only
    /// when one connection is measured to be the limit and a second one to help), 1 a
    /// single one, K >= 2 K from the start.
    pub connections: u32,
    /// Objects of at least this many bytes may use several connections (default
    /// 64 MiB); 0 means the default.
    pub parallel_min_bytes: u64,
}

impl HarmonicsHttpOptions {
    fn to_rust(self) -> Result<HttpOptions, Failure> {
        let cache_path = if self.cache_path.is_null() {
            String::new()
        } else {
            arg_str(self.cache_path, "opts.cache_path")?.to_string()
        };
        Ok(HttpOptions {
            cache: self.cache,
            cache_path,
            validate: self.validate,
            revalidate: self.revalidate,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.into()),
            read_timeout: Duration::from_millis(self.read_timeout_ms.into()),
            retries: self.retries,
            ca_cert: match self.ca_cert_path.is_null() {
                true => None,
                false => Some(arg_str(self.ca_cert_path, "opts.ca_cert_path")?)
                    .filter(|p| !p.is_empty())
                    .map(std::path::PathBuf::from),
            },
            max_bytes: (self.max_bytes != 0).then_some(self.max_bytes),
            connections: self.connections,
            parallel_min_bytes: match self.parallel_min_bytes {
                0 => crate::http::DEFAULT_PARALLEL_MIN_BYTES,
                n => n,
            },
        })
    }
}

fn defaults() -> HarmonicsHttpOptions {
    let d = HttpOptions::default();
    let ms = |t: Duration| u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
    HarmonicsHttpOptions {
        cache: d.cache,
        cache_path: std::ptr::null(),
        validate: d.validate,
        revalidate: d.revalidate,
        connect_timeout_ms: ms(d.connect_timeout),
        read_timeout_ms: ms(d.read_timeout),
        retries: d.retries,
        ca_cert_path: std::ptr::null(),
        max_bytes: d.max_bytes.unwrap_or(0),
        connections: d.connections,
        parallel_min_bytes: d.parallel_min_bytes,
    }
}

/// The default options (cache on, no cache path, 10 s connect timeout, 30 s read
/// timeout, 3 retries, no download limit, automatic connections (up to 4) for objects
/// of 64 MiB and more), read from `HttpOptions::default()`: the one place they are
/// written. Returns the struct, as `harmonics_sampler_options_default` does; cannot
/// fail (not guarded).
#[no_mangle]
pub extern "C" fn harmonics_http_options_default() -> HarmonicsHttpOptions {
    defaults()
}

pub(crate) fn options(opts: *const HarmonicsHttpOptions) -> Result<HttpOptions, Failure> {
    // SAFETY: `opts` is null or readable (C contract).
    match unsafe { opts.as_ref() } {
        None => defaults().to_rust(),
        Some(o) => o.to_rust(),
    }
}

fn url_of(host: *const c_char, port: u16, path: *const c_char) -> Result<String, Failure> {
    let host = arg_str(host, "host")?;
    let path = if path.is_null() {
        "/"
    } else {
        arg_str(path, "path")?
    };
    Ok(url_from_parts(host, port, path)?)
}

fn make(
    url: &str,
    opts: HttpOptions,
    asynchronous: bool,
    out: *mut *mut HarmonicsProducer,
) -> Result<(), Failure> {
    check_out(out, "out")?;
    let p = if asynchronous {
        ProducerKind::AsyncHttp(Box::new(AsyncHttpProducer::from_url(url, opts)?))
    } else {
        ProducerKind::Http(Box::new(HttpProducer::from_url(url, opts)?))
    };
    new_handle(out, p)
}

/// Where an HTTP producer's records came from.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsHttpOutcome {
    /// A valid cache file made from this URL was used; no request was made.
    Reused = 0,
    /// There was no cache file (or no persistent cache): the body was downloaded.
    Downloaded = 1,
    /// Revalidation was answered 304 Not Modified: the cache file was kept.
    Revalidated = 2,
    /// A cache file existed but was downloaded again (made from another URL or by
    /// another producer, damaged, or a newer version on revalidation): see
    /// `harmonics_http_outcome_reason`.
    Rebuilt = 3,
}

/// The HTTP producer's `CacheOutcome` in the C shape, with the reason of a rebuild.
fn http_outcome(
    producer: *const HarmonicsProducer,
) -> Result<(HarmonicsHttpOutcome, String), Failure> {
    let o = with_kind(producer, |k| match k {
        ProducerKind::Http(h) => Ok(h.outcome()),
        ProducerKind::AsyncHttp(h) => Ok(h.outcome()),
        _ => Err(Failure::invalid("producer is not an HTTP producer".into())),
    })?;
    Ok(match o {
        CacheOutcome::Reused => (HarmonicsHttpOutcome::Reused, String::new()),
        CacheOutcome::Revalidated => (HarmonicsHttpOutcome::Revalidated, String::new()),
        // (An HTTP producer never appends.)
        CacheOutcome::Created | CacheOutcome::Appended { .. } => {
            (HarmonicsHttpOutcome::Downloaded, String::new())
        }
        CacheOutcome::Rebuilt(why) => (HarmonicsHttpOutcome::Rebuilt, why),
    })
}

/// What opening an HTTP producer did. For an asynchronous producer whose download is
/// still running, `DOWNLOADED` (or `REBUILT`) until the response says otherwise.
///
/// # Safety
/// `producer` is a live HTTP producer handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_http_outcome(
    producer: *const HarmonicsProducer,
    out: *mut HarmonicsHttpOutcome,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        write_out(out, "out", http_outcome(producer)?.0)
    })
}

/// Why an HTTP producer's existing cache file was replaced ("" unless the outcome is
/// `REBUILT`). Copies up to `cap - 1` bytes and a NUL into `buf` (null allowed when
/// `cap` is 0) and stores the full length (without NUL) in `*len` (may be null).
///
/// # Safety
/// `producer` is a live HTTP producer handle; `buf` has `cap` writable bytes; `len` is
/// null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_http_outcome_reason(
    producer: *const HarmonicsProducer,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> HarmonicsStatus {
    guard(|| copy_out_str(&http_outcome(producer)?.1, buf, cap, len))
}

/// Downloads `http://host:port/path` (into the cache when `opts` has a cache path;
/// offline-first: a valid cache is used without a request). `path` NULL means "/",
/// `opts` NULL means the defaults. On failure `*out` is untouched.
///
/// # Safety
/// `host` and `path` are null or NUL-terminated; `opts` is null or readable; `out` is
/// writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_http_producer_new(
    host: *const c_char,
    port: u16,
    path: *const c_char,
    opts: *const HarmonicsHttpOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| make(&url_of(host, port, path)?, options(opts)?, false, out))
}

/// Like `harmonics_http_producer_new`, for any `http://` or `https://` URL, or an
/// `s3://bucket/key` URL (signed with AWS Signature V4; see docs/guides/http-and-s3.md).
///
/// # Safety
/// `url` is NUL-terminated; `opts` is null or readable; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_http_producer_from_url(
    url: *const c_char,
    opts: *const HarmonicsHttpOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| make(arg_str(url, "url")?, options(opts)?, false, out))
}

/// Like `harmonics_http_producer_new`, but the download runs in a background thread:
/// `next` returns each record as soon as it has arrived, `size` waits until the count
/// is known, and a background failure is returned by the next call.
///
/// # Safety
/// As `harmonics_http_producer_new`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_async_http_producer_new(
    host: *const c_char,
    port: u16,
    path: *const c_char,
    opts: *const HarmonicsHttpOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| make(&url_of(host, port, path)?, options(opts)?, true, out))
}

/// Like `harmonics_async_http_producer_new`, for any `http://`, `https://` or
/// `s3://` URL.
///
/// # Safety
/// As `harmonics_http_producer_from_url`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_async_http_producer_from_url(
    url: *const c_char,
    opts: *const HarmonicsHttpOptions,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| make(arg_str(url, "url")?, options(opts)?, true, out))
}
