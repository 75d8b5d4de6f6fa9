// Your own producer: any subclass of harmonics::Producer can be cached by a
// DiskCacheProducer. The expensive step (here a stand-in "preprocessing" of each
// record) runs only while the cache is populated; later runs read the cache file.
//
//   custom_producer                 caches 1000 records of float32[16], reads them twice
//   custom_producer export FILE     also writes the records to FILE in the wire format
//                                   (write_tensor), e.g. to serve it over HTTP
//
// next() must cycle: after the last record it returns the first again.
#include <harmonics/dataset.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

class Preprocessed : public harmonics::Producer {
  public:
    explicit Preprocessed(std::size_t n) : n_{n} {}

    harmonics::HTensor next() override {
        std::vector<float> v(16);
        for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(cursor_ * 16 + k) * 0.5f;
        ++computed;
        cursor_ = (cursor_ + 1) % n_;  // cycle
        std::vector<std::byte> bytes(v.size() * sizeof(float));
        std::memcpy(bytes.data(), v.data(), bytes.size());
        return harmonics::HTensor(harmonics::HTensor::DType::Float32, {4, 4}, std::move(bytes));
    }

    std::size_t size() const override { return n_; }

    std::size_t computed{0};

  private:
    std::size_t n_;
    std::size_t cursor_{0};
};

}  // namespace

int main(int argc, char** argv) try {
    auto source = std::make_shared<Preprocessed>(1000);
    harmonics::DiskCacheProducer cached(source, "custom.cache");

    double sum = 0;
    for (int pass = 0; pass < 2; ++pass) {
        for (std::size_t i = 0; i < cached.size(); ++i) {
            harmonics::HTensor t = cached.next();  // an owned copy; next_view() avoids it
            const float* f = reinterpret_cast<const float*>(t.data().data());
            sum += f[0];
        }
    }
    std::printf("custom.cache: %s, %zu records, computed %zu of them now, sum %g\n",
                cached.outcome() == harmonics::CacheOutcome::Reused ? "reused" : "created",
                cached.size(), source->computed, sum);

    if (argc == 3 && std::string(argv[1]) == "export") {
        std::ofstream out(argv[2], std::ios::binary);
        for (std::size_t i = 0; i < cached.size(); ++i) harmonics::write_tensor(out, cached.next());
        if (!out.flush()) throw std::runtime_error(std::string("cannot write ") + argv[2]);
        std::printf("wrote %zu records to %s\n", cached.size(), argv[2]);
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "custom_producer: %s\n", e.what());
    return 1;
}
