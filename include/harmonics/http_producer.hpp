// harmonics-dataset C++ wrapper: HttpProducer and AsyncHttpProducer.
#pragma once

#include <cstdint>
#include <string>

#include <harmonics/core.hpp>

namespace harmonics {

namespace detail {
/// The library's defaults (`harmonics_http_options_default`, from the Rust
/// `HttpOptions::default()`): the one place they are written.
inline const HarmonicsHttpOptions& c_http_defaults() noexcept {
    static const HarmonicsHttpOptions d = harmonics_http_options_default();
    return d;
}
}  // namespace detail

/// Options of the HTTP producers (the constructors' parameters, plus timeouts,
/// retries and revalidation). The defaults are the library's.
struct HttpOptions {
    /// Keep the dataset in a persistent cache file (needs `cache_path`).
    bool cache = detail::c_http_defaults().cache;
    /// Cache file: relative names resolve under $HARMONICS_CACHE_DIR; "" for none.
    std::string cache_path;
    /// Every record must share the first record's dtype and shape.
    bool validate = detail::c_http_defaults().validate;
    /// Revalidate an existing cache (conditional GET) instead of trusting it.
    bool revalidate = detail::c_http_defaults().revalidate;
    unsigned connect_timeout_ms = detail::c_http_defaults().connect_timeout_ms;
    unsigned read_timeout_ms = detail::c_http_defaults().read_timeout_ms;
    unsigned retries = detail::c_http_defaults().retries;
    /// PEM file of extra root certificates trusted for https:// (a private CA); "" for none.
    std::string ca_cert_path;
    /// The most body bytes a download may take; beyond it the download fails naming
    /// the URL and the limit, and leaves no cache file. 0 for no limit (the default).
    std::uint64_t max_bytes = detail::c_http_defaults().max_bytes;
    /// Connections a large object is downloaded over at once (ranged GETs pinned to
    /// its ETag; used only when the server serves ranges with a strong ETag):
    /// 0 automatic (one connection, split into 4 only when it is measured to be the
    /// limit and a second one to help), 1 always a single connection, K >= 2 K from
    /// the start.
    unsigned connections = detail::c_http_defaults().connections;
    /// Objects of at least this many bytes may use several connections; 0 means the
    /// default, 64 MiB.
    std::uint64_t parallel_min_bytes = 0;
};

/// What opening an HTTP producer did.
enum class HttpOutcome {
    /// A valid cache file made from this URL was used; no request was made.
    Reused,
    /// There was no cache file (or no persistent cache): the body was downloaded.
    Downloaded,
    /// Revalidation was answered 304 Not Modified: the cache file was kept.
    Revalidated,
    /// A cache file existed but was downloaded again: see `outcome_reason()`.
    Rebuilt,
};
static_assert(static_cast<int>(HttpOutcome::Reused) == HARMONICS_HTTP_OUTCOME_REUSED, "HttpOutcome");
static_assert(static_cast<int>(HttpOutcome::Downloaded) == HARMONICS_HTTP_OUTCOME_DOWNLOADED, "HttpOutcome");
static_assert(static_cast<int>(HttpOutcome::Revalidated) == HARMONICS_HTTP_OUTCOME_REVALIDATED, "HttpOutcome");
static_assert(static_cast<int>(HttpOutcome::Rebuilt) == HARMONICS_HTTP_OUTCOME_REBUILT, "HttpOutcome");

/// The outcome's name: "Reused", "Downloaded", "Revalidated", "Rebuilt".
inline std::string to_string(HttpOutcome outcome) {
    switch (outcome) {
        case HttpOutcome::Reused: return "Reused";
        case HttpOutcome::Downloaded: return "Downloaded";
        case HttpOutcome::Revalidated: return "Revalidated";
        case HttpOutcome::Rebuilt: return "Rebuilt";
    }
    return "HttpOutcome(" + std::to_string(static_cast<int>(outcome)) + ")";
}

namespace detail {

inline HttpOutcome http_outcome(const HarmonicsProducer* h) {
    HarmonicsHttpOutcome o;
    check(harmonics_http_outcome(h, &o));
    return static_cast<HttpOutcome>(o);
}

inline std::string http_outcome_reason(const HarmonicsProducer* h) {
    return read_c_string([h](char* buf, std::size_t cap, std::size_t* len) {
        return harmonics_http_outcome_reason(h, buf, cap, len);
    });
}

inline std::uint16_t http_port(int port) {
    if (port < 0 || port > 65535)
        throw Error(HARMONICS_STATUS_INVALID_ARGUMENT,
                    "invalid argument: port " + std::to_string(port) + " is outside 0..65535");
    return static_cast<std::uint16_t>(port);
}

/// The C options for `o`; `o.cache_path` must outlive the result.
inline HarmonicsHttpOptions c_http_options(const HttpOptions& o) {
    HarmonicsHttpOptions c = harmonics_http_options_default();
    c.cache = o.cache;
    c.cache_path = c_string(o.cache_path, "invalid cache name: the cache path", HARMONICS_STATUS_INVALID_NAME);
    c.validate = o.validate;
    c.revalidate = o.revalidate;
    c.connect_timeout_ms = o.connect_timeout_ms;
    c.read_timeout_ms = o.read_timeout_ms;
    c.retries = o.retries;
    c.ca_cert_path = c_string(o.ca_cert_path, "CA certificate path", HARMONICS_STATUS_INVALID_ARGUMENT);
    c.max_bytes = o.max_bytes;
    c.connections = o.connections;
    c.parallel_min_bytes = o.parallel_min_bytes;
    return c;
}

inline HttpOptions http_options(bool cache, const std::string& cache_path, bool validate) {
    HttpOptions o;
    o.cache = cache;
    o.cache_path = cache_path;
    o.validate = validate;
    return o;
}

template <bool Async>
HarmonicsProducer* open_http(const std::string& host, int port, const std::string& path, const HttpOptions& o) {
    HarmonicsHttpOptions c = c_http_options(o);
    const char* h = c_string(host, "host", HARMONICS_STATUS_INVALID_ARGUMENT);
    const char* p = c_string(path, "path", HARMONICS_STATUS_INVALID_ARGUMENT);
    HarmonicsProducer* out = nullptr;
    check(Async ? harmonics_async_http_producer_new(h, http_port(port), p, &c, &out)
                : harmonics_http_producer_new(h, http_port(port), p, &c, &out));
    return out;
}

template <bool Async>
HarmonicsProducer* open_http_url(const std::string& url, const HttpOptions& o) {
    HarmonicsHttpOptions c = c_http_options(o);
    const char* u = c_string(url, "URL", HARMONICS_STATUS_INVALID_ARGUMENT);
    HarmonicsProducer* out = nullptr;
    check(Async ? harmonics_async_http_producer_from_url(u, &c, &out)
                : harmonics_http_producer_from_url(u, &c, &out));
    return out;
}

/// What HttpProducer and AsyncHttpProducer share (`Async`: the download runs in the
/// background): the constructors, from_url, and what the construction did.
template <class Derived, bool Async>
class HttpProducerBase : public NativeProducer {
  public:
    HttpProducerBase(const std::string& host, int port, const std::string& path = "/", bool cache = true,
                     const std::string& cache_path = "", bool validate = false)
        : NativeProducer(open_http<Async>(host, port, path, http_options(cache, cache_path, validate))) {}

    HttpProducerBase(const std::string& host, int port, const std::string& path, const HttpOptions& opts)
        : NativeProducer(open_http<Async>(host, port, path, opts)) {}

    /// Any http:// or https:// URL (hostnames, IPv4, [IPv6]), or s3://bucket/key (AWS
    /// Signature V4 with the standard AWS_* settings; see docs/guides/http-and-s3.md).
    static Derived from_url(const std::string& url, const HttpOptions& opts = {}) {
        return Derived(open_http_url<Async>(url, opts));
    }

    /// What the construction did: reused the cache file, downloaded, revalidated (304),
    /// or rebuilt it (made from another URL or producer, damaged, newer on the server).
    HttpOutcome outcome() const { return http_outcome(native_handle()); }

    /// Why an existing cache file was downloaded again; "" unless `outcome()` is Rebuilt.
    std::string outcome_reason() const { return http_outcome_reason(native_handle()); }

  protected:
    explicit HttpProducerBase(HarmonicsProducer* h) : NativeProducer(h) {}
};

}  // namespace detail

/// Downloads a dataset (concatenated records, or a published cache file) from
/// `http://host:port/path` once; with `cache` and a `cache_path`, later runs read the
/// cache file without any request. `next()` cycles after the last record.
///
///     HttpProducer(host, port, path = "/", cache = true, cache_path = "", validate = false)
///     HttpProducer(host, port, path, const HttpOptions&)
///     HttpProducer::from_url(url, const HttpOptions& = {})
///     outcome(), outcome_reason()
class HttpProducer : public detail::HttpProducerBase<HttpProducer, false> {
  public:
    using HttpProducerBase::HttpProducerBase;
};

/// Same parameters and results as HttpProducer; the download runs in the background
/// and `next()` returns each record as soon as it has arrived. A failure in the
/// background is thrown by the next call. While the background download runs,
/// `outcome()` is Downloaded (or Rebuilt) until it is known.
class AsyncHttpProducer : public detail::HttpProducerBase<AsyncHttpProducer, true> {
  public:
    using HttpProducerBase::HttpProducerBase;
};

}  // namespace harmonics
