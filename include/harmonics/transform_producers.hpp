// harmonics-dataset C++ wrapper: the original runtime's ShuffleProducer, ShardProducer
// and BatchProducer, same constructors. Over a random-access producer (a cache) they
// hold O(1) memory; over any other producer (a C++ subclass) they load the records
// they serve into memory once, at construction, as the original did.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <harmonics/core.hpp>
#include <harmonics/disk_cache_producer.hpp>
#include <harmonics/error.hpp>

namespace harmonics {

namespace detail {

/// The library handle reading `inner` (its own, or a bridge to its C++ code) and,
/// when bridged, the bridge handle to release after the wrapper shared it.
inline ProducerHandle inner_handle(const std::shared_ptr<Producer>& inner, HarmonicsProducer** out,
                                   const char* who) {
    if (!inner) throw Error(HARMONICS_STATUS_NULL_ARGUMENT, std::string(who) + ": inner producer is null");
    ProducerHandle bridged;
    *out = inner->native_handle();
    if (!*out) {
        bridged = bridge(inner);
        *out = bridged.get();
    }
    return bridged;
}

}  // namespace detail

/// Every record of `inner` once per epoch, in a new random order each epoch. Without a
/// seed each object draws one (as the original did from std::random_device); with a
/// seed the order is Sampler's global shuffle for that seed.
class ShuffleProducer : public NativeProducer {
  public:
    explicit ShuffleProducer(std::shared_ptr<Producer> inner) : inner_{std::move(inner)} { init(false, 0); }
    ShuffleProducer(std::shared_ptr<Producer> inner, std::uint64_t seed) : inner_{std::move(inner)} {
        init(true, seed);
    }

  private:
    void init(bool has_seed, std::uint64_t seed) {
        HarmonicsProducer* source = nullptr;
        auto bridged = detail::inner_handle(inner_, &source, "ShuffleProducer");
        HarmonicsProducer* h = nullptr;
        detail::check(harmonics_shuffle_producer_new(source, has_seed, seed, &h));
        reset(h);
    }
    std::shared_ptr<Producer> inner_;
};

/// The shard_idx-th of num_shards contiguous slices of `inner` (the first
/// size % num_shards shards one record longer), cycling over its own records. Invalid
/// parameters throw std::invalid_argument, as the original did.
class ShardProducer : public NativeProducer {
  public:
    ShardProducer(std::shared_ptr<Producer> inner, std::size_t shard_idx, std::size_t num_shards)
        : inner_{std::move(inner)} {
        if (!inner_ || num_shards == 0 || shard_idx >= num_shards)
            throw std::invalid_argument("invalid shard parameters");
        HarmonicsProducer* source = nullptr;
        auto bridged = detail::inner_handle(inner_, &source, "ShardProducer");
        HarmonicsProducer* h = nullptr;
        detail::check(harmonics_shard_producer_new(source, shard_idx, num_shards, &h));
        reset(h);
    }

  private:
    std::shared_ptr<Producer> inner_;
};

/// `batch` consecutive records of `inner` stacked along a new leading dimension: one
/// tensor of shape {batch, record shape…}; size() is inner->size() / batch.
class BatchProducer : public NativeProducer {
  public:
    BatchProducer(std::shared_ptr<Producer> inner, std::size_t batch) : inner_{std::move(inner)} {
        HarmonicsProducer* source = nullptr;
        auto bridged = detail::inner_handle(inner_, &source, "BatchProducer");
        HarmonicsProducer* h = nullptr;
        detail::check(harmonics_batch_producer_new(source, batch, &h));
        reset(h);
    }

  private:
    std::shared_ptr<Producer> inner_;
};

}  // namespace harmonics
