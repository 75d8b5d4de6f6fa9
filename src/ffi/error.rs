//! Status codes, the thread-local last-error message, and the panic boundary.
//!
//! Every exported function runs its body through `guard`, which catches panics and
//! turns any failure into a status plus a message readable with
//! `harmonics_last_error_message()` on the same thread.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// Result of every fallible call. Codes start at 7100 so a value read from the wrong
/// place is recognisably wrong; `HARMONICS_STATUS_OK` is the only success.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsStatus {
    Ok = 7100,
    /// A required pointer argument was null.
    NullArgument = 7101,
    /// An argument had a value that cannot be used (bad dtype code, non-UTF-8 string, …).
    InvalidArgument = 7102,
    /// An operating-system I/O failure.
    Io = 7103,
    /// A damaged cache file.
    Corrupt = 7104,
    /// Malformed wire bytes.
    Wire = 7105,
    /// A refused cache name.
    InvalidName = 7106,
    /// A CSV syntax error or non-numeric cell.
    Csv = 7107,
    /// A record whose shape differs from the first one (validation).
    ShapeMismatch = 7108,
    /// An HTTP failure.
    Http = 7109,
    /// A producer with no records was asked for one.
    Empty = 7110,
    /// An error raised by a foreign producer or token callback.
    Foreign = 7111,
    /// A bug: a Rust panic was caught at the boundary.
    Panic = 7112,
    /// Another process held a cache's lock longer than the lock timeout
    /// (`harmonics_set_lock_timeout_ms`, `HARMONICS_LOCK_TIMEOUT`).
    LockTimeout = 7113,
    /// Random access asked of a producer that has none.
    NoRandomAccess = 7120,
    /// A record index past the end of the dataset.
    IndexOutOfRange = 7121,
}

impl HarmonicsStatus {
    pub(crate) fn of(e: &Error) -> HarmonicsStatus {
        match e {
            // A FIFO, link or directory at a cache's name is a file-system problem.
            Error::Io { .. } | Error::NotRegularFile { .. } => HarmonicsStatus::Io,
            Error::LockTimeout { .. } => HarmonicsStatus::LockTimeout,
            Error::Wire(_) => HarmonicsStatus::Wire,
            Error::Corrupt { .. } => HarmonicsStatus::Corrupt,
            Error::InvalidName { .. } => HarmonicsStatus::InvalidName,
            Error::Csv { .. } => HarmonicsStatus::Csv,
            Error::ShapeMismatch { .. } => HarmonicsStatus::ShapeMismatch,
            Error::Http { .. } => HarmonicsStatus::Http,
            Error::Empty(_) => HarmonicsStatus::Empty,
            Error::Foreign(_) => HarmonicsStatus::Foreign,
            Error::InvalidArgument(_) => HarmonicsStatus::InvalidArgument,
            Error::NoRandomAccess(_) => HarmonicsStatus::NoRandomAccess,
            // A record a partial cache does not hold: out of this node's range.
            Error::IndexOutOfRange { .. } | Error::NotHeld { .. } => {
                HarmonicsStatus::IndexOutOfRange
            }
        }
    }

    fn name(self) -> &'static CStr {
        match self {
            HarmonicsStatus::Ok => c"ok",
            HarmonicsStatus::NullArgument => c"null argument",
            HarmonicsStatus::InvalidArgument => c"invalid argument",
            HarmonicsStatus::Io => c"I/O error",
            HarmonicsStatus::Corrupt => c"corrupted cache file",
            HarmonicsStatus::Wire => c"malformed record",
            HarmonicsStatus::InvalidName => c"invalid cache name",
            HarmonicsStatus::Csv => c"CSV error",
            HarmonicsStatus::ShapeMismatch => c"shape mismatch",
            HarmonicsStatus::Http => c"HTTP error",
            HarmonicsStatus::Empty => c"no records",
            HarmonicsStatus::Foreign => c"error in a foreign callback",
            HarmonicsStatus::Panic => c"internal error (panic)",
            HarmonicsStatus::LockTimeout => c"timed out waiting for a cache lock",
            HarmonicsStatus::NoRandomAccess => c"no random access",
            HarmonicsStatus::IndexOutOfRange => c"record index out of range",
        }
    }
}

/// A failure at the boundary: a status and its message.
pub(crate) struct Failure {
    pub status: HarmonicsStatus,
    pub message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            status: HarmonicsStatus::of(&e),
            message: e.to_string(),
        }
    }
}

impl Failure {
    pub fn null(what: &str) -> Failure {
        Failure {
            status: HarmonicsStatus::NullArgument,
            message: format!("{what} is null"),
        }
    }

    pub fn invalid(message: String) -> Failure {
        Failure {
            status: HarmonicsStatus::InvalidArgument,
            message,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static CALLBACK_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs an exported function's body: panics and failures become a status and a
/// last-error message; nothing unwinds into the caller.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> HarmonicsStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => HarmonicsStatus::Ok,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (please report): {what}"));
            HarmonicsStatus::Panic
        }
    }
}

/// Takes the message a callback left with `harmonics_callback_error`, if any.
pub(crate) fn take_callback_error() -> Option<String> {
    CALLBACK_ERROR.with(|e| e.borrow_mut().take())
}

/// The message of the last failed call on this thread (empty if none failed).
/// The pointer stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn harmonics_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A static, human-readable name for a status code (never null).
#[no_mangle]
pub extern "C" fn harmonics_status_name(status: u32) -> *const c_char {
    let all = [
        HarmonicsStatus::Ok,
        HarmonicsStatus::NullArgument,
        HarmonicsStatus::InvalidArgument,
        HarmonicsStatus::Io,
        HarmonicsStatus::Corrupt,
        HarmonicsStatus::Wire,
        HarmonicsStatus::InvalidName,
        HarmonicsStatus::Csv,
        HarmonicsStatus::ShapeMismatch,
        HarmonicsStatus::Http,
        HarmonicsStatus::Empty,
        HarmonicsStatus::Foreign,
        HarmonicsStatus::Panic,
        HarmonicsStatus::LockTimeout,
        HarmonicsStatus::NoRandomAccess,
        HarmonicsStatus::IndexOutOfRange,
    ];
    all.iter()
        .find(|s| **s as u32 == status)
        .map_or(c"unknown status code".as_ptr(), |s| s.name().as_ptr())
}

/// Called by a foreign callback (producer `next`/`size`, token) on its own thread just
/// before it returns a non-OK status: the message becomes the error's message. `message`
/// is copied; null is ignored.
///
/// # Safety
/// `message` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn harmonics_callback_error(message: *const c_char) {
    if message.is_null() {
        return;
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let m = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    CALLBACK_ERROR.with(|e| *e.borrow_mut() = Some(m));
}
