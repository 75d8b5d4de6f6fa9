// A downstream program: caches 3 CSV records read from an istream and prints them, one
// line per record, then whether the cache was created or reused. The install_consumer
// test runs it twice and compares the output.

#include <harmonics/dataset.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <sstream>
#include <vector>

int main() {
    try {
        std::istringstream text("0.5,1\n2,3\n4,5.25\n");
        auto csv = std::make_shared<harmonics::CsvProducer>(text);
        harmonics::DiskCacheProducer cached(csv, "consumer.cache");
        for (std::size_t i = 0; i < cached.size(); ++i) {
            harmonics::HTensor t = cached.next();
            std::vector<float> v(t.data().size() / sizeof(float));
            std::memcpy(v.data(), t.data().data(), t.data().size());
            std::printf("record %zu:", i);
            for (float x : v) std::printf(" %g", static_cast<double>(x));
            std::printf("\n");
        }
        std::printf("cache %s\n",
                    cached.outcome() == harmonics::CacheOutcome::Reused ? "reused" : "created");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
