#pragma once
/// The CUDA backend tag. Algorithms overload their data passes on it (kmeans/cuda_pass.hpp, ...); the
/// fit loops are the same templates as on the CPU. No CUDA header is included from here: the device
/// state lives in cuda::Context, defined in the compiled library mixtura::cuda.

#include <cstddef>
#include <memory>

namespace mixtura {
namespace cuda {
/// Device state of one backend (stream, staging buffers, resident data, workspaces); opaque here.
class Context;
}  // namespace cuda

/// Data passes on an NVIDIA GPU. Copies share one cuda::Context; passes on one context run one at a
/// time (a fit holds it from start to end). Make it with make_cuda_backend().
struct CudaBackend {
  int device = 0;                       ///< CUDA device index
  int n_threads = 0;                    ///< host threads for host-side work (checks, draws); 0 = OpenMP's default
  std::size_t max_device_bytes = 0;     ///< cap on the data kept on the device; 0 = what is free. Data above it is streamed
  std::shared_ptr<cuda::Context> ctx;   ///< created by make_cuda_backend
};

/// A backend on device `device`. Throws mixtura::CudaError when there is no CUDA device or driver,
/// mixtura::InvalidArgument for a device index out of range or a negative n_threads.
CudaBackend make_cuda_backend(int device = 0, int n_threads = 0, std::size_t max_device_bytes = 0);

/// Holds the backend's context for a fit: the data it uploads stays resident on the device until the
/// scope ends (without a scope each pass uploads and frees), and other fits on the same context wait.
class CudaDataScope {
 public:
  explicit CudaDataScope(const CudaBackend& be);
  ~CudaDataScope();
  CudaDataScope(const CudaDataScope&) = delete;
  CudaDataScope& operator=(const CudaDataScope&) = delete;

 private:
  std::shared_ptr<cuda::Context> ctx_;
};

/// The scope a fit loop opens on its backend (see backend/cpu.hpp for the CPU's, which holds nothing).
inline CudaDataScope data_scope(const CudaBackend& be) { return CudaDataScope(be); }

}  // namespace mixtura
