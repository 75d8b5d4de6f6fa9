// Never another version's record (issue 20, defect 1): another version of the same
// layout copied over a cache file while four threads call at() and next() on one
// DiskCacheProducer (`cp v7.cache train.cache`: the same inode truncated and rewritten).
// Every record says which version and which index it is; every one returned must be
// record i of version 6, the source's: a rebuild, or an error, never version 7.
#include "test_support.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

using harmonics::HTensor;

constexpr std::size_t kLen = 16;

/// Record `i` of version `v`: {v, i, then values of both}, the same shape in every version.
HTensor record(std::size_t v, std::size_t i) {
    std::vector<float> values(kLen);
    values[0] = static_cast<float>(v);
    values[1] = static_cast<float>(i);
    for (std::size_t j = 2; j < kLen; ++j) values[j] = static_cast<float>(v * 1000 + i) + 0.5f * j;
    return harmonics_test::make_f32(values);
}

/// The index of a record of version 6, or SIZE_MAX when it is not exactly one.
std::size_t index_of_v6(const HTensor& t, std::size_t n) {
    const std::vector<float> v = harmonics_test::floats(t);
    if (v.size() != kLen || v[0] != 6.0f || v[1] < 0 || v[1] >= static_cast<float>(n)) return SIZE_MAX;
    const auto i = static_cast<std::size_t>(v[1]);
    const HTensor want = record(6, i);
    return t.shape() == want.shape() && t.data() == want.data() ? i : SIZE_MAX;
}

/// Records of version `v`, with a fingerprint that does not say which version.
class Versioned : public harmonics::Producer {
  public:
    Versioned(std::size_t v, std::size_t n) : v_{v}, n_{n} {}
    HTensor next() override { return record(v_, cursor_++ % n_); }
    std::size_t size() const override { return n_; }
    std::string fingerprint() const override { return "train"; }

  private:
    std::size_t v_, n_, cursor_{0};
};

using Versions = harmonics_test::ScratchDir;

TEST_F(Versions, AtAndNextFromFourThreadsNeverServeAVersionCopiedOverTheFile) {
    const std::size_t n = 64;
    const std::string path = (dir_ / "train.cache").string();
    const std::string other = (dir_ / "v7.cache").string();
    { harmonics::DiskCacheProducer v7(std::make_shared<Versioned>(7, n), other); }
    { harmonics::DiskCacheProducer v6(std::make_shared<Versioned>(6, n), path); }
    harmonics::DiskCacheProducer p(std::make_shared<Versioned>(6, n), path);
    ASSERT_EQ(p.outcome(), harmonics::CacheOutcome::Reused);

    // Four threads read, pause while version 7 is copied over the file (as `cp` would
    // between two reads), then read again.
    std::atomic<std::size_t> reads{0}, wrong{0}, errors{0}, paused{0};
    std::atomic<bool> copied{false};
    std::vector<std::thread> pool;
    for (std::size_t k = 0; k < 4; ++k) {
        pool.emplace_back([&, k] {
            std::size_t seed = k + 1;
            auto one = [&](std::size_t c) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                const std::size_t i = (seed >> 33) % n;
                try {
                    if (c % 2 == 0) {
                        if (index_of_v6(p.at(i), n) != i) ++wrong;
                    } else if (index_of_v6(p.next(), n) == SIZE_MAX) {
                        ++wrong;
                    }
                } catch (const harmonics::Error&) {
                    ++errors;
                }
                ++reads;
            };
            for (std::size_t c = 0; c < 200; ++c) one(c);
            ++paused;
            while (!copied.load()) std::this_thread::yield();
            for (std::size_t c = 0; c < 200; ++c) one(c);
        });
    }
    while (paused.load() < 4) std::this_thread::yield();
    harmonics_test::fs::copy_file(other, path, harmonics_test::fs::copy_options::overwrite_existing);
    copied = true;
    for (auto& t : pool) t.join();
    EXPECT_EQ(wrong.load(), 0u) << "records of another version (of " << reads.load() << " reads, "
                                << errors.load() << " errors)";
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(index_of_v6(p.at(i), n), i) << "at(" << i << ")";
}

TEST_F(Versions, ViewAfterACopyOverTheFileIsTheSourcesRecordOrAnError) {
    const std::size_t n = 64;
    const std::string path = (dir_ / "train.cache").string();
    const std::string other = (dir_ / "v7.cache").string();
    { harmonics::DiskCacheProducer v7(std::make_shared<Versioned>(7, n), other); }
    harmonics::DiskCacheProducer p(std::make_shared<Versioned>(6, n), path);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(index_of_v6(p.view(i).to_tensor(), n), i);
    harmonics_test::fs::copy_file(other, path, harmonics_test::fs::copy_options::overwrite_existing);
    std::size_t wrong = 0, errors = 0;
    for (std::size_t i = 0; i < n; ++i) {
        try {
            if (index_of_v6(p.view(i).to_tensor(), n) != i) ++wrong;
        } catch (const harmonics::Error&) {
            ++errors;
        }
    }
    EXPECT_EQ(wrong, 0u) << "records of another version through view() (" << errors << " errors)";
}

}  // namespace
