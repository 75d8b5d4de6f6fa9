//! The one ranged-fetch primitive: a remote object pinned to its strong ETag and its
//! length, read by ranged GETs. Every piece of code that reads byte ranges of an
//! object (the parallel download, the per-node partial fetch, the stream) goes through
//! [`RangedObject`]; this is the only file that sends `If-Match`.
//!
//! - **Pinned.** An object is opened by one ranged GET of its head ([`RangedObject::open`],
//!   which also returns those bytes) or from a whole-object response already in hand
//!   ([`RangedObject::pinned`]). The strong ETag and the total length seen then are the
//!   object for the rest of its life.
//! - **Checked.** Every later request is `GET` with `Range: bytes=A-B` and
//!   `If-Match: <the ETag>`, and its answer must be a 206 whose `Content-Range` is
//!   exactly `A-B` of the pinned total, with no content coding.
//! - **Resumed.** A cut connection, a transport failure or a 5xx/408/429 resumes the
//!   range from the byte it reached, after a backoff, up to `HttpOptions::retries`
//!   times per range; a halt (the caller's stop) ends the wait at once.
//! - **A changed object is its own failure** ([`RangeFailure::Changed`]): a 412, another
//!   ETag or another total. The message names the URL, the range and the pinned ETag,
//!   and what came back; nothing of the new version is handed to the sink.
//!
//! `s3://` URLs are signed per attempt by `client::send` (SigV4 covers `Range` and
//! `If-Match`). Counters of requests and body bytes are kept per object (atomics: one
//! object is shared by the threads that fetch its ranges).

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::StatusCode;

use super::client::{chain, header_str, send};
use super::resume::{check_partial, parse_content_range};
use super::retry::{backoff, classify_send_error, read_cause, send_cause};
use crate::error::{Error, HttpCause, HttpErrorKind};

/// Bytes read from a connection per call of the sink.
const BUFFER: usize = 256 << 10;

/// Why a ranged read stopped.
#[derive(Debug)]
pub(crate) enum RangeFailure {
    /// The object changed since it was pinned (412, another ETag, another total).
    Changed(String),
    /// The server does not actually serve ranges (a 200 with the same ETag).
    NoRanges(String),
    /// A range's connection kept failing: its resumes were used up (with the kind of
    /// the last failure).
    Cut(HttpCause, String),
    /// The server's answer is wrong in a way no retry fixes.
    Fatal(HttpCause, String),
    /// The sink failed (writing what arrived).
    Io(Error),
    /// The caller halted the read.
    Stopped,
}

impl RangeFailure {
    /// The message (without the URL).
    pub(crate) fn detail(&self) -> String {
        match self {
            RangeFailure::Changed(m)
            | RangeFailure::NoRanges(m)
            | RangeFailure::Cut(_, m)
            | RangeFailure::Fatal(_, m) => m.clone(),
            RangeFailure::Io(e) => e.to_string(),
            RangeFailure::Stopped => "download stopped".into(),
        }
    }

    /// As the crate's error, naming `url` (`Error::Stopped` for a halt; the sink's own
    /// error as it was).
    pub(crate) fn into_error(self, url: &str) -> Error {
        match self {
            RangeFailure::Io(e) => e,
            RangeFailure::Stopped => Error::Stopped(url.to_string()),
            RangeFailure::Changed(m) => {
                Error::http(HttpCause::of(HttpErrorKind::ChangedObject), url, m)
            }
            RangeFailure::NoRanges(m) => Error::http(HttpCause::of(HttpErrorKind::Other), url, m),
            RangeFailure::Cut(c, m) | RangeFailure::Fatal(c, m) => Error::http(c, url, m),
        }
    }
}

/// Where fetched bytes go: `sink(offset in the object, bytes)`, in order.
pub(crate) type Sink<'a> = dyn FnMut(u64, &[u8]) -> Result<(), RangeFailure> + 'a;

/// What one request met: try again (resume) or give up.
enum Attempt {
    Retry(HttpCause, String),
    Failed(RangeFailure),
}

/// A remote object pinned to its strong ETag and length (see the module docs).
#[derive(Debug)]
pub(crate) struct RangedObject {
    client: Client,
    url: String,
    etag: String,
    len: u64,
    retries: u32,
    /// What the reads are part of, for messages: "download", "partial fetch", "stream".
    activity: &'static str,
    requests: AtomicU64,
    body_bytes: AtomicU64,
}

impl RangedObject {
    /// An object already pinned by a response in hand (a whole-object 200 with a strong
    /// ETag and a Content-Length).
    pub(crate) fn pinned(
        client: Client,
        url: &str,
        etag: &str,
        len: u64,
        retries: u32,
        activity: &'static str,
    ) -> RangedObject {
        RangedObject {
            client,
            url: url.to_string(),
            etag: etag.to_string(),
            len,
            retries,
            activity,
            requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
        }
    }

    /// Opens the object at `url` by one ranged GET of its first `head` bytes (fewer
    /// when the object is smaller), retried like any range, and pins it to the answer's
    /// strong ETag and total. Returns the object and those bytes.
    pub(crate) fn open(
        client: Client,
        url: &str,
        retries: u32,
        head: u64,
        activity: &'static str,
        halted: &dyn Fn() -> bool,
    ) -> Result<(RangedObject, Vec<u8>), Error> {
        let mut object = RangedObject::pinned(client, url, "", 0, retries, activity);
        let head = head.max(1);
        let mut tries = 0u32;
        let resp = loop {
            let problem = match object.open_once(head) {
                Ok(r) => break r,
                Err(Attempt::Failed(f)) => return Err(f.into_error(url)),
                Err(Attempt::Retry(c, m)) => (c, m),
            };
            if tries >= retries {
                return Err(Error::http(problem.0, url, problem.1));
            }
            if !sleep_unless(backoff(tries), halted) {
                return Err(Error::Stopped(url.to_string()));
            }
            tries += 1;
        };
        let want = head.min(object.len);
        let mut body = Vec::with_capacity(want as usize);
        let mut resp = resp;
        // A cut keeps what arrived (read_to_end appends it); the rest is read below as
        // an ordinary pinned range.
        let _ = (&mut resp).take(want).read_to_end(&mut body);
        drop(resp);
        object.requests.fetch_add(1, Ordering::Relaxed);
        object
            .body_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        if (body.len() as u64) < want {
            let rest = object
                .read(body.len() as u64, want, halted)
                .map_err(|f| f.into_error(url))?;
            body.extend_from_slice(&rest);
        }
        Ok((object, body))
    }

    /// The first request: `Range: bytes=0-{head-1}`, no pin yet.
    fn open_once(&mut self, head: u64) -> Result<Response, Attempt> {
        let what = format!("the ranged GET of bytes 0-{}", head - 1);
        let req = self
            .client
            .get(&self.url)
            .header(header::RANGE, format!("bytes=0-{}", head - 1))
            .header(header::ACCEPT_ENCODING, "identity");
        let resp = send(req, &self.url).map_err(|e| {
            Attempt::Retry(
                send_cause(&e),
                format!("{what}: {}", classify_send_error(&e).detail()),
            )
        })?;
        let status = resp.status();
        if status != StatusCode::PARTIAL_CONTENT {
            return Err(refused(&self.url, &what, status, resp, self.activity));
        }
        let h = resp.headers();
        let etag = header_str(h, header::ETAG);
        if etag.is_empty() || etag.starts_with("W/") {
            return Err(Attempt::Failed(RangeFailure::Fatal(
                HttpCause::of(HttpErrorKind::Other),
                format!(
                    "no strong ETag (got {etag:?}): a {} cannot pin the object to one version",
                    self.activity
                ),
            )));
        }
        let cr = header_str(h, header::CONTENT_RANGE);
        let Some((_, _, Some(total))) = parse_content_range(&cr) else {
            return Err(Attempt::Failed(RangeFailure::Fatal(
                HttpCause::of(HttpErrorKind::Body),
                format!("{what} was answered with Content-Range {cr:?}, without a total"),
            )));
        };
        if total == 0 {
            return Err(Attempt::Failed(RangeFailure::Fatal(
                HttpCause::of(HttpErrorKind::Body),
                "the object is empty".into(),
            )));
        }
        check_partial(h, 0, Some(head.min(total) - 1), Some(total)).map_err(|d| {
            Attempt::Failed(RangeFailure::Fatal(
                HttpCause::of(HttpErrorKind::Body),
                format!("{what}: {d}"),
            ))
        })?;
        check_identity(h, &what)?;
        self.etag = etag;
        self.len = total;
        Ok(resp)
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }

    /// The object's length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Requests made so far (the opening one included).
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes received so far.
    pub(crate) fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::Relaxed)
    }

    /// Bytes `start..end` of the object, in memory (for small ranges).
    pub(crate) fn read(
        &self,
        start: u64,
        end: u64,
        halted: &dyn Fn() -> bool,
    ) -> Result<Vec<u8>, RangeFailure> {
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        let mut buf = vec![0u8; BUFFER.min(end.saturating_sub(start) as usize).max(1)];
        self.fetch(start, end, None, halted, &mut buf, &mut |_, b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// Streams bytes `start..end` of the object into `sink(offset, bytes)` in order,
    /// through `buf`. `first`, when given, is a response already carrying the object
    /// from byte `start` (a whole-object GET's body): it is read first, and a cut is
    /// resumed by a pinned range like any other. A cut resumes from the byte reached.
    pub(crate) fn fetch(
        &self,
        start: u64,
        end: u64,
        mut first: Option<Response>,
        halted: &dyn Fn() -> bool,
        buf: &mut [u8],
        sink: &mut Sink<'_>,
    ) -> Result<(), RangeFailure> {
        if end <= start || end > self.len {
            return Err(RangeFailure::Fatal(
                HttpCause::of(HttpErrorKind::Other),
                format!(
                    "byte range {start}..{end} is outside the object of {} bytes",
                    self.len
                ),
            ));
        }
        let mut pos = start;
        let mut resumes = 0u32;
        loop {
            let got = match first.take() {
                Some(r) => Ok(r),
                None => self.ranged_get(pos, end),
            };
            let problem = match got {
                Ok(mut r) => match self.copy(&mut r, &mut pos, end, halted, buf, sink)? {
                    None => return Ok(()),
                    Some(cut) => cut,
                },
                Err(Attempt::Failed(f)) => return Err(f),
                Err(Attempt::Retry(c, m)) => (c, m),
            };
            if resumes >= self.retries {
                let tries = if self.retries == 0 {
                    String::new()
                } else {
                    format!(" (gave up after {} resumes)", self.retries)
                };
                return Err(RangeFailure::Cut(
                    problem.0,
                    format!(
                        "bytes {start}-{} of {}: {}{tries}",
                        end - 1,
                        self.len,
                        problem.1
                    ),
                ));
            }
            if !sleep_unless(backoff(resumes), halted) {
                return Err(RangeFailure::Stopped);
            }
            resumes += 1;
        }
    }

    /// Reads the body of `r` into the sink at `*pos` up to `end`. Ok(None): complete;
    /// Ok(Some((cause, why))): the connection was cut or timed out (resumable).
    fn copy(
        &self,
        r: &mut Response,
        pos: &mut u64,
        end: u64,
        halted: &dyn Fn() -> bool,
        buf: &mut [u8],
        sink: &mut Sink<'_>,
    ) -> Result<Option<(HttpCause, String)>, RangeFailure> {
        while *pos < end {
            if halted() {
                return Err(RangeFailure::Stopped);
            }
            let want = (end - *pos).min(buf.len() as u64) as usize;
            let n = match r.read(&mut buf[..want]) {
                Ok(0) => {
                    return Ok(Some((
                        HttpCause::of(HttpErrorKind::Body),
                        format!("the connection was cut at byte {} of the object", *pos),
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Ok(Some((
                        read_cause(&e),
                        format!(
                            "the connection was cut at byte {} of the object: {}",
                            *pos,
                            chain(&e)
                        ),
                    )))
                }
            };
            sink(*pos, &buf[..n])?;
            self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
            *pos += n as u64;
        }
        Ok(None)
    }

    /// `GET` of bytes `pos..end` pinned to the ETag, its answer checked.
    fn ranged_get(&self, pos: u64, end: u64) -> Result<Response, Attempt> {
        let last = end - 1;
        let value = |v: String| {
            HeaderValue::from_str(&v).map_err(|_| {
                Attempt::Failed(RangeFailure::Fatal(
                    HttpCause::of(HttpErrorKind::Other),
                    format!("the ETag {v:?} cannot be sent back"),
                ))
            })
        };
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, value(format!("bytes={pos}-{last}"))?);
        h.insert(header::IF_MATCH, value(self.etag.clone())?);
        // Offsets are those of the identity body.
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let what = format!("the ranged GET of bytes {pos}-{last}");
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = send(self.client.get(&self.url).headers(h), &self.url).map_err(|e| {
            Attempt::Retry(
                send_cause(&e),
                format!("{what}: {}", classify_send_error(&e).detail()),
            )
        })?;
        let status = resp.status();
        let etag = header_str(resp.headers(), header::ETAG);
        let pinned = &self.etag;
        let changed = |why: String| {
            Attempt::Failed(RangeFailure::Changed(format!(
                "the object changed during the {} ({what} pinned to ETag {pinned} {why})",
                self.activity
            )))
        };
        if status == StatusCode::PRECONDITION_FAILED {
            return Err(changed(
                "was answered 412 Precondition Failed to If-Match".into(),
            ));
        }
        if status == StatusCode::OK {
            if etag != *pinned {
                return Err(changed(format!("was answered 200 with ETag {etag}")));
            }
            return Err(Attempt::Failed(RangeFailure::NoRanges(format!(
                "{what} was answered 200 with the whole object: the server does not serve ranges"
            ))));
        }
        if status != StatusCode::PARTIAL_CONTENT {
            return Err(refused(&self.url, &what, status, resp, self.activity));
        }
        if !etag.is_empty() && etag != *pinned {
            return Err(changed(format!("was answered with ETag {etag}")));
        }
        let cr = header_str(resp.headers(), header::CONTENT_RANGE);
        if let Some((_, _, Some(total))) = parse_content_range(&cr) {
            if total != self.len {
                return Err(changed(format!(
                    "was answered with a total of {total} bytes instead of {}",
                    self.len
                )));
            }
        }
        check_partial(resp.headers(), pos, Some(last), Some(self.len)).map_err(|d| {
            Attempt::Failed(RangeFailure::Fatal(
                HttpCause::of(HttpErrorKind::Body),
                format!("{what}: {d}"),
            ))
        })?;
        check_identity(resp.headers(), &what)?;
        Ok(resp)
    }
}

/// A status other than 206: retried when the server may recover (5xx, 408, 429), else
/// fatal; a 200 to the opening request means the server serves no ranges. (For an
/// `s3://` URL the refusal names the bucket, the key and the S3 error code.)
fn refused(url: &str, what: &str, status: StatusCode, resp: Response, activity: &str) -> Attempt {
    if status == StatusCode::OK {
        return Attempt::Failed(RangeFailure::NoRanges(format!(
            "the server answered HTTP {status} to a Range request: a {activity} needs ranges"
        )));
    }
    let retry = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    let cause = HttpCause::status(status.as_u16());
    let d = format!("{what}: {}", super::s3::refusal(url, resp));
    if retry {
        Attempt::Retry(cause, d)
    } else {
        Attempt::Failed(RangeFailure::Fatal(cause, d))
    }
}

/// Byte offsets are those of the identity body: a coded answer is refused.
fn check_identity(h: &HeaderMap, what: &str) -> Result<(), Attempt> {
    let coding = header_str(h, header::CONTENT_ENCODING);
    if !coding.is_empty() && !coding.eq_ignore_ascii_case("identity") {
        return Err(Attempt::Failed(RangeFailure::Fatal(
            HttpCause::of(HttpErrorKind::Body),
            format!("{what} was answered with Content-Encoding {coding}"),
        )));
    }
    Ok(())
}

/// Sleeps `d` in short steps, waking early when `halted()`. False when halted.
fn sleep_unless(d: Duration, halted: &dyn Fn() -> bool) -> bool {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() {
        if halted() {
            return false;
        }
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
    !halted()
}
