// harmonics-dataset C++ wrapper: diagnostics (levels, a host's log callback) and the
// library version. The behaviour is the C API's (harmonics_set_log_callback & co.).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include <harmonics/error.hpp>

namespace harmonics {

/// How much a diagnostic matters; also the threshold of `set_log_level`.
enum class LogLevel : std::uint32_t { Off = 0, Warn = 1, Info = 2, Debug = 3 };
static_assert(static_cast<std::uint32_t>(LogLevel::Off) == HARMONICS_LOG_LEVEL_OFF, "LogLevel");
static_assert(static_cast<std::uint32_t>(LogLevel::Warn) == HARMONICS_LOG_LEVEL_WARN, "LogLevel");
static_assert(static_cast<std::uint32_t>(LogLevel::Info) == HARMONICS_LOG_LEVEL_INFO, "LogLevel");
static_assert(static_cast<std::uint32_t>(LogLevel::Debug) == HARMONICS_LOG_LEVEL_DEBUG, "LogLevel");

/// Receives one diagnostic: its level and its message (one line, no newline).
using LogCallback = std::function<void(LogLevel, const std::string&)>;

namespace detail {

inline std::mutex& log_callback_mutex() {
    static std::mutex m;
    return m;
}

/// The installed callback, owned here (the library only borrows it as userdata).
inline LogCallback*& log_callback_slot() {
    static LogCallback* current = nullptr;
    return current;
}

extern "C" inline void log_trampoline(HarmonicsLogLevel level, const char* message,
                                      void* userdata) noexcept {
    // A diagnostic must not unwind into the library; it has nowhere to report an
    // exception (failure OK: swallowed, the message is lost).
    (void)bridge_exceptions(HARMONICS_STATUS_OK, [&] {
        (*static_cast<LogCallback*>(userdata))(static_cast<LogLevel>(level), message);
        return HARMONICS_STATUS_OK;
    });
}

}  // namespace detail

/// Sends every reported diagnostic to `callback` instead of stderr; an empty
/// `callback` restores stderr. The callback may be called from any thread, also
/// concurrently: it must be thread-safe. Exceptions it throws are swallowed. When this
/// returns, the previous callback is no longer running. Not to be called from inside a
/// callback. Throws `harmonics::Error` only if the library refuses the call.
inline void set_log_callback(LogCallback callback) {
    std::lock_guard<std::mutex> lock(detail::log_callback_mutex());
    LogCallback* next = callback ? new LogCallback(std::move(callback)) : nullptr;
    const HarmonicsStatus s = next
        ? harmonics_set_log_callback(&detail::log_trampoline, next)
        : harmonics_set_log_callback(nullptr, nullptr);
    if (s != HARMONICS_STATUS_OK) {
        delete next;
        detail::check(s);
    }
    delete detail::log_callback_slot();  // no longer running (see above)
    detail::log_callback_slot() = next;
}

/// Sets the threshold of reported diagnostics (overrides `HARMONICS_LOG`).
inline void set_log_level(LogLevel level) {
    detail::check(harmonics_set_log_level(static_cast<std::uint32_t>(level)));
}

/// The current threshold (`HARMONICS_LOG=off|warn|info|debug`, default `Warn`).
inline LogLevel log_level() noexcept { return static_cast<LogLevel>(harmonics_log_level()); }

/// The version of the loaded library, "MAJOR.MINOR.PATCH" (the header's is
/// `HARMONICS_DATASET_VERSION`).
inline std::string version() { return harmonics_version(); }

}  // namespace harmonics
