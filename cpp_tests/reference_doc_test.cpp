// The snippets of the reference documentation (dataset-caching-layer.md), compiled
// verbatim inside test bodies, and checked to behave as the document says.
// reference_snippets_test (CMake) checks that these blocks still match the document.

#include "test_support.hpp"

using harmonics_test::floats;
using harmonics_test::ScratchDir;

class ReferenceDoc : public ScratchDir {};

TEST_F(ReferenceDoc, CsvWrappedInDiskCacheMaterialisesThenReadsTheCache) {
    write_file("train.csv", "1,2,3\n4,5,6\n");
    {
        // BEGIN SNIPPET disk-cache
        auto csv = std::make_shared<harmonics::CsvProducer>("train.csv");
        harmonics::DiskCacheProducer cached(csv, "train.cache");
        // END SNIPPET disk-cache
        EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Created);
        ASSERT_EQ(cached.size(), 2u);
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{1, 2, 3}));
    }
    EXPECT_TRUE(std::filesystem::exists(".harmonics/cache/train.cache"));
    // "Subsequent runs read directly from the cache file".
    {
        auto csv = std::make_shared<harmonics::CsvProducer>("train.csv");
        harmonics::DiskCacheProducer cached(csv, "train.cache");
        EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Reused);
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{1, 2, 3}));
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{4, 5, 6}));
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{1, 2, 3})) << "next() cycles";
    }
}

TEST_F(ReferenceDoc, TokenChangeDiscardsAndRepopulates) {
    write_file("train.csv", "1\n2\n");
    {
        // BEGIN SNIPPET token
        int version = 0;
        auto token = [&]() { return std::to_string(version); };

        auto base = std::make_shared<harmonics::CsvProducer>("train.csv");
        harmonics::DiskCacheProducer cached(base, "train.cache", token);
        // END SNIPPET token
        EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Created);
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{1}));
    }
    write_file("train.csv", "1\n2\n3\n");  // rows appended (an edited file would be rebuilt)
    {
        int version = 0;
        auto token = [&]() { return std::to_string(version); };
        auto base = std::make_shared<harmonics::CsvProducer>("train.csv");
        // Same token, dataset grew: the cache is kept and only record 2 is appended.
        harmonics::DiskCacheProducer cached(base, "train.cache", token);
        EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Appended);
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{1}));
        version = 1;
        EXPECT_EQ(cached.refresh(), harmonics::CacheOutcome::Rebuilt);
        EXPECT_EQ(cached.outcome_reason(), "the token changed");
        EXPECT_EQ(floats(cached.next()), (std::vector<float>{1}));
    }
    {
        int version = 1;
        auto token = [&]() { return std::to_string(version); };
        auto base = std::make_shared<harmonics::CsvProducer>("train.csv");
        harmonics::DiskCacheProducer cached(base, "train.cache", token);
        EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Reused);
        ASSERT_EQ(cached.size(), 3u);
    }
}

TEST_F(ReferenceDoc, HarmonicsCacheDirOverridesTheLocation) {
    write_file("train.csv", "1\n");
    setenv("HARMONICS_CACHE_DIR", (dir_ / "hcache").c_str(), 1);
    auto csv = std::make_shared<harmonics::CsvProducer>("train.csv");
    harmonics::DiskCacheProducer cached(csv, "train.cache");
    EXPECT_TRUE(std::filesystem::exists(dir_ / "hcache" / "train.cache"));
    EXPECT_FALSE(std::filesystem::exists(".harmonics"));
}
