// harmonics-dataset C++ wrapper: ownership of the C handles. One template gives every
// handle type its deleter, so each C++ class owns its handle through a
// `std::unique_ptr` (moves cheap, copies explicit), as wasmtime.hh's helpers.hh does.
#pragma once

#include <memory>

#include <harmonics_dataset.h>

namespace harmonics {
namespace detail {

/// Calls `Free` on a handle (each `*_free` accepts null).
template <class T, void (*Free)(T*)>
struct HandleDeleter {
    void operator()(T* p) const noexcept { Free(p); }
};

/// A C handle owned by one C++ object: freed with `Free` when the owner goes.
template <class T, void (*Free)(T*)>
using Handle = std::unique_ptr<T, HandleDeleter<T, Free>>;

using ProducerHandle = Handle<HarmonicsProducer, &harmonics_producer_free>;
using TensorHandle = Handle<HarmonicsTensor, &harmonics_tensor_free>;
using SamplerHandle = Handle<HarmonicsSampler, &harmonics_sampler_free>;

}  // namespace detail
}  // namespace harmonics
