// The labels a K-means fit keeps on the device between passes (resident_labels.hpp), back to the host.
#include "context.cuh"
#include "mixtura/cuda/kmeans_pass.hpp"

namespace mixtura {
namespace cuda {

void kmeans_labels_to_host(const CudaBackend& be, std::int32_t* labels, std::int64_t rows) {
  PassGuard guard(be, "kmeans_labels_to_host (CUDA)");
  Context& ctx = guard.ctx();
  DeviceBuffer<std::int32_t>* held = ctx.held_labels().find(labels, rows, ctx.scopes());
  if (!held) return;  // the host array is the labels already
  copy_to_host(labels, held->data(), rows, ctx.stream());
  ctx.synchronize();
  ctx.held_labels().release(labels);
}

}  // namespace cuda
}  // namespace mixtura
