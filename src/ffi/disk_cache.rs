//! `DiskCacheProducer` at the C boundary, and the token callback.

use std::ffi::{c_char, c_void};

use super::error::{
    callback_result, guard, take_callback_error, Failure, HarmonicsCallbackResult, HarmonicsStatus,
};
use super::handle::{arg_ref, arg_str, check_out, write_out, BoxHandle};
use super::producer::{copy_out_str, with_disk_cache, HarmonicsProducer, ProducerKind};
use crate::error::Error;
use crate::{CacheOutcome, DiskCacheProducer, TokenFn};

/// A token callback. Ownership: from the call of `harmonics_disk_cache_new` on, the
/// library owns `userdata` and calls `free(userdata)` (if non-null) exactly once: when
/// the cache is freed, or before returning if the call fails.
///
/// Frozen, like `HarmonicsProducerCallbacks`: these three fields in every release.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsTokenCallback {
    pub userdata: *mut c_void,
    /// Stores the current token in `*ptr`/`*len` (UTF-8, not NUL-terminated; valid until
    /// the next call or `free`). An empty token means "no token".
    pub token: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            ptr: *mut *const c_char,
            len: *mut usize,
        ) -> HarmonicsCallbackResult,
    >,
    pub free: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

struct ForeignToken(HarmonicsTokenCallback);

// SAFETY: called only with the cache handle's mutex held, one thread at a time.
unsafe impl Send for ForeignToken {}

impl ForeignToken {
    fn get(&mut self) -> crate::Result<String> {
        let f = self.0.token.expect("checked at creation");
        let (mut ptr, mut len) = (std::ptr::null::<c_char>(), 0usize);
        take_callback_error();
        // SAFETY: the callback contract above.
        callback_result("token callback", unsafe {
            f(self.0.userdata, &mut ptr, &mut len)
        })?;
        let bytes = super::handle::arg_bytes(ptr.cast::<u8>(), len, "token")
            .map_err(|f| Error::Foreign(f.message))?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::Foreign("token is not valid UTF-8".into()))
    }
}

impl Drop for ForeignToken {
    fn drop(&mut self) {
        if let Some(free) = self.0.free {
            // SAFETY: called once; the library owns userdata since creation.
            unsafe { free(self.0.userdata) };
        }
    }
}

/// What opening or refreshing a disk cache did.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsCacheOutcomeKind {
    /// The cache was complete; the source was not read.
    Reused = 0,
    /// There was no cache; it was populated from the source.
    Created = 1,
    /// The source had grown; records `from..to` were appended.
    Appended = 2,
    /// The cache was discarded (token changed, damage, source shrank, another or a
    /// changed source) and rebuilt: see `harmonics_disk_cache_outcome_reason`.
    Rebuilt = 3,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsCacheOutcome {
    pub kind: HarmonicsCacheOutcomeKind,
    /// For `APPENDED`: the first appended record and one past the last.
    pub from: u64,
    pub to: u64,
}

impl HarmonicsCacheOutcome {
    fn of(o: &CacheOutcome) -> HarmonicsCacheOutcome {
        let (kind, from, to) = match o {
            // (A disk cache never revalidates; were it to, the cache was kept.)
            CacheOutcome::Reused | CacheOutcome::Revalidated => {
                (HarmonicsCacheOutcomeKind::Reused, 0, 0)
            }
            CacheOutcome::Created => (HarmonicsCacheOutcomeKind::Created, 0, 0),
            CacheOutcome::Appended { from, to } => {
                (HarmonicsCacheOutcomeKind::Appended, *from, *to)
            }
            CacheOutcome::Rebuilt(_) => (HarmonicsCacheOutcomeKind::Rebuilt, 0, 0),
        };
        HarmonicsCacheOutcome { kind, from, to }
    }
}

/// Wraps `base` in a disk cache named `name` (relative names live under
/// `$HARMONICS_CACHE_DIR`, default `.harmonics/cache`). Populates, appends or reuses
/// the cache before returning. `base` stays owned by the caller (the cache shares
/// it); `token` may be null.
///
/// # Safety
/// `base` is a live handle; `name` is NUL-terminated; `token` is null or readable;
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_disk_cache_new(
    base: *mut HarmonicsProducer,
    name: *const c_char,
    token: *const HarmonicsTokenCallback,
    out: *mut *mut HarmonicsProducer,
) -> HarmonicsStatus {
    guard(|| {
        // Take ownership of the token first, so every failure below frees it once.
        // SAFETY: `token` is null or readable (contract above).
        let token = unsafe { token.as_ref() }.map(|t| ForeignToken(*t));
        if token.as_ref().is_some_and(|t| t.0.token.is_none()) {
            return Err(Failure::null("token.token"));
        }
        let base = arg_ref(base, "base")?;
        let name = arg_str(name, "name")?;
        check_out(out, "out")?;
        let token_fn: Option<TokenFn> = token.map(|mut t| Box::new(move || t.get()) as TokenFn);
        let p = DiskCacheProducer::open_with_token(Box::new(base.share()), name, token_fn)?;
        write_out(
            out,
            "out",
            HarmonicsProducer::new(ProducerKind::DiskCache(Box::new(p))).into_raw(),
        )
    })
}

/// What the last open or refresh of a disk cache did.
///
/// # Safety
/// `cache` is a live disk-cache handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_disk_cache_outcome(
    cache: *const HarmonicsProducer,
    out: *mut HarmonicsCacheOutcome,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let o = with_disk_cache(cache, |d| Ok(HarmonicsCacheOutcome::of(d.outcome())))?;
        write_out(out, "out", o)
    })
}

/// Why the last open or refresh of a disk cache rebuilt it ("" unless the outcome is
/// `REBUILT`): the token changed, the cache was damaged, the source shrank, or the
/// source's identity differs (another file, URL or kind, an edited file, another
/// fingerprint; the reason names both identities). Copies up to `cap - 1` bytes and a
/// NUL into `buf` (null allowed when `cap` is 0) and stores the full length (without
/// NUL) in `*len` (may be null).
///
/// # Safety
/// `cache` is a live disk-cache handle; `buf` has `cap` writable bytes; `len` is null
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_disk_cache_outcome_reason(
    cache: *const HarmonicsProducer,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> HarmonicsStatus {
    guard(|| {
        let why = with_disk_cache(cache, |d| {
            Ok(match d.outcome() {
                CacheOutcome::Rebuilt(why) => why.clone(),
                _ => String::new(),
            })
        })?;
        copy_out_str(&why, buf, cap, len)
    })
}

/// Re-checks the token and the source (its identity, else its size) and updates the
/// cache as on creation;
/// reading restarts at record 0. `out` may be null.
///
/// # Safety
/// `cache` is a live disk-cache handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_disk_cache_refresh(
    cache: *mut HarmonicsProducer,
    out: *mut HarmonicsCacheOutcome,
) -> HarmonicsStatus {
    guard(|| {
        let o = with_disk_cache(cache, |d| d.refresh().map(HarmonicsCacheOutcome::of))?;
        if !out.is_null() {
            write_out(out, "out", o)?;
        }
        Ok(())
    })
}
