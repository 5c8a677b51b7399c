#pragma once
// The host side of the Gaussian-mixture passes (mixtura/cuda/gmm_pass.hpp): the model to the device,
// the data walked chunk by chunk (context.cuh) and each chunk in groups of whole tiles, kernels
// enqueued on the context's stream, results back. Included once per scalar type by gmm_float.cu /
// gmm_double.cu, which instantiate it.
//
// E-step, per group of rows: log-densities into lp ([k][row], K doubles per row, never for all the
// data at once) -> normalise_kernel (responsibilities in place, row sums and lowest log-likelihoods
// per tile) -> gram_kernel or diag_moments_kernel (moments per tile) -> accumulate_partials (tile
// partials into the running totals, in tile order).
//
// Scoring (gmm_score_rows), per group of rows: log-densities into lp ([k][row]) -> score_rows_kernel
// (log p and the most probable component of each row) -> those N values back, never the N x K lp.
// gmm_weighted_log_prob (posteriors, per-component densities) copies lp back, K doubles a row.
//
// Initialisation passes (gmm_resp_stats): init_resp_kernel (given responsibilities: ones or random,
// and the tile's weight) -> the E-step's moments kernels -> accumulate_partials. Hard labels (the
// statistics of K-means labels): init_resp_kernel for the tile's weight alone -> gram_labels_kernel or
// diag_labels_kernel (each tile's rows sorted by label; a component's statistics walk its rows only,
// N D^2 or N D work instead of N K D^2 or N K D, no lp; the bits of the moments kernels on one-hot
// rows) -> accumulate_partials.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "context.cuh"
#include "gmm_kernels.cuh"
#include "mixtura/core/errors.hpp"
#include "mixtura/cuda/gmm_pass.hpp"
#include "mixtura/cuda/gmm_reduce.hpp"

namespace mixtura {
namespace cuda {
namespace gmm_detail {

/// Device memory one group of rows may take for its log-densities and tile partials.
inline constexpr std::size_t kGroupBytes = std::size_t{256} << 20;

/// Device buffers of the passes, kept by the context between calls (grow-only).
template <class T>
struct Workspace {
  DeviceBuffer<T> center, factors;
  DeviceBuffer<double> offset, constant, means, scale, lp, partials, totals, low_key;
  DeviceBuffer<std::int64_t> low_row;
  DeviceBuffer<std::int32_t> labels;
  PinnedBuffer<double> host_lp;
  std::vector<T> host_center, host_factors;
  std::vector<double> host_offset, host_totals;
};

inline bool gram_shape(GmmShape s) { return s == GmmShape::full || s == GmmShape::tied; }

inline void check_model(const char* where, const GmmPassModel& m, std::int64_t D) {
  MIXTURA_EXPECTS(m.K >= 1 && m.K <= (std::int64_t{1} << 20) && m.D >= 1 && m.D <= (std::int64_t{1} << 20),
                  "%s: n_components (%lld) and n_features (%lld) must be in [1, 2^20]", where,
                  static_cast<long long>(m.K), static_cast<long long>(m.D));
  MIXTURA_EXPECTS(m.D == D, "%s: the model has %lld features, the data %lld", where, static_cast<long long>(m.D),
                  static_cast<long long>(D));
  // Grid limits: components in gridDim.y of the log-density kernel (full/tied), components x
  // (features + 1) in gridDim.y x 256 threads of the diagonal moments.
  if (gram_shape(m.shape))
    MIXTURA_EXPECTS(m.K <= std::int64_t{65535} * gmm_kernels::kGroup, "%s: at most %lld components, got %lld", where,
                    static_cast<long long>(std::int64_t{65535} * gmm_kernels::kGroup), static_cast<long long>(m.K));
  else
    MIXTURA_EXPECTS(m.K * (m.D + 1) <= std::int64_t{65535} * 256,
                    "%s: n_components x (n_features + 1) = %lld exceeds %lld", where,
                    static_cast<long long>(m.K * (m.D + 1)), static_cast<long long>(std::int64_t{65535} * 256));
}

/// The model on the device: full/tied as c and the factors [C_1 ... C_K] (D x K D4, in T, columns
/// past D zero; tied repeats its one factor) with the offsets (K x D4, double); diag/spherical as
/// means and scales (double). Constants in double.
template <class T>
void upload_model(Context& ctx, Workspace<T>& ws, const GmmPassModel& m) {
  const cudaStream_t st = ctx.stream();
  const std::int64_t K = m.K, D = m.D, d4 = padded4(static_cast<int>(D));
  copy_to_device(ws.constant.reserve(static_cast<std::size_t>(K)), m.constant, K, st);
  if (gram_shape(m.shape)) {
    ws.host_center.resize(static_cast<std::size_t>(D));
    ws.host_factors.resize(static_cast<std::size_t>(D * K * d4));
    ws.host_offset.resize(static_cast<std::size_t>(K * d4));
    pack_full_model(m, ws.host_center.data(), ws.host_factors.data(), ws.host_offset.data());
    copy_to_device(ws.center.reserve(static_cast<std::size_t>(D)), ws.host_center.data(), D, st);
    copy_to_device(ws.factors.reserve(ws.host_factors.size()), ws.host_factors.data(), D * K * d4, st);
    copy_to_device(ws.offset.reserve(ws.host_offset.size()), ws.host_offset.data(), K * d4, st);
  } else {
    const std::int64_t n_scale = m.shape == GmmShape::spherical ? K : K * D;
    copy_to_device(ws.means.reserve(static_cast<std::size_t>(K * D)), m.means, K * D, st);
    copy_to_device(ws.scale.reserve(static_cast<std::size_t>(n_scale)), m.scale, n_scale, st);
  }
}

/// lp[row * rs + k * ks] for rows [0, rows) of x.
template <class T>
void launch_log_density(Context& ctx, const Workspace<T>& ws, const GmmPassModel& m, const T* x, std::int64_t rows,
                        double* lp, std::int64_t rs, std::int64_t ks) {
  const int K = static_cast<int>(m.K), D = static_cast<int>(m.D);
  if (gram_shape(m.shape)) {
    const dim3 grid(grid_for(rows, gmm_kernels::kBM), static_cast<unsigned>((K + gmm_kernels::kGroup - 1) / gmm_kernels::kGroup));
    gmm_kernels::log_density_full_kernel<T><<<grid, gmm_kernels::kThreads, 0, ctx.stream()>>>(
        x, rows, D, K, ws.center.data(), ws.factors.data(), ws.offset.data(), ws.constant.data(), lp, rs, ks);
    MIXTURA_CUDA_CHECK_LAUNCH("log_density_full_kernel");
  } else {
    gmm_kernels::log_density_diag_kernel<T><<<grid_for(rows, 256), 256, 0, ctx.stream()>>>(
        x, rows, D, K, m.shape == GmmShape::spherical, ws.means.data(), ws.scale.data(), ws.constant.data(), lp, rs, ks);
    MIXTURA_CUDA_CHECK_LAUNCH("log_density_diag_kernel");
  }
}

/// What every pass opens with: the model checked against the data (before the device is touched),
/// the context locked and made current (PassGuard), the workspace, the model on the device.
template <class T>
struct Pass {
  PassGuard guard;
  Context& ctx;
  Workspace<T>& ws;
  cudaStream_t st;

  Pass(const CudaBackend& be, const char* where, const GmmPassModel& m, std::int64_t D)
      : guard(checked(be, where, m, D), where), ctx(guard.ctx()), ws(ctx.extension<Workspace<T>>()), st(ctx.stream()) {
    upload_model(ctx, ws, m);
  }
  static const CudaBackend& checked(const CudaBackend& be, const char* where, const GmmPassModel& m, std::int64_t D) {
    check_model(where, m, D);
    return be;
  }
};

/// The moments of a group's rows into its tile partials: gram_kernel (full/tied, around ws.center) or
/// diag_moments_kernel (diag/spherical, around ws.means). R: the group's w r, layout [k][row], ld.
template <class T>
void launch_moments(const Workspace<T>& ws, bool gram, const GramLayout& g, const GmmPartialLayout& l, const T* x,
                    std::int64_t rows, int K, int D, const double* R, std::int64_t ld, double* partials,
                    cudaStream_t st) {
  const std::int64_t tiles = tile_count(rows);
  if (gram) {
    const dim3 grid(static_cast<unsigned>(g.n_blocks()), static_cast<unsigned>(tiles));
    gmm_kernels::gram_kernel<T><<<grid, GramLayout::kThreads, g.shared_bytes, st>>>(x, rows, ws.center.data(), R, ld, g,
                                                                                    l, partials);
    MIXTURA_CUDA_CHECK_LAUNCH("gram_kernel");
  } else {
    const dim3 grid(static_cast<unsigned>(tiles), grid_for(static_cast<std::int64_t>(K) * (D + 1), 256));
    gmm_kernels::diag_moments_kernel<T><<<grid, 256, 0, st>>>(x, rows, D, K, ws.means.data(), R, ld, l, partials);
    MIXTURA_CUDA_CHECK_LAUNCH("diag_moments_kernel");
  }
}

/// The moments of one-hot responsibilities of a group's labels into its tile partials, without lp:
/// gram_labels_kernel (full/tied, around ws.center) or diag_labels_kernel (diag/spherical, around
/// ws.means); the same partials, bit for bit, as launch_moments on the one-hot w r. w: the group's
/// weights or nullptr.
template <class T>
void launch_label_moments(const Workspace<T>& ws, bool gram, const GramLayout& g, const GmmPartialLayout& l,
                          const T* x, std::int64_t rows, int K, int D, const std::int32_t* labels, const T* w,
                          double* partials, cudaStream_t st) {
  const std::int64_t tiles = tile_count(rows);
  if (gram) {
    const GramLabelStaging s = gram_label_staging(g, sizeof(T));
    const dim3 grid(static_cast<unsigned>(g.n_blocks()), static_cast<unsigned>(tiles));
    gmm_kernels::gram_labels_kernel<T><<<grid, GramLayout::kThreads, s.shared_bytes, st>>>(x, rows, ws.center.data(),
                                                                                           labels, w, g, s, l, partials);
    MIXTURA_CUDA_CHECK_LAUNCH("gram_labels_kernel");
  } else {
    const dim3 grid(static_cast<unsigned>(tiles),
                    grid_for(static_cast<std::int64_t>(K) * (D + 1), gmm_kernels::kLabelThreads));
    gmm_kernels::diag_labels_kernel<T><<<grid, gmm_kernels::kLabelThreads, 0, st>>>(x, rows, D, K, ws.means.data(),
                                                                                   labels, w, l, partials);
    MIXTURA_CUDA_CHECK_LAUNCH("diag_labels_kernel");
  }
}

/// The running totals (in host memory) as a pass's statistics: nk, s1, s2 and the row sums.
inline void unpack_stats(const double* t, const GmmPartialLayout& l, const GramLayout& g, GmmPassStats& out) {
  out.nk.assign(static_cast<std::size_t>(l.K), 0.0);
  out.s1.assign(static_cast<std::size_t>(l.K * l.D), 0.0);
  out.s2.assign(static_cast<std::size_t>(l.K * l.D * (l.gram ? l.D : 1)), 0.0);
  unpack_totals(t, l, g, out.nk.data(), out.s1.data(), out.s2.data());
  out.log_likelihood = t[GmmPartialLayout::kLogLikelihood];
  out.entropy = t[GmmPartialLayout::kEntropy];
  out.weight = t[GmmPartialLayout::kWeight];
  out.low_log_p.clear();
  out.low_row.clear();
}

}  // namespace gmm_detail

template <class T>
void gmm_e_step(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const GmmPassModel& m, std::int64_t n_worst,
                GmmPassStats& out) {
  gmm_detail::Pass<T> pass(be, "gmm_e_step (CUDA)", m, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const cudaStream_t st = pass.st;
  const int K = static_cast<int>(m.K), D = static_cast<int>(m.D);
  const bool gram = gmm_detail::gram_shape(m.shape);

  const GramLayout g = gram_layout(K, D, sizeof(T));
  const GmmPartialLayout l = partial_layout(m.shape, K, D, g);
  const std::int64_t width = l.width();
  const std::int64_t n_low = std::min<std::int64_t>(std::max<std::int64_t>(n_worst, 0), kGmmTileRows);
  const std::int64_t all_tiles = tile_count(X.rows);
  const std::int64_t group = std::min(group_tiles(K, width, gmm_detail::kGroupBytes), std::max<std::int64_t>(all_tiles, 1));
  double* lp = ws.lp.reserve(static_cast<std::size_t>(group * kGmmTileRows * K));
  double* partials = ws.partials.reserve(static_cast<std::size_t>(group * width));
  double* totals = ws.totals.reserve(static_cast<std::size_t>(width));
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(totals, 0, static_cast<std::size_t>(width) * sizeof(double), st));
  double* low_key = n_low > 0 ? ws.low_key.reserve(static_cast<std::size_t>(all_tiles * n_low)) : nullptr;
  std::int64_t* low_row = n_low > 0 ? ws.low_row.reserve(static_cast<std::size_t>(all_tiles * n_low)) : nullptr;

  ctx.for_each_chunk(X, w, [&](const DeviceChunk<T>& c) {
    for (std::int64_t g0 = 0; g0 < c.rows; g0 += group * kGmmTileRows) {
      const std::int64_t rows = std::min(group * kGmmTileRows, c.rows - g0), tiles = tile_count(rows);
      const std::int64_t ld = tiles * kGmmTileRows, first = c.first + g0;  // first: a multiple of kGmmTileRows
      const T* x = c.x + g0 * D;
      const T* wg = c.w ? c.w + g0 : nullptr;
      gmm_detail::launch_log_density(ctx, ws, m, x, rows, lp, 1, ld);
      const std::int64_t low_at = first / kGmmTileRows * n_low;
      gmm_kernels::normalise_kernel<T><<<static_cast<unsigned>(tiles), gmm_kernels::kNormThreads, 0, st>>>(
          lp, ld, rows, K, wg, partials, width, static_cast<int>(n_low), first, n_low > 0 ? low_key + low_at : nullptr,
          n_low > 0 ? low_row + low_at : nullptr);
      MIXTURA_CUDA_CHECK_LAUNCH("normalise_kernel");
      gmm_detail::launch_moments(ws, gram, g, l, x, rows, K, D, lp, ld, partials, st);
      accumulate_partials(partials, tiles, width, totals, st);
    }
  });

  ws.host_totals.resize(static_cast<std::size_t>(width));
  copy_to_host(ws.host_totals.data(), totals, width, st);
  std::vector<double> keys(static_cast<std::size_t>(all_tiles * n_low));
  std::vector<std::int64_t> key_rows(keys.size());
  copy_to_host(keys.data(), low_key, static_cast<std::int64_t>(keys.size()), st);
  copy_to_host(key_rows.data(), low_row, static_cast<std::int64_t>(key_rows.size()), st);
  ctx.synchronize();

  gmm_detail::unpack_stats(ws.host_totals.data(), l, g, out);
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (keys[i] < HUGE_VAL) {
      out.low_log_p.push_back(keys[i]);
      out.low_row.push_back(key_rows[i]);
    }
}

template <class T>
void gmm_resp_stats(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, GmmShape shape, std::int64_t n_components,
                    const GmmRespSource& src, const double* center, const double* means, GmmPassStats& out) {
  const char* where = "gmm_resp_stats (CUDA)";
  GmmPassModel shape_only;
  shape_only.shape = shape;
  shape_only.K = n_components;
  shape_only.D = X.cols;
  gmm_detail::check_model(where, shape_only, X.cols);
  MIXTURA_EXPECTS(src.kind != GmmRespSource::Kind::labels || src.labels != nullptr, "%s: no labels given", where);
  MIXTURA_EXPECTS(src.kind != GmmRespSource::Kind::ones || n_components == 1, "%s: unit responsibilities need one component",
                  where);
  PassGuard guard(be, where);
  Context& ctx = guard.ctx();
  auto& ws = ctx.extension<gmm_detail::Workspace<T>>();
  const cudaStream_t st = ctx.stream();
  const int K = static_cast<int>(n_components), D = static_cast<int>(X.cols);
  const bool gram = gmm_detail::gram_shape(shape);
  if (gram) {
    ws.host_center.resize(static_cast<std::size_t>(D));
    for (int j = 0; j < D; ++j) ws.host_center[static_cast<std::size_t>(j)] = static_cast<T>(center[j]);
    copy_to_device(ws.center.reserve(static_cast<std::size_t>(D)), ws.host_center.data(), D, st);
  } else {
    copy_to_device(ws.means.reserve(static_cast<std::size_t>(K) * D), means, static_cast<std::int64_t>(K) * D, st);
  }
  std::int32_t* labels = nullptr;
  if (src.kind == GmmRespSource::Kind::labels) {  // 4 bytes a row, once per call (once per restart of a fit)
    labels = ws.labels.reserve(static_cast<std::size_t>(X.rows));
    copy_to_device(labels, src.labels, X.rows, st);
  }
  GmmRespSource on_device = src;
  on_device.labels = nullptr;  // the kernel reads the device copy

  const GramLayout g = gram_layout(K, D, sizeof(T));
  const GmmPartialLayout l = partial_layout(shape, K, D, g);
  const std::int64_t width = l.width();
  const std::int64_t group = std::min(group_tiles(labels ? 0 : K, width, gmm_detail::kGroupBytes),
                                      std::max<std::int64_t>(tile_count(X.rows), 1));
  // Labels: no lp; the label kernels read the labels themselves.
  double* lp = labels ? nullptr : ws.lp.reserve(static_cast<std::size_t>(group * kGmmTileRows * K));
  double* partials = ws.partials.reserve(static_cast<std::size_t>(group * width));
  double* totals = ws.totals.reserve(static_cast<std::size_t>(width));
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(totals, 0, static_cast<std::size_t>(width) * sizeof(double), st));

  ctx.for_each_chunk(X, w, [&](const DeviceChunk<T>& c) {
    for (std::int64_t g0 = 0; g0 < c.rows; g0 += group * kGmmTileRows) {
      const std::int64_t rows = std::min(group * kGmmTileRows, c.rows - g0), tiles = tile_count(rows);
      const std::int64_t ld = tiles * kGmmTileRows, first = c.first + g0;
      const T* x = c.x + g0 * D;
      const T* wg = c.w ? c.w + g0 : nullptr;
      gmm_kernels::init_resp_kernel<T><<<static_cast<unsigned>(tiles), gmm_kernels::kNormThreads, 0, st>>>(
          lp, ld, rows, K, wg, on_device, first, partials, width);
      MIXTURA_CUDA_CHECK_LAUNCH("init_resp_kernel");
      if (labels)
        gmm_detail::launch_label_moments(ws, gram, g, l, x, rows, K, D, labels + first, wg, partials, st);
      else
        gmm_detail::launch_moments(ws, gram, g, l, x, rows, K, D, lp, ld, partials, st);
      accumulate_partials(partials, tiles, width, totals, st);
    }
  });
  ws.host_totals.resize(static_cast<std::size_t>(width));
  copy_to_host(ws.host_totals.data(), totals, width, st);
  ctx.synchronize();
  gmm_detail::unpack_stats(ws.host_totals.data(), l, g, out);
}

template <class T>
void gmm_weighted_log_prob(const CudaBackend& be, HostMatrix<T> X, const GmmPassModel& m, const GmmLogProbSink& sink) {
  gmm_detail::Pass<T> pass(be, "gmm_weighted_log_prob (CUDA)", m, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  const std::int64_t K = m.K;
  const std::int64_t group = std::min(group_tiles(K, 0, gmm_detail::kGroupBytes / 4),
                                      std::max<std::int64_t>(tile_count(X.rows), 1));
  const std::size_t n = static_cast<std::size_t>(group * kGmmTileRows * K);
  double* lp = ws.lp.reserve(n);
  double* host = ws.host_lp.reserve(n);
  ctx.for_each_chunk(X, static_cast<const T*>(nullptr), [&](const DeviceChunk<T>& c) {
    for (std::int64_t g0 = 0; g0 < c.rows; g0 += group * kGmmTileRows) {
      const std::int64_t rows = std::min(group * kGmmTileRows, c.rows - g0);
      gmm_detail::launch_log_density(ctx, ws, m, c.x + g0 * c.cols, rows, lp, K, 1);
      copy_to_host(host, lp, rows * K, pass.st);
      ctx.synchronize();  // the sink reads the host copy; the device buffer is reused by the next group
      sink(c.first + g0, rows, host);
    }
  });
}

namespace gmm_detail {
/// The scoring pass's per-row results on the device, one group of rows at a time (grow-only).
struct ScoreWorkspace {
  DeviceBuffer<double> log_p;
  DeviceBuffer<std::int32_t> labels;
};
}  // namespace gmm_detail

template <class T>
void gmm_score_rows(const CudaBackend& be, HostMatrix<T> X, const GmmPassModel& m, double* log_p,
                    std::int32_t* labels) {
  gmm_detail::Pass<T> pass(be, "gmm_score_rows (CUDA)", m, X.cols);
  Context& ctx = pass.ctx;
  auto& ws = pass.ws;
  auto& out = ctx.extension<gmm_detail::ScoreWorkspace>();
  const int K = static_cast<int>(m.K);
  // Per row of a group: K log-densities, then 8 bytes of log p and 4 of label (K + 2 doubles bound it).
  const std::int64_t group = std::min(group_tiles(K + 2, 0, gmm_detail::kGroupBytes),
                                      std::max<std::int64_t>(tile_count(X.rows), 1));
  const std::size_t group_rows = static_cast<std::size_t>(group * kGmmTileRows);
  double* lp = ws.lp.reserve(group_rows * static_cast<std::size_t>(K));
  double* dlog_p = log_p ? out.log_p.reserve(group_rows) : nullptr;
  std::int32_t* dlabels = labels ? out.labels.reserve(group_rows) : nullptr;
  ctx.for_each_chunk(X, static_cast<const T*>(nullptr), [&](const DeviceChunk<T>& c) {
    for (std::int64_t g0 = 0; g0 < c.rows; g0 += group * kGmmTileRows) {
      const std::int64_t rows = std::min(group * kGmmTileRows, c.rows - g0), first = c.first + g0;
      const std::int64_t ld = tile_count(rows) * kGmmTileRows;
      gmm_detail::launch_log_density(ctx, ws, m, c.x + g0 * c.cols, rows, lp, 1, ld);  // [k][row]: coalesced below
      gmm_kernels::score_rows_kernel<T><<<grid_for(rows, 256), 256, 0, pass.st>>>(lp, ld, rows, K, dlog_p, dlabels);
      MIXTURA_CUDA_CHECK_LAUNCH("score_rows_kernel");
      // Stream order keeps the next group's kernels off these buffers until the copies have read them.
      if (log_p) copy_to_host(log_p + first, dlog_p, rows, pass.st);
      if (labels) copy_to_host(labels + first, dlabels, rows, pass.st);
    }
  });
  ctx.synchronize();
}

}  // namespace cuda
}  // namespace mixtura

// Explicit instantiation of every pass for one scalar type (used by gmm_float.cu, gmm_double.cu).
#define MIXTURA_INSTANTIATE_GMM_PASSES(T)                                                                      \
  namespace mixtura {                                                                                          \
  namespace cuda {                                                                                             \
  template void gmm_e_step<T>(const CudaBackend&, HostMatrix<T>, RowWeights<T>, const GmmPassModel&, std::int64_t, \
                              GmmPassStats&);                                                                  \
  template void gmm_weighted_log_prob<T>(const CudaBackend&, HostMatrix<T>, const GmmPassModel&,               \
                                         const GmmLogProbSink&);                                               \
  template void gmm_score_rows<T>(const CudaBackend&, HostMatrix<T>, const GmmPassModel&, double*,             \
                                  std::int32_t*);                                                              \
  template void gmm_resp_stats<T>(const CudaBackend&, HostMatrix<T>, RowWeights<T>, GmmShape, std::int64_t,    \
                                  const GmmRespSource&, const double*, const double*, GmmPassStats&);           \
  }                                                                                                            \
  }
