//! Tensors at the C boundary: the borrowed `HarmonicsTensorView`, the owned
//! `HarmonicsTensor` handle, and the wire codec over caller-supplied I/O callbacks.

use std::ffi::c_void;
use std::io::{Read, Write};

use super::error::{
    callback_result, guard, take_callback_error, Failure, HarmonicsCallbackResult, HarmonicsStatus,
};
use super::handle::{arg_bytes, arg_ref, check_out, write_out, BoxHandle};
use crate::tensor::{read_tensor, write_tensor, DType, Tensor, TensorRef};

/// Element type codes (the original runtime's `DType`, in this order).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsDtype {
    Float32 = 0,
    Float64 = 1,
    Int32 = 2,
    Int64 = 3,
    Uint8 = 4,
}

/// A `HarmonicsDtype` code as it crosses the boundary: any byte, since C may pass a
/// value outside the enum (refused with `HARMONICS_STATUS_INVALID_ARGUMENT`; a Rust
/// enum holding it would be undefined behaviour). The header calls it `HarmonicsDtype`
/// (cbindgen.toml renames it and does not emit it), so C signatures name the enum.
pub type HarmonicsDtypeCode = u8;

/// A borrowed tensor. Who owns the memory and for how long is said by the function
/// that fills it in; the view itself owns nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HarmonicsTensorView {
    /// The element type.
    pub dtype: HarmonicsDtypeCode,
    pub ndims: usize,
    /// `ndims` dimensions; may be null when `ndims` is 0.
    pub shape: *const usize,
    /// `nbytes` bytes of little-endian element data; may be null when `nbytes` is 0.
    pub data: *const u8,
    pub nbytes: usize,
}

impl HarmonicsTensorView {
    pub(crate) fn from_ref(t: TensorRef<'_>) -> HarmonicsTensorView {
        HarmonicsTensorView {
            dtype: t.dtype.code(),
            ndims: t.shape.len(),
            shape: t.shape.as_ptr(),
            data: t.data.as_ptr(),
            nbytes: t.data.len(),
        }
    }

    /// Borrows the memory the view points to.
    ///
    /// # Safety
    /// The view's pointers are valid for their lengths for `'a`.
    pub(crate) unsafe fn as_ref<'a>(&self) -> Result<TensorRef<'a>, Failure> {
        let dtype = DType::from_code(self.dtype)
            .ok_or_else(|| Failure::invalid(format!("unknown dtype code {}", self.dtype)))?;
        Ok(TensorRef {
            dtype,
            shape: arg_bytes(self.shape, self.ndims, "view shape")?,
            data: arg_bytes(self.data, self.nbytes, "view data")?,
        })
    }
}

/// An owned tensor (a Box on the Rust side). Free with `harmonics_tensor_free`.
pub struct HarmonicsTensor {
    pub(crate) tensor: Tensor,
}

impl BoxHandle for HarmonicsTensor {}

/// Copies `data` and `shape` into a new owned tensor.
///
/// # Safety
/// `shape` points to `ndims` values and `data` to `nbytes` bytes (either may be null
/// when its length is 0); `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_tensor_new(
    dtype: HarmonicsDtypeCode,
    shape: *const usize,
    ndims: usize,
    data: *const u8,
    nbytes: usize,
    out: *mut *mut HarmonicsTensor,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        let view = HarmonicsTensorView {
            dtype,
            ndims,
            shape,
            data,
            nbytes,
        };
        // SAFETY: the caller vouches for the pointers (see above).
        let t = unsafe { view.as_ref() }?.to_owned();
        write_out(out, "out", HarmonicsTensor { tensor: t }.into_raw())
    })
}

/// Fills `out` with a view of `tensor`, valid until the tensor is freed.
///
/// # Safety
/// `tensor` is null or a live tensor handle; `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_tensor_view(
    tensor: *const HarmonicsTensor,
    out: *mut HarmonicsTensorView,
) -> HarmonicsStatus {
    guard(|| {
        let t = arg_ref(tensor, "tensor")?;
        write_out(out, "out", HarmonicsTensorView::from_ref(t.tensor.as_ref()))
    })
}

/// Frees a tensor; null is a no-op.
///
/// # Safety
/// `tensor` is null or a live tensor handle not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn harmonics_tensor_free(tensor: *mut HarmonicsTensor) {
    guard(|| {
        // SAFETY: per the contract above.
        unsafe { HarmonicsTensor::free_raw(tensor) };
        Ok(())
    });
}

/// Writes bytes for the wire codec: `len` bytes at `buf`, borrowed for the call.
/// Returns `HARMONICS_STATUS_OK`, or any other value to stop (optionally after
/// `harmonics_callback_error`).
pub type HarmonicsWriteFn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        buf: *const u8,
        len: usize,
    ) -> HarmonicsCallbackResult,
>;

/// Reads bytes for the wire codec into `buf` (capacity `len`, borrowed for the call);
/// stores the count in `*read` (0 = end of stream). Any value but
/// `HARMONICS_STATUS_OK` stops the read.
pub type HarmonicsReadFn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        buf: *mut u8,
        len: usize,
        read: *mut usize,
    ) -> HarmonicsCallbackResult,
>;

struct CallbackIo {
    read: HarmonicsReadFn,
    write: HarmonicsWriteFn,
    userdata: *mut c_void,
    /// The message of a callback that returned no status code at all: the call then
    /// fails with `HARMONICS_STATUS_FOREIGN` (whatever the codec makes of the I/O error).
    unknown: Option<String>,
}

impl CallbackIo {
    fn new(read: HarmonicsReadFn, write: HarmonicsWriteFn, userdata: *mut c_void) -> CallbackIo {
        CallbackIo {
            read,
            write,
            userdata,
            unknown: None,
        }
    }

    /// Reads what the callback `what` returned; a failure stops the codec.
    fn check(&mut self, what: &str, code: HarmonicsCallbackResult) -> std::io::Result<()> {
        callback_result(what, code).map_err(|f| {
            if f.unknown {
                self.unknown = Some(f.message.clone());
            }
            std::io::Error::other(f.message)
        })
    }

    /// The codec's failure, or the unknown status that caused it.
    fn failure(&mut self, e: crate::Error) -> Failure {
        match self.unknown.take() {
            Some(m) => Failure::from(crate::Error::Foreign(m)),
            None => Failure::from(e),
        }
    }
}

impl Write for CallbackIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let f = self.write.expect("checked at entry");
        take_callback_error();
        // SAFETY: the callback contract: buf is borrowed for the duration of the call.
        let code = unsafe { f(self.userdata, buf.as_ptr(), buf.len()) };
        self.check("write callback", code)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for CallbackIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let f = self.read.expect("checked at entry");
        let mut n = 0usize;
        take_callback_error();
        // SAFETY: the callback writes at most buf.len() bytes into buf.
        let code = unsafe { f(self.userdata, buf.as_mut_ptr(), buf.len(), &mut n) };
        self.check("read callback", code)?;
        if n > buf.len() {
            return Err(std::io::Error::other(format!(
                "read callback reported {n} bytes for a {}-byte buffer",
                buf.len()
            )));
        }
        Ok(n)
    }
}

/// Encodes `tensor` in the wire format (the original `write_tensor`) through `write`.
///
/// # Safety
/// `tensor`'s pointers are valid for their lengths; `write` is callable with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn harmonics_wire_write(
    tensor: *const HarmonicsTensorView,
    write: HarmonicsWriteFn,
    userdata: *mut c_void,
) -> HarmonicsStatus {
    guard(|| {
        let view = arg_ref(tensor, "tensor")?;
        if write.is_none() {
            return Err(Failure::null("write callback"));
        }
        // SAFETY: the caller vouches for the view's pointers.
        let t = unsafe { view.as_ref() }?;
        let mut io = CallbackIo::new(None, write, userdata);
        write_tensor(&mut io, t).map_err(|e| io.failure(e))
    })
}

/// Decodes one wire record (the original `read_tensor`) pulled through `read`.
/// At a clean end of stream `*out` is set to null and the status is OK. A record that
/// claims more bytes than the stream holds is an error; memory grows only with the
/// bytes actually read.
///
/// # Safety
/// `read` is callable with `userdata`; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn harmonics_wire_read(
    read: HarmonicsReadFn,
    userdata: *mut c_void,
    out: *mut *mut HarmonicsTensor,
) -> HarmonicsStatus {
    guard(|| {
        check_out(out, "out")?;
        if read.is_none() {
            return Err(Failure::null("read callback"));
        }
        let mut io = CallbackIo::new(read, None, userdata);
        let t = read_tensor(&mut io).map_err(|e| io.failure(e))?;
        let handle = t.map_or(std::ptr::null_mut(), |tensor| {
            HarmonicsTensor { tensor }.into_raw()
        });
        write_out(out, "out", handle)
    })
}
