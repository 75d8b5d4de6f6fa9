//! Turning raw pointers from C into Rust references, and handles into boxes, without
//! ever dereferencing null. Every exported function goes through these.

use std::ffi::{c_char, CStr};

use super::error::Failure;

/// How the C side owns a handle type: every handle this library hands out is a
/// `Box` owned by the caller until its `*_free` function (one owner, no sharing
/// across the boundary; sharing inside Rust is done with `Arc` behind the box).
pub(crate) trait BoxHandle: Sized {
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Frees a handle given back by C; null is a no-op.
    ///
    /// # Safety
    /// `p` is null or came from `into_raw` of the same type and was not freed yet.
    unsafe fn free_raw(p: *mut Self) {
        if !p.is_null() {
            // SAFETY: per the contract, `p` came from Box::into_raw.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// `&T` from a pointer argument, or a NullArgument failure naming it.
pub(crate) fn arg_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: non-null pointers handed to us point to live objects (C contract).
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// A UTF-8 string argument.
pub(crate) fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-null string arguments are NUL-terminated (C contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// A byte slice argument; null is allowed only for an empty slice.
pub(crate) fn arg_bytes<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: the caller passes `len` readable elements at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes `value` through an out-pointer, or fails if it is null.
pub(crate) fn write_out<T>(out: *mut T, what: &str, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-null out-pointers point to writable storage for a T.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks an out-pointer before doing work whose result would be lost.
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(())
    }
}
