#pragma once
// What the CUDA test programs share: skipping cleanly where there is no device, and device copies
// of host matrices.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>

#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/cuda/device.hpp"

namespace mixtura_test {
inline bool has_cuda_device() { return mixtura::cuda::device_count() > 0; }

/// A copy of host values in device memory, rows `pitch` values apart (freed with the object).
template <class T>
class DeviceCopy {
 public:
  DeviceCopy(const mixtura::RowMatrix<T>& x, mixtura::Index pitch)
      : rows_(x.rows()), cols_(x.cols()), pitch_(pitch) {
    const std::size_t bytes = static_cast<std::size_t>(rows_ * pitch_) * sizeof(T);
    if (cudaMalloc(reinterpret_cast<void**>(&p_), bytes) != cudaSuccess) throw std::runtime_error("cudaMalloc");
    if (cudaMemset(p_, 0xff, bytes) != cudaSuccess ||  // the padding NaN: a pass that read it would show
        cudaMemcpy2D(p_, static_cast<std::size_t>(pitch_) * sizeof(T), x.data(),
                     static_cast<std::size_t>(cols_) * sizeof(T), static_cast<std::size_t>(cols_) * sizeof(T),
                     static_cast<std::size_t>(rows_), cudaMemcpyHostToDevice) != cudaSuccess)
      throw std::runtime_error("cudaMemcpy2D");
  }
  ~DeviceCopy() { cudaFree(p_); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  mixtura::DeviceMatrixView<T> view() const { return {p_, rows_, cols_, pitch_}; }
  /// Sets value (i, j) on the device.
  void set(mixtura::Index i, mixtura::Index j, T v) {
    if (cudaMemcpy(p_ + i * pitch_ + j, &v, sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess)
      throw std::runtime_error("cudaMemcpy");
  }

 private:
  T* p_ = nullptr;
  mixtura::Index rows_, cols_, pitch_;
};

}  // namespace mixtura_test

/// First statement of a test that needs a GPU.
#define SKIP_WITHOUT_DEVICE() \
  if (!::mixtura_test::has_cuda_device()) GTEST_SKIP() << "no CUDA device"
