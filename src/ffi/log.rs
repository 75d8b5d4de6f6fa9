//! Diagnostics at the C boundary (`crate::log`): the level, a host's log callback, and
//! the library's version.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::error::{guard, Failure, HarmonicsStatus};
use crate::log::{self, Level};

/// How much a diagnostic matters; also the threshold of `harmonics_set_log_level`
/// (`HARMONICS_LOG_LEVEL_OFF` reports nothing). The default threshold is
/// `HARMONICS_LOG_LEVEL_WARN`, or what the environment variable
/// `HARMONICS_LOG=off|warn|info|debug` says.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarmonicsLogLevel {
    Off = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl From<Level> for HarmonicsLogLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Off => HarmonicsLogLevel::Off,
            Level::Warn => HarmonicsLogLevel::Warn,
            Level::Info => HarmonicsLogLevel::Info,
            Level::Debug => HarmonicsLogLevel::Debug,
        }
    }
}

/// Receives one diagnostic. `message` is a NUL-terminated UTF-8 line (no trailing
/// newline) borrowed for the duration of the call only: copy what you keep. The
/// callback may be called from any thread (downloads run on their own threads), and
/// concurrently: it must be thread-safe. It must not unwind (a C++ callback catches
/// its exceptions), and must not call `harmonics_set_log_callback`.
pub type HarmonicsLogCallback = Option<
    unsafe extern "C" fn(level: HarmonicsLogLevel, message: *const c_char, userdata: *mut c_void),
>;

struct ForeignSink {
    callback: unsafe extern "C" fn(HarmonicsLogLevel, *const c_char, *mut c_void),
    userdata: *mut c_void,
}

// SAFETY: the callback contract above makes the callback and its userdata usable from
// any thread.
unsafe impl Send for ForeignSink {}
unsafe impl Sync for ForeignSink {}

impl ForeignSink {
    fn call(&self, level: Level, message: &str) {
        let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: the callback contract; `c` outlives the call.
        unsafe { (self.callback)(level.into(), c.as_ptr(), self.userdata) }
    }
}

/// Sends every reported diagnostic to `callback` instead of stderr; a null `callback`
/// restores stderr. `userdata` is passed back unchanged and stays the caller's: it must
/// live until the callback is replaced (the library never frees it). When this call
/// returns, the previous callback is no longer running and will not be called again,
/// so its userdata may be freed then. Which levels are
/// reported is still set by `HARMONICS_LOG` / `harmonics_set_log_level`.
///
/// # Safety
/// `callback` follows the `HarmonicsLogCallback` contract.
#[no_mangle]
pub unsafe extern "C" fn harmonics_set_log_callback(
    callback: HarmonicsLogCallback,
    userdata: *mut c_void,
) -> HarmonicsStatus {
    guard(|| {
        let sink = callback.map(|callback| {
            let foreign = ForeignSink { callback, userdata };
            Arc::new(move |level: Level, message: &str| foreign.call(level, message)) as log::Sink
        });
        log::set_sink(sink);
        Ok(())
    })
}

/// Sets the threshold of reported diagnostics (overrides `HARMONICS_LOG`). `level` is a
/// `HarmonicsLogLevel` code; another value is `HARMONICS_STATUS_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn harmonics_set_log_level(level: u32) -> HarmonicsStatus {
    guard(|| {
        let l = match level {
            0 => Level::Off,
            1 => Level::Warn,
            2 => Level::Info,
            3 => Level::Debug,
            _ => return Err(Failure::invalid(format!("unknown log level {level}"))),
        };
        log::set_level(l);
        Ok(())
    })
}

/// The current threshold of reported diagnostics.
#[no_mangle]
pub extern "C" fn harmonics_log_level() -> HarmonicsLogLevel {
    log::level().into()
}

/// The library's version, "MAJOR.MINOR.PATCH" (static, never null). Compare with the
/// header's `HARMONICS_DATASET_VERSION_*` macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn harmonics_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}
