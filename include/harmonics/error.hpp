// harmonics-dataset C++ wrapper: the one exception type, the one place that turns a C
// status into it, and the one bridge that turns it (or any exception) back into a
// status at a callback's edge.
#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include <harmonics/handles.hpp>
#include <harmonics_dataset.h>

namespace harmonics {

/// Every failure of the library: a `std::runtime_error` carrying the Rust message, the
/// C status code and, for an HTTP failure, the status of the response behind it.
class Error : public std::runtime_error {
  public:
    Error(HarmonicsStatus status, const std::string& message, std::uint16_t http_status = 0)
        : std::runtime_error(message), status_{status}, http_status_{http_status} {}

    HarmonicsStatus status() const noexcept { return status_; }

    /// The HTTP status code (404, 503, ...) of the response that made this error; 0
    /// when there was none (not an HTTP failure, or a refused connection, TLS, a
    /// timeout, a cut body). See `harmonics_last_error_http_status`.
    std::uint16_t http_status() const noexcept { return http_status_; }

  private:
    HarmonicsStatus status_;
    std::uint16_t http_status_;
};

namespace detail {

/// Throws `harmonics::Error` with the thread's last error message (and HTTP status)
/// unless `s` is OK.
inline void check(HarmonicsStatus s) {
    if (s != HARMONICS_STATUS_OK) {
        const char* msg = harmonics_last_error_message();
        throw Error(s, (msg && *msg) ? msg : harmonics_status_name(s),
                    harmonics_last_error_http_status());
    }
}

/// `s.c_str()`, refusing strings with an embedded NUL byte (which C would silently
/// truncate: "a\0b" must not quietly become "a").
inline const char* c_string(const std::string& s, const char* what, HarmonicsStatus status) {
    if (s.find('\0') != std::string::npos)
        throw Error(status, std::string(what) + " contains a NUL byte");
    return s.c_str();
}

/// The exception bridge of every trampoline (a C++ function the library calls through
/// C): runs `body`, which returns its status; no exception unwinds into the library. An
/// exception becomes `failure`, its message handed to the library with
/// `harmonics_callback_error`. A `failure` of `HARMONICS_STATUS_OK` means the caller
/// cannot report one (the log callback): the exception is swallowed, no message left.
template <class F>
HarmonicsStatus bridge_exceptions(HarmonicsStatus failure, F&& body) noexcept {
    const char* message = "unknown C++ exception";
    std::string what;
    try {
        return body();
    } catch (const std::exception& e) {
        try {
            what = e.what();
            message = what.c_str();
        } catch (...) {  // std::bad_alloc copying the message: keep the generic one
        }
    } catch (...) {
    }
    if (failure != HARMONICS_STATUS_OK) harmonics_callback_error(message);
    return failure;
}

}  // namespace detail
}  // namespace harmonics
