#pragma once
// What the CUDA test programs share: skipping cleanly where there is no device.
#include <gtest/gtest.h>

#include "mixtura/cuda/device.hpp"

namespace mixtura_test {
inline bool has_cuda_device() { return mixtura::cuda::device_count() > 0; }
}  // namespace mixtura_test

/// First statement of a test that needs a GPU.
#define SKIP_WITHOUT_DEVICE() \
  if (!::mixtura_test::has_cuda_device()) GTEST_SKIP() << "no CUDA device"
