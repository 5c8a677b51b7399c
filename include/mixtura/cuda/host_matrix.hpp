#pragma once
/// Caller memory as the CUDA backend's compiled code sees it: plain pointers and sizes. No Eigen and
/// no CUDA header here, so that the .cu files need neither Eigen nor mixtura's CPU headers.

#include <cstdint>

namespace mixtura {
namespace cuda {

/// A read-only view of `rows` rows of `cols` values in host memory, or in device memory when
/// `on_device` (a DeviceMatrixView: used by the passes in place, never staged through the host); row
/// i starts at data + i * stride (stride >= cols, in elements). The caller keeps the memory alive and
/// unchanged while it is used. row() is for host memory only.
template <class T>
struct HostMatrix {
  const T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;
  bool on_device = false;  ///< data is device memory of the backend's device

  const T* row(std::int64_t i) const { return data + i * stride; }
};

/// Sample weights as the compiled passes see them: one value per row of the data they go with, in host
/// memory or, when `on_device`, in device memory (a DeviceVectorView: read in place, never staged
/// through the host). data == nullptr: unit weights.
template <class T>
struct RowWeights {
  const T* data = nullptr;
  bool on_device = false;  ///< data is device memory of the backend's device

  RowWeights() = default;
  RowWeights(const T* d, bool device = false) : data(d), on_device(device) {}  // NOLINT: host weights
};

}  // namespace cuda
}  // namespace mixtura
