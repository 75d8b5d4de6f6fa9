// harmonics-dataset C++ wrapper: CsvProducer, one 1-D Float32 record per CSV line.
#pragma once

#include <istream>
#include <iterator>
#include <string>

#include <harmonics/core.hpp>

namespace harmonics {

/// One Float32 record per CSV line: quoted cells and surrounding spaces accepted, empty
/// cells skipped, a non-numeric cell is an error naming its row and column. With
/// `validate`, every line must have the first line's length. A file is checked at
/// construction (it must exist and be readable) and parsed when its records are first
/// needed, so a DiskCacheProducer over an unchanged file never parses it. A stream is
/// read and parsed at construction.
class CsvProducer : public NativeProducer {
  public:
    explicit CsvProducer(const std::string& path, bool validate = false) {
        HarmonicsProducer* h = nullptr;
        detail::check(harmonics_csv_producer_new(
            detail::c_string(path, "CSV path", HARMONICS_STATUS_INVALID_ARGUMENT), validate, &h));
        reset(h);
    }

    explicit CsvProducer(std::istream& in, bool validate = false) {
        std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        HarmonicsProducer* h = nullptr;
        detail::check(harmonics_csv_producer_from_memory(reinterpret_cast<const std::uint8_t*>(text.data()),
                                                         text.size(), "<istream>", validate, &h));
        reset(h);
    }
};

}  // namespace harmonics
