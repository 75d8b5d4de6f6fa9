// Source identity through the C++ API: Producer::skip() and Producer::fingerprint()
// overrides, a lazy CsvProducer, and HttpProducer/AsyncHttpProducer::outcome().

#include "test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <sstream>
#include <thread>

using harmonics_test::floats;
using harmonics_test::make_f32;
using harmonics_test::ScratchDir;

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

class SourceIdentity : public ScratchDir {};

}  // namespace

TEST_F(SourceIdentity, AppendingToASubclassThatOverridesSkipCallsNextOnlyForTheNewRecords) {
    { harmonics::DiskCacheProducer c(std::make_shared<Seekable>(400), "skip.cache"); }
    auto grown = std::make_shared<Seekable>(450);
    harmonics::DiskCacheProducer cached(grown, "skip.cache");
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
    { harmonics::DiskCacheProducer c(std::make_shared<Seekable>(5, "dataset v1"), "fp.cache"); }
    auto again = std::make_shared<Seekable>(5, "dataset v1");
    harmonics::DiskCacheProducer cached(again, "fp.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Reused);
    EXPECT_EQ(again->sizes, 0u);
    EXPECT_EQ(again->nexts, 0u);
    EXPECT_EQ(again->skips, 0u);
    EXPECT_EQ(cached.size(), 5u);
    EXPECT_EQ(floats(cached.next()), one(0));
}

TEST_F(SourceIdentity, AChangedFingerprintRebuildsTheCacheNamingBoth) {
    { harmonics::DiskCacheProducer c(std::make_shared<Seekable>(5, "dataset v1"), "fp2.cache"); }
    auto v2 = std::make_shared<Seekable>(5, "dataset v2", 100);
    harmonics::DiskCacheProducer cached(v2, "fp2.cache");
    EXPECT_EQ(cached.outcome(), harmonics::CacheOutcome::Rebuilt);
    std::string why = cached.outcome_reason();
    EXPECT_NE(why.find("dataset v1"), std::string::npos) << why;
    EXPECT_NE(why.find("dataset v2"), std::string::npos) << why;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(floats(cached.next()), one(100.f + i));
}

TEST_F(SourceIdentity, WithoutAFingerprintTheSizeRuleStillApplies) {
    { harmonics::DiskCacheProducer c(std::make_shared<Seekable>(3), "nofp.cache"); }
    auto same = std::make_shared<Seekable>(3);
    harmonics::DiskCacheProducer cached(same, "nofp.cache");
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

/// Serves `body_a` for GET /a and `body_b` for anything else, on an ephemeral port.
class TwoPathServer {
  public:
    TwoPathServer(std::string a, std::string b) : a_(std::move(a)), b_(std::move(b)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = 0;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("cannot listen on 127.0.0.1");
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~TwoPathServer() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    int port() const { return port_; }
    int requests() const { return requests_.load(); }

  private:
    void serve() {
        for (;;) {
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            std::string request;
            char buf[1024];
            while (request.find("\r\n\r\n") == std::string::npos) {
                ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0) break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            ++requests_;
            const std::string& body = request.rfind("GET /a ", 0) == 0 ? a_ : b_;
            std::string response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                                   "\r\nConnection: close\r\n\r\n" + body;
            std::size_t off = 0;
            while (off < response.size()) {
                ssize_t n = ::write(c, response.data() + off, response.size() - off);
                if (n <= 0) break;
                off += static_cast<std::size_t>(n);
            }
            ::close(c);
        }
    }
    std::string a_, b_;
    int fd_{-1}, port_{0};
    std::atomic<int> requests_{0};
    std::thread thread_;
};

std::string body_of(std::vector<float> values) {
    std::ostringstream out;
    for (float v : values) harmonics::write_tensor(out, make_f32({v}));
    return out.str();
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
