// The CUDA backend's device query: answers (0 here) without throwing; skips where no GPU exists.
#include <gtest/gtest.h>

#include "mixtura/core/errors.hpp"
#include "mixtura/cuda/device.hpp"

TEST(CudaDevice, CountNeverThrows) { EXPECT_GE(mixtura::cuda::device_count(), 0); }

TEST(CudaDevice, DescribesEachDevice) {
  const int n = mixtura::cuda::device_count();
  if (n == 0) GTEST_SKIP() << "no CUDA device on this machine";
  for (int i = 0; i < n; ++i) EXPECT_NE(mixtura::cuda::device_description(i).find("sm_"), std::string::npos);
}

TEST(CudaDevice, BadIndexIsAnInvalidArgument) {
  EXPECT_THROW(mixtura::cuda::device_description(-1), mixtura::InvalidArgument);
  EXPECT_THROW(mixtura::cuda::device_description(mixtura::cuda::device_count()), mixtura::InvalidArgument);
}
