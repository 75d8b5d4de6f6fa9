//! Process-wide settings at the C boundary: how long to wait for a cache lock that
//! another process holds.

use std::time::Duration;

/// Sets, for the whole process, how long a cache lock held by another process is
/// waited for before the call fails with `HARMONICS_STATUS_LOCK_TIMEOUT`:
/// `timeout_ms` milliseconds; 0 fails at once when the lock is held; a negative value
/// waits without a limit (the default). Overrides the environment variable
/// `HARMONICS_LOCK_TIMEOUT` (seconds). Applies to waits that start afterwards.
/// While waiting, the library says on stderr after 2 s which cache it waits for and
/// which pid holds the lock.
#[no_mangle]
pub extern "C" fn harmonics_set_lock_timeout_ms(timeout_ms: i64) {
    let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
    crate::cache::set_lock_timeout(timeout);
}

/// The lock timeout in force, in milliseconds (from `harmonics_set_lock_timeout_ms`,
/// else `HARMONICS_LOCK_TIMEOUT`); -1 when there is no limit.
#[no_mangle]
pub extern "C" fn harmonics_lock_timeout_ms() -> i64 {
    crate::cache::lock_timeout().map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
