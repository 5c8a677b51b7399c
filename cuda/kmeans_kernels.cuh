#pragma once
// K-means kernels, templated on the scalar type; instantiated by kmeans_float.cu and kmeans_double.cu
// through kmeans_passes.cuh. What reproduces and why:
// - assign_tile (fused_assign_kernel, fused_predict_kernel): each distance is one fused multiply-add
//   chain over the features in order, rows and centres measured from the centres' mean (the tiling
//   changes where operands come from, never the order), and the argmin is the lexicographic minimum
//   of (distance, index), which does not depend on the order it is taken in. Ties go to the lower index, as on the CPU. Changed labels are counted with integer
//   atomics.
// - fused_assign_kernel: each block's statistics in the fixed order of fused_lane_fold
//   (kmeans_reduce.hpp), then accumulate_groups (context.cuh) adds the block partials in groups.
// - fused_predict_kernel: labels and each segment's distortion in one read of X, thread t adding the
//   segment's rows t, t + 256, ... (predict_row_fold), then tree_sum's order.
// - row_reduce_kernel, moments_kernel: per-segment partials in a fixed order, then
//   accumulate_partials (context.cuh) adds them to the running totals in segment order.
// No floating-point atomics anywhere.
#include <cuda_runtime.h>

#include <cstdint>

#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"

namespace mixtura {
namespace cuda {
namespace kernels {

// ---- assignment: distances to all centres, fused argmin -------------------------------------------

// A tile: kBM rows x all centres, kBN centres at a time (the smallest of 16, 32, 64 that holds K, so
// that few centres leave no threads computing padding), kBK features at a time. kAssignThreads threads:
// kCX across centres x kRY across rows, each kTM rows x kTN centres in registers.
inline constexpr int kBM = kAssignTileRows, kTN = 4, kAssignThreads = 256;
static_assert(kAssignThreads == kReduceThreads, "the fused kernel's threads are the statistics tiling's");
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

/// The centre tile for K centres: 16, 32 or 64.
inline int centre_tile(std::int64_t K) { return K <= 16 ? 16 : (K <= 32 ? 32 : 64); }

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

/// labels[r] <- argmin_k ||c_k - s||^2 + sum_d (x_rd - s_d) (-2 (c_kd - s_d)) for the tile of rows
/// [row0, row0 + kBM) of x (dense, D features, `rows` rows; rows past the end are skipped), as
/// argmin_centers prepares them: shift s: D; minus_two_ct: D x K; sq_norms: K. labels may be nullptr
/// (not written); tile_labels (shared, kBM entries, may be nullptr) receives the tile's labels too.
/// If *changed is given (a shared counter), labels holds the previous labels on entry and it counts
/// those that differ. Called by every thread of the block; starts and ends
/// with its shared tiles free to reuse.
template <class T, int kBN>
__device__ inline void assign_tile(const T* __restrict__ x, std::int64_t rows, int D, std::int64_t row0,
                                   const T* __restrict__ shift, const T* __restrict__ minus_two_ct,
                                   const T* __restrict__ sq_norms, int K,
                                   std::int32_t* __restrict__ labels, std::int32_t* tile_labels,
                                   unsigned int* changed) {
  constexpr int kBK = AssignDepth<T>::kBK, kCX = kBN / kTN, kRY = kAssignThreads / kCX, kTM = kBM / kRY;
  static_assert(kCX * kRY == kAssignThreads && kTM * kRY == kBM, "assign_tile: the threads must cover the tile");
  __shared__ T xs[kBK][kBM + 1];  // transposed row tile; +1 spreads the stores over the banks
  __shared__ T cs[kBK][kBN];
  const int tid = static_cast<int>(threadIdx.x), tx = tid % kCX, ty = tid / kCX;

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
        xs[kk][r] = (row < rows && d < D) ? x[row * D + d] - shift[d] : T(0);
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
  // The kCX threads of a row group (consecutive lanes of one warp) hold disjoint centres: take the
  // lexicographic minimum of (distance, index).
  unsigned int my_changed = 0;
#pragma unroll
  for (int i = 0; i < kTM; ++i) {
    T d = best[i];
    int a = arg[i];
#pragma unroll
    for (int off = kCX / 2; off > 0; off >>= 1) {
      const T od = __shfl_xor_sync(0xffffffffu, d, off);
      const int oa = __shfl_xor_sync(0xffffffffu, a, off);
      if (od < d || (od == d && oa < a)) {
        d = od;
        a = oa;
      }
    }
    const int r = ty * kTM + i;
    const std::int64_t row = row0 + r;
    if (tx == 0 && row < rows) {
      if (changed && labels[row] != a) ++my_changed;
      if (labels) labels[row] = a;
      if (tile_labels) tile_labels[r] = a;
    }
  }
  if (my_changed) atomicAdd(changed, my_changed);  // integer: the count does not depend on the order
  __syncthreads();  // the tile's labels are complete
}

/// Prediction in one read of X: one block per segment of the chunk (kSegmentRows rows, counted from
/// the chunk's first row, which is a segment boundary of the data), two tiles a step: their labels
/// (assign_tile; into labels unless nullptr), then one row per thread added to the distortion while
/// the step's rows are fresh in the cache (predict_row_fold: exact, in double). Writes the segment's
/// distortion (tree_sum's order) to partials[segment]. centers: K x D (the exact distances).
template <class T, int kBN>
__global__ void __launch_bounds__(kAssignThreads)
    fused_predict_kernel(const T* __restrict__ x, const T* __restrict__ w, std::int64_t rows, int D,
                         const T* __restrict__ shift, const T* __restrict__ minus_two_ct,
                         const T* __restrict__ sq_norms, int K,
                         const T* __restrict__ centers, std::int32_t* __restrict__ labels,
                         double* __restrict__ partials) {
  __shared__ std::int32_t step_labels[kPredictStepRows];
  __shared__ double red[kAssignThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * kSegmentRows;
  const std::int64_t r1 = rows - r0 < kSegmentRows ? rows : r0 + kSegmentRows;
  double distortion = 0.0;
  for (std::int64_t s0 = r0; s0 < r1; s0 += kPredictStepRows) {
    // assign_tile opens with a barrier (the last step's labels have been read) and ends with one
    // (this tile's labels are complete).
    assign_tile<T, kBN>(x, rows, D, s0, shift, minus_two_ct, sq_norms, K, labels, step_labels, nullptr);
    if (s0 + kBM < r1)  // the same for every thread: the barriers inside are reached by all or none
      assign_tile<T, kBN>(x, rows, D, s0 + kBM, shift, minus_two_ct, sq_norms, K, labels, step_labels + kBM, nullptr);
    const std::int64_t n = r1 - s0 < kPredictStepRows ? r1 - s0 : kPredictStepRows;
    predict_row_fold(x + s0 * D, w ? w + s0 : nullptr, step_labels, n, centers, D, tid, &distortion);
  }
  red[tid] = distortion;
  __syncthreads();
  for (int s = kAssignThreads / 2; s > 0; s >>= 1) {  // tree_sum's order
    if (tid < s) red[tid] += red[tid + s];
    __syncthreads();
  }
  if (tid == 0) partials[blockIdx.x] = red[0];
}

// ---- the fused assignment pass: labels and statistics in one read of X -------------------------------

/// One block per tl.block_rows rows of the chunk (x dense, D features; w: weights or nullptr): for
/// each tile, the labels (assign_tile: previous labels on entry, changes counted into *changed), then
/// the tile's rows folded into the statistics (fused_lane_fold). The block writes its partial
/// (tl.width() doubles) at partials + block * tl.width(). shared_cells: the row lanes' cells are in
/// dynamic shared memory (tl.shared_bytes()), else (tl.tr == 1) in the partial itself, which then
/// needs no final sum.
template <class T, int kBN>
__global__ void __launch_bounds__(kAssignThreads)
    fused_assign_kernel(const T* __restrict__ x, const T* __restrict__ w, std::int64_t rows, int D,
                        const T* __restrict__ shift, const T* __restrict__ minus_two_ct,
                        const T* __restrict__ sq_norms, int K,
                        const double* __restrict__ centers_d, FusedTiling tl, bool shared_cells,
                        std::int32_t* __restrict__ labels, unsigned long long* __restrict__ changed,
                        double* __restrict__ partials) {
  extern __shared__ double dynamic_cells[];
  __shared__ std::int32_t tile_labels[kBM];
  __shared__ double red[kAssignThreads];
  __shared__ unsigned int block_changed;
  const int tid = static_cast<int>(threadIdx.x);
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * tl.block_rows;
  const std::int64_t r1 = rows - r0 < tl.block_rows ? rows : r0 + tl.block_rows;
  double* out = partials + static_cast<std::int64_t>(blockIdx.x) * tl.width();
  double* cells = shared_cells ? dynamic_cells : out;
  const std::int64_t n_cells = (shared_cells ? tl.tr : 1) * tl.cells();
  for (std::int64_t i = tid; i < n_cells; i += kAssignThreads) cells[i] = 0.0;
  if (tid == 0) block_changed = 0;
  double distortion = 0.0;
  for (std::int64_t t0 = r0; t0 < r1; t0 += kBM) {
    // assign_tile opens with a barrier: the cells are zeroed and the last tile's labels are folded.
    assign_tile<T, kBN>(x, rows, D, t0, shift, minus_two_ct, sq_norms, K, labels, tile_labels, &block_changed);
    const std::int64_t n = r1 - t0 < kBM ? r1 - t0 : kBM;
    fused_lane_fold(x + t0 * D, w ? w + t0 : nullptr, tile_labels, n, centers_d, tl, tid, cells, &distortion);
  }
  red[tid] = distortion;
  __syncthreads();
  for (int s = kAssignThreads / 2; s > 0; s >>= 1) {  // tree_sum's order
    if (tid < s) red[tid] += red[tid + s];
    __syncthreads();
  }
  if (shared_cells)
    for (std::int64_t i = tid; i < tl.cells(); i += kAssignThreads) out[i] = fused_lane_sum(cells, tl, i);
  if (tid == 0) {
    out[tl.distortion_at()] = red[0];
    if (block_changed) atomicAdd(changed, static_cast<unsigned long long>(block_changed));
  }
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
