//! Parallel ranged downloads: one large object over several connections at once, when
//! more connections make it faster.
//!
//! Used by `fetch::attempt_once` when the first response shows it is safe ([`plan`]):
//! a Content-Length of at least `HttpOptions::parallel_min_bytes`, `Accept-Ranges:
//! bytes`, a strong ETag, no content coding. The object is cut into pieces (at most
//! `MAX_PIECE` bytes each). Every piece other than the first response's is a range of
//! the object pinned to the first response's ETag and length
//! (`ranged::RangedObject`): its 206 must answer exactly that range of the same total
//! with the same ETag.
//!
//! **How many connections.** `HttpOptions::connections` K >= 2 splits at once: the
//! first response carries piece 0 and K - 1 more connections take the next pieces.
//! 0 (automatic) decides on the download itself, from what it measures:
//!
//! 1. *One connection first.* The decoder reads the first response itself, with no
//!    temp file in between: this is the single-connection download, plus a clock read
//!    around each read of the body.
//! 2. *Is that connection the limit?* After a sample ([`WINDOW`], 250 ms) the
//!    decoder's time splits into waiting for bytes and working on them: the connection
//!    delivers `r1` = bytes / time, the machine absorbs `A` = bytes / working time. If
//!    the decoder waited less than 15/16 of the time (`A < 16 r1`, see [`starved`]),
//!    something local is the limit (the decoder, the disk, the CPU, the client's own
//!    thread reading the socket) and it stays on one connection: a fast server close
//!    by, such as nginx on loopback.
//! 3. *Do two connections beat one?* Otherwise a probe: a second connection fetches
//!    the pieces that start about a second of the first connection ahead of it, into
//!    the temp file, while the decoder keeps reading the first. Measured over
//!    [`PROBE`] (250 ms) from the probe's first byte, the two together must deliver at
//!    least [`GAIN`] (1.4) times `r1`. A link that caps each connection (object
//!    stores, a throttled proxy) or a far server whose one connection is held back by
//!    its latency passes; a link whose total is the limit, or a client that cannot
//!    read faster, does not.
//!
//!    A clear case ends the sample or the probe after [`EARLY`] (100 ms) once 1 MiB
//!    has arrived: the decoder waited 31/32 of the time, or the two connections
//!    delivered 1.8 times one.
//! 4. *Split, or go on.* Passed: the first connection finishes the piece it is in, the
//!    probe goes on with its pieces, and two more connections take the rest, 4 in all
//!    (`DEFAULT_CONNECTIONS`); from then on the decoder follows the pieces (below).
//!    Failed: the probe stops (what it fetched is not used), the decoder goes on
//!    reading the first connection, and the measurement starts over with a sample
//!    twice as long (at most [`MAX_WINDOW`], 8 s).
//!
//! A cut of the first connection before any split resumes as pinned ranges over one
//! connection (the decision then ends). The measurement costs two clock reads per read
//! of the body; a failed probe costs about its 250 ms of bytes fetched twice.
//!
//! Once split:
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
//! - Cost: the first response's connection is closed once its piece is in (what the
//!   server had already sent beyond it, at most a TCP window, is discarded). Each later
//!   piece is one request on a kept-alive connection.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Scope;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap};

use super::client::header_str;
use super::ranged::{RangeFailure, RangeFailure as PartFailure, RangedObject};
use super::retry::stopped;
use super::{HttpOptions, DEFAULT_CONNECTIONS};
use crate::error::{Error, HttpCause, HttpErrorKind};
use crate::log::{debug, info};

/// The largest piece handed to one connection at a time.
const MAX_PIECE: u64 = 8 << 20;
/// The smallest piece (small objects forced parallel in tests).
const MIN_PIECE: u64 = 64 << 10;
/// Bytes read from a connection per `pwrite`.
const BUFFER: usize = 256 << 10;

/// The first sample of one connection before the automatic decision.
const WINDOW: Duration = Duration::from_millis(250);
/// The longest sample: after each probe that found no gain the next sample is twice
/// as long, up to this.
const MAX_WINDOW: Duration = Duration::from_secs(8);
/// The share of a sample the decoder must have waited for bytes before a second
/// connection is tried, for a download of at most `k` connections: the machine absorbs
/// at least `4 k` times what one delivers (15/16 for 4). `k` connections' worth at
/// about twice the single connection's cost per byte (the pieces go through the temp
/// file, written by `k` threads), and twice again because the decoder's waits are not
/// all the network's: it also waits for the client thread that reads the socket.
/// Measured on a loaded 2-core machine: 15-86% against nginx on loopback, 97-99%
/// through a 40 MB/s link.
fn starved(k: usize) -> f64 {
    1.0 - 1.0 / (4 * k.max(2)) as f64
}

/// Half of `starved`'s margin again (31/32 for 4): the sample ends early.
fn clearly_starved(k: usize) -> f64 {
    1.0 - 1.0 / (8 * k.max(2)) as f64
}

/// How long a probe's two connections are measured, from the probe's first byte.
const PROBE: Duration = Duration::from_millis(250);
/// Two connections must together deliver this many times the rate of one (halfway,
/// geometrically, between "no gain" and "twice").
const GAIN: f64 = 1.4;
/// A sample or a probe whose verdict is clear ends after this long instead, once it
/// has seen `EARLY_BYTES` (a rate of a few bursts is no rate): the decoder waited at
/// least [`clearly_starved`], or two connections delivered `CLEAR_GAIN` times one.
const EARLY: Duration = Duration::from_millis(100);
const EARLY_BYTES: u64 = 1 << 20;
const CLEAR_GAIN: f64 = 1.8;
/// A probe starts this many `PROBE`s of the first connection ahead of it, so that the
/// first connection does not reach the probe's pieces before the probe is judged.
const PROBE_AHEAD: f64 = 4.0;
/// The probe generation of a worker that is not a probe (never called off).
const NOT_A_PROBE: u64 = u64::MAX;

/// How a parallel download will go.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub len: u64,
    pub etag: String,
    /// The most connections (exactly these when not `automatic`).
    pub connections: usize,
    pub piece: u64,
    /// `HttpOptions::connections` 0: start on one connection and split only when the
    /// measurement says so (module docs).
    pub automatic: bool,
}

/// The parallel plan for the response `h` of a whole-object GET, or None when it
/// must stay on one connection.
pub(crate) fn plan(
    url: &str,
    h: &HeaderMap,
    content_length: Option<u64>,
    opts: &HttpOptions,
) -> Option<Plan> {
    let (k, automatic) = match opts.connections {
        0 => (DEFAULT_CONNECTIONS, true),
        k => (k, false),
    };
    let k = k as u64;
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
        automatic,
    })
}

struct Progress {
    /// Bytes of each piece in the file, from its start.
    done: Vec<u64>,
    /// A worker is fetching the piece.
    claimed: Vec<bool>,
    /// The lowest piece not yet complete (once split).
    low: usize,
    /// Where `claim` starts looking: the pieces below it are claimed or complete (or,
    /// before a split, the first connection's).
    scan: usize,
    failure: Option<PartFailure>,
}

struct Shared<'a> {
    url: &'a str,
    /// The object, pinned to the first response's ETag and length.
    object: RangedObject,
    file: File,
    plan: Plan,
    pieces: usize,
    /// The consumer is done (or failed): workers stop at their next read.
    abort: AtomicBool,
    /// The latest probe called off: a probe's worker stops once this reaches its own
    /// generation.
    called_off: AtomicU64,
    /// Bytes written into the file by the workers so far (a probe's rate).
    fetched: AtomicU64,
    /// Workers started so far (thread names).
    started: AtomicUsize,
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

    /// Moves `low` past the complete pieces.
    fn advance(&self, p: &mut Progress) {
        while p.low < self.pieces {
            let (a, b) = self.bounds(p.low);
            if p.done[p.low] < b - a {
                break;
            }
            p.low += 1;
        }
    }

    /// The lowest piece from `scan` on that no worker fetches and is not complete,
    /// now claimed, and the byte to fetch it from.
    fn claim(&self) -> Option<(usize, u64)> {
        let mut p = self.lock();
        let mut i = p.scan;
        while i < self.pieces {
            let (a, b) = self.bounds(i);
            if !p.claimed[i] && p.done[i] < b - a {
                p.claimed[i] = true;
                p.scan = i + 1;
                return Some((i, a + p.done[i]));
            }
            i += 1;
        }
        p.scan = i;
        None
    }

    /// Piece `i` is free again (its worker stopped; what it fetched stays).
    fn unclaim(&self, i: usize) {
        let mut p = self.lock();
        p.claimed[i] = false;
        p.scan = p.scan.min(i);
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

    fn called_off(&self, generation: u64) -> bool {
        self.called_off.load(Ordering::Relaxed) >= generation
    }
}

/// The object as it arrives, as a `Read` from byte 0. Before a split it reads the
/// first response itself (and measures it, see the module docs); after, it blocks
/// until the next bytes are part of the contiguous prefix and fails as soon as a piece
/// fails.
pub(crate) struct Assembled<'scope, 'env, 'a> {
    shared: &'env Shared<'a>,
    /// Where the workers run (they are started by the decision, from `read`).
    scope: &'scope Scope<'scope, 'env>,
    pos: u64,
    /// The prefix `..released` has been decoded and its space given back.
    released: u64,
    /// Bytes, rate and ETA on a terminal (`crate::progress`), as decoded.
    progress: crate::progress::Progress,
    /// Until a split: the first response, read by the decoder itself.
    direct: Option<Direct>,
}

/// The first connection before a split, and its measurement.
struct Direct {
    resp: Response,
    /// The current sample: its length, start, the position then and the time the
    /// decoder waited for bytes since.
    window: Duration,
    start: Instant,
    start_pos: u64,
    waited: Duration,
    probes: u64,
    probe: Option<Probe>,
}

impl Direct {
    fn restart(&mut self, now: Instant, pos: u64) {
        self.start = now;
        self.start_pos = pos;
        self.waited = Duration::ZERO;
    }
}

/// A second connection on trial.
struct Probe {
    generation: u64,
    /// The start of the probe's pieces: the first connection waits there for the
    /// verdict.
    bound: u64,
    /// One connection's rate and what the machine absorbs, from the sample (bytes/s).
    r1: f64,
    absorb: f64,
    /// `fetched` when the probe started.
    fetched0: u64,
    /// The probe's first byte, seen: (when, the first connection's position, fetched).
    seen: Option<(Instant, u64, u64)>,
}

impl Probe {
    /// Since the probe's first byte: the first connection's and the probe's rates
    /// (bytes/s), and the bytes the probe fetched.
    fn rates(&self, now: Instant, pos: u64, fetched: u64) -> (f64, f64, u64) {
        match self.seen {
            Some((t0, pos0, f0)) => {
                let dt = now.duration_since(t0).as_secs_f64().max(1e-9);
                let probed = fetched - f0;
                ((pos - pos0) as f64 / dt, probed as f64 / dt, probed)
            }
            None => (0.0, 0.0, 0),
        }
    }
}

fn mb(bytes_per_sec: f64) -> f64 {
    bytes_per_sec / 1e6
}

/// Decoded bytes are given back to the filesystem in steps of this many.
const RELEASE_STEP: u64 = 4 << 20;

impl<'scope, 'env, 'a> Assembled<'scope, 'env, 'a> {
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

    /// Starts a worker: `first` is a piece, the byte to start it from and a response
    /// already carrying the object from there; `generation` a probe's, or
    /// `NOT_A_PROBE`.
    fn spawn(&self, first: Option<(usize, u64, Response)>, generation: u64) {
        let s = self.shared;
        let n = s.started.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("harmonics-http-part-{n}"))
            .spawn_scoped(self.scope, move || worker(s, first, generation));
        if let Err(e) = spawned {
            s.fail(PartFailure::Io(Error::http(
                HttpCause::of(HttpErrorKind::Other),
                s.url,
                format!("cannot start a download thread: {e}"),
            )));
        }
    }

    /// From here on the decoder follows the pieces. `first`, a response at `self.pos`,
    /// finishes the piece it is in; `workers` more connections start (a running
    /// probe's is not counted).
    fn split(&mut self, first: Option<Response>, workers: usize) {
        let s = self.shared;
        let p = self.pos;
        self.direct = None;
        self.released = p;
        if p >= s.plan.len {
            return;
        }
        let i0 = (p / s.plan.piece) as usize;
        let mut handed = {
            let mut g = s.lock();
            let (a, b) = s.bounds(i0);
            g.done[i0] = g.done[i0].max(p - a);
            g.low = i0;
            s.advance(&mut g);
            g.scan = g.low;
            match first {
                // The piece may be the probe's own (the first connection reached it).
                Some(r) if !g.claimed[i0] && g.done[i0] < b - a => {
                    g.claimed[i0] = true;
                    Some((i0, p, r))
                }
                _ => None,
            }
        };
        s.cv.notify_all();
        for _ in 0..workers {
            self.spawn(handed.take(), NOT_A_PROBE);
        }
    }

    /// Calls off a running probe (its worker stops, its pieces are free again).
    fn call_off_probe(&mut self) {
        if let Some(p) = self.direct.as_mut().and_then(|d| d.probe.take()) {
            self.shared
                .called_off
                .fetch_max(p.generation, Ordering::Relaxed);
        }
    }

    /// Reads the first response. None: it was cut, the pieces took over.
    fn read_direct(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let s = self.shared;
        loop {
            if stopped(s.stop) {
                return Err(io::Error::other("download stopped"));
            }
            let Some(d) = self.direct.as_mut() else {
                return Ok(None);
            };
            let mut want = (s.plan.len - self.pos).min(buf.len() as u64);
            if want == 0 {
                return Ok(Some(0));
            }
            if let Some(p) = &d.probe {
                want = want.min(p.bound - self.pos);
                if want == 0 {
                    // At the probe's pieces: its verdict now.
                    self.decide(Instant::now());
                    continue;
                }
            }
            let t = Instant::now();
            match d.resp.read(&mut buf[..want as usize]) {
                Ok(n) if n > 0 => {
                    let now = Instant::now();
                    d.waited += now - t;
                    self.pos += n as u64;
                    self.progress.update(self.pos, Some(s.plan.len));
                    self.steer(now);
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => {
                    let why = match r {
                        Err(e) => super::client::chain(&e),
                        _ => "end of the body".into(),
                    };
                    debug(&format!(
                        "{}: the first connection was cut at byte {} ({why}); resuming as \
                         ranges on one connection",
                        s.url, self.pos
                    ));
                    self.call_off_probe();
                    self.split(None, 1);
                    return Ok(None);
                }
            }
        }
    }

    /// After a read of the first response: the end of a sample or of a probe.
    fn steer(&mut self, now: Instant) {
        let s = self.shared;
        let pos = self.pos;
        let Some(d) = self.direct.as_mut() else {
            return;
        };
        if let Some(p) = d.probe.as_mut() {
            let fetched = s.fetched.load(Ordering::Relaxed);
            let Some((t0, ..)) = p.seen else {
                if fetched > p.fetched0 {
                    p.seen = Some((now, pos, fetched));
                }
                return;
            };
            let dt = now.duration_since(t0);
            let (rf, rp, probed) = p.rates(now, pos, fetched);
            let clear = dt >= EARLY && probed >= EARLY_BYTES && rf + rp >= CLEAR_GAIN * p.r1;
            if dt >= PROBE || clear {
                self.decide(now);
            }
            return;
        }
        let wall = now.duration_since(d.start);
        let k = s.plan.connections;
        // A clear case need not wait for the whole sample.
        let clear = wall >= EARLY
            && pos - d.start_pos >= EARLY_BYTES
            && d.waited.as_secs_f64() >= clearly_starved(k) * wall.as_secs_f64();
        if wall < d.window && !clear {
            return;
        }
        let wall = wall.as_secs_f64();
        let waited = d.waited.as_secs_f64().min(wall);
        let bytes = (pos - d.start_pos) as f64;
        let (r1, absorb) = (bytes / wall, bytes / (wall - waited).max(1e-9));
        d.restart(now, pos);
        let share = waited / wall;
        if share < starved(k) {
            debug(&format!(
                "{}: one connection delivers {:.1} MB/s and the decoder waited {:.0}% of \
                 {wall:.2} s for it: staying on one connection",
                s.url,
                mb(r1),
                share * 100.0
            ));
            return;
        }
        self.start_probe(r1, absorb);
    }

    /// Starts a second connection on the pieces about `PROBE_AHEAD` probes ahead.
    fn start_probe(&mut self, r1: f64, absorb: f64) {
        let s = self.shared;
        let piece = s.plan.piece;
        let ahead = ((r1 * PROBE.as_secs_f64() * PROBE_AHEAD) as u64).max(piece);
        let j = (self.pos + ahead).div_ceil(piece);
        if j >= s.pieces as u64 {
            debug(&format!(
                "{}: one connection delivers {:.1} MB/s, the machine absorbs {:.1} MB/s; \
                 too little is left to try a second connection",
                s.url,
                mb(r1),
                mb(absorb)
            ));
            return;
        }
        s.lock().scan = j as usize;
        let Some(d) = self.direct.as_mut() else {
            return;
        };
        d.probes += 1;
        let generation = d.probes;
        d.probe = Some(Probe {
            generation,
            bound: j * piece,
            r1,
            absorb,
            fetched0: s.fetched.load(Ordering::Relaxed),
            seen: None,
        });
        debug(&format!(
            "{}: one connection delivers {:.1} MB/s, the machine absorbs {:.1} MB/s: \
             trying a second connection from byte {}",
            s.url,
            mb(r1),
            mb(absorb),
            j * piece
        ));
        self.spawn(None, generation);
    }

    /// The probe's verdict: split, or call it off and sample again, longer.
    fn decide(&mut self, now: Instant) {
        let s = self.shared;
        let pos = self.pos;
        let Some(d) = self.direct.as_mut() else {
            return;
        };
        let Some(p) = d.probe.take() else {
            return;
        };
        let fetched = s.fetched.load(Ordering::Relaxed);
        let (rf, rp, _) = p.rates(now, pos, fetched);
        let r2 = rf + rp;
        if r2 >= GAIN * p.r1 {
            let n = s.plan.connections.max(2);
            info(&format!(
                "{}: downloading over {n} connections from byte {pos}: one delivered {:.1} \
                 MB/s, two {:.1} MB/s ({:.1} + {:.1}), the machine absorbs {:.1} MB/s",
                s.url,
                mb(p.r1),
                mb(r2),
                mb(rf),
                mb(rp),
                mb(p.absorb)
            ));
            let first = self.direct.take().map(|d| d.resp);
            // The probe's worker goes on: it is one of the `n`.
            self.split(first, n - 1);
        } else {
            s.called_off.fetch_max(p.generation, Ordering::Relaxed);
            d.window = (d.window * 2).min(MAX_WINDOW);
            d.restart(now, pos);
            debug(&format!(
                "{}: two connections delivered {:.1} MB/s ({:.1} + {:.1}), one {:.1} MB/s: \
                 staying on one connection (next sample {:.1} s)",
                s.url,
                mb(r2),
                mb(rf),
                mb(rp),
                mb(p.r1),
                d.window.as_secs_f64()
            ));
        }
    }

    /// After the decoder is done: every byte must arrive, also past what it needed.
    fn finish(&mut self) {
        let s = self.shared;
        let mut buf = vec![0u8; 64 << 10];
        while self.direct.is_some() {
            match self.read_direct(&mut buf) {
                Ok(Some(0)) => {
                    self.call_off_probe();
                    self.direct = None;
                    return;
                }
                Ok(_) => {}
                Err(_) => {
                    self.call_off_probe();
                    s.fail(PartFailure::Stopped);
                    return;
                }
            }
        }
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
}

impl Read for Assembled<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.direct.is_some() {
            if let Some(n) = self.read_direct(buf)? {
                return Ok(n);
            }
        }
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

/// Downloads the object of `first` (a 200 to a whole-object GET, per `plan`) while
/// `consume` reads it from byte 0: over `plan.connections` connections at once, or,
/// when `plan.automatic`, over one until more are measured to help (module docs), the
/// pieces going through an unnamed file in `dir`. Returns what `consume` returned and,
/// when the download itself failed, why (which then explains `consume`'s read error).
/// `consume` returning Ok is followed by the wait for every remaining byte: the result
/// is complete only when all of the object has arrived.
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
        abort: AtomicBool::new(false),
        called_off: AtomicU64::new(0),
        fetched: AtomicU64::new(0),
        started: AtomicUsize::new(0),
        stop,
        progress: Mutex::new(Progress {
            done: vec![0; pieces],
            claimed: vec![false; pieces],
            low: 0,
            scan: 0,
            failure: None,
        }),
        cv: Condvar::new(),
        plan,
    };
    let result = std::thread::scope(|scope| {
        let s = &shared;
        let mut reader = Assembled {
            shared: s,
            scope,
            pos: 0,
            released: 0,
            progress: crate::progress::Progress::new(url),
            direct: None,
        };
        if s.plan.automatic {
            let now = Instant::now();
            reader.direct = Some(Direct {
                resp: first,
                window: WINDOW,
                start: now,
                start_pos: 0,
                waited: Duration::ZERO,
                probes: 0,
                probe: None,
            });
        } else {
            // Worker 0 reads piece 0 from the first response; the others start at once.
            reader.split(Some(first), s.plan.connections);
        }
        let r = consume(&mut reader);
        if r.is_ok() {
            reader.finish();
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

/// Takes pieces until none is left, the download is halted or (for a probe, of
/// `generation`) the probe is called off. `first`: a piece to start with, from a
/// response in hand.
fn worker(s: &Shared<'_>, mut first: Option<(usize, u64, Response)>, generation: u64) {
    let mut buf = vec![0u8; BUFFER];
    let halted = || s.halted() || s.called_off(generation);
    loop {
        let (i, from, resp) = match first.take() {
            Some((i, from, r)) => (i, from, Some(r)),
            None => match s.claim() {
                Some((i, from)) => (i, from, None),
                None => return,
            },
        };
        if halted() {
            s.unclaim(i);
            return;
        }
        if let Err(f) = fetch_piece(s, i, from, resp, &halted, &mut buf) {
            if halted() && !matches!(f, PartFailure::Changed(_)) {
                // Not this piece's fault: the consumer ended, the producer stopped or
                // the probe was called off.
                s.unclaim(i);
                return;
            }
            s.fail(f);
            return;
        }
    }
}

/// Downloads piece `i` from byte `from` (from `first` when given, a response carrying
/// the object from there), resuming it from the byte it reached after a cut.
fn fetch_piece(
    s: &Shared<'_>,
    i: usize,
    from: u64,
    first: Option<Response>,
    halted: &dyn Fn() -> bool,
    buf: &mut [u8],
) -> std::result::Result<(), PartFailure> {
    let (start, end) = s.bounds(i);
    s.object
        .fetch(from, end, first, halted, buf, &mut |pos, bytes| {
            s.file.write_all_at(bytes, pos).map_err(|e| {
                RangeFailure::Io(Error::io("cannot write the download of", s.url, e))
            })?;
            s.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let mut p = s.lock();
            p.done[i] = p.done[i].max(pos + bytes.len() as u64 - start);
            let advanced = p.low == i;
            if advanced {
                s.advance(&mut p);
            }
            drop(p);
            if advanced {
                s.cv.notify_all();
            }
            Ok(())
        })
}
