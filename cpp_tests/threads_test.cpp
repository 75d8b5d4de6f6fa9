// One DiskCacheProducer shared by several threads (DESIGN.md §8): next() and size() may
// be called concurrently on one object, and every record arrives whole and exactly
// once per epoch. Records carry their index in their data and a shape (and rank) that
// varies with the index, so a record whose shape belongs to another record shows.
#include "test_support.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

using harmonics::HTensor;

HTensor::Shape shape_of(std::size_t i) {
    HTensor::Shape s{2 + i % 5};
    if (i % 3 >= 1) s.push_back(1 + i % 4);
    if (i % 3 == 2) s.push_back(3);
    return s;
}

HTensor record(std::size_t i) {
    HTensor::Shape s = shape_of(i);
    std::size_t n = 1;
    for (std::size_t d : s) n *= d;
    std::vector<float> v(n, static_cast<float>(i));
    std::vector<std::byte> bytes(n * sizeof(float));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    return HTensor(HTensor::DType::Float32, std::move(s), std::move(bytes));
}

class Indexed : public harmonics::Producer {
  public:
    explicit Indexed(std::size_t n) : n_{n} {}
    HTensor next() override { return record(cursor_++ % n_); }
    std::size_t size() const override { return n_; }

  private:
    std::size_t n_;
    std::size_t cursor_{0};
};

/// The index a record claims, or SIZE_MAX when its data, shape and index disagree.
std::size_t check(const HTensor& t, std::size_t n) {
    if (t.dtype() != HTensor::DType::Float32 || t.data().size() < sizeof(float)) return SIZE_MAX;
    std::vector<float> v = harmonics_test::floats(t);
    const float first = v[0];
    if (first < 0 || first >= static_cast<float>(n)) return SIZE_MAX;
    const auto i = static_cast<std::size_t>(first);
    for (float x : v)
        if (x != first) return SIZE_MAX;
    if (t.shape() != shape_of(i)) return SIZE_MAX;
    if (t.data().size() != record(i).data().size()) return SIZE_MAX;
    return i;
}

using Threads = harmonics_test::ScratchDir;

TEST_F(Threads, FourThreadsSharingOneProducerGetWholeRecordsExactlyOncePerEpoch) {
    const std::size_t n = 1000, threads = 4, per_thread = 25000;  // 100 epochs in all
    {
        harmonics::DiskCacheProducer fill(std::make_shared<Indexed>(n), "threads.cache");
        ASSERT_EQ(fill.outcome(), harmonics::CacheOutcome::Created);
    }
    harmonics::DiskCacheProducer p(std::make_shared<Indexed>(n), "threads.cache");
    ASSERT_EQ(p.outcome(), harmonics::CacheOutcome::Reused);

    std::vector<std::vector<std::size_t>> seen(threads, std::vector<std::size_t>(n, 0));
    std::atomic<std::size_t> bad{0}, errors{0};
    std::vector<std::thread> pool;
    for (std::size_t k = 0; k < threads; ++k) {
        pool.emplace_back([&, k] {
            for (std::size_t c = 0; c < per_thread; ++c) {
                try {
                    if (c % 1000 == 0 && p.size() != n) ++bad;
                    const std::size_t i = check(p.next(), n);
                    if (i == SIZE_MAX)
                        ++bad;
                    else
                        ++seen[k][i];
                } catch (const std::exception&) {
                    ++errors;
                }
            }
        });
    }
    for (auto& t : pool) t.join();
    EXPECT_EQ(errors.load(), 0u);
    EXPECT_EQ(bad.load(), 0u) << "records whose shape or data belongs to another record";
    const std::size_t epochs = threads * per_thread / n;
    std::size_t wrong_counts = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t total = 0;
        for (std::size_t k = 0; k < threads; ++k) total += seen[k][i];
        if (total != epochs) ++wrong_counts;
    }
    EXPECT_EQ(wrong_counts, 0u) << "records skipped or served twice";
}

TEST_F(Threads, AFreshRecordPerThreadFromTheCopyingCallOfAWrappedLibraryProducer) {
    // A CSV producer (a library producer, read without the C++ bridge) shared by threads.
    std::string csv;
    const std::size_t n = 500;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j <= i % 7; ++j) csv += (j ? "," : "") + std::to_string(i);
        csv += "\n";
    }
    write_file("rows.csv", csv);
    harmonics::CsvProducer p("rows.csv", /*validate=*/false);
    std::atomic<std::size_t> bad{0};
    std::vector<std::thread> pool;
    for (int k = 0; k < 4; ++k) {
        pool.emplace_back([&] {
            for (int c = 0; c < 5000; ++c) {
                const HTensor t = p.next();
                const std::vector<float> v = harmonics_test::floats(t);
                const auto i = static_cast<std::size_t>(v.at(0));
                if (t.shape() != HTensor::Shape{i % 7 + 1} || v.size() != i % 7 + 1) ++bad;
                for (float x : v)
                    if (x != v[0]) ++bad;
            }
        });
    }
    for (auto& t : pool) t.join();
    EXPECT_EQ(bad.load(), 0u);
}

}  // namespace
