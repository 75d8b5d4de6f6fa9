// Warm pass over a cache through the C++ HTensor API, for the `cache` benchmark
// (benches/cache, scripts/bench.sh): opens the cache at an absolute path with a base
// producer that must never be read, then calls harmonics::DiskCacheProducer::next()
// once per record, reading every record the way a consumer would (one float per
// 64-byte cache line plus the last element).
//
//   warm_pass <absolute cache path> <records> [view|sampled]
//
// With `view`, uses the zero-copy next_view() instead of next(). With `sampled`, reads a
// shuffled epoch: harmonics::SampledProducer(cache, {seed 1})::next() once per record
// (exit 77 when the cache has no random access).
// Prints `records=N bytes=B checksum=S`; the caller times the process.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include <harmonics/dataset.hpp>

namespace {

// The base of a warm cache: claims `n` records, fails if the cache ever reads it.
class Absent : public harmonics::Producer {
  public:
    explicit Absent(std::size_t n) : n_{n} {}
    harmonics::HTensor next() override { throw std::runtime_error("warm_pass: a warm cache read its source"); }
    std::size_t size() const override { return n_; }

  private:
    std::size_t n_;
};

// Four independent sums, so the consumer is bound by memory, not by the latency of
// one chain of float additions (benches/cache/work.rs does the same).
float touch(const std::byte* data, std::size_t n) {
    auto at = [data](std::size_t i) {
        float v;
        std::memcpy(&v, data + i, 4);
        return v;
    };
    float acc[4] = {0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 3 * 64 + 4 <= n; i += 4 * 64) {
        for (int k = 0; k < 4; ++k) acc[k] += at(i + k * 64);
    }
    for (; i + 4 <= n; i += 64) acc[0] += at(i);
    if (n >= 4) acc[1] += at(n - 4);
    return acc[0] + acc[1] + acc[2] + acc[3];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s <absolute cache path> <records> [view]\n", argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    const std::size_t n = std::strtoull(argv[2], nullptr, 10);
    const bool view = argc > 3 && std::strcmp(argv[3], "view") == 0;
    const bool sampled = argc > 3 && std::strcmp(argv[3], "sampled") == 0;
    try {
        auto cache = std::make_shared<harmonics::DiskCacheProducer>(std::make_shared<Absent>(n), path);
        harmonics::DiskCacheProducer& p = *cache;
        if (p.size() != n) throw std::runtime_error("warm_pass: cache holds " + std::to_string(p.size()) + " records");
        std::unique_ptr<harmonics::SampledProducer> shuffled;
        if (sampled) {
            if (!p.has_random_access()) {
                std::fprintf(stderr, "warm_pass: this build's cache has no random access\n");
                return 77;
            }
            harmonics::SamplerOptions o;
            o.seed = 1;
            shuffled = std::make_unique<harmonics::SampledProducer>(cache, o);
        }
        double sum = 0;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (shuffled) {
                harmonics::HTensor t = shuffled->next();
                sum += touch(t.data().data(), t.data().size());
                bytes += t.data().size();
            } else if (view) {
                harmonics::TensorView t = p.next_view();
                sum += touch(t.data, t.nbytes);
                bytes += t.nbytes;
            } else {
                harmonics::HTensor t = p.next();
                sum += touch(t.data().data(), t.data().size());
                bytes += t.data().size();
            }
        }
        std::printf("records=%zu bytes=%zu checksum=%g\n", n, bytes, sum);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "warm_pass: %s\n", e.what());
        return 1;
    }
    return 0;
}
