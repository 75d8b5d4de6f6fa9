//! Never another version's record (issue 20, defects 1, 2 and 4): a reader gets exactly
//! the record it asked for, of the dataset its source describes, or an error, whatever
//! is done to the cache file meanwhile:
//!
//! - `random_access`: another version of the same layout copied over a mapped cache
//!   (`cp`: the same inode truncated and rewritten) while `view_at`/`at`/`next` run from
//!   four threads;
//! - `reopen`: the path renamed over, copied over or cut while the source is asked
//!   (`fingerprint()`, `size()`), and between `refresh()` calls: the file validated is
//!   the file served, and `size()` is the served file's;
//! - `copy`: a byte written into a record again and again by another thread while the
//!   copying reads run.
//!
//! Every record says which version and which index it is (`rec`), so a test can tell a
//! wrong one from a right one; all versions share one layout, so no frame check helps.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use harmonics_dataset::cache::{CacheLock, CacheWriter, Metadata};
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::tensor::harmonics_tensor_free;
use harmonics_dataset::ffi::{
    HarmonicsCallbackResult, HarmonicsProducer, HarmonicsStatus, HarmonicsTensorView,
};
use harmonics_dataset::{
    DType, DiskCacheProducer, Producer, Result, SourceIdentity, SourceKind, Tensor, TensorRef,
};

mod copy;
mod random_access;
mod reopen;

/// Elements of a record of the small datasets (int32).
const LEN: usize = 32;

/// Record `i` of version `v`, `len` int32 values: `v`, `i`, then values of both. The
/// same shape in every version.
fn rec_len(v: u32, i: usize, len: usize) -> Tensor {
    let mut data = Vec::with_capacity(len * 4);
    for j in 0..len {
        let x: u32 = match j {
            0 => v,
            1 => i as u32,
            _ => v.wrapping_mul(7919) ^ (i as u32).wrapping_mul(31) ^ j as u32,
        };
        data.extend_from_slice(&x.to_le_bytes());
    }
    Tensor::new(DType::Int32, vec![len], data)
}

fn rec(v: u32, i: usize) -> Tensor {
    rec_len(v, i, LEN)
}

/// (version, index) a record claims to be.
fn who(t: &Tensor) -> (u32, usize) {
    let u = |k: usize| u32::from_le_bytes(t.data[4 * k..4 * k + 4].try_into().unwrap());
    (u(0), u(1) as usize)
}

/// Panics unless `t` is exactly record `i` of version `v`.
#[track_caller]
fn assert_record(t: &Tensor, v: u32, i: usize, what: &str) {
    let len = t.shape.first().copied().unwrap_or(0);
    assert!(
        t.data.len() >= 8 && *t == rec_len(v, i, len),
        "{what}: got {:?} ({} bytes), want record {i} of version {v}",
        if t.data.len() >= 8 {
            Some(who(t))
        } else {
            None
        },
        t.data.len()
    );
}

/// A step to run once, at the next call of a source's method (set and reset by the test).
type Step = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

fn run(step: &Step) {
    let f = step.lock().unwrap().take();
    if let Some(f) = f {
        f();
    }
}

/// When a `Versioned` source runs a test's step: inside its next `identity()` (the
/// fingerprint) or `size()`, to replace the cache file in that instant.
#[derive(Clone, Default)]
struct Hooks {
    fingerprint: Step,
    size: Step,
}

impl Hooks {
    fn during_fingerprint(&self, step: impl FnOnce() + Send + 'static) {
        *self.fingerprint.lock().unwrap() = Some(Box::new(step));
    }
    fn during_size(&self, step: impl FnOnce() + Send + 'static) {
        *self.size.lock().unwrap() = Some(Box::new(step));
    }
}

/// A source of `n` records of version `v` (`len` elements each), with an optional
/// fingerprint, and `Hooks`.
struct Versioned {
    v: u32,
    n: usize,
    len: usize,
    cursor: usize,
    cur: Tensor,
    fingerprint: Option<String>,
    hooks: Hooks,
}

impl Versioned {
    fn new(v: u32, n: usize) -> Versioned {
        Versioned {
            v,
            n,
            len: LEN,
            cursor: 0,
            cur: rec(v, 0),
            fingerprint: None,
            hooks: Hooks::default(),
        }
    }

    fn len(mut self, len: usize) -> Versioned {
        self.len = len;
        self
    }

    fn fingerprint(mut self, f: &str) -> Versioned {
        self.fingerprint = Some(f.to_string());
        self
    }

    /// The hooks, to set a step after the source was handed to a producer.
    fn hooks(&self) -> Hooks {
        self.hooks.clone()
    }
}

impl Producer for Versioned {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.cur = rec_len(self.v, self.cursor, self.len);
        self.cursor = (self.cursor + 1) % self.n;
        Ok(self.cur.as_ref())
    }
    fn size(&mut self) -> Result<usize> {
        run(&self.hooks.size);
        Ok(self.n)
    }
    fn skip(&mut self, k: usize) -> Result<()> {
        self.cursor = (self.cursor + k) % self.n;
        Ok(())
    }
    fn source(&self) -> String {
        "versioned test dataset".into()
    }
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        run(&self.hooks.fingerprint);
        Ok(self
            .fingerprint
            .as_ref()
            .map(|f| SourceIdentity::new(SourceKind::Foreign, f)))
    }
}

/// A cache of `source` at `path` (populated and closed).
fn cache_of(source: Versioned, path: &Path) {
    DiskCacheProducer::open_at(Box::new(source), path.to_path_buf(), None).unwrap();
}

/// Another file holding version `v` of the same layout as the cache at `like`, with
/// the same metadata (token, source, identity, creation time): before nonces, its first
/// 24 bytes were those of `like`, so nothing told the two files apart.
fn same_layout_version(like: &Path, v: u32, n: usize, len: usize) -> PathBuf {
    let meta: Metadata = harmonics_dataset::cache::CacheReader::open(like)
        .unwrap()
        .metadata()
        .clone();
    let other = like.with_extension(format!("v{v}"));
    let lock = CacheLock::exclusive(&other).unwrap();
    let mut w = CacheWriter::create(&other, meta, &lock).unwrap();
    for i in 0..n {
        w.push(rec_len(v, i, len).as_ref()).unwrap();
    }
    w.finish().unwrap();
    lock.remove_lock_file();
    other
}

/// `cp from to`: the same inode at `to`, truncated and rewritten in place.
fn cp(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

/// A C handle owning `p`.
fn handle(p: impl Producer + 'static) -> Handle {
    Handle(producer_into_handle(Box::new(p)))
}

/// A producer handle shared by test threads (the library locks it per call).
struct Handle(*mut HarmonicsProducer);
// SAFETY: the C API locks the producer behind the handle on every call.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { harmonics_producer_free(self.0) };
    }
}

/// A record in C's words, copied into a Tensor.
fn from_view(v: &HarmonicsTensorView) -> Tensor {
    let shape = unsafe { std::slice::from_raw_parts(v.shape, v.ndims) }.to_vec();
    let data = unsafe { std::slice::from_raw_parts(v.data, v.nbytes) }.to_vec();
    Tensor::new(DType::from_code(v.dtype).unwrap(), shape, data)
}

/// `harmonics_producer_next_copy`'s callback: the record into the `Tensor` at `userdata`.
unsafe extern "C" fn copy_to_tensor(
    userdata: *mut c_void,
    view: *const HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    unsafe { *(userdata as *mut Tensor) = from_view(&*view) };
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

/// `harmonics_producer_next_copy_to`'s callback: the record into the `Tensor` at
/// `userdata`, whose data is where the copy is.
unsafe extern "C" fn copy_to_tensor_at(
    userdata: *mut c_void,
    view: *const HarmonicsTensorView,
    copied: *mut *const u8,
) -> HarmonicsCallbackResult {
    let t = unsafe { &mut *(userdata as *mut Tensor) };
    *t = from_view(unsafe { &*view });
    unsafe { *copied = t.data.as_ptr() };
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

impl Handle {
    /// `harmonics_producer_next_copy_to` (one copy, checked where it was made).
    fn next_copy_to(&self) -> std::result::Result<Tensor, u32> {
        let mut t = Tensor::new(DType::UInt8, vec![], vec![]);
        let ud = &mut t as *mut Tensor as *mut c_void;
        match unsafe { harmonics_producer_next_copy_to(self.0, Some(copy_to_tensor_at), ud) } {
            HarmonicsStatus::Ok => Ok(t),
            s => Err(s as u32),
        }
    }

    /// `harmonics_producer_at_copy_to`.
    fn at_copy_to(&self, i: usize) -> std::result::Result<Tensor, u32> {
        let mut t = Tensor::new(DType::UInt8, vec![], vec![]);
        let ud = &mut t as *mut Tensor as *mut c_void;
        match unsafe { harmonics_producer_at_copy_to(self.0, i, Some(copy_to_tensor_at), ud) } {
            HarmonicsStatus::Ok => Ok(t),
            s => Err(s as u32),
        }
    }

    /// `harmonics_producer_at`: Err(status) on failure.
    fn at(&self, i: usize) -> std::result::Result<Tensor, u32> {
        let mut t = std::ptr::null_mut();
        match unsafe { harmonics_producer_at(self.0, i, &mut t) } {
            HarmonicsStatus::Ok => {
                let mut v = std::mem::MaybeUninit::uninit();
                let st = unsafe {
                    harmonics_dataset::ffi::tensor::harmonics_tensor_view(t, v.as_mut_ptr())
                };
                assert_eq!(st, HarmonicsStatus::Ok);
                let out = from_view(&unsafe { v.assume_init() });
                unsafe { harmonics_tensor_free(t) };
                Ok(out)
            }
            s => Err(s as u32),
        }
    }

    /// `harmonics_producer_view_at`, copied at once.
    fn view_at(&self, i: usize) -> std::result::Result<Tensor, u32> {
        let mut v = std::mem::MaybeUninit::uninit();
        match unsafe { harmonics_producer_view_at(self.0, i, v.as_mut_ptr()) } {
            HarmonicsStatus::Ok => Ok(from_view(&unsafe { v.assume_init() })),
            s => Err(s as u32),
        }
    }

    /// `harmonics_producer_next_copy`.
    fn next_copy(&self) -> std::result::Result<Tensor, u32> {
        let mut t = Tensor::new(DType::UInt8, vec![], vec![]);
        match unsafe {
            harmonics_producer_next_copy(
                self.0,
                Some(copy_to_tensor),
                &mut t as *mut Tensor as *mut c_void,
            )
        } {
            HarmonicsStatus::Ok => Ok(t),
            s => Err(s as u32),
        }
    }

    /// `harmonics_producer_next`.
    fn next(&self) -> std::result::Result<Tensor, u32> {
        let mut t = std::ptr::null_mut();
        match unsafe { harmonics_producer_next(self.0, &mut t) } {
            HarmonicsStatus::Ok => {
                let mut v = std::mem::MaybeUninit::uninit();
                unsafe { harmonics_dataset::ffi::tensor::harmonics_tensor_view(t, v.as_mut_ptr()) };
                let out = from_view(&unsafe { v.assume_init() });
                unsafe { harmonics_tensor_free(t) };
                Ok(out)
            }
            s => Err(s as u32),
        }
    }
}

/// A fixed pseudo-random sequence (an LCG), for the indices a thread reads.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}
