// Warm pass over a cache through the C++ HTensor API, for the `cache` benchmark
// (benches/cache, scripts/bench.sh): opens the cache at an absolute path with a base
// producer that must never be read, then calls harmonics::DiskCacheProducer::next()
// once per record, reading every record the way a consumer would (one float per
// 64-byte cache line plus the last element).
//
//   warm_pass <absolute cache path> <records> [view]
//
// With `view`, uses the zero-copy next_view() instead of next().
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

float touch(const std::byte* data, std::size_t n) {
    float sum = 0;
    float v;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 64) {
        std::memcpy(&v, data + i, 4);
        sum += v;
    }
    if (n >= 4) {
        std::memcpy(&v, data + n - 4, 4);
        sum += v;
    }
    return sum;
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
    try {
        harmonics::DiskCacheProducer p(std::make_shared<Absent>(n), path);
        if (p.size() != n) throw std::runtime_error("warm_pass: cache holds " + std::to_string(p.size()) + " records");
        double sum = 0;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (view) {
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
