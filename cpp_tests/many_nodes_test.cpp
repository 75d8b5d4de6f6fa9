// Many nodes through the C++ wrapper: harmonics::publish_cache (a compact
// version-2 cache renamed into a served directory, a JSON summary) and
// harmonics::PartialHttpProducer's argument errors as harmonics::Error. The partial
// fetch itself runs against nginx and s3s-fs in tests/all/multinode/.

#include "test_support.hpp"

using harmonics_test::make_f32;
using harmonics_test::ScratchDir;

namespace {

class Records : public harmonics::Producer {
  public:
    harmonics::HTensor next() override {
        float i = static_cast<float>(cursor_);
        cursor_ = (cursor_ + 1) % 10;
        return make_f32({i, 2 * i});
    }
    std::size_t size() const override { return 10; }

  private:
    std::size_t cursor_{0};
};

using ManyNodes = ScratchDir;

TEST_F(ManyNodes, PublishCacheWritesTheFileAndReturnsTheSummary) {
    {
        harmonics::DiskCacheProducer d(std::make_shared<Records>(), "train.cache");
        ASSERT_EQ(d.size(), 10u);
    }
    std::string json = harmonics::publish_cache("train.cache", (dir_ / "www").string());
    EXPECT_NE(json.find("\"records\":10"), std::string::npos) << json;
    EXPECT_NE(json.find("\"method\":\"rename\""), std::string::npos) << json;
    EXPECT_TRUE(harmonics_test::fs::exists(dir_ / "www" / "train.cache"));
    try {
        harmonics::publish_cache("missing.cache", (dir_ / "www").string());
        FAIL() << "no error for a missing cache";
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing.cache"), std::string::npos) << e.what();
    }
}

TEST_F(ManyNodes, PartialHttpProducerRefusesRanksOutsideTheWorldAndNoCachePath) {
    harmonics::SamplerOptions s;
    s.world_size = 8;
    harmonics::HttpOptions o;
    o.cache_path = "part.cache";
    try {
        harmonics::PartialHttpProducer p("http://127.0.0.1:9/x.cache", s, {8}, 0, o);
        FAIL() << "no error for rank 8 of 8";
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("world size 8"), std::string::npos) << e.what();
    }
    harmonics::HttpOptions none;
    none.cache_path = "";
    try {
        harmonics::PartialHttpProducer p("http://127.0.0.1:9/x.cache", s, {0, 1}, 0, none);
        FAIL() << "no error without a cache path";
    } catch (const harmonics::Error& e) {
        EXPECT_NE(std::string(e.what()).find("cache_path"), std::string::npos) << e.what();
    }
}

}  // namespace
