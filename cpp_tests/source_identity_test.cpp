// Source identity through the C++ API: Producer::skip() and Producer::fingerprint()
// overrides, a lazy CsvProducer, and HttpProducer/AsyncHttpProducer::outcome().

#include "test_support.hpp"

using harmonics_test::floats;
using harmonics_test::http_response;
using harmonics_test::LoopbackHttpServer;
using harmonics_test::make_f32;
using harmonics_test::ScratchDir;
using harmonics_test::wire_body;

namespace {

/// Record i is {i + offset}; counts size() and next() calls; skip() seeks.
class Seekable : public harmonics::Producer {
  public:
    Seekable(std::size_t n, std::string fp = "", float offset = 0, bool can_skip = true)
        : n_{n}, fp_{std::move(fp)}, offset_{offset}, can_skip_{can_skip} {}
    harmonics::HTensor next() override {
        ++nexts;
        float i = static_cast<float>(cursor_);
        cursor_ = (cursor_ + 1) % n_;
        return make_f32({i + offset_});
    }
    std::size_t size() const override {
        ++sizes;
        return n_;
    }
    void skip(std::size_t k) override {
        if (!can_skip_) return harmonics::Producer::skip(k);
        ++skips;
        cursor_ = (cursor_ + k) % n_;
    }
    std::string fingerprint() const override { return fp_; }

    std::size_t nexts{0}, skips{0};
    mutable std::size_t sizes{0};

  private:
    std::size_t n_;
    std::string fp_;
    float offset_;
    bool can_skip_;
    std::size_t cursor_{0};
};

std::vector<float> one(float v) { return {v}; }

/// Cache `name` made from `first`, then opened again over `second`: that second opening.
harmonics::DiskCacheProducer reopen(std::shared_ptr<Seekable> first, std::shared_ptr<Seekable> second,
                                    const std::string& name) {
    { harmonics::DiskCacheProducer made(std::move(first), name); }
    return harmonics::DiskCacheProducer(std::move(second), name);
}

class SourceIdentity : public ScratchDir {};

}  // namespace

TEST_F(SourceIdentity, AppendingToASubclassThatOverridesSkipCallsNextOnlyForTheNewRecords) {
    auto grown = std::make_shared<Seekable>(450);
    auto cached = reopen(std::make_shared<Seekable>(400), grown, "skip.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Appended);
    EXPECT_LE(grown->nexts, 50u);
    EXPECT_EQ(grown->skips, 1u);
    ASSERT_EQ(cached.size(), 450u);
    for (int i = 0; i < 450; ++i) ASSERT_EQ(floats(cached.next()), one(float(i))) << i;
}

TEST_F(SourceIdentity, TheDefaultSkipCallsNext) {
    auto p = std::make_shared<Seekable>(10, "", 0, /*can_skip=*/false);
    p->skip(3);
    EXPECT_EQ(p->nexts, 3u);
    EXPECT_EQ(floats(p->next()), one(3));
    EXPECT_EQ(p->fingerprint(), "") << "default: unknown";
}

TEST_F(SourceIdentity, AnUnchangedFingerprintIsReusedWithoutAnySizeOrNextCall) {
    auto again = std::make_shared<Seekable>(5, "dataset v1");
    auto cached = reopen(std::make_shared<Seekable>(5, "dataset v1"), again, "fp.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Reused);
    EXPECT_EQ(again->sizes, 0u);
    EXPECT_EQ(again->nexts, 0u);
    EXPECT_EQ(again->skips, 0u);
    EXPECT_EQ(cached.size(), 5u);
    EXPECT_EQ(floats(cached.next()), one(0));
}

TEST_F(SourceIdentity, AChangedFingerprintRebuildsTheCacheNamingBoth) {
    auto v2 = std::make_shared<Seekable>(5, "dataset v2", 100);
    auto cached = reopen(std::make_shared<Seekable>(5, "dataset v1"), v2, "fp2.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Rebuilt);
    std::string why = cached.outcome_reason();
    EXPECT_NE(why.find("dataset v1"), std::string::npos) << why;
    EXPECT_NE(why.find("dataset v2"), std::string::npos) << why;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(floats(cached.next()), one(100.f + i));
}

TEST_F(SourceIdentity, WithoutAFingerprintTheSizeRuleStillApplies) {
    auto same = std::make_shared<Seekable>(3);
    auto cached = reopen(std::make_shared<Seekable>(3), same, "nofp.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Reused);
    EXPECT_EQ(same->nexts, 0u);
    EXPECT_EQ(cached.outcome_reason(), "");
}

TEST_F(SourceIdentity, CsvProducerChecksTheFileAtConstructionAndParsesLazily) {
    try {
        harmonics::CsvProducer missing("missing.csv");
        FAIL() << "expected an exception";
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing.csv"), std::string::npos) << e.what();
    }
    write_file("bad.csv", "1,2\n3,x\n");
    harmonics::CsvProducer lazy("bad.csv");  // nothing parsed yet: no error
    try {
        (void)lazy.size();
        FAIL() << "expected an exception";
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("bad.csv: row 2, column 2"), std::string::npos) << e.what();
    }
}

TEST_F(SourceIdentity, AnEditedCsvRebuildsTheCacheAndAnUnchangedOneIsReused) {
    write_file("t.csv", "1,2\n3,4\n");
    {
        harmonics::DiskCacheProducer c(std::make_shared<harmonics::CsvProducer>("t.csv"), "t.cache");
        EXPECT_EQ(c.outcome(), harmonics::CacheOutcome::Created);
    }
    {
        harmonics::DiskCacheProducer c(std::make_shared<harmonics::CsvProducer>("t.csv"), "t.cache");
        EXPECT_EQ(c.outcome(), harmonics::CacheOutcome::Reused);
    }
    write_file("t.csv", "1,2\n3,7\n");
    harmonics::DiskCacheProducer c(std::make_shared<harmonics::CsvProducer>("t.csv"), "t.cache");
    EXPECT_EQ(c.outcome(), harmonics::CacheOutcome::Rebuilt);
    EXPECT_NE(c.outcome_reason().find("t.csv"), std::string::npos) << c.outcome_reason();
    (void)c.next();
    EXPECT_EQ(floats(c.next()), (std::vector<float>{3, 7}));
}

namespace {

/// Serves `a` for GET /a and `b` for anything else, on a free 127.0.0.1 port.
class TwoPathServer : public LoopbackHttpServer {
  public:
    TwoPathServer(std::string a, std::string b)
        : LoopbackHttpServer([a, b](const std::string& request) {
              return http_response("200 OK", request.rfind("GET /a ", 0) == 0 ? a : b);
          }) {}
};

std::string body_of(std::vector<float> values) {
    return wire_body(static_cast<int>(values.size()),
                     [&values](int i) { return std::vector<float>{values[static_cast<std::size_t>(i)]}; });
}

}  // namespace

TEST_F(SourceIdentity, HttpOutcomeSaysDownloadedReusedAndRebuiltForAnotherUrl) {
    TwoPathServer server(body_of({1, 2}), body_of({7, 8, 9}));
    {
        harmonics::HttpProducer a("127.0.0.1", server.port(), "/a", true, "web.cache");
        EXPECT_EQ(a.outcome(), harmonics::HttpOutcome::Downloaded);
        EXPECT_EQ(a.outcome_reason(), "");
    }
    {
        harmonics::HttpProducer a("127.0.0.1", server.port(), "/a", true, "web.cache");
        EXPECT_EQ(a.outcome(), harmonics::HttpOutcome::Reused);
        EXPECT_EQ(server.requests(), 1);
    }
    harmonics::HttpProducer b("127.0.0.1", server.port(), "/b", true, "web.cache");
    EXPECT_EQ(b.outcome(), harmonics::HttpOutcome::Rebuilt);
    std::string why = b.outcome_reason();
    EXPECT_NE(why.find(":" + std::to_string(server.port()) + "/a"), std::string::npos) << why;
    EXPECT_NE(why.find(":" + std::to_string(server.port()) + "/b"), std::string::npos) << why;
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(floats(b.next()), one(7));

    harmonics::AsyncHttpProducer again("127.0.0.1", server.port(), "/b", true, "web.cache");
    EXPECT_EQ(again.outcome(), harmonics::HttpOutcome::Reused);
    harmonics::AsyncHttpProducer other("127.0.0.1", server.port(), "/a", true, "web.cache");
    ASSERT_EQ(other.size(), 2u);  // waits for the download
    EXPECT_EQ(other.outcome(), harmonics::HttpOutcome::Rebuilt);
    EXPECT_EQ(floats(other.next()), one(1));
}
