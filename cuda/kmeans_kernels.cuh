#pragma once
// K-means kernels, templated on the scalar type; instantiated by kmeans_float.cu and kmeans_double.cu
// through kmeans_passes.cuh. What reproduces and why:
// - assign_kernel: each distance is one fused multiply-add chain over the features in order (the
//   tiling changes where operands come from, never the order), and the argmin is the lexicographic
//   minimum of (distance, index), which does not depend on the order it is taken in. Ties go to the
//   lower index, as on the CPU. Changed labels are counted with integer atomics.
// - stats_kernel, row_reduce_kernel, moments_kernel: per-segment partials in a fixed order
//   (kmeans_reduce.hpp), then accumulate_partials (context.cuh) adds them to the running totals in
//   segment order.
// No floating-point atomics anywhere.
#include <cuda_runtime.h>

#include <cstdint>

#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"

namespace mixtura {
namespace cuda {
namespace kernels {

// ---- assignment: distances to all centres, fused argmin -------------------------------------------

// A block: kBM rows x all centres, kBN centres at a time, kBK features at a time; 16 x 16 threads,
// each kTM rows x kTN centres in registers.
inline constexpr int kBM = 128, kBN = 64, kTM = 8, kTN = 4, kAssignThreads = 256;
template <class T>
struct AssignDepth;
template <>
struct AssignDepth<float> {
  static constexpr int kBK = 16;
};
template <>
struct AssignDepth<double> {
  static constexpr int kBK = 8;
};


template <class T>
__device__ inline T infinity();
template <>
__device__ inline float infinity<float>() {
  return __int_as_float(0x7f800000);
}
template <>
__device__ inline double infinity<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}

/// labels[r] <- argmin_k ||c_k||^2 + sum_d x_rd (-2 c_kd) for rows [0, rows) of the chunk x (dense,
/// D features). minus_two_ct: D x K; sq_norms: K. If count_changes, labels holds the previous labels on
/// entry and *changed receives how many differ.
template <class T>
__global__ void __launch_bounds__(kAssignThreads)
    assign_kernel(const T* __restrict__ x, std::int64_t rows, int D, const T* __restrict__ minus_two_ct,
                  const T* __restrict__ sq_norms, int K, std::int32_t* __restrict__ labels, bool count_changes,
                  unsigned long long* __restrict__ changed) {
  constexpr int kBK = AssignDepth<T>::kBK;
  __shared__ T xs[kBK][kBM + 1];  // transposed row tile; +1 spreads the stores over the banks
  __shared__ T cs[kBK][kBN];
  __shared__ unsigned int block_changed;
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * kBM;
  if (tid == 0) block_changed = 0;

  T best[kTM];
  int arg[kTM];
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    best[i] = infinity<T>();
    arg[i] = 0;
  }
  for (int k0 = 0; k0 < K; k0 += kBN) {
    T acc[kTM][kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = T(0);
    for (int d0 = 0; d0 < D; d0 += kBK) {
      __syncthreads();  // the previous tile has been read
      for (int e = tid; e < kBM * kBK; e += kAssignThreads) {
        const int r = e / kBK, kk = e % kBK, d = d0 + kk;
        const std::int64_t row = row0 + r;
        xs[kk][r] = (row < rows && d < D) ? x[row * D + d] : T(0);
      }
      for (int e = tid; e < kBK * kBN; e += kAssignThreads) {
        const int kk = e / kBN, n = e % kBN, d = d0 + kk, k = k0 + n;
        cs[kk][n] = (d < D && k < K) ? minus_two_ct[static_cast<std::int64_t>(d) * K + k] : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kBK; ++kk) {
        T a[kTM], b[kTN];
#pragma unroll
        for (int i = 0; i < kTM; ++i) a[i] = xs[kk][ty * kTM + i];
#pragma unroll
        for (int j = 0; j < kTN; ++j) b[j] = cs[kk][tx * kTN + j];
        // Zero padding past D adds fma(0, 0, acc) = acc: the chain over the real features is unchanged.
#pragma unroll
        for (int i = 0; i < kTM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] = fused(a[i], b[j], acc[i][j]);
      }
    }
#pragma unroll
    for (int j = 0; j < kTN; ++j) {
      const int k = k0 + tx * kTN + j;
      if (k < K) {
        const T norm = sq_norms[k];
#pragma unroll
        for (int i = 0; i < kTM; ++i) {
          const T dist = acc[i][j] + norm;
          if (dist < best[i]) {  // this thread sees its centres in increasing order
            best[i] = dist;
            arg[i] = k;
          }
        }
      }
    }
  }
  // The 16 threads of a row group hold disjoint centres: take the lexicographic minimum.
  unsigned int my_changed = 0;
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    T d = best[i];
    int a = arg[i];
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) {
      const T od = __shfl_xor_sync(0xffffffffu, d, off);
      const int oa = __shfl_xor_sync(0xffffffffu, a, off);
      if (od < d || (od == d && oa < a)) {
        d = od;
        a = oa;
      }
    }
    const std::int64_t row = row0 + ty * kTM + i;
    if (tx == 0 && row < rows) {
      if (count_changes && labels[row] != a) ++my_changed;
      labels[row] = a;
    }
  }
  if (count_changes) {
    if (my_changed) atomicAdd(&block_changed, my_changed);
    __syncthreads();
    if (tid == 0 && block_changed) atomicAdd(changed, static_cast<unsigned long long>(block_changed));
  }
}

// ---- per-cluster statistics ----------------------------------------------------------------------

/// One block per (segment, cluster tile, feature tile) of the chunk; writes its part of the segment's
/// partial (layout `lay`) into partials + segment * lay.size(). Dynamic shared memory: tl.shared_bytes.
template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    stats_kernel(const T* __restrict__ x, const T* __restrict__ w, const std::int32_t* __restrict__ labels,
                 std::int64_t rows, int D, const double* __restrict__ centers_d, int K, StatsTiling tl,
                 StatsLayout lay, double* __restrict__ partials) {
  extern __shared__ double cells[];
  __shared__ double red[kReduceThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const std::int64_t seg = blockIdx.x, r0 = seg * kSegmentRows;
  const std::int64_t seg_rows = rows - r0 < kSegmentRows ? rows - r0 : kSegmentRows;
  const int kt = static_cast<int>(blockIdx.y), ft = static_cast<int>(blockIdx.z);
  const int k0 = kt * tl.kc, kc = K - k0 < tl.kc ? K - k0 : tl.kc;
  const int d0 = ft * tl.dc, dc = D - d0 < tl.dc ? D - d0 : tl.dc;
  const int n_cells = tl.tr * kc * (dc + 2);
  for (int i = tid; i < n_cells; i += kReduceThreads) cells[i] = 0.0;
  __syncthreads();
  const int rl = tid / tl.td, fl = tid % tl.td;
  red[tid] = stats_lane_fold(x + r0 * D, w ? w + r0 : nullptr, labels + r0, seg_rows, D, centers_d, k0, kc, d0, dc,
                             rl, tl.tr, fl, tl.td, fl == 0 && ft == 0, cells);
  __syncthreads();
  double* out = partials + seg * lay.size();
  for (int i = tid; i < kc * (dc + 2); i += kReduceThreads) {
    const int k = i / (dc + 2), f = i % (dc + 2);
    if (f < dc)
      out[lay.sum_at(k0 + k, d0 + f)] = stats_lane_sum(cells, tl.tr, kc, dc, k, f);
    else if (ft == 0)
      out[f == dc ? lay.weight_at(k0 + k) : lay.count_at(k0 + k)] = stats_lane_sum(cells, tl.tr, kc, dc, k, f);
  }
  for (int s = kReduceThreads / 2; s > 0; s >>= 1) {  // tree_sum's order
    if (tid < s) red[tid] += red[tid + s];
    __syncthreads();
  }
  if (tid == 0) out[lay.distortion_at(static_cast<std::int64_t>(kt) * tl.n_ftiles + ft)] = red[0];
}

// ---- per-row values summed per segment ---------------------------------------------------------------

/// One block per (segment, j): sums op(r, x_r, w_r, j) over the segment's rows (thread t takes rows
/// t, t + 256, ... in order, then tree_sum's order) into partials[segment * width + j].
template <class T, class Op>
__global__ void __launch_bounds__(kReduceThreads)
    row_reduce_kernel(const T* __restrict__ x, const T* __restrict__ w, std::int64_t rows, int D, Op op,
                      double* __restrict__ partials, int width) {
  __shared__ double red[kReduceThreads];
  const int tid = static_cast<int>(threadIdx.x), j = static_cast<int>(blockIdx.y);
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * kSegmentRows;
  const std::int64_t r1 = rows - r0 < kSegmentRows ? rows : r0 + kSegmentRows;
  double s = 0.0;
  for (std::int64_t r = r0 + tid; r < r1; r += kReduceThreads)
    s += op(r, x + r * D, D, w ? static_cast<double>(w[r]) : 1.0, j);
  red[tid] = s;
  __syncthreads();
  for (int step = kReduceThreads / 2; step > 0; step >>= 1) {
    if (tid < step) red[tid] += red[tid + step];
    __syncthreads();
  }
  if (tid == 0) partials[static_cast<std::int64_t>(blockIdx.x) * width + j] = red[0];
}

/// w ||x_r - c_{labels[r]}||^2, and the distance itself into out[r] when out is given.
template <class T>
struct AssignedDistance {
  const T* centers;
  const std::int32_t* labels;
  double* out;
  __device__ double operator()(std::int64_t r, const T* xr, int D, double w, int) const {
    const double d = sq_dist8(xr, centers + static_cast<std::int64_t>(labels[r]) * D, D);
    if (out) out[r] = d;
    return w * d;
  }
};

/// closest[r] <- min(closest[r], ||x_r - c||^2) (or the distance when reset); w closest[r].
template <class T>
struct UpdateClosest {
  const T* c;
  double* closest;
  bool reset;
  __device__ double operator()(std::int64_t r, const T* xr, int D, double w, int) const {
    const double d = sq_dist8(xr, c, D);
    const double v = reset ? d : (d < closest[r] ? d : closest[r]);  // std::min(closest, d)
    closest[r] = v;
    return w * v;
  }
};

/// w min(closest[r], ||x_r - cand_j||^2).
template <class T>
struct CandidatePotential {
  const T* candidates;
  const double* closest;
  __device__ double operator()(std::int64_t r, const T* xr, int D, double w, int j) const {
    const double d = sq_dist8(xr, candidates + static_cast<std::int64_t>(j) * D, D);
    return w * (d < closest[r] ? d : closest[r]);
  }
};

// ---- feature moments -----------------------------------------------------------------------------------

/// One block per (segment, 32 features): sums of t and t^2, t = x - shift, per feature; 8 row lanes
/// added in lane order. Writes partials[segment * 2D + d] and [... + D + d].
template <class T>
__global__ void __launch_bounds__(kReduceThreads)
    moments_kernel(const T* __restrict__ x, std::int64_t rows, int D, const T* __restrict__ shift,
                   double* __restrict__ partials) {
  __shared__ double s1[8][32], s2[8][32];
  const int tid = static_cast<int>(threadIdx.x), rl = tid / 32, fl = tid % 32;
  const int d = static_cast<int>(blockIdx.y) * 32 + fl;
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * kSegmentRows;
  const std::int64_t r1 = rows - r0 < kSegmentRows ? rows : r0 + kSegmentRows;
  double a = 0.0, b = 0.0;
  if (d < D) {
    const double sh = static_cast<double>(shift[d]);
    for (std::int64_t r = r0 + rl; r < r1; r += 8) {
      const double t = static_cast<double>(x[r * D + d]) - sh;
      a += t;
      b += t * t;
    }
  }
  s1[rl][fl] = a;
  s2[rl][fl] = b;
  __syncthreads();
  if (rl == 0 && d < D) {
    double ta = 0.0, tb = 0.0;
    for (int l = 0; l < 8; ++l) {
      ta += s1[l][fl];
      tb += s2[l][fl];
    }
    double* out = partials + static_cast<std::int64_t>(blockIdx.x) * 2 * D;
    out[d] = ta;
    out[D + d] = tb;
  }
}

// ---- all distances --------------------------------------------------------------------------------------

/// out[r * K + k] = sqrt(||x_r - c_k||^2) for rows [0, rows), one thread per entry.
template <class T>
__global__ void transform_kernel(const T* __restrict__ x, std::int64_t rows, int D, const T* __restrict__ centers,
                                 int K, T* __restrict__ out) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= rows * K) return;
  const std::int64_t r = e / K;
  const int k = static_cast<int>(e % K);
  out[e] = static_cast<T>(sqrt(sq_dist8(x + r * D, centers + static_cast<std::int64_t>(k) * D, D)));
}

}  // namespace kernels
}  // namespace cuda
}  // namespace mixtura
