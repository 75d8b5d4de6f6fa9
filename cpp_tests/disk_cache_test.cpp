// DiskCacheProducer through the C++ API: C++ subclasses as sources, incremental
// appends, exceptions crossing the boundary intact, errors as harmonics::Error.

#include "test_support.hpp"

#include <atomic>

using harmonics_test::floats;
using harmonics_test::Records;
using harmonics_test::ScratchDir;

namespace {

class ThrowingProducer : public harmonics::Producer {
  public:
    harmonics::HTensor next() override { throw std::runtime_error("sensor 3 is offline"); }
    std::size_t size() const override { return 2; }
};

}  // namespace

class DiskCache : public ScratchDir {};

TEST_F(DiskCache, CppSubclassIsCachedAndSecondConstructionReadsNothing) {
    auto base = std::make_shared<Records>(4);
    {
        harmonics::DiskCacheProducer cached(base, "sub.cache");
        EXPECT_EQ(base->reads, 4u);
        for (int i = 0; i < 4; ++i) EXPECT_EQ(floats(cached.next()), (std::vector<float>{float(i), 10.f * i}));
    }
    auto again = std::make_shared<Records>(4);
    harmonics::DiskCacheProducer cached(again, "sub.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Reused);
    EXPECT_EQ(cached.size(), 4u);
    EXPECT_EQ(floats(cached.next()), (std::vector<float>{0, 0}));
    EXPECT_EQ(again->reads, 0u);
}

TEST_F(DiskCache, GrowthFrom3To5YieldsRecords0To4AndAppendsOnlyTwo) {
    auto small = std::make_shared<Records>(3);
    { harmonics::DiskCacheProducer cached(small, "grow.cache"); }
    auto size_before = std::filesystem::file_size(".harmonics/cache/grow.cache");

    auto big = std::make_shared<Records>(5);
    harmonics::DiskCacheProducer cached(big, "grow.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Appended);
    ASSERT_EQ(cached.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(floats(cached.next()), (std::vector<float>{float(i), 10.f * i}));
    EXPECT_GT(std::filesystem::file_size(".harmonics/cache/grow.cache"), size_before);
}

TEST_F(DiskCache, ExceptionInProducerNextReachesTheCallerWithItsMessage) {
    auto base = std::make_shared<ThrowingProducer>();
    try {
        harmonics::DiskCacheProducer cached(base, "throw.cache");
        FAIL() << "expected an exception";
    } catch (const harmonics::Error& e) {
        EXPECT_STREQ(e.what(), "sensor 3 is offline");
        EXPECT_EQ(e.status(), HARMONICS_STATUS_FOREIGN);
    }
    EXPECT_FALSE(std::filesystem::exists(".harmonics/cache/throw.cache")) << "no half-written cache";
}

TEST_F(DiskCache, ExceptionInTokenCallbackReachesTheCaller) {
    auto base = std::make_shared<Records>(1);
    auto token = []() -> std::string { throw std::runtime_error("vault unreachable"); };
    EXPECT_THROW(
        {
            try {
                harmonics::DiskCacheProducer cached(base, "tok.cache", token);
            } catch (const std::runtime_error& e) {
                EXPECT_STREQ(e.what(), "vault unreachable");
                throw;
            }
        },
        std::runtime_error);
}

TEST_F(DiskCache, BadNamesAreClearErrors) {
    auto base = std::make_shared<Records>(1);
    for (const std::string& name : {std::string("../x"), std::string(), std::string("a\0b", 3)}) {
        try {
            harmonics::DiskCacheProducer cached(base, name);
            ADD_FAILURE() << "accepted " << name;
        } catch (const harmonics::Error& e) {
            EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_NAME) << e.what();
            EXPECT_NE(std::string(e.what()).find("invalid cache name"), std::string::npos);
        }
    }
    EXPECT_THROW(harmonics::DiskCacheProducer(nullptr, "x.cache"), harmonics::Error);
}

// The token's context is allocated for the library, which owns it only from the call
// on: a name refused before the call (a NUL byte) must not leak it (ASan's leak check and
// valgrind fail this test if it does).
TEST_F(DiskCache, ANulInTheNameWithATokenIsRefusedWithoutALeak) {
    auto base = std::make_shared<Records>(1);
    std::string big(4096, 'k');  // a capture large enough to be heap-allocated
    try {
        harmonics::DiskCacheProducer cached(base, std::string("a\0b", 3), [big] { return big; });
        ADD_FAILURE() << "accepted a name with a NUL byte";
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_NAME) << e.what();
        EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
    }
    EXPECT_EQ(base->reads, 0u);
}

TEST_F(DiskCache, CorruptedCacheIsRebuiltFromTheSourceNotServed) {
    auto base = std::make_shared<Records>(3);
    { harmonics::DiskCacheProducer cached(base, "bad.cache"); }
    {
        // Flip a byte of the last record's data: it ends where the offset index starts
        // (format version 2: the commit in slot 1, at 24 + 40, holds index_at at +24).
        std::fstream f(".harmonics/cache/bad.cache", std::ios::in | std::ios::out | std::ios::binary);
        unsigned char index_at[8];
        f.seekg(24 + 40 + 24);
        f.read(reinterpret_cast<char*>(index_at), 8);
        std::streamoff end = 0;
        for (int i = 7; i >= 0; --i) end = (end << 8) | index_at[i];
        ASSERT_GT(end, 0);
        f.seekg(end - 2);
        char c;
        f.get(c);
        f.seekp(end - 2);
        f.put(static_cast<char>(c ^ 0x5a));
    }
    auto fresh = std::make_shared<Records>(3);
    harmonics::DiskCacheProducer cached(fresh, "bad.cache");
    for (int i = 0; i < 3; ++i) EXPECT_EQ(floats(cached.next()), (std::vector<float>{float(i), 10.f * i}));
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Rebuilt);
    EXPECT_EQ(fresh->reads, 3u);
}

TEST_F(DiskCache, ZeroCopyViewMatchesTheCopyingPath) {
    write_file("d.csv", "1.5,2.5\n3.5,4.5\n");
    auto csv = std::make_shared<harmonics::CsvProducer>("d.csv");
    harmonics::DiskCacheProducer cached(csv, "view.cache");
    harmonics::TensorView v = cached.next_view();
    ASSERT_EQ(v.ndims, 1u);
    EXPECT_EQ(v.shape(), (harmonics::HTensor::Shape{2}));
    EXPECT_EQ(v.nbytes, 8u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data) % 8, 0u) << "cache data is 8-byte aligned";
    EXPECT_FLOAT_EQ(v.as<float>()[1], 2.5f);
    EXPECT_EQ(floats(cached.next()), (std::vector<float>{3.5, 4.5}));
}

TEST_F(DiskCache, CsvErrorsNameRowAndColumnAndValidateNamesShapes) {
    write_file("bad.csv", "1,2\n3,x\n");
    try {
        harmonics::CsvProducer p("bad.csv");  // checks the file; parses on first need
        (void)p.size();
        FAIL();
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("row 2, column 2"), std::string::npos) << e.what();
    }
    std::istringstream in("1,2\n3\n");
    try {
        harmonics::CsvProducer p(in, /*validate=*/true);
        FAIL();
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("record 1: shape float32[1] differs from the first record's float32[2]"),
                  std::string::npos)
            << e.what();
    }
}
