// Diagnostics through the C++ wrapper and the C API: a host's log callback receives the
// library's warnings with their level; the level filters them; the version is reported.

#include "test_support.hpp"

#include <mutex>
#include <string>
#include <utility>
#include <vector>

using harmonics_test::Records;
using harmonics_test::ScratchDir;

namespace {

/// A cache of 3 records reopened over a source of 2: the library warns and rebuilds.
void provoke_a_warning() {
    { harmonics::DiskCacheProducer a(std::make_shared<Records>(3), "shrink.cache"); }
    harmonics::DiskCacheProducer b(std::make_shared<Records>(2), "shrink.cache");
    EXPECT_EQ(b.outcome(), harmonics::CacheOutcome::Rebuilt);
}

struct Collected {
    std::mutex m;
    std::vector<std::pair<harmonics::LogLevel, std::string>> lines;
};

extern "C" void collect_c(HarmonicsLogLevel level, const char* message, void* userdata) {
    auto* c = static_cast<Collected*>(userdata);
    std::lock_guard<std::mutex> lock(c->m);
    c->lines.emplace_back(static_cast<harmonics::LogLevel>(level), message);
}

bool has_shrink_warning(Collected& c) {
    std::lock_guard<std::mutex> lock(c.m);
    for (const auto& [level, line] : c.lines)
        if (level == harmonics::LogLevel::Warn && line.find("the source shrank from 3 to 2") != std::string::npos)
            return true;
    return false;
}

}  // namespace

class Log : public ScratchDir {};

TEST_F(Log, CppCallbackReceivesTheWarning) {
    Collected got;
    harmonics::set_log_level(harmonics::LogLevel::Warn);
    harmonics::set_log_callback([&got](harmonics::LogLevel level, const std::string& line) {
        std::lock_guard<std::mutex> lock(got.m);
        got.lines.emplace_back(level, line);
    });
    provoke_a_warning();
    harmonics::set_log_callback({});
    EXPECT_TRUE(has_shrink_warning(got));
}

TEST_F(Log, CCallbackReceivesTheWarningWithItsUserdata) {
    Collected got;
    ASSERT_EQ(harmonics_set_log_level(HARMONICS_LOG_LEVEL_WARN), HARMONICS_STATUS_OK);
    ASSERT_EQ(harmonics_set_log_callback(&collect_c, &got), HARMONICS_STATUS_OK);
    provoke_a_warning();
    ASSERT_EQ(harmonics_set_log_callback(nullptr, nullptr), HARMONICS_STATUS_OK);
    EXPECT_TRUE(has_shrink_warning(got));
}

TEST_F(Log, LevelOffSilencesTheCallbackAndAThrowingCallbackIsContained) {
    Collected got;
    harmonics::set_log_callback([&got](harmonics::LogLevel level, const std::string& line) {
        std::lock_guard<std::mutex> lock(got.m);
        got.lines.emplace_back(level, line);
        throw std::runtime_error("a host's logger failed");
    });
    harmonics::set_log_level(harmonics::LogLevel::Off);
    EXPECT_EQ(harmonics::log_level(), harmonics::LogLevel::Off);
    provoke_a_warning();
    EXPECT_TRUE(got.lines.empty());
    harmonics::set_log_level(harmonics::LogLevel::Warn);
    provoke_a_warning();  // the callback throws: the library carries on
    harmonics::set_log_callback({});
    EXPECT_TRUE(has_shrink_warning(got));
    EXPECT_THROW(
        {
            try {
                harmonics::detail::check(harmonics_set_log_level(7));
            } catch (const harmonics::Error& e) {
                EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_ARGUMENT);
                throw;
            }
        },
        harmonics::Error);
}

TEST(Version, LibraryAndHeaderAgree) {
    const std::string header = std::to_string(HARMONICS_DATASET_VERSION_MAJOR) + "." +
                               std::to_string(HARMONICS_DATASET_VERSION_MINOR) + "." +
                               std::to_string(HARMONICS_DATASET_VERSION_PATCH);
    EXPECT_EQ(harmonics::version(), header);
    EXPECT_EQ(header, HARMONICS_DATASET_VERSION);
}
