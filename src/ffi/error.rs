//! Status codes, the thread-local last-error message, and the panic boundary.
//!
//! Every exported function runs its body through `guard`, which catches panics and
//! turns any failure into a status plus a message readable with
//! `harmonics_last_error_message()` on the same thread.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// Result of every fallible call. Codes start at 0x48440000 ("HD" in the top bytes), a
/// base no well-known neighbour uses (rustls-ffi spans 7000–7702), so a value read from
/// the wrong place is recognisably wrong; `HARMONICS_STATUS_OK` is the only success.
///
/// Adding a status: a variant here and its row in `STATUS_TABLE` (a unit test checks
/// that the generated header and the table list the same codes).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsStatus {
    Ok = 0x48440000,
    /// A required pointer argument was null.
    NullArgument = 0x48440001,
    /// An argument had a value that cannot be used (bad dtype code, non-UTF-8 string, …).
    InvalidArgument = 0x48440002,
    /// An operating-system I/O failure.
    Io = 0x48440003,
    /// A damaged cache file.
    Corrupt = 0x48440004,
    /// Malformed wire bytes.
    Wire = 0x48440005,
    /// A refused cache name.
    InvalidName = 0x48440006,
    /// A CSV syntax error or non-numeric cell.
    Csv = 0x48440007,
    /// A record whose shape differs from the first one (validation).
    ShapeMismatch = 0x48440008,
    /// An HTTP failure.
    Http = 0x48440009,
    /// A producer with no records was asked for one.
    Empty = 0x4844000a,
    /// An error raised by a foreign producer, token or copy callback.
    Foreign = 0x4844000b,
    /// A bug: a Rust panic was caught at the boundary.
    Panic = 0x4844000c,
    /// Another process held a cache's lock longer than the lock timeout
    /// (`harmonics_set_lock_timeout_ms`, `HARMONICS_LOCK_TIMEOUT`).
    LockTimeout = 0x4844000d,
    /// Damage was found in a cache and rebuilding it from its source failed (the
    /// message names the damage and the cause).
    RebuildFailed = 0x4844000e,
    /// A download was stopped before it finished (its consumer went away).
    Stopped = 0x4844000f,
    /// Random access asked of a producer that has none.
    NoRandomAccess = 0x48440020,
    /// A record index past the end of the dataset.
    IndexOutOfRange = 0x48440021,
    /// A handle used again after a panic inside it was caught (`PANIC`): its state
    /// cannot be trusted; free it and create a new one.
    Poisoned = 0x48440022,
}

/// Every status with its name: the one list `harmonics_status_name` reads.
// One row a line, as a table reads (rustfmt would split the longer rows in four).
#[rustfmt::skip]
const STATUS_TABLE: &[(HarmonicsStatus, &CStr)] = &[
    (HarmonicsStatus::Ok, c"ok"),
    (HarmonicsStatus::NullArgument, c"null argument"),
    (HarmonicsStatus::InvalidArgument, c"invalid argument"),
    (HarmonicsStatus::Io, c"I/O error"),
    (HarmonicsStatus::Corrupt, c"corrupted cache file"),
    (HarmonicsStatus::Wire, c"malformed record"),
    (HarmonicsStatus::InvalidName, c"invalid cache name"),
    (HarmonicsStatus::Csv, c"CSV error"),
    (HarmonicsStatus::ShapeMismatch, c"shape mismatch"),
    (HarmonicsStatus::Http, c"HTTP error"),
    (HarmonicsStatus::Empty, c"no records"),
    (HarmonicsStatus::Foreign, c"error in a foreign callback"),
    (HarmonicsStatus::Panic, c"internal error (panic)"),
    (HarmonicsStatus::LockTimeout, c"timed out waiting for a cache lock"),
    (HarmonicsStatus::RebuildFailed, c"rebuilding a damaged cache failed"),
    (HarmonicsStatus::Stopped, c"download stopped"),
    (HarmonicsStatus::NoRandomAccess, c"no random access"),
    (HarmonicsStatus::IndexOutOfRange, c"record index out of range"),
    (HarmonicsStatus::Poisoned, c"unusable after an internal error"),
];

/// What a callback returns: a status code as a plain integer (as rustls-ffi's
/// `rustls_io_result`), never the `HarmonicsStatus` enum itself: a callback may return
/// any value, and a Rust enum holding a value it does not list is undefined behaviour.
/// `HARMONICS_STATUS_OK` is success, any other `HARMONICS_STATUS_*` code a failure; a
/// value that is no status code (0, 1, -1, …) is a failure too, reported as
/// `HARMONICS_STATUS_FOREIGN` with a message naming the value.
pub type HarmonicsCallbackResult = u32;

/// A callback's failure, read from the integer it returned.
#[derive(Debug)]
pub(crate) struct CallbackFailure {
    /// The callback's own message (`harmonics_callback_error`), else one naming the code.
    pub message: String,
    /// The value was no status code at all (a bug of the callback, whatever the call).
    pub unknown: bool,
}

impl From<CallbackFailure> for Error {
    fn from(f: CallbackFailure) -> Error {
        Error::Foreign(f.message)
    }
}

/// Reads what the callback `what` ("foreign producer's next") returned, taking the
/// message it left on this thread with `harmonics_callback_error` (if any).
pub(crate) fn callback_result(
    what: &str,
    code: HarmonicsCallbackResult,
) -> std::result::Result<(), CallbackFailure> {
    let left = take_callback_error();
    match HarmonicsStatus::from_code(code) {
        Some(HarmonicsStatus::Ok) => Ok(()),
        Some(s) => Err(CallbackFailure {
            message: left
                .unwrap_or_else(|| format!("{what} failed with status {code} ({})", s.name())),
            unknown: false,
        }),
        None => {
            let mut message = format!(
                "{what} returned unknown status {code}, which is no HarmonicsStatus code \
                 (HARMONICS_STATUS_OK is {})",
                HarmonicsStatus::Ok as u32
            );
            if let Some(left) = left {
                message = format!("{message}: {left}");
            }
            Err(CallbackFailure {
                message,
                unknown: true,
            })
        }
    }
}

impl HarmonicsStatus {
    /// The status with code `code`, if there is one.
    pub(crate) fn from_code(code: u32) -> Option<HarmonicsStatus> {
        STATUS_TABLE
            .iter()
            .find(|(s, _)| *s as u32 == code)
            .map(|(s, _)| *s)
    }

    /// The status's name (`harmonics_status_name`).
    fn name(self) -> &'static str {
        STATUS_TABLE
            .iter()
            .find(|(s, _)| *s == self)
            .and_then(|(_, n)| n.to_str().ok())
            .unwrap_or("unknown status code")
    }

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
            Error::RebuildFailed { .. } => HarmonicsStatus::RebuildFailed,
            Error::Stopped(_) => HarmonicsStatus::Stopped,
            Error::InvalidArgument(_) => HarmonicsStatus::InvalidArgument,
            Error::NoRandomAccess(_) => HarmonicsStatus::NoRandomAccess,
            Error::Poisoned(_) => HarmonicsStatus::Poisoned,
            // A record a partial cache does not hold: out of this node's range.
            Error::IndexOutOfRange { .. } | Error::NotHeld { .. } => {
                HarmonicsStatus::IndexOutOfRange
            }
        }
    }
}

/// A failure at the boundary: a status, its message, and the HTTP status of the
/// response that caused it (0: none).
pub(crate) struct Failure {
    pub status: HarmonicsStatus,
    pub message: String,
    pub http_status: u16,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            status: HarmonicsStatus::of(&e),
            message: e.to_string(),
            http_status: e.http_status().unwrap_or(0),
        }
    }
}

impl Failure {
    /// A failure found at the boundary itself (no HTTP status).
    pub fn new(status: HarmonicsStatus, message: String) -> Failure {
        Failure {
            status,
            message,
            http_status: 0,
        }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(HarmonicsStatus::NullArgument, format!("{what} is null"))
    }

    pub fn invalid(message: String) -> Failure {
        Failure::new(HarmonicsStatus::InvalidArgument, message)
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_HTTP_STATUS: Cell<u16> = const { Cell::new(0) };
    static CALLBACK_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str, http_status: u16) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
    LAST_HTTP_STATUS.with(|s| s.set(http_status));
}

/// Runs an exported function's body: panics and failures become a status and a
/// last-error message; nothing unwinds into the caller.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> HarmonicsStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => HarmonicsStatus::Ok,
        Ok(Err(f)) => {
            set_last_error(&f.message, f.http_status);
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (please report): {what}"), 0);
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

/// The HTTP status code (404, 503, ...) of the response behind the last failed call on
/// this thread, as `harmonics_last_error_message` describes it; 0 when that failure had
/// none (not an HTTP failure, or no response: a refused connection, TLS, a timeout, a
/// cut body) or no call failed. An HTTP failure's status is `HARMONICS_STATUS_HTTP`
/// (or `HARMONICS_STATUS_REBUILD_FAILED` when rebuilding a damaged cache from the URL
/// failed).
#[no_mangle]
pub extern "C" fn harmonics_last_error_http_status() -> u16 {
    LAST_HTTP_STATUS.with(Cell::get)
}

/// A static, human-readable name for a status code (never null).
#[no_mangle]
pub extern "C" fn harmonics_status_name(status: u32) -> *const c_char {
    STATUS_TABLE
        .iter()
        .find(|(s, _)| *s as u32 == status)
        .map_or(c"unknown status code".as_ptr(), |(_, name)| name.as_ptr())
}

/// Called by a foreign callback (producer `next`/`size`, token) on its own thread just
/// before it returns a value other than `HARMONICS_STATUS_OK`: the message becomes the
/// error's message. `message` is copied; null is ignored.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated header's `HarmonicsStatus` enum and `STATUS_TABLE` list the same
    /// codes: a variant added without its table row (or the reverse) fails here.
    #[test]
    fn status_table_lists_every_status_of_the_header() {
        let header = include_str!("../../include/harmonics_dataset.h");
        let body = header
            .split("enum HarmonicsStatus")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .expect("HarmonicsStatus in the header");
        let mut in_header: Vec<u32> = body
            .lines()
            .filter(|l| l.trim_start().starts_with("HARMONICS_STATUS_"))
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(_, v)| v.trim().trim_end_matches(','))
            })
            .map(|v| v.parse().expect(v))
            .collect();
        let mut in_table: Vec<u32> = STATUS_TABLE.iter().map(|(s, _)| *s as u32).collect();
        in_header.sort();
        in_table.sort();
        in_table.dedup();
        assert_eq!(in_table.len(), STATUS_TABLE.len(), "a code listed twice");
        assert_eq!(in_header, in_table);
        for (s, name) in STATUS_TABLE {
            // SAFETY: harmonics_status_name returns a static NUL-terminated string.
            let got = unsafe { CStr::from_ptr(harmonics_status_name(*s as u32)) };
            assert_eq!(got, *name);
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(harmonics_status_name(7100)) };
        assert_eq!(unknown, c"unknown status code");
    }
}
