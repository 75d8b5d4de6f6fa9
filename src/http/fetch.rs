//! The download: one GET streamed through the record decoder into a `CacheWriter`,
//! with retries (exponential backoff) that resume with `Range` when the server
//! supports it and restart the body otherwise.
//!
//! What it guarantees against a careless or hostile server (DESIGN §8):
//! - never a spliced body: a resume carries `If-Range` with a strong validator (see
//!   `resume.rs`), and without one the download restarts from byte 0; a 206 is
//!   accepted only as the answer to the range asked for, with the body's total
//!   (`check_partial`), and never for the first, whole-resource request; a 200 to a
//!   resume (the resource changed, so `If-Range` no longer matched) is the whole new
//!   resource: it is decoded from byte 0 into a new temp file (`take_body`), not
//!   dropped for a second GET of the same bytes;
//! - an empty body is an error, not a dataset of zero records;
//! - `HttpOptions::max_bytes` bounds the bytes taken (an endless body, a gzip bomb);
//! - a failure names where the body was cut and what the retries then met.
//! - a large object over several connections (`parallel.rs`) is pinned to the first
//!   response's strong ETag on every range (`ranged.rs`); a 412, another ETag or
//!   another total restarts the whole download (`Failure::Changed`, at most
//!   `MAX_CHANGES` times, with a warning), never splicing two versions.
//!
//! The body is never held in memory (`decode.rs`): it is read in chunks, each record is decoded as
//! it completes (one record at most is buffered) and written to the temp cache file.
//! The body is either concatenated wire records (the original format) or a published
//! cache file (magic `HMNCACHE`), whose header and every frame CRC are verified on the
//! way through.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use reqwest::blocking::{Client, Response};
use reqwest::header;
use reqwest::StatusCode;

use super::client::{build_client, header_str, send};
use super::decode::{decode_body, DecodeError};
use super::parallel;
use super::ranged::RangeFailure as PartFailure;
use super::resume::ResumableBody;
use super::retry::{backoff, classify_send_error, sleep_unless_stopped, stopped, Failure};
use super::{HttpOptions, HttpOutcome};
use crate::cache::{CacheLock, CacheWriter, Metadata};
use crate::error::{Error, HttpCause, HttpErrorKind, Result};
use crate::log::warn;
use crate::shape_check::ShapeCheck;

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

/// The result of a download attempt sequence (`'l`: the cache's lock, which the writer
/// borrows).
pub(crate) enum Download<'l> {
    /// A conditional request was answered 304.
    NotModified,
    /// The whole body was decoded into the writer (not yet finished/published).
    Complete(Box<CacheWriter<'l>>),
}

/// How many times a download starts over because the object changed under it.
const MAX_CHANGES: u32 = 3;

/// Downloads `url` into a new `CacheWriter` whose final path is `final_path`, written
/// under `lock` (the lock of `final_path`; `None`: a file never published, see
/// `CacheWriter::unpublished`).
/// `conditional`: the metadata of an existing cache to revalidate (If-None-Match /
/// If-Modified-Since). Every failure is `Error::Http` naming the URL (shape
/// mismatches with `validate` excepted); no temp file survives a failure.
#[allow(clippy::too_many_arguments)]
pub(crate) fn download<'l>(
    client: &Client,
    url: &str,
    opts: &HttpOptions,
    final_path: &Path,
    lock: Option<&'l CacheLock>,
    conditional: Option<&Metadata>,
    obs: &mut dyn Observer,
    stop: Option<&AtomicBool>,
) -> Result<Download<'l>> {
    let http = |cause: HttpCause, detail: String| Error::http(cause, url, detail);
    let target = Target {
        url,
        opts,
        final_path,
        lock,
        conditional,
        stop,
    };
    let mut retries_left = opts.retries;
    let mut attempt = 0u32;
    // The last body cut: the failure that explains the download's end even when the
    // retries then only meet a refused connection.
    let mut cut: Option<(HttpCause, String)> = None;
    let mut changes = 0u32;
    let mut single = false;
    // After a restart: a client of its own (see `Failure::Changed` below).
    let mut fresh: Option<Client> = None;
    loop {
        let failure = match attempt_once(
            fresh.as_ref().unwrap_or(client),
            target,
            obs,
            &mut retries_left,
            !single,
        ) {
            // A body the consumer abandoned meanwhile is not published.
            Ok(Download::Complete(_)) if !obs.complete() => Failure::Stopped,
            Ok(d) => return Ok(d),
            Err(AttemptError::Other(e)) => return Err(e),
            Err(AttemptError::Failed(f)) => f,
        };
        let (cause, d) = match failure {
            Failure::Stopped => return Err(Error::Stopped(url.to_string())),
            Failure::Fatal(cause, d) => return Err(http(cause, d)),
            Failure::Changed(d) => {
                changes += 1;
                if changes > MAX_CHANGES {
                    return Err(http(
                        HttpCause::of(HttpErrorKind::ChangedObject),
                        format!("{d}; it changed {changes} times during the download, giving up"),
                    ));
                }
                // Nothing of the old version is kept: the temp files are gone.
                warn(&format!("{url}: {d}; restarting the download"));
                // New connections: a server may close the ones that answered 412
                // while announcing keep-alive (nginx does), and a pooled one would
                // fail the restart's first request.
                fresh = Some(build_client(opts).map_err(|e| e.for_url(url))?);
                continue;
            }
            Failure::NoRanges(d) => {
                single = true;
                warn(&format!(
                    "{url}: {d}; restarting the download on a single connection"
                ));
                continue;
            }
            Failure::Cut(cause, d) => {
                cut = Some((cause, d.clone()));
                (cause, d)
            }
            // The message and the kind lead with the cut that started the retries.
            Failure::Retry(cause, d) => match &cut {
                Some((cut_cause, c)) => (*cut_cause, format!("{c}; the retries then failed: {d}")),
                None => (cause, d),
            },
        };
        if retries_left == 0 {
            // Resumes and new attempts share the retries: all of them were used.
            let tries = opts.retries + 1;
            return Err(http(
                cause,
                if opts.retries == 0 {
                    d
                } else {
                    format!("{d} (gave up after {tries} attempts)")
                },
            ));
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

/// What a download asks for: the arguments of `download` that every attempt reuses.
#[derive(Clone, Copy)]
struct Target<'a, 'l> {
    url: &'a str,
    opts: &'a HttpOptions,
    final_path: &'a Path,
    lock: Option<&'l CacheLock>,
    conditional: Option<&'a Metadata>,
    stop: Option<&'a AtomicBool>,
}

/// One GET of `target` and its body (resumed within the retries left), decoded into a
/// new temp cache file; `parallel_ok`: a large object may take the parallel path.
fn attempt_once<'l>(
    client: &Client,
    target: Target<'_, 'l>,
    obs: &mut dyn Observer,
    retries_left: &mut u32,
    parallel_ok: bool,
) -> std::result::Result<Download<'l>, AttemptError> {
    let Target {
        url,
        conditional,
        stop,
        ..
    } = target;
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
        let cause = HttpCause::status(status.as_u16());
        let d = super::s3::refusal(url, resp);
        let retry = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        return Err(if retry {
            Failure::Retry(cause, d)
        } else {
            Failure::Fatal(cause, d)
        }
        .into());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        // Only a `Range` request may be answered with a part: this one asked for the
        // whole resource, and a part taken for the whole would be cached as complete.
        let range = header_str(resp.headers(), header::CONTENT_RANGE);
        return Err(Failure::Fatal(
            HttpCause::status(status.as_u16()),
            format!(
                "server answered 206 Partial Content (Content-Range {range:?}) to a request \
                 for the whole resource; a part of the body is not the dataset"
            ),
        )
        .into());
    }
    let mut resp = resp;
    loop {
        match take_body(client, target, obs, retries_left, parallel_ok, resp)? {
            Taken::Done(d) => return Ok(d),
            // A resume answered 200 with the whole (changed) resource: decoded from
            // byte 0 into a new temp file, the old one discarded, no second GET.
            Taken::Restart(next, why) => {
                warn(&format!("{url}: {why}; decoding it from byte 0"));
                resp = next;
            }
        }
    }
}

/// What `take_body` did with a whole-resource response.
enum Taken<'l> {
    Done(Download<'l>),
    /// A resume was answered 200: the response to decode from byte 0 instead, and why.
    Restart(Response, String),
}

/// Decodes `resp`, a 200 to a request for the whole resource (or to a resume whose
/// validator no longer matched), into a new temp cache file.
fn take_body<'l>(
    client: &Client,
    target: Target<'_, 'l>,
    obs: &mut dyn Observer,
    retries_left: &mut u32,
    parallel_ok: bool,
    resp: Response,
) -> std::result::Result<Taken<'l>, AttemptError> {
    let Target {
        url,
        opts,
        final_path,
        lock,
        stop,
        ..
    } = target;
    let expected = resp.content_length();
    if let (Some(limit), Some(len)) = (opts.max_bytes, expected) {
        if len > limit {
            return Err(Failure::Fatal(
                HttpCause::of(HttpErrorKind::Body),
                format!(
                    "the body of {len} bytes exceeds the download limit of {limit} bytes \
                     (HttpOptions::max_bytes)"
                ),
            )
            .into());
        }
    }
    obs.outcome(HttpOutcome::Downloaded);
    let etag = header_str(resp.headers(), header::ETAG);
    let last_modified = header_str(resp.headers(), header::LAST_MODIFIED);
    let mut meta = Metadata::new("", &super::s3::source_description(url));
    meta.etag = etag;
    meta.last_modified = last_modified;
    let mut writer = match lock {
        Some(lock) => CacheWriter::create(final_path, meta, lock),
        None => CacheWriter::unpublished(final_path, meta),
    }
    .map_err(AttemptError::Other)?;
    obs.started(&writer).map_err(AttemptError::Other)?;
    let mut check = opts.validate.then(ShapeCheck::default);
    // Bytes that are not records, or more of them than allowed.
    let body_cause = HttpCause::of(HttpErrorKind::Body);
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
            Some(PartFailure::Cut(c, m)) => Failure::Cut(c, m),
            Some(PartFailure::Fatal(c, m)) => Failure::Fatal(c, m),
            Some(PartFailure::Stopped) => Failure::Stopped,
            None => match result {
                Some(Ok(())) => return Ok(Taken::Done(Download::Complete(Box::new(writer)))),
                Some(Err(DecodeError::Other(e))) => return Err(AttemptError::Other(e)),
                Some(Err(DecodeError::Body(_))) if stopped(stop) => Failure::Stopped,
                Some(Err(DecodeError::Body(d))) => Failure::Fatal(body_cause, d),
                None => Failure::Fatal(
                    HttpCause::of(HttpErrorKind::Other),
                    "the parallel download did not start".into(),
                ),
            },
        };
        return Err(failure.into());
    }
    let mut body = ResumableBody::new(client, url, resp, opts.max_bytes, retries_left, stop);
    match decode_body(&mut body, &mut writer, check.as_mut(), obs) {
        Ok(()) => Ok(Taken::Done(Download::Complete(Box::new(writer)))),
        Err(DecodeError::Body(_)) if body.restart.is_some() && !stopped(stop) => {
            let (next, why) = body.restart.take().expect("checked");
            Ok(Taken::Restart(next, why))
        }
        Err(DecodeError::Other(e)) => Err(AttemptError::Other(e)),
        Err(DecodeError::Body(d)) => {
            if stopped(stop) {
                Err(Failure::Stopped.into())
            } else if let Some(m) = body.over_limit.take() {
                Err(Failure::Fatal(body_cause, m).into())
            } else if let Some((cause, t)) = body.failed.take() {
                // The transport failed (and could not be resumed): a new attempt may help.
                Err(Failure::Cut(cause, t).into())
            } else {
                Err(Failure::Fatal(body_cause, d).into())
            }
        }
    }
}
