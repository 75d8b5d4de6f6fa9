// One pass over a cache through the C++ API, for the `cache` benchmark (benches/cache,
// scripts/bench.sh): opens the cache at an absolute path with a base producer that must
// never be read, then reads records the way a consumer would (one float per 64-byte
// cache line plus the last element).
//
//   warm_pass <absolute cache path> <records> [MODE] [seed=S] [block=B] [reads=K] [batch=N]
//
// MODE (default `next`):
//   next          harmonics::DiskCacheProducer::next(), in file order
//   view          the zero-copy next_view(), in file order
//   sampled       harmonics::SampledProducer(cache, {seed S, block_records B})::next()
//   view-sampled  view(i) for i = sampler.next() of the caller's own
//                 harmonics::Sampler(records, {seed S, block_records B}), after
//                 cache.read_ahead(sampler)
//   batch         harmonics::BatchProducer(shared_ptr<SampledProducer>(as `sampled`), N)
//                 ::next(), N = 256 by default, K / N batches
// K (default: the whole epoch, <records>) records are read; seed 1, block 0 (a global
// shuffle) by default. Exit 77 when the cache has no random access (sampled modes).
//
// Prints `records=R bytes=B checksum=C order=H later_wall=W later_cpu=U`, W and U the
// wall and process CPU seconds of the reads after the first <records> (the epochs after
// the first, when reads=K > records: a training job's steady state, the file already
// mapped); the caller times the process and
// checks the figures, so a broken path cannot look fast: C is the sum of what was read
// (the same for any order of the same records, up to rounding), H = sum over the k-th
// record read of (k + 1) * (its first element), mod 2^64 — the benchmark's records hold
// their own index there, so H proves which records were read in which order.

#include <chrono>
#include <cstdint>
#include <ctime>
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

// What the pass read: the figures it prints.
struct Tally {
    std::size_t records = 0;
    std::size_t bytes = 0;
    double sum = 0;
    std::uint64_t order = 0;

    std::size_t epoch = 0;  // records per epoch: the clocks start after the first
    double wall0 = -1, cpu0 = -1;

    void add(const std::byte* data, std::size_t n) {
        if (records == epoch) {
            wall0 = wall();
            cpu0 = cpu();
        }
        float first = 0;
        if (n >= 4) std::memcpy(&first, data, 4);
        records += 1;
        order += static_cast<std::uint64_t>(records) * static_cast<std::uint64_t>(first);
        sum += touch(data, n);
        bytes += n;
    }

    static double wall() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }
    static double cpu() {
        timespec ts{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    }
};

std::size_t option(int argc, char** argv, const char* key, std::size_t dflt) {
    const std::size_t len = std::strlen(key);
    for (int i = 4; i < argc; ++i)
        if (std::strncmp(argv[i], key, len) == 0 && argv[i][len] == '=')
            return std::strtoull(argv[i] + len + 1, nullptr, 10);
    return dflt;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: %s <absolute cache path> <records> [next|view|sampled|view-sampled|batch] "
                     "[seed=S] [block=B] [reads=K] [batch=N]\n",
                     argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    const std::size_t n = std::strtoull(argv[2], nullptr, 10);
    const std::string mode = argc > 3 ? argv[3] : "next";
    for (int i = 4; i < argc; ++i)
        if (!std::strchr(argv[i], '=')) {
            std::fprintf(stderr, "warm_pass: unknown argument %s\n", argv[i]);
            return 2;
        }
    const std::size_t reads = option(argc, argv, "reads", n);
    const std::size_t batch = option(argc, argv, "batch", 256);
    harmonics::SamplerOptions order;
    order.seed = option(argc, argv, "seed", 1);
    order.block_records = option(argc, argv, "block", 0);
    try {
        auto cache = std::make_shared<harmonics::DiskCacheProducer>(std::make_shared<Absent>(n), path);
        harmonics::DiskCacheProducer& p = *cache;
        if (p.size() != n) throw std::runtime_error("warm_pass: cache holds " + std::to_string(p.size()) + " records");
        const bool random = mode == "sampled" || mode == "view-sampled" || mode == "batch";
        if (random && !p.has_random_access()) {
            std::fprintf(stderr, "warm_pass: this build's cache has no random access\n");
            return 77;
        }
        Tally tally;
        tally.epoch = n;
        if (mode == "next") {
            for (std::size_t i = 0; i < reads; ++i) {
                harmonics::HTensor t = p.next();
                tally.add(t.data().data(), t.data().size());
            }
        } else if (mode == "view") {
            for (std::size_t i = 0; i < reads; ++i) {
                harmonics::TensorView t = p.next_view();
                tally.add(t.data, t.nbytes);
            }
        } else if (mode == "sampled") {
            harmonics::SampledProducer shuffled(cache, order);
            for (std::size_t i = 0; i < reads; ++i) {
                harmonics::HTensor t = shuffled.next();
                tally.add(t.data().data(), t.data().size());
            }
        } else if (mode == "view-sampled") {
            harmonics::Sampler sampler(n, order);
            p.read_ahead(sampler);
            for (std::size_t i = 0; i < reads; ++i) {
                harmonics::TensorView t = p.view(sampler.next());
                tally.add(t.data, t.nbytes);
            }
        } else if (mode == "batch") {
            harmonics::BatchProducer batches(std::make_shared<harmonics::SampledProducer>(cache, order), batch);
            for (std::size_t b = 0; b < reads / batch; ++b) {
                harmonics::HTensor t = batches.next();
                if (t.shape().empty() || t.shape()[0] != batch || t.data().size() % batch != 0)
                    throw std::runtime_error("warm_pass: a batch of the wrong shape");
                const std::size_t record = t.data().size() / batch;
                for (std::size_t k = 0; k < batch; ++k) tally.add(t.data().data() + k * record, record);
            }
        } else {
            std::fprintf(stderr, "warm_pass: unknown mode %s\n", mode.c_str());
            return 2;
        }
        const bool later = tally.wall0 >= 0;
        std::printf("records=%zu bytes=%zu checksum=%.17g order=%llu later_wall=%.9f later_cpu=%.9f\n", tally.records,
                    tally.bytes, tally.sum, static_cast<unsigned long long>(tally.order),
                    later ? Tally::wall() - tally.wall0 : 0.0, later ? Tally::cpu() - tally.cpu0 : 0.0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "warm_pass: %s\n", e.what());
        return 1;
    }
    return 0;
}
