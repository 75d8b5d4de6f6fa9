// harmonics-dataset C++ wrapper: the training order. Sampler (a shuffled, sharded,
// resumable index sequence in O(1) memory), SamplerOptions, SamplerState, and
// SampledProducer (a random-access producer read in a sampler's order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include <harmonics/core.hpp>
#include <harmonics/error.hpp>

namespace harmonics {

/// How a Sampler orders and splits the records.
struct SamplerOptions {
    /// Selects the order; the same seed gives the same order on every machine.
    std::uint64_t seed = 0;
    /// False: the record order 0, 1, 2, …
    bool shuffle = true;
    /// This sampler's rank, below world_size.
    std::size_t rank = 0;
    /// Number of ranks sharing the dataset.
    std::size_t world_size = 1;
    /// True: drop the remainder of num_records / world_size; false: pad the last step
    /// by wrapping to the start of the order.
    bool drop_last = false;
    /// 0: global shuffle; B > 0: blocks of B consecutive records shuffled, records
    /// mixed within windows of 64 to 127 blocks (locality for caches larger than RAM).
    std::size_t block_records = 0;
};

/// Where a sampler is: plain data (store it in a checkpoint as it is). `position` is the
/// global position of rank 0's next index in `epoch`: after k steps at world size W it
/// is k*W.
struct SamplerState {
    std::uint64_t seed = 0;
    std::uint64_t epoch = 0;
    std::uint64_t position = 0;
    std::uint64_t num_records = 0;
    std::uint64_t world_size = 0;
    std::uint64_t rank = 0;
    /// The options of the sampler that saved the state.
    SamplerOptions options{};
};

static_assert(std::is_trivially_copyable<SamplerState>::value, "SamplerState is plain data");
static_assert(sizeof(SamplerState) <= 128, "SamplerState stays small");

namespace detail {

// One field list for each struct, used in both directions (C++ to C and back), so the
// two conversions cannot drift apart. `to` comes in with its defaults.
template <class To, class From>
To copy_sampler_options(const From& from, To to) {
    to.seed = from.seed;
    to.shuffle = from.shuffle;
    to.rank = static_cast<decltype(to.rank)>(from.rank);
    to.world_size = static_cast<decltype(to.world_size)>(from.world_size);
    to.drop_last = from.drop_last;
    to.block_records = static_cast<decltype(to.block_records)>(from.block_records);
    return to;
}

template <class To, class From, class Options>
To copy_sampler_state(const From& from, To to, const Options& options) {
    to.seed = from.seed;
    to.epoch = from.epoch;
    to.position = from.position;
    to.num_records = from.num_records;
    to.world_size = from.world_size;
    to.rank = from.rank;
    to.options = options;
    return to;
}

inline HarmonicsSamplerOptions c_options(const SamplerOptions& o) {
    return copy_sampler_options(o, harmonics_sampler_options_default());
}

inline SamplerOptions from_c(const HarmonicsSamplerOptions& c) { return copy_sampler_options(c, SamplerOptions{}); }

inline HarmonicsSamplerState c_state(const SamplerState& s) {
    return copy_sampler_state(s, HarmonicsSamplerState{}, c_options(s.options));
}

inline SamplerState from_c(const HarmonicsSamplerState& c) {
    return copy_sampler_state(c, SamplerState{}, from_c(c.options));
}

}  // namespace detail

class SampledProducer;

/// The index sequence of one rank. The epoch's global order is a pure function of
/// (seed, epoch, num_records), computed on the fly (0 bytes per record); rank r of W
/// takes global positions r, r+W, r+2W, …, so ranks are disjoint, their union is the
/// dataset and every rank has size() indices per epoch. Copies are independent.
class Sampler {
  public:
    explicit Sampler(std::size_t num_records, SamplerOptions opts = {}) {
        HarmonicsSamplerOptions c = detail::c_options(opts);
        HarmonicsSampler* h = nullptr;
        detail::check(harmonics_sampler_new(num_records, &c, &h));
        handle_.reset(h);
    }

    Sampler(const Sampler& other) : handle_{clone(other)} {}
    Sampler& operator=(const Sampler& other) {
        if (this != &other) handle_ = clone(other);
        return *this;
    }
    Sampler(Sampler&&) noexcept = default;
    Sampler& operator=(Sampler&&) noexcept = default;

    /// Indices per rank per epoch (the same on every rank).
    std::size_t size() const {
        std::uint64_t n = 0;
        detail::check(harmonics_sampler_size(handle_.get(), &n));
        return static_cast<std::size_t>(n);
    }

    std::size_t num_records() const {
        std::uint64_t n = 0;
        detail::check(harmonics_sampler_num_records(handle_.get(), &n));
        return static_cast<std::size_t>(n);
    }

    /// The k-th index of this rank in a full epoch epoch() (pure: does not move).
    std::size_t index(std::size_t k) const {
        std::uint64_t i = 0;
        detail::check(harmonics_sampler_index(handle_.get(), k, &i));
        return static_cast<std::size_t>(i);
    }

    /// The next index; after size() calls the next epoch begins.
    std::size_t next() {
        std::uint64_t i = 0;
        detail::check(harmonics_sampler_next(handle_.get(), &i));
        return static_cast<std::size_t>(i);
    }

    /// The next n indices at once (the fast path: one call for many indices).
    void fill(std::uint64_t* out, std::size_t n) { detail::check(harmonics_sampler_fill(handle_.get(), out, n)); }
    void fill(std::vector<std::uint64_t>& out) { fill(out.data(), out.size()); }

    /// Starts epoch e at its first position.
    void set_epoch(std::uint64_t e) { detail::check(harmonics_sampler_set_epoch(handle_.get(), e)); }

    /// The epoch the next index belongs to.
    std::uint64_t epoch() const {
        std::uint64_t e = 0;
        detail::check(harmonics_sampler_epoch(handle_.get(), &e));
        return e;
    }

    SamplerOptions options() const {
        HarmonicsSamplerOptions c;
        detail::check(harmonics_sampler_options(handle_.get(), &c));
        return detail::from_c(c);
    }

    SamplerState state() const {
        HarmonicsSamplerState c;
        detail::check(harmonics_sampler_state(handle_.get(), &c));
        return detail::from_c(c);
    }

    /// Continues from `s`, saved by any rank at any world size: keeps this sampler's rank
    /// and world size, takes the epoch and the global position. O(1). Throws
    /// harmonics::Error for a state of another num_records, seed or order options.
    void restore(const SamplerState& s) {
        HarmonicsSamplerState c = detail::c_state(s);
        detail::check(harmonics_sampler_restore(handle_.get(), &c));
    }

    HarmonicsSampler* native_handle() const noexcept { return handle_.get(); }

  private:
    friend class SampledProducer;
    friend class NativeProducer;
    explicit Sampler(detail::SamplerHandle h) : handle_{std::move(h)} {}

    static detail::SamplerHandle clone(const Sampler& other) {
        HarmonicsSampler* h = nullptr;
        detail::check(harmonics_sampler_clone(other.handle_.get(), &h));
        return detail::SamplerHandle{h};
    }

    detail::SamplerHandle handle_{};
};

/// A random-access producer (a cache) read in a Sampler's order: next() is
/// source->at(sampler.next()), size() the rank's count per epoch. Usable wherever code
/// takes a Producer. Throws harmonics::Error when `source` has no random access.
class SampledProducer : public NativeProducer {
  public:
    SampledProducer(std::shared_ptr<NativeProducer> source, SamplerOptions opts = {})
        : source_{std::move(source)} {
        if (!source_) throw Error(HARMONICS_STATUS_NULL_ARGUMENT, "SampledProducer: source is null");
        HarmonicsSamplerOptions c = detail::c_options(opts);
        HarmonicsProducer* h = nullptr;
        detail::check(harmonics_sampled_producer_new(source_->native_handle(), &c, &h));
        reset(h);
    }

    // next() is NativeProducer::next(): source->at(sampler.next()) in one call, the
    // record copied once, from the cache into the tensor and checked there; the sampler
    // moves only once the record was read (a failed read can be retried). The source
    // reads ahead in the sampler's order. next_batch(n) reads n records that way.

    /// A copy of the sampler at its current place (const: move the producer itself
    /// with restore() or set_epoch()).
    const Sampler sampler() const {
        HarmonicsSampler* h = nullptr;
        detail::check(harmonics_sampled_producer_sampler(native_handle(), &h));
        return Sampler(detail::SamplerHandle{h});
    }

    SamplerState state() const {
        HarmonicsSamplerState c;
        detail::check(harmonics_sampled_producer_state(native_handle(), &c));
        return detail::from_c(c);
    }

    void restore(const SamplerState& s) {
        HarmonicsSamplerState c = detail::c_state(s);
        detail::check(harmonics_sampled_producer_restore(native_handle(), &c));
    }

    void set_epoch(std::uint64_t e) { detail::check(harmonics_sampled_producer_set_epoch(native_handle(), e)); }

    const std::shared_ptr<NativeProducer>& source() const noexcept { return source_; }

  private:
    std::shared_ptr<NativeProducer> source_;
};

inline void NativeProducer::read_ahead(const Sampler& order) {
    detail::check(harmonics_producer_read_ahead(handle_.get(), order.handle_.get()));
}

}  // namespace harmonics
