#pragma once
// The host side of the K-means passes (mixtura/cuda/kmeans_pass.hpp): centres to the device, the
// data walked chunk by chunk (context.cuh), kernels enqueued on the context's stream, results back.
// Included once per scalar type by kmeans_float.cu / kmeans_double.cu, which instantiate it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "context.cuh"
#include "kmeans_kernels.cuh"
#include "mixtura/core/errors.hpp"
#include "mixtura/cuda/kmeans_pass.hpp"
#include "mixtura/cuda/kmeans_reduce.hpp"

namespace mixtura {
namespace cuda {
namespace detail {

/// Device buffers of the K-means passes, kept by the context between calls (grow-only). The labels a
/// fit keeps between passes are the context's (Context::held_labels); `labels` here is scratch.
template <class T>
struct KMeansWorkspace {
  DeviceBuffer<T> shift, minus_two_ct, sq_norms, centers, rows_in;  // rows_in: candidates or one centre or a shift
  DeviceBuffer<double> centers_d, partials, totals, row_values, group_sums, carry;
  DeviceBuffer<std::int32_t> labels;
  DeviceBuffer<T> out;
  DeviceBuffer<unsigned long long> counter;
  std::vector<T> host_shift, host_ct, host_norms;
  std::vector<double> host_cd, host_totals;
};

/// The centres as the argmin wants them (argmin_centers): the shift s, -2 (C - s)^T (D x K) and
/// ||c_k - s||^2.
template <class T>
void upload_argmin_centers(Context& ctx, KMeansWorkspace<T>& ws, const T* C, std::int64_t K, std::int64_t D) {
  ws.host_shift.resize(static_cast<std::size_t>(D));
  ws.host_ct.resize(static_cast<std::size_t>(K * D));
  ws.host_norms.resize(static_cast<std::size_t>(K));
  argmin_centers(C, K, D, ws.host_shift.data(), ws.host_ct.data(), ws.host_norms.data());
  copy_to_device(ws.shift.reserve(static_cast<std::size_t>(D)), ws.host_shift.data(), D, ctx.stream());
  copy_to_device(ws.minus_two_ct.reserve(static_cast<std::size_t>(K * D)), ws.host_ct.data(), K * D, ctx.stream());
  copy_to_device(ws.sq_norms.reserve(static_cast<std::size_t>(K)), ws.host_norms.data(), K, ctx.stream());
}

template <class T>
void upload_centers(Context& ctx, KMeansWorkspace<T>& ws, const T* C, std::int64_t K, std::int64_t D) {
  copy_to_device(ws.centers.reserve(static_cast<std::size_t>(K * D)), C, K * D, ctx.stream());
}

template <class T>
void upload_double_centers(Context& ctx, KMeansWorkspace<T>& ws, const T* C, std::int64_t K, std::int64_t D) {
  ws.host_cd.assign(C, C + K * D);
  copy_to_device(ws.centers_d.reserve(static_cast<std::size_t>(K * D)), ws.host_cd.data(), K * D, ctx.stream());
}

/// Zeroed running totals of `width` doubles.
template <class T>
double* zero_totals(Context& ctx, KMeansWorkspace<T>& ws, std::int64_t width) {
  double* t = ws.totals.reserve(static_cast<std::size_t>(width));
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(t, 0, static_cast<std::size_t>(width) * sizeof(double), ctx.stream()));
  return t;
}

/// Runs row_reduce_kernel with `op` over a chunk (grid: segments x width) and adds its partials to totals.
template <class T, class Op>
void row_reduce(Context& ctx, KMeansWorkspace<T>& ws, const DeviceChunk<T>& c, Op op, int width, double* totals) {
  const std::int64_t segs = segment_count(c.rows);
  double* part = ws.partials.reserve(static_cast<std::size_t>(segs * width));
  const dim3 grid(static_cast<unsigned>(segs), static_cast<unsigned>(width));
  kernels::row_reduce_kernel<T, Op><<<grid, kReduceThreads, 0, ctx.stream()>>>(c.x, c.w, c.rows, static_cast<int>(c.cols),
                                                                               op, part, width);
  MIXTURA_CUDA_CHECK_LAUNCH("row_reduce_kernel");
  accumulate_partials(part, segs, width, totals, ctx.stream());
}

/// Calls f(std::integral_constant<int, B>{}) with B the centre tile of the assignment kernels for K.
template <class F>
void with_centre_tile(std::int64_t K, F&& f) {
  switch (kernels::centre_tile(K)) {
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    default: return f(std::integral_constant<int, 64>{});
  }
}

/// Prediction for a chunk in one read of it (fused_predict_kernel): labels (into `labels`, the
/// chunk's, unless nullptr) and each segment's distortion, added to *totals in segment order. The
/// centres must be uploaded (upload_argmin_centers, upload_centers).
template <class T>
void enqueue_predict_chunk(Context& ctx, KMeansWorkspace<T>& ws, const DeviceChunk<T>& c, std::int64_t K,
                           std::int32_t* labels, double* totals) {
  const std::int64_t segs = segment_count(c.rows);
  double* part = ws.partials.reserve(static_cast<std::size_t>(segs));
  with_centre_tile(K, [&](auto bn) {
    kernels::fused_predict_kernel<T, decltype(bn)::value>
        <<<static_cast<unsigned>(segs), kernels::kAssignThreads, 0, ctx.stream()>>>(
            c.x, c.w, c.rows, static_cast<int>(c.cols), ws.shift.data(), ws.minus_two_ct.data(), ws.sq_norms.data(),
            static_cast<int>(K), ws.centers.data(), labels, part);
  });
  MIXTURA_CUDA_CHECK_LAUNCH("fused_predict_kernel");
  accumulate_partials(part, segs, 1, totals, ctx.stream());
}

/// How the fused assignment pass runs for n rows, K clusters of D features on the context's device:
/// the statistics tiling (kmeans_reduce.hpp: the order of additions, the same on every device) and
/// where the cells live: in shared memory when the device lets a block have them, else (one copy)
/// in the block's partial in global memory (more memory traffic, the same order).
template <class T>
struct AssignPlan {
  FusedTiling tiling;
  bool shared_cells = true;
  std::int64_t total_blocks = 0;  ///< blocks of the whole data (row 0 to n)

  AssignPlan(const Context& ctx, std::int64_t n, std::int64_t K, std::int64_t D)
      : tiling(fused_tiling(K, D, sizeof(T))), total_blocks((n + tiling.block_rows - 1) / tiling.block_rows) {
    const std::size_t optin = ctx.properties().sharedMemPerBlockOptin;
    with_centre_tile(K, [&](auto bn) {
      const auto kernel = kernels::fused_assign_kernel<T, decltype(bn)::value>;
      cudaFuncAttributes a{};
      MIXTURA_CUDA_CHECK(cudaFuncGetAttributes(&a, kernel));
      shared_cells = a.sharedSizeBytes + tiling.shared_bytes() <= optin;
      if (shared_cells)  // beyond the default 48 KiB a block must ask; the cap is the same for every call
        MIXTURA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(optin - a.sharedSizeBytes)));
    });
    MIXTURA_EXPECTS(shared_cells || tiling.tr == 1,
                    "kmeans_assign (CUDA): %d copies of the statistics (%zu bytes) do not fit shared memory",
                    tiling.tr, tiling.shared_bytes());
  }
};

/// The running state of one assignment pass on the device: totals (tiling.width() doubles) and the
/// carry of a group left open by the last chunk.
struct AssignTotals {
  double* totals = nullptr;
  double* carry = nullptr;
};

/// One chunk of the assignment pass on the stream, in one read of the chunk: labels (the chunk's,
/// previous on entry, new on exit), changed-label count, and the chunk's statistics added to the
/// totals (kmeans_reduce.hpp's order). The centres must be uploaded (upload_argmin_centers,
/// upload_double_centers).
template <class T>
void enqueue_assign_chunk(Context& ctx, KMeansWorkspace<T>& ws, const DeviceChunk<T>& c, const AssignPlan<T>& plan,
                          std::int32_t* labels, unsigned long long* changed, const AssignTotals& acc) {
  const FusedTiling& tl = plan.tiling;
  const std::int64_t n_blocks = (c.rows + tl.block_rows - 1) / tl.block_rows;
  double* part = ws.partials.reserve(static_cast<std::size_t>(n_blocks * tl.width()));
  with_centre_tile(tl.K, [&](auto bn) {
    kernels::fused_assign_kernel<T, decltype(bn)::value>
        <<<static_cast<unsigned>(n_blocks), kernels::kAssignThreads, plan.shared_cells ? tl.shared_bytes() : 0,
           ctx.stream()>>>(c.x, c.w, c.rows, static_cast<int>(c.cols), ws.shift.data(), ws.minus_two_ct.data(), ws.sq_norms.data(),
                           static_cast<int>(tl.K), ws.centers_d.data(), tl, plan.shared_cells, labels, changed, part);
  });
  MIXTURA_CUDA_CHECK_LAUNCH("fused_assign_kernel");
  // Chunks start on segment boundaries, and a segment is whole blocks.
  const ChunkGroups cg(c.first / tl.block_rows, n_blocks, plan.total_blocks);
  double* group_sums = ws.group_sums.reserve(static_cast<std::size_t>(cg.n_groups * tl.width()));
  accumulate_groups(part, tl.width(), cg, acc.carry, group_sums, acc.totals, ctx.stream());
}

/// Zeroed running totals and a carry for one assignment pass.
template <class T>
AssignTotals start_assign_totals(Context& ctx, KMeansWorkspace<T>& ws, const AssignPlan<T>& plan) {
  const std::int64_t width = plan.tiling.width();
  AssignTotals a;
  a.totals = ws.totals.reserve(static_cast<std::size_t>(width));
  a.carry = ws.carry.reserve(static_cast<std::size_t>(width));
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(a.totals, 0, static_cast<std::size_t>(width) * sizeof(double), ctx.stream()));
  return a;
}

/// Where the labels of a pass live on the device. A fit's labels (a pass inside a data scope) are
/// held there between passes (Context::held_labels, resident_labels.hpp): a pass finds them, or
/// uploads the host array and, for a pass that writes them, holds the copy for the fit. Other labels
/// go through scratch.
inline std::int32_t* device_labels(Context& ctx, DeviceBuffer<std::int32_t>& scratch, const std::int32_t* labels,
                                   std::int64_t n, bool hold) {
  if (DeviceBuffer<std::int32_t>* held = ctx.held_labels().find(labels, n, ctx.scopes())) return held->data();
  const std::uint64_t fit = ctx.scopes().outer();
  std::int32_t* d = hold && fit ? ctx.held_labels().hold(labels, n, fit, ctx.scopes()).data()
                                : scratch.reserve(static_cast<std::size_t>(n));
  copy_to_device(d, labels, n, ctx.stream());
  return d;
}

/// Where k-means++'s distances to the closest centre live on the device for a pass: the copy held for
/// the host array `closest` (n values), found, or made now and held for the fit when `hold` and the
/// pass runs in a fit's scope; else scratch. A copy made now receives the host array's values unless
/// `fresh` (the pass writes them all). *held: whether the copy is held (the host array is then stale).
inline double* device_distances(Context& ctx, DeviceBuffer<double>& scratch, const double* closest, std::int64_t n,
                                bool hold, bool fresh, bool* held) {
  if (DeviceBuffer<double>* h = ctx.held_distances().find(closest, n, ctx.scopes())) {
    *held = true;
    return h->data();
  }
  const std::uint64_t fit = ctx.scopes().outer();
  *held = hold && fit != 0;
  double* d = *held ? ctx.held_distances().hold(closest, n, fit, ctx.scopes()).data()
                    : scratch.reserve(static_cast<std::size_t>(n));
  if (!fresh) copy_to_device(d, closest, n, ctx.stream());
  return d;
}

inline const CudaBackend& check_sizes(const CudaBackend& be, const char* where, std::int64_t K, std::int64_t D) {
  MIXTURA_EXPECTS(K >= 1 && K <= 0x7fffffff && D >= 1 && D <= 0x7fffffff,
                  "%s: n_clusters (%lld) and n_features (%lld) must be in [1, 2^31)", where, static_cast<long long>(K),
                  static_cast<long long>(D));
  return be;
}

/// What every K-means pass opens with: sizes checked (K centres or candidates of D features), the
/// context held (PassGuard), its workspace and stream at hand.
template <class T>
struct KMeansPass {
  PassGuard guard;
  Context& ctx;
  KMeansWorkspace<T>& ws;
  cudaStream_t st;
  KMeansPass(const CudaBackend& be, const char* where, std::int64_t K, std::int64_t D)
      : guard(check_sizes(be, where, K, D), where), ctx(guard.ctx()), ws(ctx.extension<KMeansWorkspace<T>>()),
        st(ctx.stream()) {}
};

}  // namespace detail

template <class T>
void kmeans_assign(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const T* centers, std::int64_t K,
                   std::int32_t* labels, double* weight, std::int64_t* count, double* sums, double* distortion,
                   std::int64_t* n_changed) {
  detail::KMeansPass<T> pass(be, "kmeans_assign (CUDA)", K, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  const std::int64_t n = X.rows, D = X.cols;
  detail::upload_argmin_centers(ctx, ws, centers, K, D);
  detail::upload_double_centers(ctx, ws, centers, K, D);
  // In a fit the labels stay on the device (uploaded once; back by kmeans_labels_to_host).
  const bool in_fit = ctx.scopes().outer() != 0;
  std::int32_t* dlabels = detail::device_labels(ctx, ws.labels, labels, n, /*hold=*/true);
  unsigned long long* changed = ws.counter.reserve(1);
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(changed, 0, sizeof(unsigned long long), st));
  const detail::AssignPlan<T> plan(ctx, n, K, D);
  const FusedTiling& tl = plan.tiling;
  const detail::AssignTotals acc = detail::start_assign_totals(ctx, ws, plan);
  ctx.for_each_chunk(X, w, [&](const DeviceChunk<T>& c) {
    detail::enqueue_assign_chunk(ctx, ws, c, plan, dlabels + c.first, changed, acc);
  });

  ws.host_totals.resize(static_cast<std::size_t>(tl.width()));
  unsigned long long host_changed = 0;
  if (!in_fit) copy_to_host(labels, dlabels, n, st);
  copy_to_host(ws.host_totals.data(), acc.totals, tl.width(), st);
  copy_to_host(&host_changed, changed, 1, st);
  ctx.synchronize();
  const std::vector<double>& t = ws.host_totals;
  for (std::int64_t k = 0; k < K; ++k) {
    for (std::int64_t d = 0; d < D; ++d) sums[k * D + d] = t[static_cast<std::size_t>(tl.sum_at(k, d))];
    weight[k] = t[static_cast<std::size_t>(tl.weight_at(k))];
    count[k] = static_cast<std::int64_t>(t[static_cast<std::size_t>(tl.count_at(k))]);
  }
  *distortion = t[static_cast<std::size_t>(tl.distortion_at())];
  *n_changed = static_cast<std::int64_t>(host_changed);
}

template <class T>
double kmeans_predict(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const T* centers, std::int64_t K,
                      std::int32_t* labels) {
  detail::KMeansPass<T> pass(be, "kmeans_predict (CUDA)", K, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  detail::upload_argmin_centers(ctx, ws, centers, K, X.cols);
  detail::upload_centers(ctx, ws, centers, K, X.cols);
  // Scoring (labels == nullptr) writes no labels at all.
  std::int32_t* dlabels = labels ? ws.labels.reserve(static_cast<std::size_t>(X.rows)) : nullptr;
  double* totals = detail::zero_totals(ctx, ws, 1);
  ctx.for_each_chunk(X, w, [&](const DeviceChunk<T>& c) {
    detail::enqueue_predict_chunk(ctx, ws, c, K, dlabels ? dlabels + c.first : nullptr, totals);
  });
  double total = 0.0;
  if (labels) copy_to_host(labels, dlabels, X.rows, st);
  copy_to_host(&total, totals, 1, st);
  ctx.synchronize();
  if (labels) ctx.held_labels().release(labels);  // the host array is newer than any copy held for it
  return total;
}

template <class T>
void kmeans_distances_to_assigned(const CudaBackend& be, HostMatrix<T> X, const T* centers, std::int64_t K,
                                  const std::int32_t* labels, double* out) {
  detail::KMeansPass<T> pass(be, "kmeans_distances_to_assigned (CUDA)", K, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  detail::upload_centers(ctx, ws, centers, K, X.cols);
  const std::int32_t* dlabels = detail::device_labels(ctx, ws.labels, labels, X.rows, /*hold=*/false);
  double* dout = ws.row_values.reserve(static_cast<std::size_t>(X.rows));
  double* totals = detail::zero_totals(ctx, ws, 1);
  ctx.for_each_chunk(X, static_cast<const T*>(nullptr), [&](const DeviceChunk<T>& c) {
    detail::row_reduce(ctx, ws, c, kernels::AssignedDistance<T>{ws.centers.data(), dlabels + c.first, dout + c.first},
                       1, totals);
  });
  copy_to_host(out, dout, X.rows, st);
  ctx.synchronize();
}

template <class T>
void kmeans_transform(const CudaBackend& be, HostMatrix<T> X, const T* centers, std::int64_t K, T* out) {
  detail::KMeansPass<T> pass(be, "kmeans_transform (CUDA)", K, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  detail::upload_centers(ctx, ws, centers, K, X.cols);
  // The n x K result goes back in pieces of at most 64 MiB of device memory.
  const std::int64_t piece = std::max<std::int64_t>(1, (std::int64_t{64} << 20) / static_cast<std::int64_t>(K * sizeof(T)));
  ctx.for_each_chunk(X, static_cast<const T*>(nullptr), [&](const DeviceChunk<T>& c) {
    for (std::int64_t r0 = 0; r0 < c.rows; r0 += piece) {
      const std::int64_t rows = std::min(piece, c.rows - r0);
      T* dout = ws.out.reserve(static_cast<std::size_t>(rows * K));
      kernels::transform_kernel<T><<<grid_for(rows * K, 256), 256, 0, st>>>(c.x + r0 * c.cols, rows, static_cast<int>(c.cols),
                                                                         ws.centers.data(), static_cast<int>(K), dout);
      MIXTURA_CUDA_CHECK_LAUNCH("transform_kernel");
      copy_to_host(out + (c.first + r0) * K, dout, rows * K, st);
      ctx.synchronize();  // the piece's buffer is reused by the next one
    }
  });
}

template <class T>
double kmeans_update_closest(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const T* c, double* closest,
                             bool reset) {
  detail::KMeansPass<T> pass(be, "kmeans_update_closest (CUDA)", 1, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  T* dc = ws.rows_in.reserve(static_cast<std::size_t>(X.cols));
  copy_to_device(dc, c, X.cols, st);
  // In a data scope the distances stay on the device for the next passes and draws.
  bool held = false;
  double* dclosest =
      detail::device_distances(ctx, ws.row_values, closest, X.rows, /*hold=*/true, /*fresh=*/reset, &held);
  double* totals = detail::zero_totals(ctx, ws, 1);
  ctx.for_each_chunk(X, w, [&](const DeviceChunk<T>& ch) {
    detail::row_reduce(ctx, ws, ch, kernels::UpdateClosest<T>{dc, dclosest + ch.first, reset}, 1, totals);
  });
  double total = 0.0;
  if (!held) copy_to_host(closest, dclosest, X.rows, st);
  copy_to_host(&total, totals, 1, st);
  ctx.synchronize();
  return total;
}

template <class T>
void kmeans_candidate_potentials(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const double* closest,
                                 const T* candidates, std::int64_t m, double* out) {
  if (m <= 0) return;
  MIXTURA_EXPECTS(m <= 65535, "kmeans_candidate_potentials (CUDA): %lld candidates; at most 65535 a pass",
                  static_cast<long long>(m));
  detail::KMeansPass<T> pass(be, "kmeans_candidate_potentials (CUDA)", m, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  T* dcand = ws.rows_in.reserve(static_cast<std::size_t>(m * X.cols));
  copy_to_device(dcand, candidates, m * X.cols, st);
  bool held = false;
  const double* dclosest = detail::device_distances(ctx, ws.row_values, closest, X.rows, false, false, &held);
  double* totals = detail::zero_totals(ctx, ws, m);
  ctx.for_each_chunk(X, w, [&](const DeviceChunk<T>& ch) {
    detail::row_reduce(ctx, ws, ch, kernels::CandidatePotential<T>{dcand, dclosest + ch.first}, static_cast<int>(m),
                       totals);
  });
  copy_to_host(out, totals, m, st);
  ctx.synchronize();
}

template <class T>
void kmeans_fetch_masses(const CudaBackend& be, RowWeights<T> w, std::int64_t n, const double* closest, T* w_out,
                         double* closest_out) {
  detail::KMeansPass<T> pass(be, "kmeans_fetch_masses (CUDA)", 1, 1);
  Context& ctx = pass.ctx;
  const cudaStream_t st = pass.st;
  if (n <= 0) return;
  if (closest) {
    if (DeviceBuffer<double>* h = ctx.held_distances().find(closest, n, ctx.scopes()))
      copy_to_host(closest_out, h->data(), n, st);
    else
      std::copy_n(closest, n, closest_out);  // not held: the host array is the distances
  }
  if (w.data && w.on_device) {
    ctx.expect_device_data(w.data, "DeviceVectorView: sample_weight");
    copy_to_host(w_out, w.data, n, st);
  }
  ctx.synchronize();
}

template <class T>
double mean_feature_variance(const CudaBackend& be, HostMatrix<T> X) {
  detail::KMeansPass<T> pass(be, "mean_feature_variance (CUDA)", 1, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  const std::int64_t D = X.cols;
  T* shift = ws.rows_in.reserve(static_cast<std::size_t>(D));
  double* totals = detail::zero_totals(ctx, ws, 2 * D);
  ctx.for_each_chunk(X, static_cast<const T*>(nullptr), [&](const DeviceChunk<T>& c) {
    // Moments around the first row, as on the CPU; taken from the device copy (X may be device memory).
    if (c.first == 0)
      MIXTURA_CUDA_CHECK(cudaMemcpyAsync(shift, c.x, static_cast<std::size_t>(D) * sizeof(T), cudaMemcpyDeviceToDevice, st));
    const std::int64_t segs = segment_count(c.rows);
    double* part = ws.partials.reserve(static_cast<std::size_t>(segs * 2 * D));
    const dim3 grid(static_cast<unsigned>(segs), static_cast<unsigned>((D + 31) / 32));
    kernels::moments_kernel<T><<<grid, kReduceThreads, 0, st>>>(c.x, c.rows, static_cast<int>(D), shift, part);
    MIXTURA_CUDA_CHECK_LAUNCH("moments_kernel");
    accumulate_partials(part, segs, 2 * D, totals, st);
  });
  ws.host_totals.resize(static_cast<std::size_t>(2 * D));
  copy_to_host(ws.host_totals.data(), totals, 2 * D, st);
  ctx.synchronize();
  const double n = static_cast<double>(X.rows);
  double total = 0.0;
  for (std::int64_t d = 0; d < D; ++d) {
    const double mean_shift = ws.host_totals[static_cast<std::size_t>(d)] / n;
    const double var = ws.host_totals[static_cast<std::size_t>(D + d)] / n - mean_shift * mean_shift;
    total += var > 0.0 ? var : 0.0;
  }
  return total / static_cast<double>(D);
}

}  // namespace cuda
}  // namespace mixtura

// Explicit instantiation of every pass for one scalar type (used by kmeans_float.cu, kmeans_double.cu).
#define MIXTURA_INSTANTIATE_KMEANS_PASSES(T)                                                                          \
  namespace mixtura {                                                                                                 \
  namespace cuda {                                                                                                    \
  template void kmeans_assign<T>(const CudaBackend&, HostMatrix<T>, RowWeights<T>, const T*, std::int64_t,          \
                                 std::int32_t*, double*, std::int64_t*, double*, double*, std::int64_t*);             \
  template double kmeans_predict<T>(const CudaBackend&, HostMatrix<T>, RowWeights<T>, const T*, std::int64_t,       \
                                    std::int32_t*);                                                                   \
  template void kmeans_distances_to_assigned<T>(const CudaBackend&, HostMatrix<T>, const T*, std::int64_t,           \
                                                const std::int32_t*, double*);                                        \
  template void kmeans_transform<T>(const CudaBackend&, HostMatrix<T>, const T*, std::int64_t, T*);                  \
  template double kmeans_update_closest<T>(const CudaBackend&, HostMatrix<T>, RowWeights<T>, const T*, double*,     \
                                           bool);                                                                     \
  template void kmeans_candidate_potentials<T>(const CudaBackend&, HostMatrix<T>, RowWeights<T>, const double*,     \
                                               const T*, std::int64_t, double*);                                      \
  template void kmeans_fetch_masses<T>(const CudaBackend&, RowWeights<T>, std::int64_t, const double*, T*,         \
                                       double*);                                                                      \
  template double mean_feature_variance<T>(const CudaBackend&, HostMatrix<T>);                                        \
  }                                                                                                                   \
  }
