// Linked against libharmonics_dataset.a (harmonics::dataset_static) instead of the shared
// library: the static archive plus the native libraries the target carries are enough
// for the whole C++ wrapper path (CSV -> disk cache -> records, write/read_tensor).
// Exits non-zero, with a message, on the first wrong result.

#include <harmonics/dataset.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

int fail(const std::string& what) {
    std::fprintf(stderr, "static_link_smoke: %s\n", what.c_str());
    return 1;
}

std::vector<float> floats(const harmonics::HTensor& t) {
    std::vector<float> v(t.data().size() / sizeof(float));
    std::memcpy(v.data(), t.data().data(), v.size() * sizeof(float));
    return v;
}

int run(const std::filesystem::path& dir) {
    std::istringstream csv("1,2\n3,4\n5,6\n");
    auto source = std::make_shared<harmonics::CsvProducer>(csv);
    const std::string cache_path = (dir / "static.cache").string();
    {
        harmonics::DiskCacheProducer cached(source, cache_path);
        if (cached.outcome() != harmonics::CacheOutcome::Created) return fail("first open did not create");
        if (cached.size() != 3) return fail("size != 3");
        const std::vector<std::vector<float>> want{{1, 2}, {3, 4}, {5, 6}};
        for (const auto& w : want) {
            if (floats(cached.next()) != w) return fail("wrong record from a fresh cache");
        }
    }
    harmonics::DiskCacheProducer again(source, cache_path);
    if (again.outcome() != harmonics::CacheOutcome::Reused) return fail("second open did not reuse");

    std::stringstream wire;
    harmonics::write_tensor(wire, again.next());
    harmonics::HTensor back = harmonics::read_tensor(wire);
    if (floats(back) != std::vector<float>{1, 2}) return fail("wire round trip changed the record");

    try {
        harmonics::DiskCacheProducer bad(source, "../outside");
        return fail("a cache name escaping the directory was accepted");
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).empty()) return fail("error without a message");
    }
    std::printf("static_link_smoke: 3 records cached and read back through the static library\n");
    return 0;
}

}  // namespace

int main() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hd-static-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return fail("mkdtemp failed");
    int rc = 0;
    try {
        rc = run(tmpl);
    } catch (const std::exception& e) {
        rc = fail(std::string("unexpected exception: ") + e.what());
    }
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
    return rc;
}
