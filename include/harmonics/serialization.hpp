// harmonics-dataset C++ wrapper: the wire codec of the original runtime
// (`u8 dtype | u32 ndims | u32 dims | u32 nbytes | data`, little-endian).
#pragma once

#include <istream>
#include <ostream>

#include <harmonics/core.hpp>

namespace harmonics {

namespace detail {

// A stream's failure is an I/O error of the stream (HARMONICS_STATUS_IO).
inline HarmonicsCallbackResult ostream_write(void* userdata, const std::uint8_t* buf, std::size_t len) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_IO, [&] {
        auto* os = static_cast<std::ostream*>(userdata);
        os->write(reinterpret_cast<const char*>(buf), static_cast<std::streamsize>(len));
        if (*os) return HARMONICS_STATUS_OK;
        harmonics_callback_error("write_tensor: the output stream failed");
        return HARMONICS_STATUS_IO;
    });
}

inline HarmonicsCallbackResult istream_read(void* userdata, std::uint8_t* buf, std::size_t len,
                                            std::size_t* read) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_IO, [&] {
        auto* is = static_cast<std::istream*>(userdata);
        is->read(reinterpret_cast<char*>(buf), static_cast<std::streamsize>(len));
        *read = static_cast<std::size_t>(is->gcount());
        if (*read > 0 || is->eof()) return HARMONICS_STATUS_OK;
        harmonics_callback_error("read_tensor: the input stream failed");
        return HARMONICS_STATUS_IO;
    });
}

}  // namespace detail

/// Writes one record in the wire format.
inline void write_tensor(std::ostream& os, const HTensor& t) {
    HarmonicsTensorView v = detail::c_view_of(t);
    detail::check(harmonics_wire_write(&v, &detail::ostream_write, &os));
}

/// Reads one record in the wire format. Throws `harmonics::Error` on malformed or
/// truncated input and at the end of the stream.
inline HTensor read_tensor(std::istream& is) {
    HarmonicsTensor* raw = nullptr;
    detail::check(harmonics_wire_read(&detail::istream_read, &is, &raw));
    if (!raw) throw Error(HARMONICS_STATUS_WIRE, "read_tensor: end of stream, no record");
    detail::TensorHandle t{raw};
    HarmonicsTensorView v;
    detail::check(harmonics_tensor_view(t.get(), &v));
    return detail::to_view(v).to_tensor();
}

}  // namespace harmonics
