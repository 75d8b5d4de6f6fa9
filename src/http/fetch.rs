//! The download: one GET streamed through the record decoder into a `CacheWriter`,
//! with retries (exponential backoff) that resume with `Range` when the server
//! supports it and restart the body otherwise.
//!
//! What it guarantees against a careless or hostile server (DESIGN §8):
//! - never a spliced body: a resume carries `If-Range` with a strong validator (see
//!   `strong_validator`), and without one the download restarts from byte 0; a 206 is
//!   accepted only as the answer to the range asked for, with the body's total
//!   (`check_partial`), and never for the first, whole-resource request;
//! - an empty body is an error, not a dataset of zero records;
//! - `HttpOptions::max_bytes` bounds the bytes taken (an endless body, a gzip bomb);
//! - a failure names where the body was cut and what the retries then met.
//! - a large object over several connections (`parallel.rs`) is pinned to the first
//!   response's strong ETag with `If-Match` on every range; a 412, another ETag or
//!   another total restarts the whole download (`Failure::Changed`, at most
//!   `MAX_CHANGES` times, with a warning), never splicing two versions.
//!
//! The body is never held in memory: it is read in chunks, each record is decoded as
//! it completes (one record at most is buffered) and written to the temp cache file.
//! The body is either concatenated wire records (the original format) or a published
//! cache file (magic `HMNCACHE`), whose header and every frame CRC are verified on the
//! way through.

use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;

use super::parallel::{self, PartFailure};
use super::s3::SendSigned;
use super::{HttpOptions, HttpOutcome};
use crate::cache::read_full;
use crate::cache::{read_stream_header, CacheWriter, FrameStream, Metadata, MAGIC};
use crate::error::{Error, Result};
use crate::log::warn;
use crate::producers::ShapeCheck;
use crate::tensor::{
    parse_wire, wire_header_len, wire_record_len, TensorRef, WireHeader, MAX_NDIMS,
};

/// Backoff before retry `n` (0-based): 200 ms, 400 ms, 800 ms, … capped at 5 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << n.min(5)).min(5_000))
}

/// Sleeps `d`, waking early when `stop` is set. Returns false when stopped.
pub(crate) fn sleep_unless_stopped(d: Duration, stop: Option<&AtomicBool>) -> bool {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() {
        if stopped(stop) {
            return false;
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    !stopped(stop)
}

pub(crate) fn stopped(stop: Option<&AtomicBool>) -> bool {
    stop.is_some_and(|s| s.load(Ordering::Relaxed))
}

/// Receives the download's progress (the async producer publishes it to readers).
pub(crate) trait Observer {
    /// The response head arrived: what the download will result in.
    fn outcome(&mut self, _o: HttpOutcome) {}
    /// A new temp file was started (again after a restart).
    fn started(&mut self, _w: &CacheWriter) -> Result<()> {
        Ok(())
    }
    /// The number of records is known.
    fn total(&mut self, _n: u64) {}
    /// One more record was decoded (it reaches `w` by the next `batch` at the latest).
    fn record(&mut self, _w: &mut CacheWriter) -> Result<()> {
        Ok(())
    }
    /// The whole body was decoded. False: the consumer is gone and abandoned the
    /// download, which is then not published.
    fn complete(&mut self) -> bool {
        true
    }
    /// The records pushed since the last call are all the body has delivered for now
    /// (the next step reads the network): a good moment to make them readable.
    fn batch(&mut self, _w: &mut CacheWriter) -> Result<()> {
        Ok(())
    }
}

/// An observer that ignores everything (the synchronous producer).
pub(crate) struct NoObserver;
impl Observer for NoObserver {}

/// The result of a download attempt sequence.
pub(crate) enum Download {
    /// A conditional request was answered 304.
    NotModified,
    /// The whole body was decoded into the writer (not yet finished/published).
    Complete(Box<CacheWriter>),
}

/// What went wrong in one attempt, and whether another attempt may help.
pub(crate) enum Failure {
    Retry(String),
    /// The transport failed after part of the body had arrived (retryable): kept to
    /// be reported even when the retries then fail differently (server gone).
    Cut(String),
    Fatal(String),
    Stopped,
    /// The object changed between the ranged GETs of a parallel download: start over.
    Changed(String),
    /// The server did not serve a range it announced: start over on one connection.
    NoRanges(String),
}

/// How many times a download starts over because the object changed under it.
const MAX_CHANGES: u32 = 3;

/// Sends a request of the download: the first GET, a resume and every ranged GET of
/// a parallel download all leave through here, so that a step every request needs
/// (SigV4 signing of `s3://` URLs) is applied in one place.
pub(crate) fn send(req: RequestBuilder, url: &str) -> reqwest::Result<Response> {
    req.send_signed(url)
}

pub(crate) fn build_client(opts: &HttpOptions) -> Result<Client> {
    let mut builder = Client::builder();
    if let Some(path) = &opts.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| Error::io("cannot read the CA certificate file", path, e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Http {
            url: String::new(),
            detail: format!(
                "{}: not a PEM certificate bundle: {}",
                path.display(),
                chain(&e)
            ),
        })?;
        if certs.is_empty() {
            return Err(Error::Http {
                url: String::new(),
                detail: format!("{}: no certificate in the file", path.display()),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .connect_timeout(opts.connect_timeout)
        // In the blocking client this bounds the wait for the response head and for
        // every single read of the body: a read timeout, not a total one.
        .timeout(opts.read_timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
        .gzip(true)
        .user_agent(concat!("harmonics-dataset/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Http {
            url: String::new(),
            detail: format!("cannot create the HTTP client: {}", chain(&e)),
        })
}

/// An error with its causes, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

pub(crate) fn header_str(h: &HeaderMap, name: header::HeaderName) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Downloads `url` into a new `CacheWriter` whose final path is `final_path`.
/// `conditional`: the metadata of an existing cache to revalidate (If-None-Match /
/// If-Modified-Since). Every failure is `Error::Http` naming the URL (shape
/// mismatches with `validate` excepted); no temp file survives a failure.
#[allow(clippy::too_many_arguments)]
pub(crate) fn download(
    client: &Client,
    url: &str,
    opts: &HttpOptions,
    final_path: &Path,
    conditional: Option<&Metadata>,
    obs: &mut dyn Observer,
    stop: Option<&AtomicBool>,
) -> Result<Download> {
    let http = |detail: String| Error::Http {
        url: url.to_string(),
        detail,
    };
    let mut retries_left = opts.retries;
    let mut attempt = 0u32;
    // The last body cut: the message that explains the failure even when the retries
    // then only meet a refused connection.
    let mut cut: Option<String> = None;
    let mut changes = 0u32;
    let mut single = false;
    // After a restart: a client of its own (see `Failure::Changed` below).
    let mut fresh: Option<Client> = None;
    loop {
        let failure = match attempt_once(
            fresh.as_ref().unwrap_or(client),
            url,
            opts,
            final_path,
            conditional,
            obs,
            stop,
            &mut retries_left,
            !single,
        ) {
            // A body the consumer abandoned meanwhile is not published.
            Ok(Download::Complete(_)) if !obs.complete() => Failure::Stopped,
            Ok(d) => return Ok(d),
            Err(AttemptError::Other(e)) => return Err(e),
            Err(AttemptError::Failed(f)) => f,
        };
        let d = match failure {
            Failure::Stopped => return Err(Error::Stopped(url.to_string())),
            Failure::Fatal(d) => return Err(http(d)),
            Failure::Changed(d) => {
                changes += 1;
                if changes > MAX_CHANGES {
                    return Err(http(format!(
                        "{d}; it changed {changes} times during the download, giving up"
                    )));
                }
                // Nothing of the old version is kept: the temp files are gone.
                warn(&format!("{url}: {d}; restarting the download"));
                // New connections: a server may close the ones that answered 412
                // while announcing keep-alive (nginx does), and a pooled one would
                // fail the restart's first request.
                fresh = Some(build_client(opts).map_err(|e| match e {
                    Error::Http { detail, .. } => http(detail),
                    e => e,
                })?);
                continue;
            }
            Failure::NoRanges(d) => {
                single = true;
                warn(&format!(
                    "{url}: {d}; restarting the download on a single connection"
                ));
                continue;
            }
            Failure::Cut(d) => {
                cut = Some(d.clone());
                d
            }
            Failure::Retry(d) => match &cut {
                Some(c) => format!("{c}; the retries then failed: {d}"),
                None => d,
            },
        };
        if retries_left == 0 {
            // Resumes and new attempts share the retries: all of them were used.
            let tries = opts.retries + 1;
            return Err(http(if opts.retries == 0 {
                d
            } else {
                format!("{d} (gave up after {tries} attempts)")
            }));
        }
        retries_left -= 1;
        if !sleep_unless_stopped(backoff(attempt), stop) {
            return Err(Error::Stopped(url.to_string()));
        }
        attempt += 1;
    }
}

enum AttemptError {
    Failed(Failure),
    /// Not an HTTP failure (e.g. the cache directory cannot be written, validation).
    Other(Error),
}

impl From<Failure> for AttemptError {
    fn from(f: Failure) -> Self {
        AttemptError::Failed(f)
    }
}

pub(crate) fn classify_send_error(e: &reqwest::Error) -> Failure {
    let d = if e.is_connect() {
        format!("cannot connect: {}", chain(e))
    } else if e.is_timeout() {
        format!("no response within the read timeout: {}", chain(e))
    } else {
        format!("request failed: {}", chain(e))
    };
    Failure::Retry(d)
}

#[allow(clippy::too_many_arguments)]
fn attempt_once(
    client: &Client,
    url: &str,
    opts: &HttpOptions,
    final_path: &Path,
    conditional: Option<&Metadata>,
    obs: &mut dyn Observer,
    stop: Option<&AtomicBool>,
    retries_left: &mut u32,
    parallel_ok: bool,
) -> std::result::Result<Download, AttemptError> {
    if stopped(stop) {
        return Err(Failure::Stopped.into());
    }
    let mut req = client.get(url);
    if let Some(m) = conditional {
        if !m.etag.is_empty() {
            req = req.header(header::IF_NONE_MATCH, &m.etag);
        }
        if !m.last_modified.is_empty() {
            req = req.header(header::IF_MODIFIED_SINCE, &m.last_modified);
        }
    }
    let resp = send(req, url).map_err(|e| classify_send_error(&e))?;
    let status = resp.status();
    if status == StatusCode::NOT_MODIFIED && conditional.is_some() {
        obs.outcome(HttpOutcome::NotModified);
        return Ok(Download::NotModified);
    }
    if !status.is_success() {
        let d = super::s3::refusal(url, resp);
        let retry = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        return Err(if retry {
            Failure::Retry(d)
        } else {
            Failure::Fatal(d)
        }
        .into());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        // Only a `Range` request may be answered with a part: this one asked for the
        // whole resource, and a part taken for the whole would be cached as complete.
        let range = header_str(resp.headers(), header::CONTENT_RANGE);
        return Err(Failure::Fatal(format!(
            "server answered 206 Partial Content (Content-Range {range:?}) to a request \
             for the whole resource; a part of the body is not the dataset"
        ))
        .into());
    }
    let expected = resp.content_length();
    if let (Some(limit), Some(len)) = (opts.max_bytes, expected) {
        if len > limit {
            return Err(Failure::Fatal(format!(
                "the body of {len} bytes exceeds the download limit of {limit} bytes \
                 (HttpOptions::max_bytes)"
            ))
            .into());
        }
    }
    obs.outcome(HttpOutcome::Downloaded);
    let etag = header_str(resp.headers(), header::ETAG);
    let last_modified = header_str(resp.headers(), header::LAST_MODIFIED);
    let validator = strong_validator(resp.headers());
    let mut meta = Metadata::new("", &super::s3::source_description(url));
    meta.etag = etag.clone();
    meta.last_modified = last_modified;
    let mut writer = CacheWriter::create(final_path, meta).map_err(AttemptError::Other)?;
    obs.started(&writer).map_err(AttemptError::Other)?;
    let mut check = opts.validate.then(ShapeCheck::default);
    if let Some(plan) = parallel_ok
        .then(|| parallel::plan(url, resp.headers(), expected, opts))
        .flatten()
    {
        let dir = final_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let (result, failure) = parallel::run(client, url, opts, resp, plan, dir, stop, |body| {
            decode_body(body, &mut writer, check.as_mut(), obs)
        });
        let failure = match failure {
            Some(PartFailure::Io(e)) => return Err(AttemptError::Other(e)),
            Some(PartFailure::Changed(m)) => Failure::Changed(m),
            Some(PartFailure::NoRanges(m)) => Failure::NoRanges(m),
            Some(PartFailure::Cut(m)) => Failure::Cut(m),
            Some(PartFailure::Fatal(m)) => Failure::Fatal(m),
            Some(PartFailure::Stopped) => Failure::Stopped,
            None => match result {
                Some(Ok(())) => return Ok(Download::Complete(Box::new(writer))),
                Some(Err(DecodeError::Other(e))) => return Err(AttemptError::Other(e)),
                Some(Err(DecodeError::Body(_))) if stopped(stop) => Failure::Stopped,
                Some(Err(DecodeError::Body(d))) => Failure::Fatal(d),
                None => Failure::Fatal("the parallel download did not start".into()),
            },
        };
        return Err(failure.into());
    }
    let accept_ranges = header_str(resp.headers(), header::ACCEPT_RANGES);
    let mut body = ResumableBody {
        client,
        url,
        // A resume without a strong validator could splice two versions of the
        // resource (the head of one, the tail of the next): restart instead.
        resumable: validator.is_some() && !accept_ranges.eq_ignore_ascii_case("none"),
        validator,
        etag,
        expected,
        limit: opts.max_bytes,
        resp,
        pos: 0,
        retries_left,
        resumes: 0,
        failed: None,
        over_limit: None,
        stop,
        progress: crate::progress::Progress::new(url),
    };
    match decode_body(&mut body, &mut writer, check.as_mut(), obs) {
        Ok(()) => Ok(Download::Complete(Box::new(writer))),
        Err(DecodeError::Other(e)) => Err(AttemptError::Other(e)),
        Err(DecodeError::Body(d)) => {
            if stopped(stop) {
                Err(Failure::Stopped.into())
            } else if let Some(m) = body.over_limit.take() {
                Err(Failure::Fatal(m).into())
            } else if let Some(t) = body.failed.take() {
                // The transport failed (and could not be resumed): a new attempt may help.
                Err(Failure::Cut(t).into())
            } else {
                Err(Failure::Fatal(d).into())
            }
        }
    }
}

/// The validator a `Range` resume may rely on (sent as `If-Range`), if the response
/// has one that is strong: an ETag not marked weak (`W/`), or else a Last-Modified at
/// least one second older than the response's Date, which RFC 9110 §8.8.2.2 lets a
/// client treat as strong (a file changed twice within its timestamp's second keeps
/// the same Last-Modified; the Date check excludes exactly that case).
fn strong_validator(h: &HeaderMap) -> Option<String> {
    let etag = header_str(h, header::ETAG);
    if !etag.is_empty() && !etag.starts_with("W/") {
        return Some(etag);
    }
    let last_modified = header_str(h, header::LAST_MODIFIED);
    let lm = httpdate::parse_http_date(&last_modified).ok()?;
    let date = httpdate::parse_http_date(&header_str(h, header::DATE)).ok()?;
    (date.duration_since(lm).ok()? >= Duration::from_secs(1)).then_some(last_modified)
}

/// `Content-Range: bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?, total))
}

/// Checks that a 206 answers `Range: bytes={start}-{last}` (`last` None: to the end)
/// of a resource of `total` bytes (when known): the part starts at `start` and runs
/// to `last`, or to the end of the same total. Returns the resource's total length.
pub(crate) fn check_partial(
    h: &HeaderMap,
    start: u64,
    last_asked: Option<u64>,
    total: Option<u64>,
) -> std::result::Result<u64, String> {
    let v = header_str(h, header::CONTENT_RANGE);
    let bad = |why: &str| format!("a 206 with Content-Range {v:?} {why}");
    let Some((first, last, got_total)) = parse_content_range(&v) else {
        return Err(bad("that cannot be parsed"));
    };
    if first != start {
        return Err(bad(&format!(
            "does not start at the requested byte {start}"
        )));
    }
    let Some(got_total) = got_total else {
        return Err(bad("gives no total length"));
    };
    if let Some(t) = total.filter(|&t| t != got_total) {
        return Err(bad(&format!("has a total other than the body's {t} bytes")));
    }
    if first > last || last >= got_total {
        return Err(bad("is not a range of the body"));
    }
    match last_asked {
        Some(l) if last != l => {
            return Err(bad(&format!("does not end at the requested byte {l}")));
        }
        None if last + 1 != got_total => {
            return Err(bad("does not run to the end of the body"));
        }
        _ => {}
    }
    Ok(got_total)
}

/// The response body as a `Read`, resuming with `Range` after a transport failure
/// when the server supports it and the response had a strong validator.
struct ResumableBody<'a> {
    client: &'a Client,
    url: &'a str,
    resp: Response,
    /// Decoded body bytes delivered so far.
    pos: u64,
    /// Length of the full body when known: the Content-Length (absent with gzip or
    /// chunked), or the total of a `Content-Range` once a resume told it.
    expected: Option<u64>,
    /// `HttpOptions::max_bytes`.
    limit: Option<u64>,
    resumable: bool,
    /// The strong validator sent as `If-Range` (see `strong_validator`).
    validator: Option<String>,
    /// The first response's ETag: a part carrying another one is of another version.
    etag: String,
    retries_left: &'a mut u32,
    resumes: u32,
    /// Set when a read failed because of the transport (not the bytes).
    failed: Option<String>,
    /// Set when the body went beyond `limit` (not retried).
    over_limit: Option<String>,
    stop: Option<&'a AtomicBool>,
    /// Bytes, rate and ETA on a terminal (crate::progress); finishes its line on drop.
    progress: crate::progress::Progress,
}

impl ResumableBody<'_> {
    /// Re-requests the rest of the body from `pos`, guarded by `If-Range`: a changed
    /// resource is answered 200 (the whole new version), never a part of it.
    fn resume(&mut self) -> std::result::Result<(), String> {
        let pos = self.pos;
        let Some(validator) = self.validator.as_deref() else {
            self.resumable = false;
            return Err("no strong validator to resume with; restarting the download".into());
        };
        let req = self
            .client
            .get(self.url)
            .header(header::RANGE, format!("bytes={pos}-"))
            // `pos` counts decoded bytes: ask for the identity representation, whose
            // byte offsets are those (a range of a gzip body would count compressed
            // bytes, and the client would otherwise offer gzip).
            .header(header::ACCEPT_ENCODING, "identity")
            .header(header::IF_RANGE, validator);
        let resp = send(req, self.url).map_err(|e| {
            format!(
                "resuming at byte {pos}: {}",
                classify_send_error(&e).detail()
            )
        })?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            // The server ignored the range or the resource changed: start over.
            self.resumable = false;
            return Err(format!(
                "resuming at byte {pos} was answered HTTP {} instead of 206; restarting the download",
                resp.status()
            ));
        }
        let total = check_partial(resp.headers(), pos, None, self.expected).map_err(|d| {
            self.resumable = false;
            format!("resuming at byte {pos} was answered with {d}; restarting the download")
        })?;
        let etag = header_str(resp.headers(), header::ETAG);
        // Weak comparison: nginx weakens the ETag of the gzipped form of the same file.
        let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
        if !etag.is_empty() && !self.etag.is_empty() && opaque(&etag) != opaque(&self.etag) {
            self.resumable = false;
            return Err(format!(
                "resuming at byte {pos} was answered with a part of another version \
                 (ETag {etag} instead of {}); restarting the download",
                self.etag
            ));
        }
        self.expected = Some(total);
        self.resp = resp;
        self.resumes += 1;
        Ok(())
    }

    /// Why the body stopped at `pos`: a cut connection, with what the read hit.
    fn cut_message(&self, cause: Option<&io::Error>) -> String {
        let of = self
            .expected
            .map(|l| format!(" of {l}"))
            .unwrap_or_default();
        let pos = self.pos;
        match cause {
            Some(e) if e.kind() == io::ErrorKind::TimedOut || chain(e).contains("timed out") => {
                format!(
                    "read timeout after {pos}{of} bytes of the body: {}",
                    chain(e)
                )
            }
            Some(e) => format!(
                "body truncated: the connection was cut after {pos}{of} bytes: {}",
                chain(e)
            ),
            None => format!("body truncated: the connection was cut after {pos}{of} bytes"),
        }
    }
}

impl Failure {
    pub(crate) fn detail(self) -> String {
        match self {
            Failure::Retry(d)
            | Failure::Cut(d)
            | Failure::Fatal(d)
            | Failure::Changed(d)
            | Failure::NoRanges(d) => d,
            Failure::Stopped => "download stopped".into(),
        }
    }
}

impl Read for ResumableBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if stopped(self.stop) {
                self.failed = None;
                return Err(io::Error::other("download stopped"));
            }
            let problem = match self.resp.read(buf) {
                Ok(0) => match self.expected {
                    Some(len) if self.pos < len => self.cut_message(None),
                    _ => return Ok(0),
                },
                Ok(n) => {
                    let pos = self.pos + n as u64;
                    if let Some(limit) = self.limit.filter(|&l| pos > l) {
                        let m = format!(
                            "the body exceeds the download limit of {limit} bytes \
                             (HttpOptions::max_bytes)"
                        );
                        self.over_limit = Some(m.clone());
                        return Err(io::Error::other(m));
                    }
                    self.pos = pos;
                    self.progress.update(self.pos, self.expected);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => self.cut_message(Some(&e)),
            };
            let mut last = problem;
            let mut resumed = false;
            while self.resumable && *self.retries_left > 0 {
                *self.retries_left -= 1;
                if !sleep_unless_stopped(backoff(self.resumes), self.stop) {
                    return Err(io::Error::other("download stopped"));
                }
                match self.resume() {
                    Ok(()) => {
                        resumed = true;
                        break;
                    }
                    Err(d) => last = format!("{last}; {d}"),
                }
            }
            if resumed {
                continue;
            }
            self.failed = Some(last.clone());
            return Err(io::Error::other(last));
        }
    }
}

enum DecodeError {
    /// The body is not what it must be (or its transport failed: see `failed`).
    Body(String),
    /// Writing the cache, validation.
    Other(Error),
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

const BODY_BUFFER: usize = 256 << 10;

fn decode_body<R: Read + ?Sized>(
    body: &mut R,
    writer: &mut CacheWriter,
    check: Option<&mut ShapeCheck>,
    obs: &mut dyn Observer,
) -> std::result::Result<(), DecodeError> {
    let mut first = [0u8; 8];
    let n = read_full(body, &mut first).map_err(|e| DecodeError::Body(e.to_string()))?;
    if n == 0 {
        // Not a dataset of zero records that later runs would trust: an empty body
        // is what a misconfigured server or an emptied file sends.
        return Err(DecodeError::Body(
            "the server sent an empty body (no records): an empty dataset is refused".into(),
        ));
    }
    if n == 8 && first == MAGIC {
        let input = io::Cursor::new(first[..n].to_vec()).chain(&mut *body);
        let mut input = Counting {
            inner: io::BufReader::with_capacity(BODY_BUFFER, input),
            n: 0,
        };
        decode_cache_file(&mut input, writer, check, obs)
    } else {
        decode_records(body, &first[..n], writer, check, obs)
    }
}

/// Decodes record `index` (and checks its shape when asked).
/// Parses the record `wire` (the one parse it gets: the writer reuses the header)
/// and applies the `validate` shape check.
fn check_record(
    wire: &[u8],
    shape: &mut Vec<usize>,
    index: u64,
    check: &mut Option<&mut ShapeCheck>,
) -> std::result::Result<WireHeader, DecodeError> {
    let h =
        parse_wire(wire, shape).map_err(|e| DecodeError::Body(format!("record {index}: {e}")))?;
    if let Some(c) = check.as_deref_mut() {
        let t = TensorRef {
            dtype: h.dtype,
            shape,
            data: &wire[h.data_offset..h.record_len()],
        };
        c.check(index, t).map_err(DecodeError::Other)?;
    }
    Ok(h)
}

/// The length of the wire record starting at `b`: `Ok(Some(len))` once its header is
/// complete, `Ok(None)` while more bytes are needed, `Err` for a malformed header.
fn record_len(b: &[u8]) -> std::result::Result<Option<usize>, String> {
    wire_record_len(b).map_err(|e| e.to_string())
}

/// Why the body ended inside the record at `b` (incomplete by `record_len`).
fn truncated_record(b: &[u8]) -> String {
    if b.len() < 5 {
        return format!("body ended inside a record header ({} of 5 bytes)", b.len());
    }
    let ndims = u32::from_le_bytes(b[1..5].try_into().unwrap()) as usize;
    let head = wire_header_len(ndims);
    if b.len() < head {
        return format!(
            "body ended inside a record header ({} of {head} bytes)",
            b.len()
        );
    }
    let nbytes = u32::from_le_bytes(b[head - 4..head].try_into().unwrap());
    format!(
        "malformed record: record declares {nbytes} data bytes, body ended after {}",
        b.len() - head
    )
}

/// The decode buffer of `decode_records`: large reads, records decoded in place.
const READ_BUFFER: usize = 4 << 20;

/// Concatenated wire records, as the original runtime's servers sent them.
///
/// The body is read in large chunks into one buffer and every complete record is
/// pushed straight from it (no per-record copy or allocation); only a record cut by
/// the end of the buffer is moved to its front. A record larger than the buffer
/// grows it by doubling as its bytes arrive, never by what its header merely claims
/// (a header claiming 4 GiB costs at most twice what was actually sent).
fn decode_records<R: Read + ?Sized>(
    body: &mut R,
    first: &[u8],
    writer: &mut CacheWriter,
    mut check: Option<&mut ShapeCheck>,
    obs: &mut dyn Observer,
) -> std::result::Result<(), DecodeError> {
    let mut buf = vec![0u8; READ_BUFFER];
    buf[..first.len()].copy_from_slice(first);
    let (mut start, mut end) = (0usize, first.len());
    let mut shape = Vec::new();
    let mut index = 0u64;
    // Body offset of `buf[start]`.
    let mut at = 0u64;
    let mut eof = false;
    let err = |index: u64, at: u64, e: String| {
        DecodeError::Body(format!("record {index} at byte {at} of the body: {e}"))
    };
    let mut batch: Vec<(std::ops::Range<usize>, WireHeader)> = Vec::new();
    loop {
        // Every complete record in the buffer is checked, then all of them are
        // written at once, straight from the buffer (vectored writes).
        batch.clear();
        let need = loop {
            match record_len(&buf[start..end]) {
                Err(e) => return Err(err(index, at, e)),
                Ok(Some(len)) if len <= end - start => {
                    let wire = &buf[start..start + len];
                    let h = check_record(wire, &mut shape, index, &mut check)?;
                    obs.record(writer).map_err(DecodeError::Other)?;
                    batch.push((start..start + len, h));
                    start += len;
                    at += len as u64;
                    index += 1;
                }
                Ok(Some(len)) => break len,
                Ok(None) => break wire_header_len(MAX_NDIMS),
            }
        };
        if !batch.is_empty() {
            let records: Vec<(&[u8], WireHeader)> =
                batch.iter().map(|(r, h)| (&buf[r.clone()], *h)).collect();
            writer.push_wires(&records).map_err(DecodeError::Other)?;
            obs.batch(writer).map_err(DecodeError::Other)?;
        }
        if eof {
            if start == end {
                break;
            }
            return Err(err(index, at, truncated_record(&buf[start..end])));
        }
        if start + need > buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if need > buf.len() && end == buf.len() {
                let grown = (buf.len() * 2).min(need);
                buf.resize(grown, 0);
            }
        }
        let n = loop {
            match body.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(index, at, format!("reading record: {e}"))),
            }
        };
        if n == 0 {
            eof = true;
        }
        end += n;
    }
    obs.total(index);
    Ok(())
}

/// A published cache file (either version): header verified, every frame's CRC
/// verified, the index checked against the records (the layout is `crate::cache`'s).
fn decode_cache_file<R: Read>(
    input: &mut Counting<R>,
    writer: &mut CacheWriter,
    mut check: Option<&mut ShapeCheck>,
    obs: &mut dyn Observer,
) -> std::result::Result<(), DecodeError> {
    let bad = |d: String| DecodeError::Body(format!("published cache file: {d}"));
    // `input` starts at the magic again (the sniffed bytes are chained back in).
    let header = read_stream_header(input).map_err(bad)?;
    let mut frames = FrameStream::new(&header);
    obs.total(frames.records());
    let mut wire = Vec::new();
    let mut shape = Vec::new();
    let mut index = 0u64;
    while let Some(crc) = frames.next_record(input, &mut wire).map_err(bad)? {
        let h = check_record(&wire, &mut shape, index, &mut check)?;
        writer
            .push_checked_wire(&wire, h, crc)
            .map_err(DecodeError::Other)?;
        obs.record(writer).map_err(DecodeError::Other)?;
        obs.batch(writer).map_err(DecodeError::Other)?;
        index += 1;
    }
    Ok(())
}
