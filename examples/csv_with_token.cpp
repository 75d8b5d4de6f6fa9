// A CSV file cached with a token: the cache is reused while the token stays the same and
// rebuilt when it changes. Here the token is the file's size and modification time, so
// editing the CSV invalidates the cache; a real program might use a dataset version or a
// preprocessing-code hash.
//
//   csv_with_token [file.csv]     (default: writes ./example.csv with 4 rows first)
//
// Caches go under $HARMONICS_CACHE_DIR (default .harmonics/cache). Run it twice: the
// second run prints "reused"; touch or edit the CSV and it prints "rebuilt".
#include <harmonics/dataset.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace fs = std::filesystem;

static const char* outcome_name(harmonics::CacheOutcome o) {
    switch (o) {
    case harmonics::CacheOutcome::Reused: return "reused";
    case harmonics::CacheOutcome::Created: return "created";
    case harmonics::CacheOutcome::Appended: return "appended";
    case harmonics::CacheOutcome::Rebuilt: return "rebuilt";
    }
    return "?";
}

int main(int argc, char** argv) try {
    std::string path = argc > 1 ? argv[1] : "example.csv";
    if (argc <= 1 && !fs::exists(path)) {
        std::ofstream(path) << "0.5,1,2\n3,4,5\n6,7.25,8\n9,10,11\n";
    }

    // The token: anything that changes when the cached records would be stale.
    auto token = [path] {
        const auto size = fs::file_size(path);
        const auto mtime = fs::last_write_time(path).time_since_epoch().count();
        return std::to_string(size) + ":" + std::to_string(mtime);
    };

    // validate = true: every row must have the first row's number of columns.
    auto csv = std::make_shared<harmonics::CsvProducer>(path, /*validate=*/true);
    harmonics::DiskCacheProducer cached(csv, "example-csv.cache", token);

    double sum = 0;
    for (std::size_t i = 0; i < cached.size(); ++i) {
        harmonics::TensorView row = cached.next_view();  // zero-copy, valid until the next call
        for (std::size_t k = 0; k < row.nbytes / sizeof(float); ++k) sum += row.as<float>()[k];
    }
    std::printf("example-csv.cache: %s, %zu rows, sum %g\n", outcome_name(cached.outcome()),
                cached.size(), sum);
    return 0;
} catch (const harmonics::Error& e) {
    // The message names the file, the row and the column at fault.
    std::fprintf(stderr, "csv_with_token: %s\n", e.what());
    return 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "csv_with_token: %s\n", e.what());
    return 1;
}
