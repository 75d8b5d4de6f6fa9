// harmonics-dataset C++ wrapper: streaming a dataset larger than the disk (DESIGN §11).
// StreamingProducer reads a published cache at an https:// or s3:// URL in the training
// order, a block at a time, through a bounded stream cache the ranks of one node share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <harmonics/core.hpp>
#include <harmonics/error.hpp>
#include <harmonics/http_producer.hpp>
#include <harmonics/sampler.hpp>

namespace harmonics {

/// How a stream is cut and cached.
struct StreamOptions {
    /// Bytes of local disk the node's stream may hold (every file it creates); 0: no
    /// limit. Below the stream's minimum (8 blocks per local rank) the constructor
    /// throws, naming the minimum in bytes.
    std::uint64_t cache_limit = 0;
    /// Fetch unit: a run of whole consecutive records of about this many bytes; 0:
    /// automatic.
    std::uint64_t block_bytes = 0;
    /// Ranks sharing this node's disk; node = rank / ranks_per_node.
    std::size_t ranks_per_node = 1;
    /// True: deal the blocks to the nodes anew every epoch.
    bool redeal = false;
    /// The node's stream cache under HARMONICS_CACHE_DIR; "": from the URL.
    std::string cache_name;
    /// Connections, timeouts, CA file, retries.
    HttpOptions http;
};

/// This process's view of the stream, since it opened it.
struct StreamStats {
    std::uint64_t bytes_fetched;    // body bytes this process fetched from the remote
    std::uint64_t blocks_fetched;
    std::uint64_t blocks_evicted;
    std::uint64_t disk_bytes;       // allocated bytes of the node's stream cache now
    std::uint64_t disk_high_water;  // the most it has seen
    double wait_seconds;            // time next() spent waiting for data
};

/// Where a stream is: plain data (store it in a checkpoint as it is). Restoring it
/// continues exactly for the same world_size and ranks_per_node (also one rank
/// restarted alone); another layout is refused, the message naming both.
struct StreamState {
    std::uint64_t seed = 0;
    std::uint64_t epoch = 0;
    std::uint64_t step = 0;  // steps taken in epoch (the same on every rank)
    std::uint64_t num_records = 0;
    std::uint64_t world_size = 0;
    std::uint64_t ranks_per_node = 0;
    std::uint64_t rank = 0;
    std::uint64_t block_bytes = 0;
    bool shuffle = true;
    bool drop_last = false;
    bool redeal = false;
};

static_assert(std::is_trivially_copyable<StreamState>::value, "StreamState is plain data");

namespace detail {

// One field list, used in both directions (C++ to C and back).
template <class To, class From>
To copy_stream_state(const From& from, To to) {
    to.seed = from.seed;
    to.epoch = from.epoch;
    to.step = from.step;
    to.num_records = from.num_records;
    to.world_size = from.world_size;
    to.ranks_per_node = from.ranks_per_node;
    to.rank = from.rank;
    to.block_bytes = from.block_bytes;
    to.shuffle = from.shuffle;
    to.drop_last = from.drop_last;
    to.redeal = from.redeal;
    return to;
}

}  // namespace detail

/// A published cache read in the training order through the node's bounded stream
/// cache: `next()` is this rank's next record (after size() calls, the next epoch's
/// first); `size()` the records per rank per epoch, equal on every rank.
class StreamingProducer : public NativeProducer {
  public:
    StreamingProducer(const std::string& url, SamplerOptions order, StreamOptions opts = {})
        : NativeProducer(open(url, order, opts)) {}

    std::size_t num_records() const {
        std::uint64_t n = 0;
        detail::check(harmonics_streaming_producer_num_records(native_handle(), &n));
        return static_cast<std::size_t>(n);
    }

    std::uint64_t epoch() const {
        std::uint64_t e = 0;
        detail::check(harmonics_streaming_producer_epoch(native_handle(), &e));
        return e;
    }

    void set_epoch(std::uint64_t e) { detail::check(harmonics_streaming_producer_set_epoch(native_handle(), e)); }

    StreamState state() const {
        HarmonicsStreamState s{};
        detail::check(harmonics_streaming_producer_state(native_handle(), &s));
        return detail::copy_stream_state(s, StreamState{});
    }

    void restore(const StreamState& s) {
        HarmonicsStreamState c = detail::copy_stream_state(s, HarmonicsStreamState{});
        detail::check(harmonics_streaming_producer_restore(native_handle(), &c));
    }

    StreamStats stats() const {
        HarmonicsStreamStats c{};
        detail::check(harmonics_streaming_producer_stats(native_handle(), &c));
        return StreamStats{c.bytes_fetched, c.blocks_fetched, c.blocks_evicted,
                           c.disk_bytes,    c.disk_high_water, c.wait_seconds};
    }

  private:
    static HarmonicsProducer* open(const std::string& url, const SamplerOptions& order,
                                   const StreamOptions& opts) {
        HarmonicsStreamOptions c = harmonics_stream_options_default();
        c.cache_limit = opts.cache_limit;
        c.block_bytes = opts.block_bytes;
        c.ranks_per_node = opts.ranks_per_node;
        c.redeal = opts.redeal;
        c.cache_name = opts.cache_name.c_str();
        c.http = detail::c_http_options(opts.http);
        HarmonicsSamplerOptions s = detail::c_options(order);
        const char* u = detail::c_string(url, "URL", HARMONICS_STATUS_INVALID_ARGUMENT);
        HarmonicsProducer* out = nullptr;
        detail::check(harmonics_streaming_producer_new(u, &s, &c, &out));
        return out;
    }
};

}  // namespace harmonics
