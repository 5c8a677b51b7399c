#pragma once
// Every CUDA runtime call goes through MIXTURA_CUDA_CHECK: a failure becomes mixtura::CudaError
// naming the call, the file/line and the CUDA error string.
#include <cuda_runtime.h>

#include <string>

#include "mixtura/cuda/errors.hpp"

namespace mixtura {
namespace cuda {
namespace detail {

inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error (a failed allocation), so later launch checks stay true
    throw CudaError(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                    cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

}  // namespace detail
}  // namespace cuda
}  // namespace mixtura

#define MIXTURA_CUDA_CHECK(call) ::mixtura::cuda::detail::check((call), #call, __FILE__, __LINE__)
