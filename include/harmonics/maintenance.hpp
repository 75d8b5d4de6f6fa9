// harmonics-dataset C++ wrapper: store maintenance (list, verify, remove, clear, prune
// the caches of a directory; see harmonics_cache_* in harmonics_dataset.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <harmonics/error.hpp>
#include <harmonics_dataset.h>

namespace harmonics {

/// One cache of a directory, as `list_caches` found it.
struct CacheEntry {
    std::string name;  ///< relative to the directory, `/`-separated
    std::string path;
    std::uint64_t size = 0;
    HarmonicsCacheState state = HARMONICS_CACHE_STATE_DAMAGED;
    std::uint64_t records = 0;  ///< 0 unless CURRENT or LEGACY
    std::uint64_t created = 0;  ///< unix seconds
    std::uint64_t last_used = 0;
    std::string token, source;  ///< empty unless CURRENT
    std::string error;          ///< why it could not be opened; empty if it could
};

using ClearReport = HarmonicsClearReport;
using PruneReport = HarmonicsPruneReport;

namespace detail {
struct CacheListDeleter {
    void operator()(HarmonicsCacheList* l) const noexcept { harmonics_cache_list_free(l); }
};
}  // namespace detail

/// The caches under `dir` (default: $HARMONICS_CACHE_DIR, else .harmonics/cache),
/// sorted by name; none when the directory does not exist.
inline std::vector<CacheEntry> list_caches(const std::optional<std::string>& dir = std::nullopt) {
    HarmonicsCacheList* raw = nullptr;
    detail::check(harmonics_cache_list(
        dir ? detail::c_string(*dir, "dir", HARMONICS_STATUS_INVALID_ARGUMENT) : nullptr, &raw));
    std::unique_ptr<HarmonicsCacheList, detail::CacheListDeleter> list(raw);
    std::size_t n = 0;
    detail::check(harmonics_cache_list_len(list.get(), &n));
    std::vector<CacheEntry> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        HarmonicsCacheEntry e{};
        detail::check(harmonics_cache_list_get(list.get(), i, &e));
        out.push_back(CacheEntry{e.name, e.path, e.size, e.state, e.records, e.created,
                                 e.last_used, e.token, e.source, e.error});
    }
    return out;
}

/// Checks every record of cache `name` (relative to the cache directory, or an absolute
/// path) and returns how many there are. Throws `Error` with HARMONICS_STATUS_CORRUPT
/// when it is damaged, HARMONICS_STATUS_IO when it is missing or unreadable.
inline std::uint64_t verify_cache(const std::string& name) {
    std::uint64_t records = 0;
    detail::check(harmonics_cache_verify(
        detail::c_string(name, "name", HARMONICS_STATUS_INVALID_NAME), &records));
    return records;
}

/// Removes cache `name` (or the library's own lock or temporary file); false when
/// another process is using it. Throws for anything that is not a cache.
inline bool remove_cache(const std::string& name) {
    bool removed = false;
    detail::check(harmonics_cache_remove(
        detail::c_string(name, "name", HARMONICS_STATUS_INVALID_NAME), &removed));
    return removed;
}

/// Removes the caches in `dir` and their companion files (see harmonics_cache_clear).
inline ClearReport clear_caches(const std::string& dir, bool all_or_nothing = false) {
    ClearReport r{};
    detail::check(harmonics_cache_clear(
        detail::c_string(dir, "dir", HARMONICS_STATUS_INVALID_ARGUMENT), all_or_nothing, &r));
    return r;
}

/// Removes the least recently used caches in `dir` until they total at most `max_bytes`.
inline PruneReport prune_caches(const std::string& dir, std::uint64_t max_bytes) {
    PruneReport r{};
    detail::check(harmonics_cache_prune(
        detail::c_string(dir, "dir", HARMONICS_STATUS_INVALID_ARGUMENT), max_bytes, &r));
    return r;
}

}  // namespace harmonics
