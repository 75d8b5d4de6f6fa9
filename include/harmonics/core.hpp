// harmonics-dataset C++ wrapper: HTensor and the Producer interface, as the original
// runtime declared them, plus the zero-copy TensorView.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <harmonics/error.hpp>

namespace harmonics {

class Sampler;

/// A tensor: element type, shape and raw little-endian bytes (owned).
class HTensor {
  public:
    /// Element types; the codes 0..4 are the wire format's.
    enum class DType : std::uint8_t { Float32, Float64, Int32, Int64, UInt8 };
    using Shape = std::vector<std::size_t>;

    HTensor() = default;
    HTensor(DType dtype, Shape shape, std::vector<std::byte> data = {})
        : dtype_{dtype}, shape_{std::move(shape)}, data_{std::move(data)} {}

    const Shape& shape() const { return shape_; }
    DType dtype() const { return dtype_; }
    const std::vector<std::byte>& data() const { return data_; }
    std::vector<std::byte>& data() { return data_; }

    /// The number of elements: the product of the shape (1 for a scalar, shape {}).
    std::size_t numel() const {
        std::size_t n = 1;
        for (std::size_t d : shape_) n *= d;
        return n;
    }

    /// The data as `numel()` elements of T, one of float, double, std::int32_t,
    /// std::int64_t, std::uint8_t (Float32 … UInt8). Throws `harmonics::Error`
    /// (`HARMONICS_STATUS_INVALID_ARGUMENT`) when T is not the tensor's dtype, or when
    /// `data()` does not hold exactly `numel() * sizeof(T)` bytes, so indexing below
    /// `numel()` is always in bounds. Valid until `data()` is resized or the tensor goes.
    template <class T>
    const T* data_as() const {
        check_element_type<T>();
        return reinterpret_cast<const T*>(data_.data());
    }
    template <class T>
    T* data_as() {
        check_element_type<T>();
        return reinterpret_cast<T*>(data_.data());
    }

  private:
    template <class T>
    void check_element_type() const;

    DType dtype_{DType::Float32};
    Shape shape_{};
    std::vector<std::byte> data_{};
};

/// The name of a dtype: "Float32", "Float64", "Int32", "Int64", "UInt8".
inline std::string to_string(HTensor::DType dtype) {
    switch (dtype) {
        case HTensor::DType::Float32: return "Float32";
        case HTensor::DType::Float64: return "Float64";
        case HTensor::DType::Int32: return "Int32";
        case HTensor::DType::Int64: return "Int64";
        case HTensor::DType::UInt8: return "UInt8";
    }
    return "DType(" + std::to_string(static_cast<unsigned>(dtype)) + ")";
}

namespace detail {
/// The dtype whose elements are T; no definition for other types (a compile error).
template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> { static constexpr HTensor::DType value = HTensor::DType::Float32; };
template <>
struct DTypeOf<double> { static constexpr HTensor::DType value = HTensor::DType::Float64; };
template <>
struct DTypeOf<std::int32_t> { static constexpr HTensor::DType value = HTensor::DType::Int32; };
template <>
struct DTypeOf<std::int64_t> { static constexpr HTensor::DType value = HTensor::DType::Int64; };
template <>
struct DTypeOf<std::uint8_t> { static constexpr HTensor::DType value = HTensor::DType::UInt8; };
}  // namespace detail

template <class T>
void HTensor::check_element_type() const {
    constexpr HTensor::DType wanted = detail::DTypeOf<T>::value;
    if (dtype_ != wanted)
        throw Error(HARMONICS_STATUS_INVALID_ARGUMENT, "HTensor::data_as: the tensor holds " + to_string(dtype_) +
                                                           " elements, not " + to_string(wanted));
    if (data_.size() / sizeof(T) != numel() || data_.size() % sizeof(T) != 0)
        throw Error(HARMONICS_STATUS_INVALID_ARGUMENT,
                    "HTensor::data_as: the tensor holds " + std::to_string(data_.size()) + " bytes, its shape needs " +
                        std::to_string(numel()) + " x " + std::to_string(sizeof(T)));
}

static_assert(static_cast<std::uint8_t>(HTensor::DType::Float32) == HARMONICS_DTYPE_FLOAT32, "DType");
static_assert(static_cast<std::uint8_t>(HTensor::DType::Float64) == HARMONICS_DTYPE_FLOAT64, "DType");
static_assert(static_cast<std::uint8_t>(HTensor::DType::Int32) == HARMONICS_DTYPE_INT32, "DType");
static_assert(static_cast<std::uint8_t>(HTensor::DType::Int64) == HARMONICS_DTYPE_INT64, "DType");
static_assert(static_cast<std::uint8_t>(HTensor::DType::UInt8) == HARMONICS_DTYPE_UINT8, "DType");

/// A borrowed record from the zero-copy read path: valid until the next call on the
/// producer that returned it, from ANY thread. Do not share views across threads: a
/// thread that needs records from a producer other threads also read must use `next()`
/// (or give each thread its own producer).
///
/// What a view promises when another program rewrites the cache file in place (`cp`
/// over it, `truncate`, a byte written into it): the record was CRC-checked, and the file
/// confirmed to be the one opened, just before the view was returned; nothing more. A
/// `next_view()` borrows the shared mapping of the file, so bytes read from it later may
/// be the new bytes, or zeros where the file was cut (no signal kills the process); the
/// next call on the producer reports the change (and a cache producer rebuilds). A
/// `view(i)` borrows the producer's own buffer, filled by a read of the file, which no
/// other program can write. The copying calls (`next()`, `at()`) promise more: the CRC is
/// checked on the very bytes they return.
struct TensorView {
    HTensor::DType dtype{HTensor::DType::Float32};
    const std::size_t* shape_data{nullptr};
    std::size_t ndims{0};
    const std::byte* data{nullptr};
    std::size_t nbytes{0};

    HTensor::Shape shape() const { return HTensor::Shape(shape_data, shape_data + ndims); }
    /// The data as elements of T (tensor data is 8-byte aligned in cache files).
    template <class T>
    const T* as() const {
        return reinterpret_cast<const T*>(data);
    }
    /// An owned copy.
    HTensor to_tensor() const {
        HTensor t(dtype, shape());
        t.data().assign(data, data + nbytes);
        return t;
    }
};

/// A source of records: `next()` cycles back to the first record after the last.
class Producer {
  public:
    virtual ~Producer() = default;
    virtual HTensor next() = 0;
    virtual std::size_t size() const = 0;

    /// Advances past `n` records, as `n` calls of `next()` would (the default). Override
    /// it when the producer can seek: a DiskCacheProducer appending records N.. to its
    /// cache calls `skip(N)` and then `next()` only for the new records.
    virtual void skip(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) (void)next();
    }

    /// Who this producer's records are, cheaply (no `size()`, no `next()`): a string that
    /// changes whenever the records change (a file's path and modification time, a
    /// dataset version, a content hash). "" (the default) means unknown. A
    /// DiskCacheProducer whose cache recorded the same non-empty fingerprint reuses it
    /// without calling `size()` or `next()`; a different one rebuilds the cache; with
    /// "" the cache follows `size()` (same: reused, more: appended, fewer: rebuilt).
    /// At most 64 KiB (it is stored in the cache header): use a digest for more.
    virtual std::string fingerprint() const { return ""; }

    /// The library's handle when this producer is implemented in Rust (the library's
    /// own producers); null for user subclasses. Lets a DiskCacheProducer read a Rust
    /// producer directly instead of through C++.
    virtual HarmonicsProducer* native_handle() const noexcept { return nullptr; }
};

namespace detail {

inline TensorView to_view(const HarmonicsTensorView& v) {
    TensorView t;
    t.dtype = static_cast<HTensor::DType>(v.dtype);
    t.shape_data = v.shape;
    t.ndims = v.ndims;
    t.data = reinterpret_cast<const std::byte*>(v.data);
    t.nbytes = v.nbytes;
    return t;
}

/// The callback of harmonics_producer_next_copy_to/_at_copy_to: builds the HTensor at
/// `userdata` from the record, with one allocation for the shape and one for the data (no
/// zero-fill), and says where its data is, for the library to check the copy itself.
inline HarmonicsCallbackResult copy_into_tensor(void* userdata, const HarmonicsTensorView* v,
                                                const std::uint8_t** copied) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {  // std::bad_alloc, std::length_error
        const auto* bytes = reinterpret_cast<const std::byte*>(v->data);
        auto* t = static_cast<HTensor*>(userdata);
        *t = HTensor(static_cast<HTensor::DType>(v->dtype), HTensor::Shape(v->shape, v->shape + v->ndims),
                     std::vector<std::byte>(bytes, bytes + v->nbytes));
        *copied = reinterpret_cast<const std::uint8_t*>(t->data().data());
        return HARMONICS_STATUS_OK;
    });
}

/// The callback of harmonics_producer_next_batch: builds the HTensor at `userdata` from
/// the batch (a private copy the library has checked), one allocation for the shape and
/// one for the data.
inline HarmonicsCallbackResult copy_batch_into_tensor(void* userdata, const HarmonicsTensorView* v) noexcept {
    return bridge_exceptions(HARMONICS_STATUS_FOREIGN, [&] {  // std::bad_alloc, std::length_error
        const auto* bytes = reinterpret_cast<const std::byte*>(v->data);
        *static_cast<HTensor*>(userdata) =
            HTensor(static_cast<HTensor::DType>(v->dtype), HTensor::Shape(v->shape, v->shape + v->ndims),
                    std::vector<std::byte>(bytes, bytes + v->nbytes));
        return HARMONICS_STATUS_OK;
    });
}

/// Reads a string through a C call of the form `f(buf, cap, &len)` (copy into `buf`,
/// full length in `len`).
template <class F>
std::string read_c_string(F&& f) {
    std::size_t len = 0;
    check(f(nullptr, 0, &len));
    std::string s(len + 1, '\0');
    check(f(&s[0], s.size(), &len));
    s.resize(len < s.size() ? len : s.size() - 1);
    return s;
}

/// A C view of `t`, borrowing its memory.
inline HarmonicsTensorView c_view_of(const HTensor& t) {
    HarmonicsTensorView v;
    v.dtype = static_cast<HarmonicsDtype>(t.dtype());
    v.ndims = t.shape().size();
    v.shape = t.shape().data();
    v.data = reinterpret_cast<const std::uint8_t*>(t.data().data());
    v.nbytes = t.data().size();
    return v;
}

}  // namespace detail

/// Base of the producers implemented by the library: owns one C handle.
///
/// Threads: `next()`, `at()` and `size()` may be called on one object from several
/// threads at once; each record goes to exactly one caller, whole (the record is copied
/// with the producer locked). `next_view()` and `view()` are NOT for sharing: a view is
/// borrowed until the next call on this producer from any thread, so a view taken while
/// another thread calls the producer may change under the reader.
class NativeProducer : public Producer {
  public:
    /// The next record, copied (safe to call from several threads on one object). The CRC
    /// of a cache record is checked on the very bytes returned; a cache file rewritten in
    /// place by another program is detected (the cache is rebuilt, or harmonics::Error).
    HTensor next() override {
        HTensor t;
        detail::check(harmonics_producer_next_copy_to(handle_.get(), &detail::copy_into_tensor, &t));
        return t;
    }

    std::size_t size() const override {
        std::size_t n = 0;
        detail::check(harmonics_producer_size(handle_.get(), &n));
        return n;
    }

    void skip(std::size_t n) override { detail::check(harmonics_producer_skip(handle_.get(), n)); }

    /// The library's description of the source's identity (e.g. "csv /data/train.csv").
    std::string fingerprint() const override {
        return detail::read_c_string([this](char* buf, std::size_t cap, std::size_t* len) {
            return harmonics_producer_fingerprint(handle_.get(), buf, cap, len);
        });
    }

    /// Zero-copy read: the next record, borrowed until the next call on this producer,
    /// from any thread. Single-threaded use only: do not share views across threads
    /// (see the class comment); `next()` is the call to share.
    TensorView next_view() {
        HarmonicsTensorView v;
        detail::check(harmonics_producer_next_view(handle_.get(), &v));
        return detail::to_view(v);
    }

    HarmonicsProducer* native_handle() const noexcept override { return handle_.get(); }

    /// Random access: record `i` (0-based, no cycling), owned, copied with the producer
    /// locked (safe to call from several threads on one object) and CRC-checked on the
    /// copy returned; a cache file rewritten in place by another program is detected
    /// (the cache is rebuilt, or harmonics::Error). Throws harmonics::Error when `i` is
    /// out of range or the producer has no random access.
    HTensor at(std::size_t i) {
        HTensor t;
        detail::check(harmonics_producer_at_copy_to(handle_.get(), i, &detail::copy_into_tensor, &t));
        return t;
    }

    /// Random access, zero-copy: record `i`, borrowed until the next call on this
    /// producer from any thread (see TensorView for what it promises). Errors as `at`.
    TensorView view(std::size_t i) {
        HarmonicsTensorView v;
        detail::check(harmonics_producer_view_at(handle_.get(), i, &v));
        return detail::to_view(v);
    }

    /// True when `at`/`view` are supported (an O(1) question).
    bool has_random_access() const {
        bool yes = false;
        detail::check(harmonics_producer_has_random_access(handle_.get(), &yes));
        return yes;
    }

    /// The next `n` records stacked into one tensor of shape {n, …record shape} (the
    /// records must share dtype and shape), read with the producer locked for the whole
    /// batch, each record checked as next() checks it; over a SampledProducer the batch's
    /// reads were issued ahead. Throws harmonics::Error (n = 0, records of different
    /// shapes, or what next() throws); the records read before the failing one are
    /// consumed.
    HTensor next_batch(std::size_t n) {
        HTensor t;
        detail::check(harmonics_producer_next_batch(handle_.get(), n, &detail::copy_batch_into_tensor, &t));
        return t;
    }

    /// Tells this random-access producer (a disk cache) that its next at()/view() calls
    /// follow `order` from its current place (the indices order.next() would return): it
    /// reads ahead (offsets looked up in batches, the next records prefetched, and many
    /// disk reads queued at once when the file is not in the page cache). Other indices
    /// are served exactly as before, without read-ahead. A SampledProducer does this for
    /// its source itself. Defined in <harmonics/sampler.hpp>.
    void read_ahead(const Sampler& order);

  protected:
    NativeProducer() = default;
    explicit NativeProducer(HarmonicsProducer* handle) : handle_{handle} {}
    void reset(HarmonicsProducer* handle) { handle_.reset(handle); }

  private:
    detail::ProducerHandle handle_{};
};

}  // namespace harmonics
