// The lock timeout through the C++ API: a cache whose lock another holder keeps is
// given up after the configured time with HARMONICS_STATUS_LOCK_TIMEOUT naming it.

#include "test_support.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <chrono>

using harmonics_test::make_f32;
using harmonics_test::ScratchDir;

namespace {

class TwoRecords : public harmonics::Producer {
  public:
    harmonics::HTensor next() override { return make_f32({1, 2}); }
    std::size_t size() const override { return 2; }
};

/// Holds `.<name>.lock` with flock through its own descriptor, as another process's
/// CacheLock would (flock excludes other open file descriptions, also in-process).
class HeldLock {
  public:
    explicit HeldLock(const std::string& lock_path) {
        fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        locked_ = fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
    }
    ~HeldLock() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool locked() const { return locked_; }

  private:
    int fd_{-1};
    bool locked_{false};
};

}  // namespace

class CacheLockTimeout : public ScratchDir {
  protected:
    void TearDown() override {
        harmonics::set_lock_timeout(std::nullopt);
        ScratchDir::TearDown();
    }
};

TEST_F(CacheLockTimeout, HeldLockIsGivenUpAfterTheTimeoutWithItsOwnStatus) {
    EXPECT_EQ(harmonics::lock_timeout(), std::nullopt) << "no limit by default";
    harmonics::set_lock_timeout(std::chrono::milliseconds(300));
    EXPECT_EQ(harmonics::lock_timeout(), std::chrono::milliseconds(300));
    std::filesystem::create_directories(".harmonics/cache");
    HeldLock held(".harmonics/cache/.busy.cache.lock");
    ASSERT_TRUE(held.locked());
    try {
        harmonics::DiskCacheProducer cached(std::make_shared<TwoRecords>(), "busy.cache");
        FAIL() << "expected a lock timeout";
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_LOCK_TIMEOUT);
        EXPECT_NE(std::string(e.what()).find("gave up waiting for the lock of"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("busy.cache"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(".harmonics/cache/busy.cache"));
    // Without a limit again, and the lock free: the cache is made.
    harmonics::set_lock_timeout(std::nullopt);
    EXPECT_EQ(harmonics::lock_timeout(), std::nullopt);
}

TEST_F(CacheLockTimeout, FreeLockIsTakenAtOnceEvenWithAZeroTimeout) {
    harmonics::set_lock_timeout(std::chrono::milliseconds(0));
    harmonics::DiskCacheProducer cached(std::make_shared<TwoRecords>(), "free.cache");
    EXPECT_EQ(cached.size(), 2u);
}
