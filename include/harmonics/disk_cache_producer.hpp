// harmonics-dataset C++ wrapper: DiskCacheProducer, persisting any producer's records.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <harmonics/core.hpp>
#include <harmonics/serialization.hpp>

namespace harmonics {

namespace detail {

/// What a foreign (C++) producer hands to the library: the producer, kept alive, and
/// the record returned last, whose memory the library borrows until the next call.
struct ForeignProducerContext {
    std::shared_ptr<Producer> producer;
    HTensor current{};
    std::string fingerprint{};
};

// Trampolines: no C++ exception may unwind through Rust frames; each runs its body
// through bridge_exceptions (error.hpp), so an exception becomes HARMONICS_STATUS_FOREIGN
// with its message.
inline HarmonicsCallbackResult foreign_next(void* userdata, HarmonicsTensorView* out) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {
        auto* c = static_cast<ForeignProducerContext*>(userdata);
        c->current = c->producer->next();
        *out = c_view_of(c->current);
        return HARMONICS_STATUS_OK;
    });
}

inline HarmonicsCallbackResult foreign_size(void* userdata, std::size_t* out) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {
        *out = static_cast<ForeignProducerContext*>(userdata)->producer->size();
        return HARMONICS_STATUS_OK;
    });
}

inline HarmonicsCallbackResult foreign_skip(void* userdata, std::size_t n) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {
        static_cast<ForeignProducerContext*>(userdata)->producer->skip(n);
        return HARMONICS_STATUS_OK;
    });
}

inline HarmonicsCallbackResult foreign_fingerprint(void* userdata, const char** ptr, std::size_t* len) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {
        auto* c = static_cast<ForeignProducerContext*>(userdata);
        c->fingerprint = c->producer->fingerprint();
        *ptr = c->fingerprint.data();
        *len = c->fingerprint.size();
        return HARMONICS_STATUS_OK;
    });
}

inline void foreign_free(void* userdata) noexcept { delete static_cast<ForeignProducerContext*>(userdata); }

struct TokenContext {
    std::function<std::string()> fn;
    std::string value{};
};

inline HarmonicsCallbackResult token_get(void* userdata, const char** ptr, std::size_t* len) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {
        auto* c = static_cast<TokenContext*>(userdata);
        c->value = c->fn();
        *ptr = c->value.data();
        *len = c->value.size();
        return HARMONICS_STATUS_OK;
    });
}

inline void token_free(void* userdata) noexcept { delete static_cast<TokenContext*>(userdata); }

/// A library handle reading `base`: its own handle when it is a library producer
/// (records never round-trip through C++), else a callback bridge to its C++ code.
inline ProducerHandle bridge(const std::shared_ptr<Producer>& base) {
    if (!base) throw Error(HARMONICS_STATUS_NULL_ARGUMENT, "DiskCacheProducer: base producer is null");
    HarmonicsProducerCallbacks cb{};
    cb.userdata = new ForeignProducerContext{base};
    cb.next = &foreign_next;
    cb.size = &foreign_size;
    cb.free = &foreign_free;
    HarmonicsProducer* h = nullptr;
    check(harmonics_producer_from_callbacks(&cb, "C++ producer", &h));  // owns userdata from here
    ProducerHandle handle{h};
    check(harmonics_producer_set_skip_callback(h, &foreign_skip));
    check(harmonics_producer_set_fingerprint_callback(h, &foreign_fingerprint));
    return handle;
}

}  // namespace detail

/// What opening (or refreshing) a cache did.
enum class CacheOutcome { Reused, Created, Appended, Rebuilt };
static_assert(static_cast<int>(CacheOutcome::Reused) == HARMONICS_CACHE_OUTCOME_KIND_REUSED, "CacheOutcome");
static_assert(static_cast<int>(CacheOutcome::Created) == HARMONICS_CACHE_OUTCOME_KIND_CREATED, "CacheOutcome");
static_assert(static_cast<int>(CacheOutcome::Appended) == HARMONICS_CACHE_OUTCOME_KIND_APPENDED, "CacheOutcome");
static_assert(static_cast<int>(CacheOutcome::Rebuilt) == HARMONICS_CACHE_OUTCOME_KIND_REBUILT, "CacheOutcome");

/// The outcome's name: "Reused", "Created", "Appended", "Rebuilt".
inline std::string to_string(CacheOutcome outcome) {
    switch (outcome) {
        case CacheOutcome::Reused: return "Reused";
        case CacheOutcome::Created: return "Created";
        case CacheOutcome::Appended: return "Appended";
        case CacheOutcome::Rebuilt: return "Rebuilt";
    }
    return "CacheOutcome(" + std::to_string(static_cast<int>(outcome)) + ")";
}

/// Caches the records of `base` in the file `name` (relative names live under
/// `$HARMONICS_CACHE_DIR`, default `.harmonics/cache`). The first run populates the
/// cache; later runs read it without touching `base` when its identity is unchanged (a
/// library producer's file or URL, a subclass's `fingerprint()`); a different or changed
/// source rebuilds it (`outcome_reason()` says why); when `base` grows only the new
/// records are appended (`skip()` past the cached ones); when `token()` returns a
/// different value the cache is discarded and repopulated; a damaged cache is detected
/// and rebuilt.
class DiskCacheProducer : public NativeProducer {
  public:
    using TokenFn = std::function<std::string()>;

    DiskCacheProducer(std::shared_ptr<Producer> base, const std::string& name, TokenFn token = {})
        : base_{std::move(base)} {
        detail::ProducerHandle bridged;
        HarmonicsProducer* source = base_ ? base_->native_handle() : nullptr;
        if (!source) {
            bridged = detail::bridge(base_);
            source = bridged.get();
        }
        const char* c_name = detail::c_string(name, "invalid cache name: the name", HARMONICS_STATUS_INVALID_NAME);
        // Ours until the call (a throw before it frees it), the library's from the call on
        // (it frees it itself when the call fails).
        std::unique_ptr<detail::TokenContext> context;
        HarmonicsTokenCallback cb{};
        HarmonicsTokenCallback* cb_ptr = nullptr;
        if (token) {
            context = std::make_unique<detail::TokenContext>(detail::TokenContext{std::move(token)});
            cb.userdata = context.get();
            cb.token = &detail::token_get;
            cb.free = &detail::token_free;
            cb_ptr = &cb;
        }
        HarmonicsProducer* h = nullptr;
        const HarmonicsStatus status = harmonics_disk_cache_new(source, c_name, cb_ptr, &h);
        (void)context.release();  // the library owns it now
        detail::check(status);
        reset(h);
    }

    /// What the construction (or the last refresh) did.
    CacheOutcome outcome() const {
        HarmonicsCacheOutcome o;
        detail::check(harmonics_disk_cache_outcome(native_handle(), &o));
        return static_cast<CacheOutcome>(o.kind);
    }

    /// Why the construction (or the last refresh) rebuilt the cache; "" unless
    /// `outcome()` is `Rebuilt`.
    std::string outcome_reason() const {
        return detail::read_c_string([this](char* buf, std::size_t cap, std::size_t* len) {
            return harmonics_disk_cache_outcome_reason(native_handle(), buf, cap, len);
        });
    }

    /// Re-checks the token and the base's size now (construction does it once);
    /// reading restarts at the first record.
    CacheOutcome refresh() {
        HarmonicsCacheOutcome o;
        detail::check(harmonics_disk_cache_refresh(native_handle(), &o));
        return static_cast<CacheOutcome>(o.kind);
    }

  private:
    std::shared_ptr<Producer> base_;
};

}  // namespace harmonics
