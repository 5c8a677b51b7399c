// Data the caller keeps in device memory: the non-finite check and the weights' checks as device
// passes, and given rows back to the host (mixtura/cuda/device_data.hpp).
#include <cstdint>
#include <limits>

#include "context.cuh"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/row_hash.hpp"
#include "mixtura/cuda/device_data.hpp"

namespace mixtura {
namespace cuda {
namespace {

// *first = the lowest row-major index i * cols + j of an x_ij that is not finite or lies beyond
// kDataValueLimit (core/validate.hpp's usable_value). Integer atomicMin: the result does not depend
// on the order the threads get there.
template <class T>
__global__ void first_non_finite_kernel(const T* __restrict__ x, std::int64_t rows, std::int64_t cols,
                                        std::int64_t stride, unsigned long long* first) {
  const std::int64_t n = rows * cols;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i = e / cols, j = e - i * cols;
    if (!(fabs(static_cast<double>(x[i * stride + j])) <= kDataValueLimit))
      atomicMin(first, static_cast<unsigned long long>(e));
  }
}

// One block per segment of the weights (kSegmentRows values, kReduceThreads threads): *first = the
// lowest index of a weight that is not finite or is negative (integer atomicMin), partials[segment] =
// the sum of the segment's other weights (thread t: entries t, t + 256, ... in order; then the tree),
// so that the total has the same bits every run.
template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    weight_check_kernel(const T* __restrict__ w, std::int64_t n, unsigned long long* first, double* partials) {
  __shared__ double red[kReduceThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * kSegmentRows;
  const std::int64_t r1 = n - r0 < kSegmentRows ? n : r0 + kSegmentRows;
  double s = 0.0;
  for (std::int64_t r = r0 + tid; r < r1; r += kReduceThreads) {
    const T v = w[r];
    if (!isfinite(v) || !(v >= T(0)))
      atomicMin(first, static_cast<unsigned long long>(r));
    else
      s += static_cast<double>(v);
  }
  red[tid] = s;
  __syncthreads();
  for (int step = kReduceThreads / 2; step > 0; step >>= 1) {
    if (tid < step) red[tid] += red[tid + step];
    __syncthreads();
  }
  if (tid == 0) partials[blockIdx.x] = red[0];
}

// out[2i], out[2i + 1] = row i's coarse and exact hashes (dense_row_hash), one thread a row.
template <class T>
__global__ void row_hash_kernel(const T* __restrict__ x, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                std::uint64_t* __restrict__ out) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows) return;
  const ::mixtura::detail::RowHash h = ::mixtura::detail::dense_row_hash(x + i * stride, cols);
  out[2 * i] = h.coarse;
  out[2 * i + 1] = h.exact;
}

template <class T>
HostMatrix<T> expect_on_device(HostMatrix<T> X, const char* where) {
  MIXTURA_EXPECTS(X.on_device, "%s: X is not marked as device memory", where);
  return X;
}

}  // namespace

template <class T>
void find_non_finite(const CudaBackend& be, HostMatrix<T> X, std::int64_t* row, std::int64_t* col, double* value) {
  const char* where = "find_non_finite (CUDA)";
  PassGuard guard(be, where);
  Context& ctx = guard.ctx();
  ctx.expect_device_data(expect_on_device(X, where).data);
  *row = -1;
  *col = -1;
  *value = 0.0;
  if (X.rows <= 0 || X.cols <= 0) return;
  const cudaStream_t st = ctx.stream();
  DeviceBuffer<unsigned long long> first(1);
  const unsigned long long none = std::numeric_limits<unsigned long long>::max();
  copy_to_device(first.data(), &none, 1, st);
  const std::int64_t n = X.rows * X.cols;
  const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>((n + 255) / 256, 8 * 1024));
  first_non_finite_kernel<T><<<blocks, 256, 0, st>>>(X.data, X.rows, X.cols, X.stride, first.data());
  MIXTURA_CUDA_CHECK_LAUNCH("first_non_finite_kernel");
  unsigned long long found = none;
  copy_to_host(&found, first.data(), 1, st);
  ctx.synchronize();
  if (found == none) return;
  const std::int64_t i = static_cast<std::int64_t>(found) / X.cols, j = static_cast<std::int64_t>(found) % X.cols;
  T v{};
  MIXTURA_CUDA_CHECK(cudaMemcpyAsync(&v, X.data + i * X.stride + j, sizeof(T), cudaMemcpyDeviceToHost, st));
  ctx.synchronize();
  *row = i;
  *col = j;
  *value = static_cast<double>(v);
}

template <class T>
void find_bad_weight(const CudaBackend& be, const T* w, std::int64_t n, std::int64_t* index, double* value,
                     double* total) {
  const char* where = "find_bad_weight (CUDA)";
  PassGuard guard(be, where);
  Context& ctx = guard.ctx();
  *index = -1;
  *value = 0.0;
  *total = 0.0;
  if (n <= 0) return;
  ctx.expect_device_data(w, "DeviceVectorView: sample_weight");
  const cudaStream_t st = ctx.stream();
  const std::int64_t segs = segment_count(n);
  DeviceBuffer<unsigned long long> first(1);
  DeviceBuffer<double> partials(static_cast<std::size_t>(segs)), sum(1);
  const unsigned long long none = std::numeric_limits<unsigned long long>::max();
  copy_to_device(first.data(), &none, 1, st);
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(sum.data(), 0, sizeof(double), st));
  weight_check_kernel<T><<<static_cast<unsigned>(segs), kReduceThreads, 0, st>>>(w, n, first.data(), partials.data());
  MIXTURA_CUDA_CHECK_LAUNCH("weight_check_kernel");
  accumulate_partials(partials.data(), segs, 1, sum.data(), st);
  unsigned long long found = none;
  copy_to_host(&found, first.data(), 1, st);
  copy_to_host(total, sum.data(), 1, st);
  ctx.synchronize();
  if (found == none) return;
  T v{};
  MIXTURA_CUDA_CHECK(cudaMemcpyAsync(&v, w + found, sizeof(T), cudaMemcpyDeviceToHost, st));
  ctx.synchronize();
  *index = static_cast<std::int64_t>(found);
  *value = static_cast<double>(v);
}

template <class T>
void copy_rows_to_host(const CudaBackend& be, HostMatrix<T> X, const std::int64_t* rows, std::int64_t m, T* out) {
  const char* where = "copy_rows_to_host (CUDA)";
  PassGuard guard(be, where);
  Context& ctx = guard.ctx();
  ctx.expect_device_data(expect_on_device(X, where).data);
  for (std::int64_t r = 0; r < m; ++r) {
    MIXTURA_EXPECTS(rows[r] >= 0 && rows[r] < X.rows, "%s: row %lld is outside [0, %lld)", where,
                    static_cast<long long>(rows[r]), static_cast<long long>(X.rows));
    MIXTURA_CUDA_CHECK(cudaMemcpyAsync(out + r * X.cols, X.data + rows[r] * X.stride,
                                       static_cast<std::size_t>(X.cols) * sizeof(T), cudaMemcpyDeviceToHost,
                                       ctx.stream()));
  }
  ctx.synchronize();
}

template <class T>
void row_hashes(const CudaBackend& be, HostMatrix<T> X, std::uint64_t* out) {
  const char* where = "row_hashes (CUDA)";
  PassGuard guard(be, where);
  Context& ctx = guard.ctx();
  ctx.expect_device_data(expect_on_device(X, where).data);
  if (X.rows <= 0) return;
  const cudaStream_t st = ctx.stream();
  DeviceBuffer<std::uint64_t> h(2 * static_cast<std::size_t>(X.rows));
  row_hash_kernel<T><<<static_cast<unsigned>((X.rows + 255) / 256), 256, 0, st>>>(X.data, X.rows, X.cols, X.stride,
                                                                                   h.data());
  MIXTURA_CUDA_CHECK_LAUNCH("row_hash_kernel");
  copy_to_host(out, h.data(), 2 * X.rows, st);
  ctx.synchronize();
}

template void find_non_finite<float>(const CudaBackend&, HostMatrix<float>, std::int64_t*, std::int64_t*, double*);
template void find_non_finite<double>(const CudaBackend&, HostMatrix<double>, std::int64_t*, std::int64_t*, double*);
template void find_bad_weight<float>(const CudaBackend&, const float*, std::int64_t, std::int64_t*, double*, double*);
template void find_bad_weight<double>(const CudaBackend&, const double*, std::int64_t, std::int64_t*, double*,
                                      double*);
template void copy_rows_to_host<float>(const CudaBackend&, HostMatrix<float>, const std::int64_t*, std::int64_t, float*);
template void copy_rows_to_host<double>(const CudaBackend&, HostMatrix<double>, const std::int64_t*, std::int64_t,
                                        double*);

template void row_hashes<float>(const CudaBackend&, HostMatrix<float>, std::uint64_t*);
template void row_hashes<double>(const CudaBackend&, HostMatrix<double>, std::uint64_t*);

}  // namespace cuda
}  // namespace mixtura
