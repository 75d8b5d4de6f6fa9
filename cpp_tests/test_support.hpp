// Shared fixture for the C++ tests: each test runs in a fresh scratch directory with
// its own HARMONICS_CACHE_DIR, so tests never see each other's caches.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <harmonics/dataset.hpp>

namespace harmonics_test {

namespace fs = std::filesystem;

class ScratchDir : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hd-cpp-XXXXXX").string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        ASSERT_NE(mkdtemp(buf.data()), nullptr);
        dir_ = buf.data();
        old_cwd_ = fs::current_path();
        fs::current_path(dir_);
        const char* old = std::getenv("HARMONICS_CACHE_DIR");
        had_env_ = old != nullptr;
        if (old) old_env_ = old;
        unsetenv("HARMONICS_CACHE_DIR");  // the documented default, .harmonics/cache
    }

    void TearDown() override {
        fs::current_path(old_cwd_);
        if (had_env_) setenv("HARMONICS_CACHE_DIR", old_env_.c_str(), 1);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    static void write_file(const std::string& path, const std::string& text) {
        std::ofstream out(path, std::ios::binary);
        out << text;
    }

    fs::path dir_;

  private:
    fs::path old_cwd_;
    bool had_env_{false};
    std::string old_env_;
};

inline std::vector<float> floats(const harmonics::HTensor& t) {
    std::vector<float> v(t.data().size() / sizeof(float));
    std::memcpy(v.data(), t.data().data(), v.size() * sizeof(float));
    return v;
}

inline harmonics::HTensor make_f32(std::vector<float> values) {
    std::vector<std::byte> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return harmonics::HTensor(harmonics::HTensor::DType::Float32, {values.size()}, std::move(bytes));
}

}  // namespace harmonics_test
