//! Parallel ranged downloads: one large object over several connections at once.
//!
//! Used by `fetch::attempt_once` when the first response shows it is safe
//! ([`plan`]): a Content-Length of at least `HttpOptions::parallel_min_bytes`,
//! `Accept-Ranges: bytes`, a strong ETag, no content coding. The object is cut into
//! pieces (at most `MAX_PIECE` bytes each) handed out in order to the workers, one
//! connection each; the first response itself carries piece 0. Every other piece is a
//! range of the object pinned to the first response's ETag and length
//! (`ranged::RangedObject`): its 206 must answer exactly that range of the same total
//! with the same ETag.
//!
//! - Pieces are written with `pwrite` at their offsets into an unnamed temp file in the
//!   cache directory (`O_TMPFILE`: nothing is left behind by a failure or a crash).
//! - The caller decodes the object *while it arrives*: [`Assembled`] reads the file up
//!   to the contiguous prefix that has arrived (the lowest incomplete piece and how far
//!   it got), so the records go through exactly the decoder, checks and `CacheWriter`
//!   of a single-connection download, and the extra local pass overlaps the network:
//!   at the end only the pieces past the prefix are left to read.
//! - A cut connection resumes its own piece from the byte it reached (backoff, same
//!   pin), up to `HttpOptions::retries` times per piece.
//! - A changed object (a 412 to the pin, another ETag, another total) ends the attempt
//!   with [`RangeFailure::Changed`]: the caller discards everything and restarts, never
//!   splicing two versions.
//! - The decoded prefix is punched out of the temp file as the decoder passes it
//!   (`FALLOC_FL_PUNCH_HOLE`): the file holds only what is ahead of the decoder, about
//!   the pieces in flight, not the object, and its pages never reach the disk.
//! - Memory: one `BUFFER` per connection; nothing is held in memory beyond that.
//! - Cost: piece 0 comes from the first response, whose connection is closed once the
//!   piece is in (what the server had already sent beyond it, at most a TCP window,
//!   is discarded). Each later piece is one request on a kept-alive connection.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap};

use super::client::header_str;
use super::ranged::{RangeFailure, RangeFailure as PartFailure, RangedObject};
use super::retry::stopped;
use super::{HttpOptions, DEFAULT_CONNECTIONS};
use crate::error::{Error, HttpCause, HttpErrorKind};

/// The largest piece handed to one connection at a time.
const MAX_PIECE: u64 = 8 << 20;
/// The smallest piece (small objects forced parallel in tests).
const MIN_PIECE: u64 = 64 << 10;
/// Bytes read from a connection per `pwrite`.
const BUFFER: usize = 256 << 10;

/// How a parallel download will go.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub len: u64,
    pub etag: String,
    pub connections: usize,
    pub piece: u64,
}

/// The parallel plan for the response `h` of a whole-object GET, or None when it
/// must stay on one connection.
pub(crate) fn plan(
    url: &str,
    h: &HeaderMap,
    content_length: Option<u64>,
    opts: &HttpOptions,
) -> Option<Plan> {
    let k = match opts.connections {
        0 => DEFAULT_CONNECTIONS,
        k => k,
    } as u64;
    let len = content_length?;
    if k < 2 || len < opts.parallel_min_bytes.max(1) {
        return None;
    }
    // Ranges only where the server says it serves them, of the identity body (the
    // byte offsets of a coded body are not those of the object). The S3 API serves
    // ranges of every object (GetObject `Range`), also where a compatible store does
    // not say so (s3s-fs); one that ignores them anyway is detected by its 200 and
    // downloaded again on one connection.
    let ranges = header_str(h, header::ACCEPT_RANGES);
    let s3 = super::s3::is_s3(url) && !ranges.eq_ignore_ascii_case("none");
    if !ranges.eq_ignore_ascii_case("bytes") && !s3 {
        return None;
    }
    let coding = header_str(h, header::CONTENT_ENCODING);
    if !coding.is_empty() && !coding.eq_ignore_ascii_case("identity") {
        return None;
    }
    // A range is pinned by a strong ETag (a Last-Modified cannot pin a range).
    let etag = header_str(h, header::ETAG);
    if etag.is_empty() || etag.starts_with("W/") {
        return None;
    }
    let piece = len.div_ceil(k * 8).clamp(MIN_PIECE, MAX_PIECE);
    let pieces = len.div_ceil(piece);
    if pieces < 2 {
        return None;
    }
    Some(Plan {
        len,
        etag,
        connections: k.min(pieces) as usize,
        piece,
    })
}

struct Progress {
    /// Bytes written of each piece, from its start.
    done: Vec<u64>,
    /// The lowest piece not yet complete.
    low: usize,
    failure: Option<PartFailure>,
}

struct Shared<'a> {
    url: &'a str,
    /// The object, pinned to the first response's ETag and length.
    object: RangedObject,
    file: File,
    plan: Plan,
    pieces: usize,
    next: AtomicUsize,
    /// The consumer is done (or failed): workers stop at their next read.
    abort: AtomicBool,
    stop: Option<&'a AtomicBool>,
    progress: Mutex<Progress>,
    cv: Condvar,
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bounds(&self, i: usize) -> (u64, u64) {
        let start = i as u64 * self.plan.piece;
        (start, (start + self.plan.piece).min(self.plan.len))
    }

    /// The end of the contiguous prefix that has arrived.
    fn watermark(&self, p: &Progress) -> u64 {
        if p.low >= self.pieces {
            self.plan.len
        } else {
            self.bounds(p.low).0 + p.done[p.low]
        }
    }

    fn fail(&self, f: PartFailure) {
        let mut p = self.lock();
        if p.failure.is_none() {
            p.failure = Some(f);
        }
        drop(p);
        self.abort.store(true, Ordering::Relaxed);
        self.cv.notify_all();
    }

    fn halted(&self) -> bool {
        if stopped(self.stop) {
            // Also ends the backoff sleeps, which watch `abort`.
            self.abort.store(true, Ordering::Relaxed);
        }
        self.abort.load(Ordering::Relaxed)
    }
}

/// The object as it arrives, as a `Read` from byte 0: blocks until the next bytes are
/// part of the contiguous prefix; fails as soon as a piece fails.
pub(crate) struct Assembled<'s, 'a> {
    shared: &'s Shared<'a>,
    pos: u64,
    /// The prefix `..released` has been decoded and its space given back.
    released: u64,
    /// Bytes, rate and ETA on a terminal (`crate::progress`), as decoded.
    progress: crate::progress::Progress,
}

/// Decoded bytes are given back to the filesystem in steps of this many.
const RELEASE_STEP: u64 = 4 << 20;

impl Assembled<'_, '_> {
    /// Punches the decoded prefix out of the temp file: its pages and blocks are freed
    /// at once, so the file never holds much more than the pieces still ahead of the
    /// decoder (not the whole object), and no dirty page of it is ever written back.
    /// Best effort: a filesystem without hole punching keeps the pages until the end.
    fn release(&mut self) {
        let end = self.pos / RELEASE_STEP * RELEASE_STEP;
        if end <= self.released {
            return;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.shared.file);
        // SAFETY: fallocate on a descriptor we own; no memory is passed.
        unsafe {
            libc::fallocate(
                fd,
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                self.released as libc::off_t,
                (end - self.released) as libc::off_t,
            );
        }
        self.released = end;
    }
}

impl Read for Assembled<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = self.shared;
        let mut p = s.lock();
        loop {
            if let Some(f) = &p.failure {
                return Err(io::Error::other(f.detail()));
            }
            if stopped(s.stop) {
                return Err(io::Error::other("download stopped"));
            }
            let wm = s.watermark(&p);
            if self.pos < wm {
                drop(p);
                let n = (wm - self.pos).min(buf.len() as u64) as usize;
                s.file.read_exact_at(&mut buf[..n], self.pos)?;
                self.pos += n as u64;
                self.release();
                self.progress.update(self.pos, Some(s.plan.len));
                return Ok(n);
            }
            if self.pos >= s.plan.len {
                return Ok(0);
            }
            // A bounded wait: the stop flag is not signalled through the condvar.
            p =
                s.cv.wait_timeout(p, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
        }
    }
}

/// Downloads the object of `first` (a 200 to a whole-object GET, per `plan`) over
/// `plan.connections` connections, into an unnamed file in `dir`, while `consume`
/// reads it from byte 0. Returns what `consume` returned and, when the download
/// itself failed, why (which then explains `consume`'s read error). `consume`
/// returning Ok is followed by the wait for every remaining byte: the result is
/// complete only when all of the object has arrived.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<T, E>(
    client: &Client,
    url: &str,
    opts: &HttpOptions,
    first: Response,
    plan: Plan,
    dir: &Path,
    stop: Option<&AtomicBool>,
    consume: impl FnOnce(&mut dyn Read) -> std::result::Result<T, E>,
) -> (Option<std::result::Result<T, E>>, Option<PartFailure>) {
    let file = match tempfile::tempfile_in(dir).and_then(|f| f.set_len(plan.len).map(|_| f)) {
        Ok(f) => f,
        Err(e) => {
            return (
                None,
                Some(PartFailure::Io(Error::io(
                    "cannot create the temporary download file in",
                    dir,
                    e,
                ))),
            )
        }
    };
    let pieces = plan.len.div_ceil(plan.piece) as usize;
    let object = RangedObject::pinned(
        client.clone(),
        url,
        &plan.etag,
        plan.len,
        opts.retries,
        "download",
    );
    let shared = Shared {
        url,
        object,
        file,
        pieces,
        next: AtomicUsize::new(1),
        abort: AtomicBool::new(false),
        stop,
        progress: Mutex::new(Progress {
            done: vec![0; pieces],
            low: 0,
            failure: None,
        }),
        cv: Condvar::new(),
        plan,
    };
    let k = shared.plan.connections;
    let result = std::thread::scope(|scope| {
        let s = &shared;
        let mut first = Some(first);
        for w in 0..k {
            // Worker 0 reads piece 0 from the first response; the others start at once.
            let resp = first.take().filter(|_| w == 0);
            let spawned = std::thread::Builder::new()
                .name(format!("harmonics-http-part-{w}"))
                .spawn_scoped(scope, move || worker(s, resp));
            if let Err(e) = spawned {
                s.fail(PartFailure::Io(Error::http(
                    HttpCause::of(HttpErrorKind::Other),
                    url,
                    format!("cannot start a download thread: {e}"),
                )));
                break;
            }
        }
        let mut reader = Assembled {
            shared: s,
            pos: 0,
            released: 0,
            progress: crate::progress::Progress::new(url),
        };
        let r = consume(&mut reader);
        if r.is_ok() {
            // Every byte must have arrived, also past what the decoder needed.
            let mut p = s.lock();
            while p.failure.is_none() && s.watermark(&p) < s.plan.len && !stopped(s.stop) {
                p =
                    s.cv.wait_timeout(p, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
            }
            if p.failure.is_none() && s.watermark(&p) < s.plan.len {
                p.failure = Some(PartFailure::Stopped);
            }
        }
        s.abort.store(true, Ordering::Relaxed);
        r
    });
    let failure = shared
        .progress
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .failure;
    (Some(result), failure)
}

/// Takes pieces in order until none is left or the download is halted.
fn worker(s: &Shared<'_>, mut first: Option<Response>) {
    let mut i = if first.is_some() {
        0
    } else {
        s.next.fetch_add(1, Ordering::Relaxed)
    };
    let mut buf = vec![0u8; BUFFER];
    while i < s.pieces && !s.halted() {
        if let Err(f) = fetch_piece(s, i, first.take(), &mut buf) {
            if s.halted() && !matches!(f, PartFailure::Changed(_)) {
                // Not this piece's fault: the consumer ended or the producer stopped.
                return;
            }
            s.fail(f);
            return;
        }
        i = s.next.fetch_add(1, Ordering::Relaxed);
    }
}

/// Downloads piece `i` (from `first`, a response carrying the object from byte 0, for
/// piece 0), resuming it from the byte it reached after a cut.
fn fetch_piece(
    s: &Shared<'_>,
    i: usize,
    first: Option<Response>,
    buf: &mut [u8],
) -> std::result::Result<(), PartFailure> {
    let (start, end) = s.bounds(i);
    let halted = || s.halted();
    s.object
        .fetch(start, end, first, &halted, buf, &mut |pos, bytes| {
            s.file.write_all_at(bytes, pos).map_err(|e| {
                RangeFailure::Io(Error::io("cannot write the download of", s.url, e))
            })?;
            let mut p = s.lock();
            p.done[i] = pos + bytes.len() as u64 - start;
            let advanced = p.low == i;
            if advanced {
                while p.low < s.pieces {
                    let (a, b) = s.bounds(p.low);
                    if p.done[p.low] < b - a {
                        break;
                    }
                    p.low += 1;
                }
            }
            drop(p);
            if advanced {
                s.cv.notify_all();
            }
            Ok(())
        })
}
