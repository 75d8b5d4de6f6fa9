// Streaming through the C++ wrapper (DESIGN §11): harmonics::StreamingProducer over a
// published cache served with byte ranges by a loopback server: two ranks of one node
// read an epoch (disjoint, together the dataset, equal sizes), state() and restore()
// continue exactly, stats() counts the fetch; a limit below the minimum throws naming
// it; the C options struct with a wrong struct_size is refused. The multi-process and
// disk-limit behaviour is tested in Rust (tests/all/streaming/).

#include "test_support.hpp"

#include <set>

using harmonics_test::LoopbackHttpServer;
using harmonics_test::make_f32;
using harmonics_test::ScratchDir;

namespace {

constexpr std::size_t kRecords = 400;

class Records : public harmonics::Producer {
  public:
    harmonics::HTensor next() override {
        std::vector<float> v(64, 0.5f);
        v[0] = static_cast<float>(cursor_);
        cursor_ = (cursor_ + 1) % kRecords;
        return make_f32(v);
    }
    std::size_t size() const override { return kRecords; }

  private:
    std::size_t cursor_{0};
};

/// Serves `body` with byte ranges and a strong ETag, as a static server does.
std::string ranged(const std::string& request, const std::string& body) {
    const std::string etag = "ETag: \"v1\"\r\nAccept-Ranges: bytes\r\n";
    std::size_t at = request.find("Range: bytes=");
    if (at == std::string::npos) at = request.find("range: bytes=");
    if (at == std::string::npos) return harmonics_test::http_response("200 OK", body, etag);
    std::size_t first = std::stoull(request.substr(at + 13));
    std::size_t dash = request.find('-', at + 13);
    std::size_t last = std::stoull(request.substr(dash + 1));
    if (last >= body.size()) last = body.size() - 1;
    const std::string part = body.substr(first, last - first + 1);
    return harmonics_test::http_response(
        "206 Partial Content", part,
        etag + "Content-Range: bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
            std::to_string(body.size()) + "\r\n");
}

class Streaming : public ScratchDir {
  protected:
    void SetUp() override {
        ScratchDir::SetUp();
        {
            harmonics::DiskCacheProducer d(std::make_shared<Records>(), "train.cache");
            ASSERT_EQ(d.size(), kRecords);
        }
        harmonics::publish_cache("train.cache", (dir_ / "www").string());
        std::ifstream in(dir_ / "www" / "train.cache", std::ios::binary);
        body_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        server_ = std::make_unique<LoopbackHttpServer>([this](const std::string& r) { return ranged(r, body_); });
        url_ = server_->endpoint() + "/train.cache";
    }
    harmonics::StreamOptions options() const {
        harmonics::StreamOptions o;
        o.block_bytes = 4096;
        o.ranks_per_node = 2;
        o.cache_name = (dir_ / "node").string();
        o.http.connections = 1;
        return o;
    }
    std::string body_;
    std::unique_ptr<LoopbackHttpServer> server_;
    std::string url_;
};

std::size_t index_of(const harmonics::HTensor& t) {
    float f = 0;
    std::memcpy(&f, t.data().data(), sizeof f);
    return static_cast<std::size_t>(f);
}

TEST_F(Streaming, TwoRanksOfANodeReadTheDatasetOnceAndResumeExactly) {
    harmonics::SamplerOptions s;
    s.seed = 3;
    s.world_size = 2;
    std::set<std::size_t> seen;
    std::vector<std::size_t> sizes;
    for (std::size_t rank = 0; rank < 2; ++rank) {
        s.rank = rank;
        harmonics::StreamingProducer p(url_, s, options());
        EXPECT_EQ(p.num_records(), kRecords);
        sizes.push_back(p.size());
        std::vector<std::size_t> first;
        for (std::size_t k = 0; k < p.size(); ++k) {
            std::size_t i = index_of(p.next());
            first.push_back(i);
            seen.insert(i);
        }
        EXPECT_EQ(p.epoch(), 1u);
        // A checkpoint in epoch 1, read on, then restored: the same records again.
        harmonics::StreamState st = p.state();
        std::vector<std::size_t> after;
        for (int k = 0; k < 20; ++k) after.push_back(index_of(p.next()));
        p.restore(st);
        for (int k = 0; k < 20; ++k) EXPECT_EQ(index_of(p.next()), after[static_cast<std::size_t>(k)]);
        p.set_epoch(0);
        EXPECT_EQ(index_of(p.next()), first[0]);
        harmonics::StreamStats stats = p.stats();
        EXPECT_GT(stats.bytes_fetched, 0u);
        EXPECT_GT(stats.disk_bytes, 0u);
    }
    EXPECT_EQ(sizes[0], sizes[1]);
    EXPECT_EQ(seen.size(), kRecords);
}

TEST_F(Streaming, ALimitBelowTheMinimumThrowsNamingIt) {
    harmonics::SamplerOptions s;
    harmonics::StreamOptions o = options();
    o.ranks_per_node = 1;
    o.cache_limit = 8192;
    try {
        harmonics::StreamingProducer p(url_, s, o);
        FAIL() << "a limit of 8192 bytes was accepted";
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("minimum of"), std::string::npos) << e.what();
    }
}

TEST_F(Streaming, TheCOptionsStructMustComeFromItsDefault) {
    HarmonicsStreamOptions o = harmonics_stream_options_default();
    EXPECT_EQ(o.struct_size, sizeof(HarmonicsStreamOptions));
    o.struct_size = 8;
    HarmonicsProducer* p = nullptr;
    EXPECT_EQ(harmonics_streaming_producer_new(url_.c_str(), nullptr, &o, &p), HARMONICS_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(p, nullptr);
    EXPECT_NE(std::string(harmonics_last_error_message()).find("struct_size"), std::string::npos);
}

}  // namespace
