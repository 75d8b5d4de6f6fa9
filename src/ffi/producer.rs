//! Producers at the C boundary: one opaque `HarmonicsProducer` handle for every kind
//! (CSV, disk cache, HTTP, foreign callbacks), with size/next/next_view/skip/free.
//!
//! A handle is a Box owned by C around an `Arc<Mutex<…>>`, so one producer can be both
//! used directly and wrapped by a disk cache (as `std::shared_ptr` is in C++).

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{
    callback_result, guard, take_callback_error, Failure, HarmonicsCallbackResult, HarmonicsStatus,
};
use super::handle::{arg_bytes, arg_ref, arg_str, check_out, write_out, BoxHandle};
use super::tensor::{HarmonicsTensor, HarmonicsTensorView};
use crate::error::{Error, Result};
use crate::identity::{IdentityMatch, SourceIdentity, SourceKind};
use crate::producers::{Producer, RecordSink};
use crate::tensor::{Tensor, TensorRef};
use crate::{AsyncHttpProducer, CsvProducer, DiskCacheProducer, HttpProducer, SampledProducer};

/// The producers a handle can hold. Typed variants give access to kind-specific calls.
pub(crate) enum ProducerKind {
    /// Made by `harmonics_producer_from_callbacks` (takes the optional callbacks).
    Foreign(Box<ForeignProducer>),
    DiskCache(Box<DiskCacheProducer>),
    Sampled(Box<SampledProducer<SharedBase>>),
    Http(Box<HttpProducer>),
    AsyncHttp(Box<AsyncHttpProducer>),
    Streaming(Box<crate::StreamingProducer>),
    Any(Box<dyn Producer>),
}

impl ProducerKind {
    fn producer(&mut self) -> &mut dyn Producer {
        match self {
            ProducerKind::Foreign(p) => p.as_mut(),
            ProducerKind::DiskCache(p) => p,
            ProducerKind::Sampled(p) => p,
            ProducerKind::Http(p) => p.as_mut(),
            ProducerKind::AsyncHttp(p) => p.as_mut(),
            ProducerKind::Streaming(p) => p.as_mut(),
            ProducerKind::Any(p) => p.as_mut(),
        }
    }
}

type Shared = Arc<Mutex<ProducerKind>>;

fn lock(p: &Shared) -> Result<MutexGuard<'_, ProducerKind>> {
    p.lock().map_err(|_| Error::Poisoned("producer".into()))
}

/// An opaque producer handle. Free with `harmonics_producer_free`.
pub struct HarmonicsProducer {
    pub(crate) inner: Shared,
}

impl BoxHandle for HarmonicsProducer {}

impl HarmonicsProducer {
    pub(crate) fn new(kind: ProducerKind) -> HarmonicsProducer {
        HarmonicsProducer {
            inner: Arc::new(Mutex::new(kind)),
        }
    }

    /// A Rust `Producer` over the same shared producer, for wrapping in a cache.
    pub(crate) fn share(&self) -> SharedBase {
        SharedBase {
            inner: self.inner.clone(),
            scratch: Tensor::new(crate::DType::UInt8, Vec::new(), Vec::new()),
        }
    }
}

/// A producer shared with a C handle. Records are copied once, by the shared
/// producer's copying reads (`next_into`, `at_into`: checked on the copy), into
/// `scratch` or the caller's tensor (inside Rust: a Rust-backed base never round-trips
/// through C++).
pub(crate) struct SharedBase {
    inner: Shared,
    scratch: Tensor,
}

impl Producer for SharedBase {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        lock(&self.inner)?.producer().next_into(&mut self.scratch)?;
        Ok(self.scratch.as_ref())
    }
    fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        lock(&self.inner)?.producer().next_into(out)
    }
    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        lock(&self.inner)?
            .producer()
            .at_into(index, &mut self.scratch)?;
        Ok(self.scratch.as_ref())
    }
    fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        lock(&self.inner)?.producer().at_into(index, out)
    }
    fn has_random_access(&self) -> bool {
        lock(&self.inner).is_ok_and(|mut g| g.producer().has_random_access())
    }
    fn read_ahead(&mut self, order: crate::cache::ReadOrder) {
        if let Ok(mut g) = lock(&self.inner) {
            g.producer().read_ahead(order)
        }
    }
    /// The whole batch under one lock.
    fn next_batch(&mut self, n: usize, out: &mut Tensor) -> Result<()> {
        lock(&self.inner)?.producer().next_batch(n, out)
    }
    fn size(&mut self) -> Result<usize> {
        lock(&self.inner)?.producer().size()
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        lock(&self.inner)?.producer().skip(n)
    }
    fn source(&self) -> String {
        lock(&self.inner)
            .map(|mut g| g.producer().source())
            .unwrap_or_default()
    }
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        lock(&self.inner)?.producer().identity()
    }
    fn match_identity(&mut self, recorded: &SourceIdentity, cached: u64) -> Result<IdentityMatch> {
        lock(&self.inner)?
            .producer()
            .match_identity(recorded, cached)
    }
}

/// Callbacks through which any C or C++ producer feeds the Rust side.
///
/// Ownership: from the call of `harmonics_producer_from_callbacks` on, the library
/// owns `userdata` and calls `free(userdata)` (if non-null) exactly once: when the last
/// user of the producer is gone, or before returning if the call fails. The callbacks are
/// called from the thread that called into the library, never concurrently.
///
/// Frozen: this struct has these four fields in every release, and the library reads
/// nothing else, so code that sets them on an uninitialised stack struct keeps working.
/// Optional callbacks are set on the handle afterwards:
/// `harmonics_producer_set_skip_callback`, `harmonics_producer_set_fingerprint_callback`
/// (later ones the same way).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsProducerCallbacks {
    pub userdata: *mut c_void,
    /// Fills `*out` with the next record (cycling after the last). The memory the view
    /// points to must stay valid until the next call of `next` or `free`. Any value but
    /// `HARMONICS_STATUS_OK` (after `harmonics_callback_error` for a message) reports a
    /// failure.
    pub next: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            out: *mut HarmonicsTensorView,
        ) -> HarmonicsCallbackResult,
    >,
    /// Stores the number of records in `*out`.
    pub size: Option<
        unsafe extern "C" fn(userdata: *mut c_void, out: *mut usize) -> HarmonicsCallbackResult,
    >,
    /// Releases `userdata`. May be null.
    pub free: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

/// A callback producer's optional `skip` (see `harmonics_producer_set_skip_callback`):
/// advances past `n` records, as `n` calls of `next` would. Called with the producer's
/// `userdata`.
pub type HarmonicsSkipFn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, n: usize) -> HarmonicsCallbackResult>;

/// A callback producer's optional `fingerprint` (see
/// `harmonics_producer_set_fingerprint_callback`): stores in `*ptr`/`*len` a fingerprint
/// of the records (UTF-8, not NUL-terminated, valid until the next call or `free`). It
/// must change whenever the records change; an empty one means unknown; at most 64 KiB.
/// Called with the producer's `userdata`.
pub type HarmonicsFingerprintFn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        ptr: *mut *const c_char,
        len: *mut usize,
    ) -> HarmonicsCallbackResult,
>;

/// Longest fingerprint accepted: it is stored in the cache's metadata, which must stay
/// far below the format's 1 MiB limit.
pub const MAX_FINGERPRINT: usize = 64 * 1024;

/// A producer implemented by C callbacks.
pub(crate) struct ForeignProducer {
    cb: HarmonicsProducerCallbacks,
    /// The optional callbacks, set on the handle (null until then).
    skip: HarmonicsSkipFn,
    fingerprint: HarmonicsFingerprintFn,
    source: String,
}

// SAFETY: the callbacks are only called with the handle's mutex held, one thread at a
// time; the C side agrees to that by handing the callbacks over.
unsafe impl Send for ForeignProducer {}

/// Reads what the foreign producer's callback `what` returned.
fn foreign_result(what: &str, code: HarmonicsCallbackResult) -> Result<()> {
    Ok(callback_result(
        &format!("foreign producer's {what}"),
        code,
    )?)
}

impl Producer for ForeignProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let next = self.cb.next.expect("checked at creation");
        let mut view = HarmonicsTensorView {
            dtype: 0,
            ndims: 0,
            shape: std::ptr::null(),
            data: std::ptr::null(),
            nbytes: 0,
        };
        take_callback_error();
        // SAFETY: the callback contract (see HarmonicsProducerCallbacks).
        foreign_result("next", unsafe { next(self.cb.userdata, &mut view) })?;
        // SAFETY: the view stays valid until the next call of `next` or `free`, which
        // needs `&mut self`: the returned borrow cannot outlive it.
        unsafe { view.as_ref() }
            .map_err(|f| Error::Foreign(format!("foreign producer's next returned {}", f.message)))
    }

    fn size(&mut self) -> Result<usize> {
        let size = self.cb.size.expect("checked at creation");
        let mut n = 0usize;
        take_callback_error();
        // SAFETY: the callback contract.
        foreign_result("size", unsafe { size(self.cb.userdata, &mut n) })?;
        Ok(n)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        let Some(skip) = self.skip else {
            for _ in 0..n {
                self.next_view()?;
            }
            return Ok(());
        };
        take_callback_error();
        // SAFETY: the callback contract.
        foreign_result("skip", unsafe { skip(self.cb.userdata, n) })
    }

    fn source(&self) -> String {
        self.source.clone()
    }

    /// Kind `foreign` with the fingerprint (empty when there is no callback).
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        let mut id = String::new();
        if let Some(f) = self.fingerprint {
            let (mut ptr, mut len) = (std::ptr::null::<c_char>(), 0usize);
            take_callback_error();
            // SAFETY: the callback contract.
            foreign_result("fingerprint", unsafe {
                f(self.cb.userdata, &mut ptr, &mut len)
            })?;
            if len > MAX_FINGERPRINT {
                return Err(Error::Foreign(format!(
                    "the foreign producer's fingerprint is {len} bytes, more than the \
                     {MAX_FINGERPRINT} allowed (use a digest of the data's identity)"
                )));
            }
            let bytes = arg_bytes(ptr.cast::<u8>(), len, "fingerprint")
                .map_err(|f| Error::Foreign(f.message))?;
            id = String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::Foreign("fingerprint is not valid UTF-8".into()))?;
        }
        Ok(Some(SourceIdentity::new(SourceKind::Foreign, id)))
    }
}

impl Drop for ForeignProducer {
    fn drop(&mut self) {
        if let Some(free) = self.cb.free {
            // SAFETY: called once; the library owns userdata since creation.
            unsafe { free(self.cb.userdata) };
        }
    }
}

/// Hands a Rust producer to C or C++ code: a new handle that owns it, to be released
/// with `harmonics_producer_free` (for Rust programs that drive a C/C++ consumer).
pub fn producer_into_handle(producer: Box<dyn Producer>) -> *mut HarmonicsProducer {
    HarmonicsProducer::new(ProducerKind::Any(producer)).into_raw()
}

pub(crate) fn new_handle(
    out: *mut *mut HarmonicsProducer,
    kind: ProducerKind,
) -> std::result::Result<(), Failure> {
    write_out(out, "out", HarmonicsProducer::new(kind).into_raw())
}

/// Makes a producer from C callbacks: reads the four fields of `*callbacks` and nothing
/// else (the optional callbacks are set on the new handle, see
/// `harmonics_producer_set_skip_callback`). `source` (may be null) describes the data
/// in cache metadata.
///
/// # Safety
/// `callbacks` is readable; `source` is null or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_from_callbacks(
    callbacks: *const HarmonicsProducerCallbacks,
    source: *const c_char,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        let cb = *arg_ref(callbacks, "callbacks")?;
        // Owned from here on: dropping `p` on any failure below frees userdata once.
        let mut p = ForeignProducer {
            cb,
            skip: None,
            fingerprint: None,
            source: "foreign producer".into(),
        };
        if cb.next.is_none() || cb.size.is_none() {
            return Err(Failure::null("callbacks.next or callbacks.size"));
        }
        if !source.is_null() {
            p.source = arg_str(source, "source")?.to_string();
        }
        check_out(out, "out")?;
        new_handle(out, ProducerKind::Foreign(Box::new(p)))
    })
}

/// Sets (null: removes) the optional `skip` callback of a producer made by
/// `harmonics_producer_from_callbacks`, called with its `userdata`: a cache append then
/// skips the records it already holds in one call instead of `n` calls of `next`. Set it
/// before wrapping the producer in a cache. Any other producer is
/// `HARMONICS_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `producer` is null or a live handle; `skip` is null or callable with its userdata.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_set_skip_callback(
    producer: *mut HarmonicsProducer,
    skip: HarmonicsSkipFn,
) -> HarmonicsStatus {
    guard(|| with_foreign(producer, "skip", |f| f.skip = skip))
}

/// Sets (null: removes) the optional `fingerprint` callback of a producer made by
/// `harmonics_producer_from_callbacks`, called with its `userdata`. A cache whose
/// recorded fingerprint equals it is reused without calling `size` or `next`; a different
/// one rebuilds the cache. Set it before wrapping the producer in a cache. Any other
/// producer is `HARMONICS_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `producer` is null or a live handle; `fingerprint` is null or callable with its
/// userdata.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_set_fingerprint_callback(
    producer: *mut HarmonicsProducer,
    fingerprint: HarmonicsFingerprintFn,
) -> HarmonicsStatus {
    guard(|| with_foreign(producer, "fingerprint", |f| f.fingerprint = fingerprint))
}

/// Runs `f` on the callback producer of the handle `producer`, locked; `callback`
/// names what is being set, for the message when it is another kind of producer.
fn with_foreign(
    producer: *const HarmonicsProducer,
    callback: &str,
    f: impl FnOnce(&mut ForeignProducer),
) -> std::result::Result<(), Failure> {
    with_kind(producer, |k| match k {
        ProducerKind::Foreign(p) => {
            f(p);
            Ok(())
        }
        _ => Err(Failure::invalid(format!(
            "only a producer made by harmonics_producer_from_callbacks takes a {callback} \
             callback"
        ))),
    })
}

/// A CSV file: one 1-D float32 record per line. With `validate`, every record must
/// have the first record's length. Checks that the file exists and can be opened, and
/// parses nothing: the file is parsed when records are first needed (so a disk cache
/// over an unchanged file never parses it); a bad cell is then an error naming its row
/// and column.
///
/// # Safety
/// `path` is NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_csv_producer_new(
    path: *const c_char,
    validate: bool,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        let path = arg_str(path, "path")?;
        check_out(out, "out")?;
        let p = CsvProducer::open(path, validate)?;
        new_handle(out, ProducerKind::Any(Box::new(p)))
    })
}

/// Parses CSV text held in memory (`len` bytes, copied). `name` (may be null) is used
/// in messages.
///
/// # Safety
/// `data` points to `len` bytes; `name` is null or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_csv_producer_from_memory(
    data: *const u8,
    len: usize,
    name: *const c_char,
    validate: bool,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        let bytes = arg_bytes(data, len, "data")?;
        let name = if name.is_null() {
            "<stream>"
        } else {
            arg_str(name, "name")?
        };
        check_out(out, "out")?;
        let p = CsvProducer::from_reader(bytes, name, validate)?;
        new_handle(out, ProducerKind::Any(Box::new(p)))
    })
}

/// Stores the number of records in `*out`.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_size(
    producer: *const HarmonicsProducer,
    out: *mut usize,
) -> HarmonicsStatus {
    guard(|| store(producer, out, |p| p.size()))
}

/// Zero-copy read: fills `*out` with a view of the next record. The memory is owned
/// by the producer and valid until the next call on it from any thread (or its free):
/// do not share views across threads; `harmonics_producer_next_copy` is the call to
/// share.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_next_view(
    producer: *mut HarmonicsProducer,
    out: *mut HarmonicsTensorView,
) -> HarmonicsStatus {
    guard(|| {
        store(producer, out, |p| {
            Ok(HarmonicsTensorView::from_ref(p.next_view()?))
        })
    })
}

/// Copying read: the next record as a new tensor owned by the caller, with the
/// guarantee of `harmonics_producer_next_copy` (the CRC is checked on this copy).
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_next(
    producer: *mut HarmonicsProducer,
    out: *mut *mut HarmonicsTensor,
) -> HarmonicsStatus {
    guard(|| {
        store(producer, out, |p| {
            Ok(HarmonicsTensor { tensor: p.next()? }.into_raw())
        })
    })
}

/// Receives a record from `harmonics_producer_next_copy`: `view` and the memory it
/// points to are valid only during the call. Copy what is needed into storage owned by
/// `userdata` and return `HARMONICS_STATUS_OK`; any other value (after
/// `harmonics_callback_error` for a message) fails the read. The callback runs with the
/// producer locked: it must not call the producer.
pub type HarmonicsCopyFn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        view: *const HarmonicsTensorView,
    ) -> HarmonicsCallbackResult,
>;

/// Copying read into caller-owned storage: reads the next record and calls
/// `copy(userdata, view)` with the producer locked, so several threads may share one
/// producer (each record goes to exactly one caller, whole). The view is of a private
/// copy whose CRC was checked on the copy itself (where the records carry one), taken
/// from the file the producer opened: on OK, what was copied is exactly a record of the
/// data, whatever another program does to a cache file meanwhile. A file cut or
/// rewritten in place, or a record changed under the read, is repaired as damage (the
/// cache is rebuilt) or fails the call with `HARMONICS_STATUS_CORRUPT` naming the file.
///
/// # Safety
/// `producer` is null or a live handle; `copy` is callable with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_next_copy(
    producer: *mut HarmonicsProducer,
    copy: HarmonicsCopyFn,
    userdata: *mut c_void,
) -> HarmonicsStatus {
    guard(|| next_copy(producer, copy, userdata))
}

/// Receives a record from `harmonics_producer_next_copy_to` or
/// `harmonics_producer_at_copy_to`: `view` and the memory it points to are valid only
/// during the call. Copy the record into storage owned by `userdata`, store in `*copied`
/// the address of the `view->nbytes` data bytes as copied, and return
/// `HARMONICS_STATUS_OK`; those bytes must stay as they are until the library call
/// returns (the library checks them: the CRC of a cache record is computed over this
/// copy). Any other value (after `harmonics_callback_error` for a message) fails the
/// read. One read may call it more than once (when a copy fails its check and the cache
/// is repaired): the last copy is the record. The callback runs with the producer
/// locked: it must not call the producer.
pub type HarmonicsCopyToFn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        view: *const HarmonicsTensorView,
        copied: *mut *const u8,
    ) -> HarmonicsCallbackResult,
>;

/// Copying read into caller-owned storage, with one copy: the next record is handed to
/// `copy(userdata, view, &copied)` with the producer locked (several threads may share
/// one producer; each record goes to exactly one caller, whole), and the bytes the
/// callback copied are then checked where it copied them: on OK they are exactly a
/// record of the data, with the guarantee of `harmonics_producer_next_copy`. On a
/// failure the callback's storage holds no record worth reading.
///
/// # Safety
/// `producer` is null or a live handle; `copy` is callable with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_next_copy_to(
    producer: *mut HarmonicsProducer,
    copy: HarmonicsCopyToFn,
    userdata: *mut c_void,
) -> HarmonicsStatus {
    guard(|| copy_to(producer, copy, userdata, |p, sink| p.next_into(sink)))
}

/// Random access, copying into caller-owned storage: record `index` (as
/// `harmonics_producer_at`) handed to `copy` as by `harmonics_producer_next_copy_to`.
/// Errors as `harmonics_producer_view_at`.
///
/// # Safety
/// `producer` is null or a live handle; `copy` is callable with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_at_copy_to(
    producer: *mut HarmonicsProducer,
    index: usize,
    copy: HarmonicsCopyToFn,
    userdata: *mut c_void,
) -> HarmonicsStatus {
    guard(|| {
        copy_to(producer, copy, userdata, |p, sink| {
            p.at_into(index as u64, sink)
        })
    })
}

/// The `_copy_to` calls: `read` copies a record through the callback, as a sink.
fn copy_to(
    producer: *mut HarmonicsProducer,
    copy: HarmonicsCopyToFn,
    userdata: *mut c_void,
    read: impl FnOnce(&mut dyn Producer, &mut dyn RecordSink) -> Result<()>,
) -> std::result::Result<(), Failure> {
    let p = arg_ref(producer, "producer")?;
    let copy = copy.ok_or_else(|| Failure::null("copy callback"))?;
    let mut sink = CallbackSink {
        copy,
        userdata,
        data: std::ptr::null(),
        len: 0,
    };
    let mut g = lock(&p.inner)?;
    Ok(read(g.producer(), &mut sink)?)
}

/// A `HarmonicsCopyToFn` as a `RecordSink`: the bytes checked are the callback's copy.
struct CallbackSink {
    copy: unsafe extern "C" fn(
        *mut c_void,
        *const HarmonicsTensorView,
        *mut *const u8,
    ) -> HarmonicsCallbackResult,
    userdata: *mut c_void,
    data: *const u8,
    len: usize,
}

impl RecordSink for CallbackSink {
    fn copy(&mut self, t: TensorRef<'_>) -> Result<()> {
        let view = HarmonicsTensorView::from_ref(t);
        let mut copied = std::ptr::null();
        (self.data, self.len) = (std::ptr::null(), 0);
        take_callback_error();
        // SAFETY: the callback contract (see HarmonicsCopyToFn).
        let code = unsafe { (self.copy)(self.userdata, &view, &mut copied) };
        callback_result("copy callback", code).map_err(Error::from)?;
        if copied.is_null() && !t.data.is_empty() {
            return Err(Error::Foreign(
                "the copy callback returned OK without storing the copy's address in *copied"
                    .into(),
            ));
        }
        (self.data, self.len) = (copied, t.data.len());
        Ok(())
    }

    fn copied(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the callback stored the address of `len` bytes it copied, which stay
        // unchanged until the library call returns (HarmonicsCopyToFn's contract).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

thread_local! {
    /// The private copy the copying calls hand to their callback: one per thread, its
    /// buffers reused (taken out while in use, so a callback that reads another
    /// producer gets a fresh one).
    static COPY_SCRATCH: std::cell::Cell<Option<Tensor>> = const { std::cell::Cell::new(None) };
}

/// A scratch buffer larger than this is freed after use rather than kept per thread.
const KEEP_SCRATCH: usize = 16 << 20;

/// `harmonics_producer_next_copy`: the next record is copied into a private tensor
/// (checked on that copy), then `copy(userdata, view of it)` runs, the producer still
/// locked. (Two copies: `harmonics_producer_next_copy_to` makes one.)
fn next_copy(
    producer: *mut HarmonicsProducer,
    copy: HarmonicsCopyFn,
    userdata: *mut c_void,
) -> std::result::Result<(), Failure> {
    copy_private(producer, copy, userdata, |p, t| p.next_into(t))
}

/// Reads with `read` into a private tensor (per thread, its buffers reused), then calls
/// `copy(userdata, view of it)`, the producer locked throughout.
fn copy_private(
    producer: *mut HarmonicsProducer,
    copy: HarmonicsCopyFn,
    userdata: *mut c_void,
    read: impl FnOnce(&mut dyn Producer, &mut Tensor) -> Result<()>,
) -> std::result::Result<(), Failure> {
    let p = arg_ref(producer, "producer")?;
    let copy = copy.ok_or_else(|| Failure::null("copy callback"))?;
    let mut g = lock(&p.inner)?;
    let mut t = COPY_SCRATCH
        .take()
        .unwrap_or_else(|| Tensor::new(crate::DType::UInt8, Vec::new(), Vec::new()));
    let result = read(g.producer(), &mut t)
        .map_err(Failure::from)
        .and_then(|()| {
            let view = HarmonicsTensorView::from_ref(t.as_ref());
            take_callback_error();
            // SAFETY: the callback contract (see HarmonicsCopyFn); the view's memory is
            // `t`'s, alive and unchanged for the call.
            callback_result("copy callback", unsafe { copy(userdata, &view) })
                .map_err(|f| Failure::from(Error::from(f)))
        });
    drop(g);
    if t.data.capacity() <= KEEP_SCRATCH {
        COPY_SCRATCH.set(Some(t));
    }
    result
}

/// The next `n` records stacked into one tensor, shape `[n, …record shape]` (the
/// records must share dtype and shape, else `HARMONICS_STATUS_SHAPE_MISMATCH`), handed
/// to `copy(userdata, view)` once, with the producer locked for the whole batch. Each
/// record is copied once into a private batch and checked on that copy (the guarantee
/// of `harmonics_producer_next_copy`); a sampled producer has issued the batch's reads
/// ahead (read-ahead in its sampler's order). `n` = 0 is
/// `HARMONICS_STATUS_INVALID_ARGUMENT`. On a failure the producer has moved past the
/// records read before the failing one.
///
/// # Safety
/// `producer` is null or a live handle; `copy` is callable with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_next_batch(
    producer: *mut HarmonicsProducer,
    n: usize,
    copy: HarmonicsCopyFn,
    userdata: *mut c_void,
) -> HarmonicsStatus {
    guard(|| copy_private(producer, copy, userdata, |p, t| p.next_batch(n, t)))
}

/// Random access, zero-copy: fills `*out` with a view of record `index` (0-based, no
/// cycling; CRC-checked where the records carry a CRC, and a cache file checked to be
/// the one opened). The memory is owned by the producer (for a cache, the mapped file,
/// as `harmonics_producer_next_view`: a program rewriting the file in place can change
/// the bytes after the check) and valid until the next call on it (or its free). An index past
/// the end is `HARMONICS_STATUS_INDEX_OUT_OF_RANGE`; a producer without random access
/// (see `harmonics_producer_has_random_access`) is `HARMONICS_STATUS_NO_RANDOM_ACCESS`.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_view_at(
    producer: *mut HarmonicsProducer,
    index: usize,
    out: *mut HarmonicsTensorView,
) -> HarmonicsStatus {
    guard(|| {
        store(producer, out, |p| {
            Ok(HarmonicsTensorView::from_ref(p.view_at(index as u64)?))
        })
    })
}

/// Random access, copying: record `index` as a new tensor owned by the caller, with the
/// guarantee of `harmonics_producer_next_copy`. Errors as `harmonics_producer_view_at`.
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_at(
    producer: *mut HarmonicsProducer,
    index: usize,
    out: *mut *mut HarmonicsTensor,
) -> HarmonicsStatus {
    guard(|| {
        store(producer, out, |p| {
            // As for next(): the copy is what the CRC check saw.
            let tensor = p.at(index as u64)?;
            Ok(HarmonicsTensor { tensor }.into_raw())
        })
    })
}

/// Stores in `*out` whether the producer supports `harmonics_producer_at`/`_view_at`
/// (an O(1) question).
///
/// # Safety
/// `producer` is null or a live handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_has_random_access(
    producer: *const HarmonicsProducer,
    out: *mut bool,
) -> HarmonicsStatus {
    guard(|| store(producer, out, |p| Ok(p.has_random_access())))
}

/// Advances past `n` records.
///
/// # Safety
/// `producer` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_skip(
    producer: *mut HarmonicsProducer,
    n: usize,
) -> HarmonicsStatus {
    guard(|| with_kind(producer, |k| Ok(k.producer().skip(n)?)))
}

/// The producer's source identity as text (e.g. `csv /data/train.csv`, `http
/// http://host/data (ETag "x")`; "" when unknown), computed cheaply: no parse, no
/// request. Copies up to `cap - 1` bytes and a NUL into `buf` (null allowed when `cap`
/// is 0) and stores the full length (without NUL) in `*len` (may be null).
///
/// # Safety
/// `producer` is a live handle; `buf` has `cap` writable bytes; `len` is null or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_fingerprint(
    producer: *const HarmonicsProducer,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> HarmonicsStatus {
    guard(|| {
        let id = with_kind(producer, |k| Ok(k.producer().identity()?))?;
        copy_out_str(
            &id.map(|i| i.to_string()).unwrap_or_default(),
            buf,
            cap,
            len,
        )
    })
}

/// Releases a handle; null is a no-op. A cache wrapping this producer keeps it alive.
///
/// # Safety
/// `producer` is null or a live handle not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn harmonics_producer_free(producer: *mut HarmonicsProducer) {
    guard(|| {
        // SAFETY: per the contract above.
        unsafe { HarmonicsProducer::free_raw(producer) };
        Ok(())
    });
}

pub(crate) fn with_sampled<R>(
    producer: *const HarmonicsProducer,
    f: impl FnOnce(&mut SampledProducer<SharedBase>) -> Result<R>,
) -> std::result::Result<R, Failure> {
    with_kind(producer, |k| match k {
        ProducerKind::Sampled(s) => f(s).map_err(Failure::from),
        _ => Err(Failure::invalid(
            "producer is not a sampled producer".into(),
        )),
    })
}

/// Runs `f` on the handle's producer, locked.
pub(crate) fn with_kind<R>(
    producer: *const HarmonicsProducer,
    f: impl FnOnce(&mut ProducerKind) -> std::result::Result<R, Failure>,
) -> std::result::Result<R, Failure> {
    locked(producer, "producer", f)
}

/// Runs `f` on the producer of the handle `producer` (the argument `what`), locked.
fn locked<R>(
    producer: *const HarmonicsProducer,
    what: &str,
    f: impl FnOnce(&mut ProducerKind) -> std::result::Result<R, Failure>,
) -> std::result::Result<R, Failure> {
    let p = arg_ref(producer, what)?;
    let mut g = lock(&p.inner)?;
    f(&mut g)
}

/// The calls that store one result in `*out`: checks `producer`, then `out`, then
/// stores what `f` returns from the locked producer.
fn store<T>(
    producer: *const HarmonicsProducer,
    out: *mut T,
    f: impl FnOnce(&mut dyn Producer) -> Result<T>,
) -> std::result::Result<(), Failure> {
    let p = arg_ref(producer, "producer")?;
    check_out(out, "out")?;
    let value = f(lock(&p.inner)?.producer())?;
    write_out(out, "out", value)
}

/// Copies `text` into `buf` (`cap` bytes, NUL-terminated, truncated if needed) and
/// stores its full length in `*len` (if not null): a string a C caller owns.
pub(crate) fn copy_out_str(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> std::result::Result<(), Failure> {
    if !len.is_null() {
        write_out(len, "len", text.len())?;
    }
    if cap > 0 {
        if buf.is_null() {
            return Err(Failure::null("buf"));
        }
        let n = text.len().min(cap - 1);
        // SAFETY: `buf` has `cap` writable bytes (caller's contract); n + 1 <= cap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buf, n);
            *buf.add(n) = 0;
        }
    }
    Ok(())
}

pub(crate) fn with_disk_cache<R>(
    producer: *const HarmonicsProducer,
    f: impl FnOnce(&mut DiskCacheProducer) -> Result<R>,
) -> std::result::Result<R, Failure> {
    locked(producer, "cache", |k| match k {
        ProducerKind::DiskCache(d) => f(d).map_err(Failure::from),
        _ => Err(Failure::invalid("producer is not a disk cache".into())),
    })
}
