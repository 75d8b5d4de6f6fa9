//! The resumable body: the response as a `Read` that, after a transport failure,
//! resumes with `Range` + `If-Range` (a strong validator only) and checks that every
//! 206 answers the range asked for, or gives up so that the download restarts. A 200
//! to the resume (the validator no longer matches: the resource changed; or the server
//! ignores ranges) is the whole current resource: it is kept (`restart`) and the
//! download decodes it from byte 0 instead of dropping it and asking again.

use std::io::{self, Read};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;

use super::client::{chain, header_str, send};
use super::retry::{backoff, classify_send_error, read_cause, sleep_unless_stopped, stopped};
use crate::error::{HttpCause, HttpErrorKind};

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
pub(super) struct ResumableBody<'a> {
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
    /// Set when a read failed because of the transport (not the bytes): what kind of
    /// failure (a cut body, a read timeout) and the message.
    pub(super) failed: Option<(HttpCause, String)>,
    /// Set when the body went beyond `limit` (not retried).
    pub(super) over_limit: Option<String>,
    /// A 200 answering a resume: the whole current resource, which the download
    /// decodes from byte 0 (the read that met it fails, ending the old decode), and
    /// what happened, for the warning.
    pub(super) restart: Option<(Response, String)>,
    stop: Option<&'a AtomicBool>,
    /// Bytes, rate and ETA on a terminal (crate::progress); finishes its line on drop.
    progress: crate::progress::Progress,
}

impl<'a> ResumableBody<'a> {
    /// The body of `resp`, the first response of an attempt: resumable when the
    /// response has a strong validator and does not refuse ranges.
    pub(super) fn new(
        client: &'a Client,
        url: &'a str,
        resp: Response,
        limit: Option<u64>,
        retries_left: &'a mut u32,
        stop: Option<&'a AtomicBool>,
    ) -> ResumableBody<'a> {
        let validator = strong_validator(resp.headers());
        let accept_ranges = header_str(resp.headers(), header::ACCEPT_RANGES);
        ResumableBody {
            client,
            url,
            // A resume without a strong validator could splice two versions of the
            // resource (the head of one, the tail of the next): restart instead.
            resumable: validator.is_some() && !accept_ranges.eq_ignore_ascii_case("none"),
            validator,
            etag: header_str(resp.headers(), header::ETAG),
            expected: resp.content_length(),
            limit,
            resp,
            pos: 0,
            retries_left,
            resumes: 0,
            failed: None,
            over_limit: None,
            restart: None,
            stop,
            progress: crate::progress::Progress::new(url),
        }
    }

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
        if resp.status() == StatusCode::OK {
            // `If-Range` no longer matched (the resource changed) or the server ignores
            // ranges: either way this is the whole current resource. Its body is used,
            // from byte 0, rather than dropped and asked for again.
            self.resumable = false;
            let etag = header_str(resp.headers(), header::ETAG);
            let what = if !etag.is_empty() && etag != self.etag {
                format!(
                    "the resource changed (ETag {etag} instead of {})",
                    self.etag
                )
            } else {
                "the server sent the whole resource".to_string()
            };
            let m = format!("resuming at byte {pos} was answered 200: {what}");
            self.restart = Some((resp, m.clone()));
            return Err(m);
        }
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            // The server refused the range: start over.
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
            Some(e) if read_cause(e).kind == HttpErrorKind::Timeout => {
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

impl Read for ResumableBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if stopped(self.stop) {
                self.failed = None;
                return Err(io::Error::other("download stopped"));
            }
            let (cause, problem) = match self.resp.read(buf) {
                Ok(0) => match self.expected {
                    Some(len) if self.pos < len => {
                        (HttpCause::of(HttpErrorKind::Body), self.cut_message(None))
                    }
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
                Err(e) => (read_cause(&e), self.cut_message(Some(&e))),
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
            if self.restart.is_some() {
                // Not a failure: the download starts over on the response kept.
                return Err(io::Error::other(last));
            }
            self.failed = Some((cause, last.clone()));
            return Err(io::Error::other(last));
        }
    }
}
