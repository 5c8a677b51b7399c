#pragma once
/// Host-side view of the CUDA backend (mixtura::cuda). No CUDA header is included from here.

#include <cstdint>
#include <string>

namespace mixtura {
namespace cuda {

/// Number of CUDA devices usable by this process; 0 when there is no device or no driver.
/// Never throws: "no GPU" is an answer, not an error.
int device_count() noexcept;

/// "NAME (sm_XY, N GiB)" of device `index`; throws mixtura::InvalidArgument for a bad index and
/// mixtura::CudaError when the runtime fails.
std::string device_description(int index);

/// Waits until the work queued on a CUDA stream is done. `stream`: a cudaStream_t handle as an
/// integer, or 1 / 2 for the legacy / per-thread default stream (the __cuda_array_interface__ v3
/// convention; 0 is refused with InvalidArgument, as that convention reserves it). Throws CudaError
/// when the runtime fails.
void synchronize_stream(std::uintptr_t stream);

}  // namespace cuda
}  // namespace mixtura
