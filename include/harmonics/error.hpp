// harmonics-dataset C++ wrapper: the one exception type and the one place that turns
// a C status into it.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <harmonics_dataset.h>

namespace harmonics {

/// Every failure of the library: a `std::runtime_error` carrying the Rust message and
/// the C status code.
class Error : public std::runtime_error {
  public:
    Error(HarmonicsStatus status, const std::string& message)
        : std::runtime_error(message), status_{status} {}

    HarmonicsStatus status() const noexcept { return status_; }

  private:
    HarmonicsStatus status_;
};

namespace detail {

/// Throws `harmonics::Error` with the thread's last error message unless `s` is OK.
inline void check(HarmonicsStatus s) {
    if (s != HARMONICS_STATUS_OK) {
        const char* msg = harmonics_last_error_message();
        throw Error(s, (msg && *msg) ? msg : harmonics_status_name(s));
    }
}

/// `s.c_str()`, refusing strings with an embedded NUL byte (which C would silently
/// truncate: "a\0b" must not quietly become "a").
inline const char* c_string(const std::string& s, const char* what, HarmonicsStatus status) {
    if (s.find('\0') != std::string::npos)
        throw Error(status, std::string(what) + " contains a NUL byte");
    return s.c_str();
}

struct ProducerDeleter {
    void operator()(HarmonicsProducer* p) const noexcept { harmonics_producer_free(p); }
};
struct TensorDeleter {
    void operator()(HarmonicsTensor* t) const noexcept { harmonics_tensor_free(t); }
};

using ProducerHandle = std::unique_ptr<HarmonicsProducer, ProducerDeleter>;
using TensorHandle = std::unique_ptr<HarmonicsTensor, TensorDeleter>;

}  // namespace detail
}  // namespace harmonics
