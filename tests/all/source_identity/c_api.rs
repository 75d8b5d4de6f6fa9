//! Through the C ABI: C callbacks with a fingerprint and skip decide reuse, the reason
//! is readable, and an oversized fingerprint is an error.

use std::ffi::{c_char, c_void};
use std::ptr::{null, null_mut};

use harmonics_dataset::ffi::disk_cache::*;
use harmonics_dataset::ffi::error::{HarmonicsCallbackResult, HarmonicsStatus};
use harmonics_dataset::ffi::producer::*;
use harmonics_dataset::ffi::tensor::HarmonicsTensorView;

/// A C producer: `n` records {i}, a fingerprint, counters of next/skip calls.
struct Src {
    n: usize,
    cursor: usize,
    value: f32,
    fp: &'static str,
    nexts: usize,
    skips: usize,
    shape: [usize; 1],
}

impl Src {
    fn new(n: usize, fp: &'static str) -> Src {
        Src {
            n,
            cursor: 0,
            value: 0.0,
            fp,
            nexts: 0,
            skips: 0,
            shape: [1],
        }
    }
}

/// A producer over `src` (which must outlive it) with its fingerprint and, if given,
/// `skip`, both set on the handle.
fn producer(
    src: *mut Src,
    skip: Option<unsafe extern "C" fn(*mut c_void, usize) -> HarmonicsCallbackResult>,
) -> *mut HarmonicsProducer {
    let cb = HarmonicsProducerCallbacks {
        userdata: src.cast(),
        next: Some(next),
        size: Some(size),
        free: None,
    };
    let mut p = null_mut();
    unsafe {
        assert_eq!(
            harmonics_producer_from_callbacks(&cb, null(), &mut p),
            HarmonicsStatus::Ok
        );
        assert_eq!(
            harmonics_producer_set_fingerprint_callback(p, Some(fingerprint)),
            HarmonicsStatus::Ok
        );
        assert_eq!(
            harmonics_producer_set_skip_callback(p, skip),
            HarmonicsStatus::Ok
        );
    }
    p
}

unsafe extern "C" fn next(
    u: *mut c_void,
    out: *mut HarmonicsTensorView,
) -> HarmonicsCallbackResult {
    let s = unsafe { &mut *(u as *mut Src) };
    s.nexts += 1;
    s.value = s.cursor as f32;
    s.cursor = (s.cursor + 1) % s.n;
    unsafe {
        *out = HarmonicsTensorView {
            dtype: 0,
            ndims: 1,
            shape: s.shape.as_ptr(),
            data: (&s.value as *const f32).cast(),
            nbytes: 4,
        }
    };
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}
unsafe extern "C" fn size(u: *mut c_void, out: *mut usize) -> HarmonicsCallbackResult {
    unsafe { *out = (*(u as *mut Src)).n };
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}
unsafe extern "C" fn skip(u: *mut c_void, k: usize) -> HarmonicsCallbackResult {
    let s = unsafe { &mut *(u as *mut Src) };
    s.skips += 1;
    s.cursor = (s.cursor + k) % s.n;
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}
unsafe extern "C" fn fingerprint(
    u: *mut c_void,
    ptr: *mut *const c_char,
    len: *mut usize,
) -> HarmonicsCallbackResult {
    let s = unsafe { &*(u as *mut Src) };
    unsafe {
        *ptr = s.fp.as_ptr().cast();
        *len = s.fp.len();
    }
    HarmonicsStatus::Ok as HarmonicsCallbackResult
}

/// Opens a cache over a C source; returns (outcome, reason, next calls, skip calls).
fn open(name: &std::ffi::CStr, n: usize, fp: &'static str) -> (u32, String, usize, usize) {
    let src = Box::into_raw(Box::new(Src::new(n, fp)));
    let base = producer(src, Some(skip));
    unsafe {
        let mut cache = null_mut();
        assert_eq!(
            harmonics_disk_cache_new(base, name.as_ptr(), null(), &mut cache),
            HarmonicsStatus::Ok
        );
        let mut o = std::mem::MaybeUninit::<HarmonicsCacheOutcome>::uninit();
        assert_eq!(
            harmonics_disk_cache_outcome(cache, o.as_mut_ptr()),
            HarmonicsStatus::Ok
        );
        let kind = o.assume_init().kind as u32;
        let mut len = 0usize;
        assert_eq!(
            harmonics_disk_cache_outcome_reason(cache, null_mut(), 0, &mut len),
            HarmonicsStatus::Ok
        );
        let mut buf = vec![0 as c_char; len + 1];
        assert_eq!(
            harmonics_disk_cache_outcome_reason(cache, buf.as_mut_ptr(), buf.len(), &mut len),
            HarmonicsStatus::Ok
        );
        let why = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(why.len(), len);
        // A short buffer gets a NUL-terminated prefix and the full length.
        let mut short = [1 as c_char; 5];
        assert_eq!(
            harmonics_disk_cache_outcome_reason(cache, short.as_mut_ptr(), 5, &mut len),
            HarmonicsStatus::Ok
        );
        assert_eq!(short[why.len().min(4)], 0);
        let (nexts, skips) = ((*src).nexts, (*src).skips);
        harmonics_producer_free(cache);
        harmonics_producer_free(base);
        drop(Box::from_raw(src));
        (kind, why, nexts, skips)
    }
}

#[test]
fn c_callbacks_fingerprint_and_skip_decide_and_the_reason_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::CString::new(dir.path().join("c.cache").to_str().unwrap()).unwrap();
    let (kind, why, nexts, _) = open(&name, 4, "v1");
    assert_eq!(
        (kind, why.as_str(), nexts),
        (HarmonicsCacheOutcomeKind::Created as u32, "", 4)
    );
    let (kind, _, nexts, skips) = open(&name, 4, "v1");
    assert_eq!(
        (kind, nexts, skips),
        (HarmonicsCacheOutcomeKind::Reused as u32, 0, 0)
    );
    let (kind, why, _, _) = open(&name, 4, "v2");
    assert_eq!(kind, HarmonicsCacheOutcomeKind::Rebuilt as u32);
    assert!(why.contains("\"v1\"") && why.contains("\"v2\""), "{why}");
    // Without a fingerprint: the size rule, and the append skips then reads 2.
    let (kind, _, nexts, skips) = open(&name, 6, "");
    assert_eq!(
        (kind, nexts, skips),
        (HarmonicsCacheOutcomeKind::Appended as u32, 2, 1)
    );
}

#[test]
fn an_oversized_fingerprint_is_an_error_not_a_huge_header() {
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::CString::new(dir.path().join("big.cache").to_str().unwrap()).unwrap();
    let fp: &'static str = Box::leak("x".repeat(MAX_FINGERPRINT + 1).into_boxed_str());
    let mut src = Src::new(1, fp);
    let base = producer(&mut src, None);
    unsafe {
        let mut cache = null_mut();
        let st = harmonics_disk_cache_new(base, name.as_ptr(), null(), &mut cache);
        assert_eq!(st, HarmonicsStatus::Foreign);
        let msg =
            std::ffi::CStr::from_ptr(harmonics_dataset::ffi::error::harmonics_last_error_message());
        assert!(
            msg.to_str().unwrap().contains("fingerprint is 65537 bytes"),
            "{msg:?}"
        );
        harmonics_producer_free(base);
    }
}
