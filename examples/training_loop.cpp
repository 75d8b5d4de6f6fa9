// The reference documentation's "Example Training Loop", compiled verbatim: an
// HttpProducer downloads the dataset from http://127.0.0.1:8080/data and caches it,
// a DiskCacheProducer keeps the training copy in train.cache, and the loop iterates
// the samples. scripts/demo.sh runs it twice: the second run finds both caches and
// needs no server.
//
// After the documented loop, a second pass reads every float of every record and
// prints a checksum, so the two runs can be seen to produce the same data.
#include <harmonics/dataset.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>

namespace {

const char* outcome_name(harmonics::CacheOutcome o) {
    switch (o) {
    case harmonics::CacheOutcome::Reused: return "reused (read from the cache)";
    case harmonics::CacheOutcome::Created: return "created (downloaded and cached)";
    case harmonics::CacheOutcome::Appended: return "appended (new records cached)";
    case harmonics::CacheOutcome::Rebuilt: return "rebuilt";
    }
    return "?";
}

}  // namespace

int main() try {
    const auto start = std::chrono::steady_clock::now();
    {
        // The snippet, as the document writes it. Its #include is a no-op here (the
        // header was included above and is include-guarded), which lets the
        // statements sit verbatim inside main().
        // BEGIN SNIPPET training-loop
#include <harmonics/dataset.hpp>

auto loader = std::make_shared<harmonics::HttpProducer>(
    "127.0.0.1", 8080, "/data", /*cache=*/true, "dataset.cache");
harmonics::DiskCacheProducer cached(loader, "train.cache");

for (std::size_t i = 0; i < cached.size(); ++i) {
    auto sample = cached.next();
    // feed `sample` into the network here
}
        // END SNIPPET training-loop

        // A second pass that touches every element: a checksum of the dataset.
        double checksum = 0;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < cached.size(); ++i) {
            auto sample = cached.next();
            const auto& data = sample.data();
            for (std::size_t k = 0; k + sizeof(float) <= data.size(); k += sizeof(float)) {
                float v;
                std::memcpy(&v, data.data() + k, sizeof v);
                checksum += v;
            }
            bytes += data.size();
        }
        const std::chrono::duration<double> elapsed =
            std::chrono::steady_clock::now() - start;
        std::printf("train.cache: %s\n", outcome_name(cached.outcome()));
        std::printf("records: %zu (%.1f MB), two passes, checksum %.6e\n", cached.size(),
                    bytes / 1e6, checksum);
        std::printf("elapsed: %.3f s\n", elapsed.count());
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "training_loop: %s\n", e.what());
    return 1;
}
