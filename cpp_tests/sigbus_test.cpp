// A cache file cut by another program while the C++ wrapper reads it (DESIGN.md §8): no
// SIGBUS kills the process. With its source at hand the producer rebuilds and goes on
// serving correct records; without it, next() and next_view() throw an error naming the
// file. (The cut is made by this process through truncate(2), which affects the mapping
// exactly as another program's `cp` or `truncate` would.)
#include "test_support.hpp"

#include <stdexcept>
#include <string>
#include <unistd.h>

namespace {

using harmonics::HTensor;

constexpr std::size_t kRecords = 1000;
constexpr std::size_t kElems = 1024;  // one page of data per record

HTensor record(std::size_t i) {
    return harmonics_test::make_f32(std::vector<float>(kElems, static_cast<float>(i)));
}

class Indexed : public harmonics::Producer {
  public:
    HTensor next() override { return record(cursor_++ % kRecords); }
    std::size_t size() const override { return kRecords; }

  private:
    std::size_t cursor_{0};
};

class Gone : public harmonics::Producer {
  public:
    HTensor next() override { throw std::runtime_error("the source is gone"); }
    std::size_t size() const override { return kRecords; }
};

const char* kPath = ".harmonics/cache/cut.cache";

void cut(off_t len) { ASSERT_EQ(truncate(kPath, len), 0); }

using Sigbus = harmonics_test::ScratchDir;

TEST_F(Sigbus, ACutFileIsRebuiltFromTheSourceAndReadingGoesOn) {
    { harmonics::DiskCacheProducer fill(std::make_shared<Indexed>(), "cut.cache"); }
    harmonics::DiskCacheProducer p(std::make_shared<Indexed>(), "cut.cache");
    ASSERT_EQ(p.outcome(), harmonics::CacheOutcome::Reused);
    for (std::size_t i = 0; i < 10; ++i) ASSERT_EQ(harmonics_test::floats(p.next()).at(0), float(i));
    cut(4096);
    HTensor t = p.next();
    EXPECT_EQ(p.outcome(), harmonics::CacheOutcome::Rebuilt);
    EXPECT_EQ(harmonics_test::floats(t), harmonics_test::floats(record(10)));
    for (std::size_t i = 11; i < 20; ++i) {
        harmonics::TensorView v = p.next_view();
        ASSERT_EQ(v.nbytes, kElems * sizeof(float));
        EXPECT_EQ(v.as<float>()[kElems - 1], float(i));
    }
}

TEST_F(Sigbus, WithoutTheSourceNextAndNextViewThrowAnErrorNamingTheFile) {
    { harmonics::DiskCacheProducer fill(std::make_shared<Indexed>(), "cut.cache"); }
    harmonics::DiskCacheProducer p(std::make_shared<Gone>(), "cut.cache");
    ASSERT_EQ(p.outcome(), harmonics::CacheOutcome::Reused);
    EXPECT_EQ(harmonics_test::floats(p.next()).at(0), 0.0f);
    EXPECT_EQ(p.next_view().as<float>()[0], 1.0f);
    // Past the header page: valgrind (3.19) turns a fault on page 0 of a file cut to
    // nothing into SIGSEGV, which natively is SIGBUS (tests/all/sigbus/ covers cuts to 0).
    cut(4096);
    for (int call = 0; call < 2; ++call) {
        try {
            if (call == 0)
                p.next();
            else
                p.next_view();
            FAIL() << "a read of a cut cache succeeded";
        } catch (const harmonics::Error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find("cut.cache"), std::string::npos) << msg;
            EXPECT_NE(msg.find("changed while being read"), std::string::npos) << msg;
        }
    }
}

}  // namespace
