// The CUDA backend's context: device choice, residency of the data, double-buffered streaming.
#include <cstdio>
#include <string>

#include "context.cuh"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"

namespace mixtura {
namespace cuda {

Context::Context(int device, std::size_t max_device_bytes) : device_(device), max_device_bytes_(max_device_bytes) {
  MIXTURA_CUDA_CHECK(cudaGetDeviceProperties(&prop_, device));
}

Context::~Context() {
  int previous = -1;
  cudaGetDevice(&previous);
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_.get());
  cudaStreamSynchronize(copy_stream_.get());
  resident_.clear();
  held_labels_ = HeldLabels<DeviceBuffer<std::int32_t>>();
  held_distances_ = HeldDistances<DeviceBuffer<double>>();
  for (Slot& s : slots_) {
    s.host.release();
    s.dev.release();
    s.copied.reset();
    s.consumed.reset();
  }
  extensions_.clear();
  if (previous >= 0) cudaSetDevice(previous);
}

std::size_t Context::budget() const {
  if (max_device_bytes_ > 0) return max_device_bytes_;
  std::size_t free_bytes = 0, total_bytes = 0;
  MIXTURA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return residency_budget(0, free_bytes, total_bytes);
}

const unsigned char* Context::find(const HostKey& key) const {
  for (const Resident& r : resident_)
    if (r.key == key) return r.data();
  return nullptr;
}

void Context::upload(const HostKey& k) {
  Resident r;
  r.key = k;
  r.buf.reserve(k.bytes());
  const std::size_t row = static_cast<std::size_t>(k.cols) * k.elem;
  MIXTURA_CUDA_CHECK(cudaMemcpy2DAsync(r.buf.data(), row, k.data, static_cast<std::size_t>(k.stride) * k.elem, row,
                                       static_cast<std::size_t>(k.rows),
                                       k.device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice, stream_.get()));
  resident_.push_back(std::move(r));
}

void Context::expect_device_data(const void* p, const char* what) const {
  cudaPointerAttributes a{};
  MIXTURA_CUDA_CHECK(cudaPointerGetAttributes(&a, p));
  MIXTURA_EXPECTS((a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) && a.device == device_,
                  "%s (%p) is not device memory of CUDA device %d (memory type %d, device %d)", what, p, device_,
                  static_cast<int>(a.type), a.device);
}

void Context::use_device_data(const HostKey& k, const char* what) {
  if (find(k)) return;
  expect_device_data(k.data, what);
  if (k.stride != k.cols) {  // the kernels read dense rows: one copy on the device, kept for the fit
    upload(k);
    return;
  }
  Resident r;
  r.key = k;
  r.borrowed = static_cast<const unsigned char*>(k.data);
  resident_.push_back(std::move(r));
}

bool Context::make_resident(const HostKey* keys, int n) {
  auto is_key = [&](const HostKey& k) {
    for (int i = 0; i < n; ++i)
      if (keys[i] == k) return true;
    return false;
  };
  std::size_t missing = 0;
  for (int i = 0; i < n; ++i)
    if (!find(keys[i])) missing += keys[i].bytes();
  if (missing == 0) return true;
  auto fits = [&] {
    if (max_device_bytes_ == 0) return missing <= budget();  // what is resident is no longer free
    std::size_t used = 0;
    for (const Resident& r : resident_) used += r.buf.size();
    return used + missing <= max_device_bytes_;
  };
  if (!fits()) {  // make room: other data of this scope goes first (not the caller's device data)
    std::vector<Resident> kept;
    for (Resident& r : resident_)
      if (is_key(r.key) || r.key.device) kept.push_back(std::move(r));
    resident_ = std::move(kept);
    if (!fits()) return false;
  }
  for (int i = 0; i < n; ++i)
    if (!find(keys[i])) upload(keys[i]);
  return true;
}

void Context::stage(Slot& s, const void* x, const void* w, std::int64_t first, std::int64_t rows, std::int64_t cols,
                    std::int64_t stride, std::size_t elem, std::size_t slot_bytes) {
  if (!s.copied) {
    s.copied = std::make_unique<Event>();
    s.consumed = std::make_unique<Event>();
  }
  const std::size_t need = slot_bytes + 256;  // + the alignment of the weights
  if (s.host.size() < need || s.dev.size() < need) {
    MIXTURA_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));  // nothing may still read the old buffers
    MIXTURA_CUDA_CHECK(cudaStreamSynchronize(copy_stream_.get()));
    s.host.reserve(need);
    s.dev.reserve(need);
  }
  // The copy that last read this pinned half must be done before the host overwrites it.
  if (s.used) MIXTURA_CUDA_CHECK(cudaEventSynchronize(s.copied->get()));
  const std::size_t row = static_cast<std::size_t>(cols) * elem;
  const unsigned char* src = static_cast<const unsigned char*>(x) + static_cast<std::size_t>(first * stride) * elem;
  unsigned char* dst = s.host.data();
  if (stride == cols) {
    std::memcpy(dst, src, static_cast<std::size_t>(rows) * row);
  } else {
    for (std::int64_t i = 0; i < rows; ++i)
      std::memcpy(dst + static_cast<std::size_t>(i) * row, src + static_cast<std::size_t>(i * stride) * elem, row);
  }
  std::size_t bytes = static_cast<std::size_t>(rows) * row;
  if (w) {
    const std::size_t off = weight_offset(bytes);
    std::memcpy(dst + off, static_cast<const unsigned char*>(w) + static_cast<std::size_t>(first) * elem,
                static_cast<std::size_t>(rows) * elem);
    bytes = off + static_cast<std::size_t>(rows) * elem;
  }
  // The kernels that last read this device half (chunk k - 2) must be done before the copy lands.
  if (s.used) MIXTURA_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_.get(), s.consumed->get(), 0));
  MIXTURA_CUDA_CHECK(cudaMemcpyAsync(s.dev.data(), s.host.data(), bytes, cudaMemcpyHostToDevice, copy_stream_.get()));
  MIXTURA_CUDA_CHECK(cudaEventRecord(s.copied->get(), copy_stream_.get()));
  MIXTURA_CUDA_CHECK(cudaStreamWaitEvent(stream_.get(), s.copied->get(), 0));
}

namespace {
__global__ void accumulate_kernel(const double* __restrict__ partials, std::int64_t n_parts, std::int64_t width,
                                  double* __restrict__ totals) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= width) return;
  double acc = totals[c];
  for (std::int64_t s = 0; s < n_parts; ++s) acc += partials[s * width + c];
  totals[c] = acc;
}
}  // namespace

void accumulate_partials(const double* partials, std::int64_t n_parts, std::int64_t width, double* totals,
                         cudaStream_t stream) {
  if (n_parts <= 0 || width <= 0) return;
  accumulate_kernel<<<grid_for(width, 128), 128, 0, stream>>>(partials, n_parts, width, totals);
  MIXTURA_CUDA_CHECK_LAUNCH("accumulate_kernel");
}

namespace {
__global__ void group_sums_kernel(const double* __restrict__ part, std::int64_t width, ChunkGroups cg,
                                  const double* __restrict__ carry, double* __restrict__ sums) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= width) return;
  for (std::int64_t i = blockIdx.y; i < cg.n_groups; i += gridDim.y) {
    std::int64_t begin = 0, end = 0;
    cg.blocks_of(i, &begin, &end);
    sums[i * width + c] = group_column_sum(part, width, c, begin, end, cg.from_carry(i) ? carry[c] : 0.0);
  }
}

__global__ void fold_groups_kernel(const double* __restrict__ sums, std::int64_t n_groups, bool last_complete,
                                   std::int64_t width, double* __restrict__ totals, double* __restrict__ carry) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < width) fold_group_column(sums, n_groups, last_complete, width, c, totals, carry);
}
}  // namespace

void accumulate_groups(const double* chunk_partials, std::int64_t width, const ChunkGroups& cg, double* carry,
                       double* group_sums, double* totals, cudaStream_t stream) {
  if (cg.n_groups <= 0 || width <= 0) return;
  const dim3 grid(grid_for(width, 128), static_cast<unsigned>(std::min<std::int64_t>(cg.n_groups, 65535)));
  group_sums_kernel<<<grid, 128, 0, stream>>>(chunk_partials, width, cg, carry, group_sums);
  MIXTURA_CUDA_CHECK_LAUNCH("group_sums_kernel");
  fold_groups_kernel<<<grid_for(width, 128), 128, 0, stream>>>(group_sums, cg.n_groups, cg.last_complete, width,
                                                               totals, carry);
  MIXTURA_CUDA_CHECK_LAUNCH("fold_groups_kernel");
}

PassGuard::PassGuard(const CudaBackend& be, const char* where)
    : ctx_(be.ctx ? be.ctx.get()
                  : throw InvalidArgument(mixtura::detail::format(
                        "%s: the CudaBackend has no context; make it with make_cuda_backend()", where))),
      lock_(ctx_->mutex()),
      device_(ctx_->device()) {
  MIXTURA_EXPECTS(be.device == ctx_->device(), "%s: CudaBackend::device (%d) differs from its context's device (%d)",
                  where, be.device, ctx_->device());
  ctx_->set_max_device_bytes(be.max_device_bytes);
  ctx_->enter_scope();
}

PassGuard::~PassGuard() { ctx_->leave_scope(); }

}  // namespace cuda

CudaBackend make_cuda_backend(int device, int n_threads, std::size_t max_device_bytes) {
  MIXTURA_EXPECTS(n_threads >= 0 && n_threads <= kMaxThreads, "make_cuda_backend: n_threads must be in [0, %d], got %d",
                  kMaxThreads, n_threads);
  MIXTURA_EXPECTS(device >= 0, "make_cuda_backend: device index must be >= 0, got %d", device);
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess || n == 0) {
    cudaGetLastError();
    throw CudaError(std::string("make_cuda_backend: no CUDA device is available (") +
                    (status != cudaSuccess ? std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status)
                                           : std::string("the driver reports 0 devices")) +
                    ")");
  }
  MIXTURA_EXPECTS(device < n, "make_cuda_backend: device %d out of range [0, %d)", device, n);
  cuda::DeviceGuard guard(device);
  CudaBackend be;
  be.device = device;
  be.n_threads = n_threads;
  be.max_device_bytes = max_device_bytes;
  be.ctx = std::make_shared<cuda::Context>(device, max_device_bytes);
  return be;
}

CudaDataScope::CudaDataScope(const CudaBackend& be) : ctx_(be.ctx) {
  MIXTURA_EXPECTS(ctx_ != nullptr, "CudaDataScope: the CudaBackend has no context; make it with make_cuda_backend()");
  ctx_->mutex().lock();
  ctx_->set_max_device_bytes(be.max_device_bytes);
  ctx_->enter_scope();
}

CudaDataScope::~CudaDataScope() {
  int previous = -1;
  cudaGetDevice(&previous);
  cudaSetDevice(ctx_->device());  // the resident copies are freed on their device
  ctx_->leave_scope();
  if (previous >= 0) cudaSetDevice(previous);
  ctx_->mutex().unlock();
}

}  // namespace mixtura
