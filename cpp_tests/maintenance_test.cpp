// Store maintenance through the C++ wrapper (harmonics/maintenance.hpp): list, verify,
// remove, prune and clear the caches of the default cache directory.

#include "test_support.hpp"

#include <sstream>
#include <string>

using harmonics_test::expect_error;
using harmonics_test::ScratchDir;
namespace fs = harmonics_test::fs;

namespace {

/// A cache of the CSV `rows` (one record per line), made by the disk cache.
void make_cache(const std::string& name, const std::string& rows) {
    std::istringstream csv(rows);
    harmonics::DiskCacheProducer(std::make_shared<harmonics::CsvProducer>(csv), name);
}

class Maintenance : public ScratchDir {};

TEST_F(Maintenance, ListsVerifiesRemovesPrunesAndClears) {
    make_cache("a.cache", "1\n2\n3\n");
    make_cache("b.cache", "4\n5\n");
    write_file(".harmonics/cache/notes.txt", "mine, not a cache\n");

    auto all = harmonics::list_caches();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].name, "a.cache");
    EXPECT_EQ(all[0].state, HARMONICS_CACHE_STATE_CURRENT);
    EXPECT_EQ(all[0].records, 3u);
    EXPECT_TRUE(all[0].error.empty());
    EXPECT_EQ(all[2].name, "notes.txt");
    EXPECT_EQ(all[2].state, HARMONICS_CACHE_STATE_DAMAGED);
    EXPECT_FALSE(all[2].error.empty());
    EXPECT_EQ(harmonics::list_caches(std::string("no-such-dir")).size(), 0u);

    EXPECT_EQ(harmonics::verify_cache("a.cache"), 3u);
    expect_error([] { harmonics::verify_cache("notes.txt"); }, HARMONICS_STATUS_CORRUPT, "notes.txt",
                 "a file that is not a cache verified");
    expect_error([] { harmonics::remove_cache("notes.txt"); }, HARMONICS_STATUS_INVALID_ARGUMENT, "not removed",
                 "a file that is not a cache was removed");
    EXPECT_TRUE(fs::exists(".harmonics/cache/notes.txt"));
    EXPECT_TRUE(harmonics::remove_cache("b.cache"));
    EXPECT_FALSE(fs::exists(".harmonics/cache/b.cache"));

    auto p = harmonics::prune_caches(".harmonics/cache", 0);
    EXPECT_EQ(p.removed, 1u);
    EXPECT_EQ(p.in_use, 0u);
    EXPECT_EQ(p.total_after, 0u);
    EXPECT_FALSE(fs::exists(".harmonics/cache/a.cache"));

    expect_error([] { harmonics::clear_caches("/"); }, HARMONICS_STATUS_INVALID_ARGUMENT, "",
                 "clearing / was not refused");
    auto c = harmonics::clear_caches(".harmonics/cache");
    EXPECT_EQ(c.kept, 1u);
    EXPECT_FALSE(c.dir_removed);
    EXPECT_TRUE(fs::exists(".harmonics/cache/notes.txt"));
    fs::remove(".harmonics/cache/notes.txt");
    EXPECT_TRUE(harmonics::clear_caches(".harmonics/cache").dir_removed);
    EXPECT_FALSE(fs::exists(".harmonics/cache"));
}

}  // namespace
