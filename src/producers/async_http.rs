//! `AsyncHttpProducer`: the download runs in a background thread; records are served
//! from the temp cache file as soon as they have been written and decoded.
//!
//! The thread publishes its progress (records committed to the temp file and where
//! they end) through a `Mutex` + `Condvar`. The reader holds its own descriptor of the
//! temp file (still valid after the rename or unlink that ends the download) and reads
//! each record with `pread` into one reusable buffer, checking its frame CRC. Once the
//! download has finished, it switches to the memory-mapped `CacheReader` of the final
//! file. A background failure is returned by the next call.
//!
//! Random access (`view_at`) is served from the finished cache only: while the
//! download runs, `view_at` waits for it to complete (the temp file has no index until
//! its last record is in), then serves record `i` with the cache's O(1) index. The
//! sequential position is unaffected.
//!
//! **One version, never a mix.** A download that starts over (a cut that could not be
//! resumed, a resume answered with the whole changed object, a parallel download whose
//! object changed) writes a new temp file: a new *generation*. Once records (or the
//! count, through `size`) have been handed out, a new generation is served only if it
//! is the same object as far as the caller has seen: its first N frames carry the CRCs
//! of the N records served (a running digest of them is kept, 4 bytes a record are
//! not), and its count is the one `size` reported. Otherwise every later call fails
//! with `Error::Http` naming the URL: "the object changed after N records were
//! served". A later open reads the new version.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::http::{cache_outcome, host_port_constructors, Served};
use crate::cache::{check_record_wire, parse_frame, CacheReader, CacheWriter, Frame, FRAME_HEADER};
use crate::error::{Error, HttpCause, HttpErrorKind, Result};
use crate::http::{http_identity, s3, HttpOptions, HttpOutcome, Observer, Source, StopFlag};
use crate::producers::{CacheOutcome, Producer, ShapeCheck};
use crate::tensor::TensorRef;

/// Alignment of record data in the cache file, and of the views served from it.
const DATA_ALIGN: usize = crate::cache::DATA_ALIGNMENT;

/// Progress of the background download.
struct State {
    /// Incremented each time a new temp file is started (a restarted download).
    generation: u64,
    file: Option<Arc<File>>,
    data_start: u64,
    /// Records fully written (and flushed) to `file`, and the offset where they end.
    committed: u64,
    end: u64,
    /// The record count, once known.
    total: Option<u64>,
    outcome: HttpOutcome,
    /// The finished download (or its failure), taken by the reader.
    done: Option<Result<(CacheReader, HttpOutcome)>>,
    /// The download thread has returned from all its work (set last).
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    stop: StopFlag,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The newest generation's temp file (the file a finished download published) and
/// where its records are.
struct Latest {
    generation: u64,
    file: Option<Arc<File>>,
    start: u64,
    end: u64,
}

impl State {
    fn latest(&self) -> Latest {
        Latest {
            generation: self.generation,
            file: self.file.clone(),
            start: self.data_start,
            end: self.end,
        }
    }
}

/// Publishes the download's progress to the reader.
struct Publisher {
    shared: Arc<Shared>,
    /// The download's URL, named when it is stopped.
    url: String,
}

impl Observer for Publisher {
    fn outcome(&mut self, o: HttpOutcome) {
        self.shared.lock().outcome = o;
    }

    fn started(&mut self, w: &CacheWriter) -> Result<()> {
        let file = File::open(w.temp_path())
            .map_err(|e| Error::io("cannot open temporary cache file", w.temp_path(), e))?;
        let mut s = self.shared.lock();
        s.generation += 1;
        s.file = Some(Arc::new(file));
        s.data_start = w.bytes();
        s.committed = 0;
        s.end = w.bytes();
        s.total = None;
        Ok(())
    }

    fn total(&mut self, n: u64) {
        self.shared.lock().total = Some(n);
        self.shared.cv.notify_all();
    }

    fn record(&mut self, _w: &mut CacheWriter) -> Result<()> {
        if self.shared.stop.load(Ordering::Relaxed) {
            return Err(Error::Stopped(self.url.clone()));
        }
        Ok(())
    }

    fn complete(&mut self) -> bool {
        // Under the lock: `drop` decides whether to stop under it too.
        let _s = self.shared.lock();
        !self.shared.stop.load(Ordering::Relaxed)
    }

    fn batch(&mut self, w: &mut CacheWriter) -> Result<()> {
        // The records decoded so far are flushed and published before the next read
        // of the body: a record may be the last one for a long while (a slow or
        // stalled server), and the reader must not wait for the next one to see it.
        // (One write per chunk of the body, not per record.)
        w.flush()?;
        let mut s = self.shared.lock();
        s.committed = w.records();
        s.end = w.bytes();
        drop(s);
        self.shared.cv.notify_all();
        Ok(())
    }
}

/// Where the reader is while the download runs.
struct Follow {
    generation: u64,
    /// The generation whose first `index` records are the ones handed out (0: none
    /// handed out yet). A newer one is served only after `same_prefix` proved it.
    served_generation: u64,
    /// CRC32 over the frame CRCs of the records handed out, in order.
    served_digest: crc32fast::Hasher,
    /// The count `size` reported while following, if it was asked.
    reported_total: Option<u64>,
    file: Option<Arc<File>>,
    /// Offset of record `index`'s frame in `file` (None: find it again).
    offset: Option<u64>,
    /// The record's wire bytes sit at `buf[wire..]`, shifted so that its data starts
    /// at an 8-byte aligned address (docs/design/guarantees.md promises aligned views).
    buf: Vec<u8>,
    wire: usize,
    shape: Vec<usize>,
    data: std::ops::Range<usize>,
    dtype: crate::tensor::DType,
}

enum Mode {
    Following,
    Serving(Box<Served>),
    /// The background failure was returned once; later calls repeat its message (and
    /// its kind of HTTP failure).
    Failed(HttpCause, String),
    /// The download restarted on another version of the object after this many
    /// records (or the count) had been handed out: every call fails.
    Changed(u64),
}

/// Like `HttpProducer`, with the download in a background thread: `next` returns
/// record i as soon as it has arrived; `size` waits until the count is known.
pub struct AsyncHttpProducer {
    source: Source,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    mode: Mode,
    /// Index of the record the next call returns (while following).
    index: u64,
    follow: Follow,
    check: Option<ShapeCheck>,
}

impl std::fmt::Debug for AsyncHttpProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHttpProducer")
            .field("url", &s3::redact(&self.source.url))
            .field("outcome", &self.outcome())
            .finish()
    }
}

host_port_constructors!(AsyncHttpProducer);

impl AsyncHttpProducer {
    /// Any `http://` or `https://` URL. With a valid cache, opens it (no thread).
    pub fn from_url(url: &str, opts: HttpOptions) -> Result<AsyncHttpProducer> {
        let source = Source::new(url, opts)?;
        let cached = source.cached()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                file: None,
                data_start: 0,
                committed: 0,
                end: 0,
                total: None,
                outcome: HttpOutcome::Downloaded,
                done: None,
                finished: false,
            }),
            cv: Condvar::new(),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let check = source.opts.validate.then(ShapeCheck::default);
        let mut p = AsyncHttpProducer {
            source: source.clone(),
            shared: shared.clone(),
            thread: None,
            mode: Mode::Following,
            index: 0,
            follow: Follow {
                generation: 0,
                served_generation: 0,
                served_digest: crc32fast::Hasher::new(),
                reported_total: None,
                file: None,
                offset: None,
                buf: Vec::new(),
                wire: 0,
                shape: Vec::new(),
                data: 0..0,
                dtype: crate::tensor::DType::UInt8,
            },
            check,
        };
        if let Some(reader) = cached {
            shared.lock().outcome = HttpOutcome::FromCache;
            p.mode = Mode::Serving(Box::new(Served::new(
                source,
                reader,
                HttpOutcome::FromCache,
            )));
            return Ok(p);
        }
        let mut bg_source = source;
        let thread = std::thread::Builder::new()
            .name("harmonics-http".into())
            .spawn(move || {
                let mut publisher = Publisher {
                    shared: shared.clone(),
                    url: bg_source.url.clone(),
                };
                let stop = shared.stop.clone();
                let url = bg_source.url.clone();
                // A panic must not leave the reader waiting forever: it becomes an error.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    bg_source.acquire(false, &mut publisher, Some(&stop))
                }))
                .unwrap_or_else(|_| {
                    let detail = "internal error: the download thread panicked";
                    Err(Error::http(
                        HttpCause::of(HttpErrorKind::Other),
                        url,
                        detail,
                    ))
                });
                let mut s = shared.lock();
                if let Ok((r, o)) = &result {
                    s.total = Some(r.len());
                    s.outcome = *o;
                }
                s.done = Some(result);
                s.finished = true;
                drop(s);
                shared.cv.notify_all();
            })
            .map_err(|e| {
                let detail = format!("cannot start the download thread: {e}");
                Error::http(HttpCause::of(HttpErrorKind::Other), url, detail)
            })?;
        p.thread = Some(thread);
        Ok(p)
    }

    pub fn url(&self) -> &str {
        &self.source.url
    }

    /// What the download did (see `HttpProducer::outcome`): `Created` (or `Rebuilt`)
    /// until the response says otherwise.
    pub fn outcome(&self) -> CacheOutcome {
        let o = match &self.mode {
            Mode::Serving(s) => s.outcome,
            _ => self.shared.lock().outcome,
        };
        cache_outcome(o, self.source.replaced_reason())
    }

    pub fn cache_path(&self) -> Option<&Path> {
        self.source.cache_path.as_deref()
    }

    /// Takes the finished download if there is one: switches to serving the cache.
    /// `latest` is the generation that produced it: when records were handed out from
    /// an earlier one, the cache must begin with them (and hold the count reported).
    fn take_done(
        &mut self,
        done: Result<(CacheReader, HttpOutcome)>,
        latest: Latest,
    ) -> Result<()> {
        let done = done.and_then(|(reader, outcome)| {
            if let Some(t) = self.follow.reported_total.filter(|&t| t != reader.len()) {
                return Err(self.changed(&format!(
                    "its count is {} records, {t} were reported",
                    reader.len()
                )));
            }
            if self.index > 0 && latest.generation != self.follow.served_generation {
                let file = latest.file.as_ref().ok_or_else(|| self.changed(""))?;
                if self.index > reader.len() {
                    return Err(self.changed(&format!("it has {} records", reader.len())));
                }
                self.same_prefix(file, latest.start, latest.end)?;
            }
            Ok((reader, outcome))
        });
        match done {
            Ok((reader, outcome)) => {
                let mut served = Served::new(self.source.clone(), reader, outcome);
                let len = served.reader.len();
                if len > 0 {
                    served.reader.seek(self.index % len)?;
                }
                // Records already checked while following keep their expectation.
                if let Some(c) = self.check.take() {
                    served.set_check(c);
                }
                self.mode = Mode::Serving(Box::new(served));
                self.follow.file = None;
                Ok(())
            }
            Err(e) => {
                if !matches!(self.mode, Mode::Changed(_)) {
                    self.mode = Mode::Failed(HttpCause::of_error(&e), e.to_string());
                }
                Err(e)
            }
        }
    }

    /// The error of every call once the object changed under the records handed out
    /// (`why`: what showed it, may be empty). Switches the producer to `Mode::Changed`.
    fn changed(&mut self, why: &str) -> Error {
        if !matches!(self.mode, Mode::Changed(_)) {
            self.mode = Mode::Changed(self.index);
            if !why.is_empty() {
                crate::log::warn(&format!("{}: {why}", s3::redact(&self.source.url)));
            }
        }
        self.changed_error()
    }

    /// The error of a call in `Mode::Failed` or `Mode::Changed` (the other modes
    /// serve, or switch before this is asked).
    fn not_serving(&self) -> Error {
        match &self.mode {
            Mode::Failed(cause, msg) => failed(*cause, &self.source.url, msg),
            Mode::Changed(_) => self.changed_error(),
            Mode::Following | Mode::Serving(_) => {
                unreachable!("only a failed or changed producer stops serving")
            }
        }
    }

    fn changed_error(&self) -> Error {
        let n = match self.mode {
            Mode::Changed(n) => n,
            _ => self.index,
        };
        let size = match self.follow.reported_total {
            Some(t) if n == 0 => format!(" (size() had reported {t} records)"),
            _ => String::new(),
        };
        Error::http(
            HttpCause::of(HttpErrorKind::ChangedObject),
            &self.source.url,
            format!(
                "the object changed after {n} records were served{size}: the download \
                 restarted on another version, which is not mixed into the records already \
                 served; open it again to read the new version"
            ),
        )
    }

    /// Checks that the frames at the start of `file` (a newer generation's temp file,
    /// records from `start`, written up to `end`) are the records handed out: the same
    /// CRCs in the same order. Then that generation is the one served from.
    fn same_prefix(&mut self, file: &File, start: u64, end: u64) -> Result<u64> {
        let (at, digest) = locate(file, start, end, self.index, &self.source.url)?;
        if digest.finalize() != self.follow.served_digest.clone().finalize() {
            return Err(self.changed(&format!(
                "the download restarted, and the new version's first {} records are not \
                 those served",
                self.index
            )));
        }
        self.follow.served_generation = self.follow.generation;
        Ok(at)
    }

    /// Blocks until record `self.index` is in the temp file or the download ended.
    /// Returns the temp file to read it from (at `follow.offset`, located here when it
    /// was not known), or None once the download is done (the mode has switched).
    fn wait_for_record(&mut self) -> Result<Option<Arc<File>>> {
        let shared = self.shared.clone();
        let mut s = shared.lock();
        loop {
            // A finished download switches to the cache; a failed one is reported
            // once the records that did arrive have been served.
            let failed_and_behind = matches!(s.done, Some(Err(_))) && self.index < s.committed;
            if !failed_and_behind {
                if let Some(done) = s.done.take() {
                    let latest = s.latest();
                    drop(s);
                    self.take_done(done, latest)?;
                    return Ok(None);
                }
            }
            if s.generation != self.follow.generation {
                self.follow.generation = s.generation;
                self.follow.file = s.file.clone();
                self.follow.offset = None;
            }
            if let (Some(t), Some(now)) = (self.follow.reported_total, s.total) {
                if t != now {
                    drop(s);
                    return Err(self.changed(&format!(
                        "the download restarted on a version of {now} records, {t} were reported"
                    )));
                }
            }
            if self.follow.file.is_some() && self.index < s.committed {
                if self.follow.offset.is_none() {
                    // (Re)locate record `index` by walking the frame headers; in a newer
                    // generation than the records handed out, checking it begins with them.
                    let file = self.follow.file.clone().expect("checked");
                    let (start, end) = (s.data_start, s.end);
                    drop(s);
                    let off = if self.index > 0
                        && self.follow.generation != self.follow.served_generation
                    {
                        self.same_prefix(&file, start, end)?
                    } else {
                        locate(&file, start, end, self.index, &self.source.url)?.0
                    };
                    self.follow.offset = Some(off);
                    s = shared.lock();
                    if s.generation != self.follow.generation {
                        continue;
                    }
                }
                return Ok(self.follow.file.clone());
            }
            s = shared.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// While following the download: blocks until `ready` finds what the caller waits
    /// for in the shared state (its answer is returned) or the download is done (then
    /// taken: None once the producer serves the cache, the error if the download
    /// failed). None at once when not following.
    fn wait_while_following<R>(
        &mut self,
        ready: impl Fn(&State) -> Option<R>,
    ) -> Result<Option<R>> {
        if !matches!(self.mode, Mode::Following) {
            return Ok(None);
        }
        let shared = self.shared.clone();
        let mut s = shared.lock();
        loop {
            if let Some(r) = ready(&s) {
                return Ok(Some(r));
            }
            if let Some(done) = s.done.take() {
                let latest = s.latest();
                drop(s);
                self.take_done(done, latest)?;
                return Ok(None);
            }
            s = shared.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Reads record `index` at the current offset into the buffer.
    fn read_followed(&mut self, file: &File) -> Result<()> {
        let url = &self.source.url;
        let mut at = self.follow.offset.expect("located");
        let (wire_at, wire_len, crc) = loop {
            match read_frame(file, at, url)? {
                Frame::Record {
                    wire_at,
                    wire_len,
                    crc,
                } => break (at + wire_at as u64, wire_len, crc),
                f @ Frame::Index { .. } => at += f.len(),
            }
        };
        // The frame's padding aligns the data in the file: the wire is placed in the
        // buffer with the same offset modulo 8, then shifted if the guess was wrong.
        let f = &mut self.follow;
        f.buf.resize(wire_len + DATA_ALIGN, 0);
        let lead = |buf: &[u8], file_mod: usize| {
            (file_mod + DATA_ALIGN - buf.as_ptr() as usize % DATA_ALIGN) % DATA_ALIGN
        };
        f.wire = lead(&f.buf, (wire_at % DATA_ALIGN as u64) as usize);
        let range = f.wire..f.wire + wire_len;
        file.read_exact_at(&mut f.buf[range.clone()], wire_at)
            .map_err(|e| Error::io("cannot read temporary cache file of", url, e))?;
        // The one check of a record's wire bytes (`cache::format`): CRC, parse, length.
        let h = check_record_wire(&f.buf[range.clone()], crc, &mut f.shape).map_err(|d| {
            Error::http(
                HttpCause::of(HttpErrorKind::Body),
                url.clone(),
                format!("record {} changed in the temporary file ({d})", self.index),
            )
        })?;
        let aligned = lead(
            &f.buf,
            (DATA_ALIGN - h.data_offset % DATA_ALIGN) % DATA_ALIGN,
        );
        if aligned != f.wire {
            f.buf.copy_within(range, aligned);
            f.wire = aligned;
        }
        f.dtype = h.dtype;
        f.data = f.wire + h.data_offset..f.wire + h.record_len();
        f.served_digest.update(&crc.to_le_bytes());
        f.served_generation = f.generation;
        self.follow.offset = Some(wire_at + wire_len as u64);
        Ok(())
    }
}

/// The frame header at `at` of the temporary file (layout: `crate::cache`).
fn read_frame(file: &File, at: u64, url: &str) -> Result<Frame> {
    let mut fh = [0u8; FRAME_HEADER];
    file.read_exact_at(&mut fh, at)
        .map_err(|e| Error::io("cannot read temporary cache file of", url, e))?;
    parse_frame(&fh, true).map_err(|d| {
        let detail = format!("temporary file framing is inconsistent at offset {at}: {d}");
        Error::http(HttpCause::of(HttpErrorKind::Body), url, detail)
    })
}

/// The error every call repeats after the background download failed.
fn failed(cause: HttpCause, url: &str, msg: &str) -> Error {
    Error::http(cause, url, format!("the background download failed: {msg}"))
}

/// Offset of record `index`'s frame, walking frame headers from `start` (index
/// frames, which a population writes only at its end, are stepped over), and the
/// digest of the records before it (CRC32 over their frame CRCs, as `Follow` keeps).
fn locate(
    file: &File,
    start: u64,
    end: u64,
    index: u64,
    url: &str,
) -> Result<(u64, crc32fast::Hasher)> {
    let mut at = start;
    let mut passed = 0;
    let mut digest = crc32fast::Hasher::new();
    while passed < index {
        let f = read_frame(file, at, url)?;
        if let Frame::Record { crc, .. } = f {
            passed += 1;
            digest.update(&crc.to_le_bytes());
        }
        at += f.len();
        if at > end {
            let detail = "temporary file framing is inconsistent";
            return Err(Error::http(HttpCause::of(HttpErrorKind::Body), url, detail));
        }
    }
    Ok((at, digest))
}

impl Producer for AsyncHttpProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        if matches!(self.mode, Mode::Following) {
            if let Some(file) = self.wait_for_record()? {
                self.read_followed(&file)?;
                let index = self.index;
                self.index += 1;
                let t = TensorRef {
                    dtype: self.follow.dtype,
                    shape: &self.follow.shape,
                    data: &self.follow.buf[self.follow.data.clone()],
                };
                if let Some(c) = self.check.as_mut() {
                    c.check(index, t)?;
                }
                return Ok(t);
            }
        }
        if !matches!(self.mode, Mode::Serving(_)) {
            return Err(self.not_serving());
        }
        match &mut self.mode {
            Mode::Serving(s) => s.next_view(),
            _ => unreachable!("checked above"),
        }
    }

    /// From the finished cache file: the copy's CRC is checked (`Served::next_into`);
    /// while following, as `next_view` (a buffer of our own).
    fn next_into(&mut self, out: &mut dyn crate::producers::RecordSink) -> Result<()> {
        match &mut self.mode {
            Mode::Serving(s) => s.next_into(out),
            _ => {
                out.copy(self.next_view()?)?;
                self.view_intact()
            }
        }
    }

    /// Records served from the finished cache file are confirmed against the mapping's
    /// fault and overwrite checks; records followed during the download are read into a
    /// buffer of our own and cannot change under the caller.
    fn view_intact(&self) -> Result<()> {
        match &self.mode {
            Mode::Serving(s) => s.reader.intact(),
            _ => Ok(()),
        }
    }

    fn size(&mut self) -> Result<usize> {
        if let Some(n) = self.wait_while_following(|s| s.total)? {
            match self.follow.reported_total {
                Some(t) if t != n => {
                    return Err(self.changed(&format!(
                        "the download restarted on a version of {n} records, {t} were reported"
                    )))
                }
                _ => self.follow.reported_total = Some(n),
            }
            return Ok(n as usize);
        }
        match &self.mode {
            Mode::Serving(s) => Ok(s.size()),
            _ => Err(self.not_serving()),
        }
    }

    fn source(&self) -> String {
        self.source.url.clone()
    }

    /// Once the body is served from the cache file: a seek; while following the
    /// download, reading past `n` records as they arrive.
    fn skip(&mut self, n: usize) -> Result<()> {
        if let Mode::Serving(s) = &mut self.mode {
            return s.skip(n);
        }
        for _ in 0..n {
            self.next_view()?;
        }
        Ok(())
    }

    /// Kind `http`: the normalised URL, and the validators once the body is served.
    fn identity(&self) -> Result<Option<crate::identity::SourceIdentity>> {
        let meta = match &self.mode {
            Mode::Serving(s) => Some(s.reader.metadata()),
            _ => None,
        };
        Ok(Some(http_identity(&self.source.url, meta)))
    }

    /// Random access is served from the finished cache: while the download runs, this
    /// waits until it completes (records arrive in order, and the index is written at
    /// the end of the download), then serves record `index` as `HttpProducer` does.
    /// The sequential position is kept. A failed download is reported as by `next`.
    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        self.wait_while_following(|_| None::<()>)?; // until the download is done
        if !matches!(self.mode, Mode::Serving(_)) {
            return Err(self.not_serving());
        }
        match &mut self.mode {
            Mode::Serving(s) => s.view_at(index),
            _ => unreachable!("checked above"),
        }
    }

    /// True: random access is available (once the download has completed).
    fn has_random_access(&self) -> bool {
        true
    }
}

/// How long dropping an `AsyncHttpProducer` waits for its thread to notice the stop.
/// The thread checks the stop flag between reads, records and backoff steps, so it
/// normally ends within a few milliseconds; it is left to end on its own (detached)
/// when it is blocked beyond that: waiting for another process's cache lock, for a
/// server that never answers (until the read timeout), or in a slow read.
const DROP_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

impl Drop for AsyncHttpProducer {
    /// An unfinished download is abandoned: `drop` returns within `DROP_WAIT` whatever
    /// the thread is blocked on, and the thread, detached if need be, publishes
    /// nothing after the stop and removes its temp file when it ends (a `CacheLock`
    /// it still waits for is released as soon as it gets it). A download whose
    /// records have all arrived is not abandoned: `drop` waits while the thread
    /// publishes it (local work: fsync and rename).
    fn drop(&mut self) {
        let Some(t) = self.thread.take() else {
            return;
        };
        let s = self.shared.lock();
        let arrived = s.done.is_some() || s.total.is_some_and(|n| s.committed >= n);
        if arrived {
            // Only local work is left (fsync, rename): wait for it.
            drop(s);
            let _ = t.join();
            return;
        }
        // Under the lock, so that `Publisher::complete` sees it or we saw `arrived`.
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.cv.notify_all();
        let (s, _) = self
            .shared
            .cv
            .wait_timeout_while(s, DROP_WAIT, |s| !s.finished)
            .unwrap_or_else(|p| p.into_inner());
        let finished = s.finished;
        drop(s);
        if finished {
            let _ = t.join();
        }
    }
}
