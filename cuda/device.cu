// Device discovery for the CUDA backend.
#include <cstdio>

#include "check.cuh"
#include "mixtura/core/errors.hpp"
#include "mixtura/cuda/device.hpp"

namespace mixtura {
namespace cuda {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

std::string device_description(int index) {
  const int n = device_count();
  MIXTURA_EXPECTS(index >= 0 && index < n, "cuda::device_description: index %d out of range [0, %d)", index, n);
  cudaDeviceProp prop{};
  MIXTURA_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.0f GiB)", prop.name, prop.major, prop.minor,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

void synchronize_stream(std::uintptr_t stream) {
  MIXTURA_EXPECTS(stream != 0, "cuda::synchronize_stream: stream 0 is ambiguous (use 1 for the legacy default "
                               "stream, 2 for the per-thread default stream)");
  const cudaStream_t s = stream == 1   ? cudaStreamLegacy
                         : stream == 2 ? cudaStreamPerThread
                                       : reinterpret_cast<cudaStream_t>(stream);
  MIXTURA_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace cuda
}  // namespace mixtura
