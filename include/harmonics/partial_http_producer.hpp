// Many nodes: per-node partial fetch and publishing (docs/guides/many-nodes-and-streaming.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <harmonics/core.hpp>
#include <harmonics/http_producer.hpp>
#include <harmonics/sampler.hpp>

namespace harmonics {

/// Fetches from a published cache (`cache_cli publish`; http(s):// or s3://) only
/// the records the sampler `sampler` (its rank ignored) gives each rank of
/// `ranks_on_this_node` at `epoch`, into the local partial cache `opts.cache_path`
/// (required; reopened without any request when made for exactly this). `at(i)` /
/// `view(i)` take GLOBAL record indices; a record this node does not hold throws
/// (IndexOutOfRange status, the message naming the ranks held). `next()` cycles
/// over the held records in ascending global order.
class PartialHttpProducer : public NativeProducer {
  public:
    PartialHttpProducer(const std::string& url, const SamplerOptions& sampler,
                        const std::vector<std::uint64_t>& ranks_on_this_node, std::uint64_t epoch,
                        const HttpOptions& opts)
        : NativeProducer(open(url, sampler, ranks_on_this_node, epoch, opts)) {}

  private:
    static HarmonicsProducer* open(const std::string& url, const SamplerOptions& sampler,
                                   const std::vector<std::uint64_t>& ranks, std::uint64_t epoch,
                                   const HttpOptions& opts) {
        HarmonicsHttpOptions c = detail::c_http_options(opts);
        HarmonicsSamplerOptions s = detail::c_options(sampler);
        const char* u = detail::c_string(url, "URL", HARMONICS_STATUS_INVALID_ARGUMENT);
        HarmonicsProducer* out = nullptr;
        detail::check(harmonics_partial_http_producer_new(u, &s, ranks.data(), ranks.size(), epoch, &c, &out));
        return out;
    }
};

/// Publishes the cache `name_or_path` to a directory (as DEST/<name>, renamed into
/// place) or an s3://bucket/key URL (one signed PUT); returns the JSON summary.
inline std::string publish_cache(const std::string& name_or_path, const std::string& dest) {
    const char* n = detail::c_string(name_or_path, "cache name", HARMONICS_STATUS_INVALID_NAME);
    const char* dp = detail::c_string(dest, "destination", HARMONICS_STATUS_INVALID_ARGUMENT);
    std::string json(4096, '\0');
    std::size_t len = 0;
    detail::check(harmonics_cache_publish(n, dp, &json[0], json.size(), &len));
    json.resize(len < json.size() ? len : json.size() - 1);
    return json;
}

}  // namespace harmonics
