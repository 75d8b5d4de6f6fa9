// harmonics-dataset C++ wrapper: how long to wait for a cache lock held by another
// process (process-wide; see harmonics_set_lock_timeout_ms).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include <harmonics_dataset.h>

namespace harmonics {

/// Waits for a cache lock held by another process at most `timeout`, then the call
/// throws `harmonics::Error` with status `HARMONICS_STATUS_LOCK_TIMEOUT` naming the
/// cache and the holder's pid. `std::nullopt` waits without a limit (the default).
/// Overrides the environment variable HARMONICS_LOCK_TIMEOUT (seconds).
inline void set_lock_timeout(std::optional<std::chrono::milliseconds> timeout) {
    harmonics_set_lock_timeout_ms(
        timeout ? (timeout->count() < 0 ? 0 : static_cast<int64_t>(timeout->count())) : -1);
}

/// The lock timeout in force; `std::nullopt` when there is no limit.
inline std::optional<std::chrono::milliseconds> lock_timeout() {
    const int64_t ms = harmonics_lock_timeout_ms();
    if (ms < 0) return std::nullopt;
    return std::chrono::milliseconds(ms);
}

}  // namespace harmonics
