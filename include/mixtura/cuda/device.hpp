#pragma once
/// Host-side view of the CUDA backend (mixtura::cuda). No CUDA header is included from here.

#include <string>

namespace mixtura {
namespace cuda {

/// Number of CUDA devices usable by this process; 0 when there is no device or no driver.
/// Never throws: "no GPU" is an answer, not an error.
int device_count() noexcept;

/// "NAME (sm_XY, N GiB)" of device `index`; throws mixtura::InvalidArgument for a bad index and
/// mixtura::CudaError when the runtime fails.
std::string device_description(int index);

}  // namespace cuda
}  // namespace mixtura
