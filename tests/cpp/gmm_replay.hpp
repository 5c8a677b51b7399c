#pragma once
// A "replay backend" for the Gaussian-mixture tests: the CUDA E-step, initialisation and scoring passes
// run on the host, tile by tile, with the very functions the kernels call (mixtura/cuda/gmm_reduce.hpp),
// in the kernels' order and precision (T products, double sums), through the same model packing and
// result unpacking as the CUDA backend. The K-means passes (behind init = kmeans and k-means++) are the
// CPU's.
//
// Device-resident X and weights (DeviceMatrixView, DeviceVectorView) on the replayed passes:
// HostUnreadableCopy (kmeans_replay.hpp), made on the backend's `device` member, puts the data behind an
// address the host cannot read (PROT_NONE); the passes (the K-means ones too), fetch_rows,
// first_non_finite and first_bad_weight translate the address, the way the device reads its memory. A
// fit loop that reads X or the weights on the host itself faults.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gmm_util.hpp"
#include "kmeans_replay.hpp"
#include "mixtura/cuda/gmm_pass.hpp"
#include "mixtura/cuda/gmm_reduce.hpp"
#include "mixtura/gmm/cuda_pass.hpp"

namespace mixtura_test {

using namespace mixtura;

/// A backend whose passes replay the CUDA kernels on the host.
struct ReplayBackend {
  int n_threads = 1;
  /// Where HostUnreadableCopy registers "device" copies of X and of the weights (make them with
  /// HostUnreadableCopy<T>(be.device, X)); device.state->n_device_reads counts the loop's fetch_rows,
  /// first_non_finite and first_bad_weight on them.
  KMeansReplayBackend device;
};
inline NoDataScope data_scope(const ReplayBackend&) { return {}; }

/// The moments kernels on one tile (gram_kernel: every thread block, every thread, the rows staged as
/// the kernel stages them; or diag_moments_kernel) into its partial: x the tile's n dense rows, lp its
/// w r ([k][row], ld kGmmTileRows); around center (full/tied, T) or means (diag/spherical, K x D).
template <class T>
void replay_tile_moments(const T* x, std::int64_t n, int K, int D, const double* lp, bool gram,
                         const cuda::GramLayout& g, const cuda::GmmPartialLayout& l, const T* center,
                         const double* means, double* partial) {
  using namespace mixtura::cuda;
  const std::int64_t tile = kGmmTileRows;
  if (gram) {  // gram_kernel: every thread block, every thread, the rows staged as the kernel stages them
    for (std::int64_t b = 0; b < g.n_blocks(); ++b) {
      std::vector<T> acc(GramLayout::kThreads * 16, T(0));
      std::vector<double> total(GramLayout::kThreads * 16, 0.0);
      std::vector<T> z(static_cast<std::size_t>(g.row_chunk) * g.E4), r(static_cast<std::size_t>(g.row_chunk) * g.kb);
      const int k_first = g.first_component(b);
      for (std::int64_t c0 = 0; c0 < n; c0 += g.row_chunk) {
        const int rows = static_cast<int>(std::min<std::int64_t>(g.row_chunk, n - c0));
        for (int i = 0; i < g.row_chunk; ++i) {
          for (int a = 0; a < g.E4; ++a)
            z[i * g.E4 + a] = i < rows ? (a < D ? static_cast<T>(x[(c0 + i) * D + a] - center[a]) : T(a == D ? 1 : 0)) : T(0);
          for (int kk = 0; kk < g.kb; ++kk)
            r[i * g.kb + kk] = i < rows && k_first + kk < K ? static_cast<T>(lp[(k_first + kk) * tile + c0 + i]) : T(0);
        }
        for (int t = 0; t < GramLayout::kThreads; ++t) {
          int k, kl, p, ba, bb;
          if (!g.item_of(b, t, &k, &kl, &p)) continue;
          g.pair(p, &ba, &bb);
          gram_accumulate(z.data(), g.E4, r.data(), g.kb, kl, rows, ba, bb, &acc[t * 16]);
          for (int q = 0; q < 16; ++q) {
            total[t * 16 + q] += static_cast<double>(acc[t * 16 + q]);
            acc[t * 16 + q] = T(0);
          }
        }
      }
      for (int t = 0; t < GramLayout::kThreads; ++t) {
        int k, kl, p;
        if (!g.item_of(b, t, &k, &kl, &p)) continue;
        for (int q = 0; q < 16; ++q) partial[l.gram_at(static_cast<std::int64_t>(k) * g.n_pairs + p, q)] = total[t * 16 + q];
      }
    }
  } else {  // diag_moments_kernel
    for (int k = 0; k < K; ++k)
      for (int j = 0; j <= D; ++j) {
        double s1, s2;
        diag_moments(x, D, &lp[k * tile], n, j, j < D ? means[k * D + j] : 0.0, &s1, &s2);
        if (j == D) {
          partial[l.nk_at(k)] = s1;
        } else {
          partial[l.s1_at(k, j)] = s1;
          partial[l.s2_at(k, j)] = s2;
        }
      }
  }
}

/// What a label kernel's block sorts a tile into (sort_tile_by_label): the tile's rows (labels: n of
/// them) of components [k_first, k_first + nc), by label and in row order within a label; rows of
/// component k_first + j at order[start[j] .. start[j + 1]).
inline void stable_label_order(const std::int32_t* labels, std::int64_t n, int k_first, int nc,
                               std::vector<std::int16_t>& order, std::vector<int>& start) {
  start.assign(static_cast<std::size_t>(nc) + 1, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const int key = cuda::label_key(labels[i], k_first, nc);
    if (key < nc) ++start[static_cast<std::size_t>(key) + 1];
  }
  for (int j = 0; j < nc; ++j) start[j + 1] += start[j];
  order.assign(static_cast<std::size_t>(start[nc]), 0);
  std::vector<int> next(start.begin(), start.end() - 1);
  for (std::int64_t i = 0; i < n; ++i) {
    const int key = cuda::label_key(labels[i], k_first, nc);
    if (key < nc) order[static_cast<std::size_t>(next[key]++)] = static_cast<std::int16_t>(i);
  }
}

/// The label kernels on one tile (gram_labels_kernel: every thread block, its sort, its rounds of staged
/// rows, every thread's walk; or diag_labels_kernel: every block's sort, every item) into its partial:
/// x the tile's n dense rows, labels and w (nullptr: 1) the tile's; around center (full/tied, T) or
/// means (diag/spherical, K x D).
template <class T>
void replay_tile_label_moments(const T* x, std::int64_t n, int K, int D, const std::int32_t* labels, const T* w,
                               bool gram, const cuda::GramLayout& g, const cuda::GmmPartialLayout& l, const T* center,
                               const double* means, double* partial) {
  using namespace mixtura::cuda;
  std::vector<std::int16_t> order;
  std::vector<int> start;
  if (!gram) {  // diag_labels_kernel: blocks of 256 items, each sorting the rows of its components
    const std::int64_t n_items = static_cast<std::int64_t>(K) * (D + 1), block = 256;
    for (std::int64_t e0 = 0; e0 < n_items; e0 += block) {
      const int k_first = static_cast<int>(e0 / (D + 1));
      const int nc = static_cast<int>((std::min(n_items, e0 + block) - 1) / (D + 1)) - k_first + 1;
      stable_label_order(labels, n, k_first, nc, order, start);
      for (std::int64_t e = e0; e < std::min(n_items, e0 + block); ++e) {
        const int k = static_cast<int>(e / (D + 1)), j = static_cast<int>(e % (D + 1)), kl = k - k_first;
        double s1, s2;
        diag_label_moments(x, D, w, order.data() + start[kl], start[kl + 1] - start[kl], j,
                           j < D ? means[k * D + j] : 0.0, &s1, &s2);
        if (j == D) {
          partial[l.nk_at(k)] = s1;
        } else {
          partial[l.s1_at(k, j)] = s1;
          partial[l.s2_at(k, j)] = s2;
        }
      }
    }
    return;
  }
  const GramLabelStaging st = gram_label_staging(g, sizeof(T));
  const int Q = st.per_component, slots = g.kb * Q, threads = GramLayout::kThreads;
  std::vector<T> z(static_cast<std::size_t>(slots) * g.E4), wt(static_cast<std::size_t>(slots));
  std::vector<std::int16_t> tile_row(static_cast<std::size_t>(slots));
  for (std::int64_t b = 0; b < g.n_blocks(); ++b) {
    const int k_first = g.first_component(b), nc = std::min(g.kb, g.K - k_first);
    stable_label_order(labels, n, k_first, nc, order, start);
    int most = 0;
    for (int j = 0; j < nc; ++j) most = std::max(most, start[j + 1] - start[j]);
    std::vector<T> acc(static_cast<std::size_t>(threads) * 16, T(0));
    std::vector<double> total(static_cast<std::size_t>(threads) * 16, 0.0);
    std::vector<int> window(static_cast<std::size_t>(threads), -1);
    for (int done = 0; done < most; done += Q) {
      for (int e = 0; e < slots; ++e) {  // staged as the kernel stages them
        const int j = e / Q, i = done + e % Q;
        const bool valid = j < nc && i < start[j + 1] - start[j];
        tile_row[e] = valid ? order[static_cast<std::size_t>(start[j] + i)] : std::int16_t{0};
        wt[e] = valid ? (w ? w[tile_row[e]] : T(1)) : T(0);
        for (int a = 0; a < g.E4; ++a)
          z[static_cast<std::size_t>(e) * g.E4 + a] =
              a < D ? static_cast<T>(x[tile_row[e] * D + a] - center[a]) : T(a == D ? 1 : 0);
      }
      for (int t = 0; t < threads; ++t) {
        int k, kl, p, ba, bb;
        if (!g.item_of(b, t, &k, &kl, &p)) continue;
        g.pair(p, &ba, &bb);
        const int m = std::min(Q, start[kl + 1] - start[kl] - done);
        if (m > 0)
          gram_label_walk(&z[static_cast<std::size_t>(kl) * Q * g.E4], g.E4, &wt[static_cast<std::size_t>(kl) * Q],
                          &tile_row[static_cast<std::size_t>(kl) * Q], m, g.row_chunk, ba, bb, &acc[t * 16],
                          &total[t * 16], &window[t]);
      }
    }
    for (int t = 0; t < threads; ++t) {
      int k, kl, p;
      if (!g.item_of(b, t, &k, &kl, &p)) continue;
      gram_flush(&acc[t * 16], &total[t * 16]);
      for (int q = 0; q < 16; ++q) partial[l.gram_at(static_cast<std::int64_t>(k) * g.n_pairs + p, q)] = total[t * 16 + q];
    }
  }
}

/// The E-step pass as the device computes it, tile after tile (grouping and chunking do not change
/// the tiles, so they are not replayed).
template <class T>
cuda::GmmPassStats replay_e_step(MatrixView<T> X, VectorView<T> w, const cuda::GmmPassModel& m, std::int64_t n_worst) {
  using namespace mixtura::cuda;
  const int K = static_cast<int>(m.K), D = static_cast<int>(m.D);
  const std::int64_t tile = kGmmTileRows;
  const bool gram = m.shape == GmmShape::full || m.shape == GmmShape::tied;
  const GramLayout g = gram_layout(K, D, sizeof(T));
  const GmmPartialLayout l = partial_layout(m.shape, K, D, g);
  const int d4 = padded4(D);
  std::vector<T> center(D), factors(static_cast<std::size_t>(D) * K * d4);
  std::vector<double> offset(static_cast<std::size_t>(K) * d4);
  if (gram) pack_full_model(m, center.data(), factors.data(), offset.data());
  const std::int64_t n_low = std::min<std::int64_t>(n_worst, tile);
  std::vector<double> totals(static_cast<std::size_t>(l.width()), 0.0), low_key;
  std::vector<std::int64_t> low_row;
  for (std::int64_t r0 = 0; r0 < X.rows; r0 += tile) {
    const std::int64_t n = std::min(tile, X.rows - r0);
    std::vector<T> x(static_cast<std::size_t>(n * D));  // the tile, dense as on the device
    for (std::int64_t i = 0; i < n; ++i) std::copy_n(X.row(r0 + i), D, x.begin() + i * D);
    std::vector<double> lp(static_cast<std::size_t>(K * tile)), partial(static_cast<std::size_t>(l.width()), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (int k = 0; k < K; ++k)
        lp[k * tile + i] = gram ? full_log_density_reference(&x[i * D], center.data(), factors.data(), offset.data(),
                                                             m.constant[k], D, K, k)
                                : diag_log_density(&x[i * D], m.means + k * D,
                                                   m.scale + k * (m.shape == GmmShape::spherical ? 1 : D),
                                                   m.shape == GmmShape::spherical, D, m.constant[k]);
    // normalise_kernel: one thread per row, the row sums by the tree, the lowest by the network.
    std::vector<double> sums[3], key(tile, std::numeric_limits<double>::infinity());
    std::vector<std::int64_t> idx(tile);
    for (auto& v : sums) v.assign(tile, 0.0);
    for (std::int64_t i = 0; i < tile; ++i) {
      idx[i] = r0 + i;
      if (i >= n) continue;
      const double wr = w.empty() ? 1.0 : static_cast<double>(w[r0 + i]);
      double log_p, entropy;
      normalise_row(&lp[i], tile, K, wr, &log_p, &entropy);
      sums[0][i] = wr * log_p;
      sums[1][i] = wr * entropy;
      sums[2][i] = wr;
      if (wr > 0) key[i] = log_p;
    }
    for (int q = 0; q < 3; ++q) partial[q] = tile_tree_sum(sums[q].data(), static_cast<int>(tile));
    for (int k = 2; k <= tile; k *= 2)
      for (int j = k / 2; j > 0; j /= 2)
        for (int t = 0; t < tile; ++t) bitonic_step(key.data(), idx.data(), t, j, k);
    for (std::int64_t t = 0; t < n_low; ++t)
      if (key[t] < std::numeric_limits<double>::infinity()) {
        low_key.push_back(key[t]);
        low_row.push_back(idx[t]);
      }
    replay_tile_moments(x.data(), n, K, D, lp.data(), gram, g, l, center.data(), m.means, partial.data());
    for (std::size_t c = 0; c < totals.size(); ++c) totals[c] += partial[c];  // accumulate_partials
  }
  cuda::GmmPassStats out;
  out.nk.assign(K, 0.0);
  out.s1.assign(static_cast<std::size_t>(K) * D, 0.0);
  out.s2.assign(static_cast<std::size_t>(K) * D * (gram ? D : 1), 0.0);
  unpack_totals(totals.data(), l, g, out.nk.data(), out.s1.data(), out.s2.data());
  out.log_likelihood = totals[GmmPartialLayout::kLogLikelihood];
  out.entropy = totals[GmmPartialLayout::kEntropy];
  out.weight = totals[GmmPartialLayout::kWeight];
  out.low_log_p = low_key;
  out.low_row = low_row;
  return out;
}

/// The initialisation pass (cuda::gmm_resp_stats) as the device computes it, tile after tile:
/// init_resp_kernel's responsibilities and tree, then the moments kernels; for labels the tree alone,
/// then the label kernels (replay_tile_label_moments). one_hot_labels: labels through
/// init_resp_row's one-hot rows and the moments kernels instead (the route of before, a reference
/// the label kernels must give the bits of).
template <class T>
cuda::GmmPassStats replay_resp_stats(MatrixView<T> X, VectorView<T> w, cuda::GmmShape shape, int K,
                                     const cuda::GmmRespSource& src, const double* center, const double* means,
                                     bool one_hot_labels = false) {
  using namespace mixtura::cuda;
  const int D = static_cast<int>(X.cols);
  const std::int64_t tile = kGmmTileRows;
  const bool gram = shape == GmmShape::full || shape == GmmShape::tied;
  const GramLayout g = gram_layout(K, D, sizeof(T));
  const GmmPartialLayout l = partial_layout(shape, K, D, g);
  std::vector<T> c(static_cast<std::size_t>(D));
  if (gram)
    for (int j = 0; j < D; ++j) c[j] = static_cast<T>(center[j]);
  std::vector<double> totals(static_cast<std::size_t>(l.width()), 0.0);
  for (std::int64_t r0 = 0; r0 < X.rows; r0 += tile) {
    const std::int64_t n = std::min(tile, X.rows - r0);
    std::vector<T> x(static_cast<std::size_t>(n * D));
    for (std::int64_t i = 0; i < n; ++i) std::copy_n(X.row(r0 + i), D, x.begin() + i * D);
    std::vector<double> lp(static_cast<std::size_t>(K * tile)), partial(static_cast<std::size_t>(l.width()), 0.0);
    std::vector<double> weights(tile, 0.0);
    const bool by_label = src.kind == GmmRespSource::Kind::labels && !one_hot_labels;
    for (std::int64_t i = 0; i < n; ++i) {
      weights[i] = w.empty() ? 1.0 : static_cast<double>(w[r0 + i]);
      if (!by_label)
        init_resp_row(src, src.kind == GmmRespSource::Kind::labels ? src.labels[r0 + i] : 0, r0 + i, K, weights[i], &lp[i], tile);
    }
    partial[GmmPartialLayout::kWeight] = tile_tree_sum(weights.data(), static_cast<int>(tile));
    if (by_label)
      replay_tile_label_moments(x.data(), n, K, D, src.labels + r0, w.empty() ? nullptr : w.data + r0, gram, g, l, c.data(),
                                means, partial.data());
    else
      replay_tile_moments(x.data(), n, K, D, lp.data(), gram, g, l, c.data(), means, partial.data());
    for (std::size_t q = 0; q < totals.size(); ++q) totals[q] += partial[q];  // accumulate_partials
  }
  cuda::GmmPassStats out;
  out.nk.assign(K, 0.0);
  out.s1.assign(static_cast<std::size_t>(K) * D, 0.0);
  out.s2.assign(static_cast<std::size_t>(K) * D * (gram ? D : 1), 0.0);
  unpack_totals(totals.data(), l, g, out.nk.data(), out.s1.data(), out.s2.data());
  out.weight = totals[GmmPartialLayout::kWeight];
  return out;
}

/// Where the replayed passes find the values of X and of the weights: a host view as it is, a "device"
/// view translated.
template <class T>
MatrixView<T> host_view(const ReplayBackend&, MatrixView<T> X) {
  return X;
}
template <class T>
MatrixView<T> host_view(const ReplayBackend& be, DeviceMatrixView<T> X) {
  return on_host(be.device, X);
}
template <class T>
VectorView<T> host_view(const ReplayBackend&, VectorView<T> w) {
  return w;
}
template <class T>
VectorView<T> host_view(const ReplayBackend& be, DeviceVectorView<T> w) {
  return on_host(be.device, w);
}

template <template <class> class View, template <class> class WView, class T>
GmmStats gmm_e_step(const ReplayBackend& be, View<T> X, WView<T> w, const GmmModel& m, std::size_t n_worst) {
  const auto pm = detail::GmmPassModelData::of<T>(m);
  return detail::stats_from_pass(
      m, pm, replay_e_step(host_view(be, X), host_view(be, w), pm.view, static_cast<std::int64_t>(n_worst)), n_worst);
}

// The initialisation passes as gmm/cuda_pass.hpp makes them of cuda::gmm_resp_stats, on its replay.
template <template <class> class View, template <class> class WView, class T>
GmmStats gmm_label_stats(const ReplayBackend& be, View<T> X, WView<T> w, const std::int32_t* labels,
                         CovarianceType type, const RowMatrix<double>& shift) {
  const detail::GmmInitPassData<T> d(type, shift, detail::labels_present(labels, X.rows, shift.rows()));
  cuda::GmmRespSource src;
  src.kind = cuda::GmmRespSource::Kind::labels;
  src.labels = labels;
  const auto ps = replay_resp_stats(host_view(be, X), host_view(be, w), static_cast<cuda::GmmShape>(static_cast<int>(type)),
                                    static_cast<int>(shift.rows()), src, d.center.data(), d.means());
  return d.stats(type, shift, ps);
}
template <template <class> class View, template <class> class WView, class T>
GmmStats random_resp_stats(const ReplayBackend& be, View<T> X, WView<T> w, CovarianceType type, Index K,
                           const CounterRng& rng, const RowMatrix<double>& shift) {
  const detail::GmmInitPassData<T> d(type, shift);
  cuda::GmmRespSource src;
  src.kind = cuda::GmmRespSource::Kind::random;
  src.seed = rng.seed();
  src.stream = rng.stream();
  const auto ps = replay_resp_stats(host_view(be, X), host_view(be, w), static_cast<cuda::GmmShape>(static_cast<int>(type)),
                                    static_cast<int>(K), src, d.center.data(), d.means());
  return d.stats(type, shift, ps);
}
template <template <class> class View, class T>
detail::FeatureMoments gmm_feature_moments(const ReplayBackend& be, View<T> X) {
  const Eigen::RowVectorXd first = fetch_rows(be, X, {0}).row(0).template cast<double>();
  const auto ps = replay_resp_stats(host_view(be, X), VectorView<T>{}, cuda::GmmShape::diag, 1, cuda::GmmRespSource{},
                                    nullptr, first.data());
  return detail::feature_moments_of_pass(first, ps, X.rows);
}
template <template <class> class View, class T>
Eigen::RowVectorXd gmm_data_mean(const ReplayBackend&, View<T>, const detail::FeatureMoments& data) {
  return data.mean.transpose();
}

// The K-means passes (behind init = kmeans and k-means++; the whole contract, backend/contract.hpp) are
// the CPU's, on the host views of X and of the weights.
#define MIXTURA_REPLAY_ON_CPU(name)                                                        \
  template <template <class> class View, class T, class... A>                             \
  auto name(const ReplayBackend& be, View<T> X, A&&... a) {                                \
    return name(CpuBackend{be.n_threads}, host_view(be, X), std::forward<A>(a)...);        \
  }
#define MIXTURA_REPLAY_WEIGHTED_ON_CPU(name)                                                             \
  template <template <class> class View, template <class> class WView, class T, class... A>             \
  auto name(const ReplayBackend& be, View<T> X, WView<T> w, A&&... a) {                                  \
    return name(CpuBackend{be.n_threads}, host_view(be, X), host_view(be, w), std::forward<A>(a)...);    \
  }
MIXTURA_REPLAY_WEIGHTED_ON_CPU(kmeans_assign)
MIXTURA_REPLAY_WEIGHTED_ON_CPU(kmeans_predict)
MIXTURA_REPLAY_ON_CPU(kmeans_distances_to_assigned)
MIXTURA_REPLAY_ON_CPU(kmeans_transform)
MIXTURA_REPLAY_WEIGHTED_ON_CPU(kmeans_update_closest)
MIXTURA_REPLAY_WEIGHTED_ON_CPU(kmeans_candidate_potentials)
MIXTURA_REPLAY_ON_CPU(mean_feature_variance)
#undef MIXTURA_REPLAY_WEIGHTED_ON_CPU
#undef MIXTURA_REPLAY_ON_CPU
/// k-means++'s draws by device weights: the CPU's, on their host view (host weights: init.hpp's).
template <class T>
bool kmeans_draw_rows(const ReplayBackend& be, const detail::DrawOrder& order, DeviceVectorView<T> w,
                      const double* closest, const std::vector<double>& us, std::vector<Index>& out) {
  return kmeans_draw_rows(CpuBackend{be.n_threads}, order, host_view(be, w), closest, us, out);
}
inline void kmeans_labels_to_host(const ReplayBackend& be, std::int32_t* labels, Index rows) {
  kmeans_labels_to_host(CpuBackend{be.n_threads}, labels, rows);
}

// What the loop asks of device data instead of reading it (core/data_access.hpp), counted.
template <class T>
detail::NonFinite first_non_finite(const ReplayBackend& be, DeviceMatrixView<T> X) {
  return first_non_finite(be.device, X);
}
template <class T>
RowMatrix<T> fetch_rows(const ReplayBackend& be, DeviceMatrixView<T> X, const std::vector<Index>& rows) {
  return fetch_rows(be.device, X, rows);
}
template <class T>
std::vector<detail::RowHash> row_hashes(const ReplayBackend& be, DeviceMatrixView<T> X) {
  return row_hashes(be.device, X);
}
template <class T>
detail::WeightCheck first_bad_weight(const ReplayBackend& be, DeviceVectorView<T> w) {
  return first_bad_weight(be.device, w);
}

/// The scoring passes' log-density kernels (log_density_full_kernel, log_density_diag_kernel) through
/// the functions they call: lp[i * rs + k * ks] for rows [begin, begin + rows) of X.
template <class T>
class ReplayLogDensity {
 public:
  explicit ReplayLogDensity(const cuda::GmmPassModel& v)
      : v_(v), gram_(v.shape == cuda::GmmShape::full || v.shape == cuda::GmmShape::tied), center_(v.D),
        factors_(static_cast<std::size_t>(v.D * v.K * cuda::padded4(static_cast<int>(v.D)))),
        offset_(static_cast<std::size_t>(v.K * cuda::padded4(static_cast<int>(v.D)))) {
    if (gram_) cuda::pack_full_model(v, center_.data(), factors_.data(), offset_.data());
  }
  void operator()(MatrixView<T> X, Index begin, Index rows, double* lp, std::int64_t rs, std::int64_t ks) const {
    const int K = static_cast<int>(v_.K), D = static_cast<int>(v_.D);
    const bool spherical = v_.shape == cuda::GmmShape::spherical;
    for (Index i = 0; i < rows; ++i)
      for (int k = 0; k < K; ++k)
        lp[i * rs + k * ks] =
            gram_ ? cuda::full_log_density_reference(X.row(begin + i), center_.data(), factors_.data(), offset_.data(),
                                                     v_.constant[k], D, K, k)
                  : cuda::diag_log_density(X.row(begin + i), v_.means + k * D, v_.scale + k * (spherical ? 1 : D),
                                           spherical, D, v_.constant[k]);
  }

 private:
  const cuda::GmmPassModel& v_;
  bool gram_;
  std::vector<T> center_, factors_;
  std::vector<double> offset_;
};

/// Rows per group of the replayed scoring passes: any multiple of the tile (the device's is larger).
inline constexpr Index kReplayScoreGroup = 3 * cuda::kGmmTileRows;

/// Scoring as the CUDA backend does it: row-major lp from the kernels' functions, handed out in groups.
template <template <class> class View, class T, class Out>
void gmm_weighted_log_prob(const ReplayBackend& be, View<T> XV, const GmmModel& m, Out&& out) {
  const MatrixView<T> X = host_view(be, XV);
  const auto pm = detail::GmmPassModelData::of<T>(m);
  const ReplayLogDensity<T> log_density(pm.view);
  const Index K = m.n_components;
  for (Index begin = 0; begin < X.rows; begin += kReplayScoreGroup) {
    const Index rows = std::min(kReplayScoreGroup, X.rows - begin);
    std::vector<double> lp(static_cast<std::size_t>(rows * K));
    log_density(X, begin, rows, lp.data(), K, 1);
    detail::hand_score_blocks(begin, rows, lp.data(), K, be.n_threads, out);
  }
}

/// cuda::gmm_score_rows as the device computes it: per group, lp in the kernels' layout ([k][row],
/// whole tiles), then score_rows_kernel's score_row on each row; only log_p and labels leave the group.
template <template <class> class View, class T>
void gmm_score_rows(const ReplayBackend& be, View<T> XV, const GmmModel& m, double* log_p, std::int32_t* labels) {
  const MatrixView<T> X = host_view(be, XV);
  const auto pm = detail::GmmPassModelData::of<T>(m);
  const ReplayLogDensity<T> log_density(pm.view);
  const int K = static_cast<int>(m.n_components);
  for (Index begin = 0; begin < X.rows; begin += kReplayScoreGroup) {
    const Index rows = std::min(kReplayScoreGroup, X.rows - begin);
    const std::int64_t ld = cuda::tile_count(rows) * cuda::kGmmTileRows;
    std::vector<double> lp(static_cast<std::size_t>(ld * K));
    log_density(X, begin, rows, lp.data(), 1, ld);
    for (Index i = 0; i < rows; ++i)
      cuda::score_row(&lp[i], ld, K, log_p ? log_p + begin + i : nullptr, labels ? labels + begin + i : nullptr);
  }
}

inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Every recorded value of two fits, bit for bit: traces of every restart, the kept restart, the
/// model, the events.
template <class T>
void expect_same_fit(const GaussianMixture<T>& a, const GaussianMixture<T>& b) {
  ASSERT_EQ(a.runs().size(), b.runs().size());
  for (std::size_t r = 0; r < a.runs().size(); ++r) {
    const auto& ta = a.runs()[r].trace;
    const auto& tb = b.runs()[r].trace;
    ASSERT_EQ(ta.size(), tb.size());
    for (std::size_t i = 0; i < ta.size(); ++i) {
      EXPECT_TRUE(same_bits(ta[i].lower_bound, tb[i].lower_bound)) << "restart " << r << " it " << i;
      EXPECT_TRUE(same_bits(ta[i].elbo_after_m, tb[i].elbo_after_m)) << "restart " << r << " it " << i;
      EXPECT_TRUE(same_bits(ta[i].entropy, tb[i].entropy)) << "restart " << r << " it " << i;
    }
  }
  EXPECT_EQ(a.best_restart(), b.best_restart());
  EXPECT_TRUE(a.means() == b.means());
  EXPECT_TRUE(a.weights() == b.weights());
  for (Index k = 0; k < a.model().n_components; ++k) EXPECT_TRUE(a.model().covariance(k) == b.model().covariance(k));
  ASSERT_EQ(a.events().size(), b.events().size());
  for (std::size_t i = 0; i < a.events().size(); ++i) {
    EXPECT_EQ(a.events()[i].kind, b.events()[i].kind);
    EXPECT_EQ(a.events()[i].component, b.events()[i].component);
    EXPECT_EQ(a.events()[i].row, b.events()[i].row);
  }
}

/// The fits of the device-data tests: 3 components of `type` from `init`, two restarts, max_iter
/// iterations, seed 5.
inline GmmParams two_restart_params(CovarianceType type, GmmInit init, int max_iter) {
  GmmParams p;
  p.n_components = 3;
  p.covariance_type = type;
  p.init = init;
  p.n_init = 2;
  p.max_iter = max_iter;
  p.seed = 5;
  return p;
}

/// Starting means for 3 components in D features around `centre`, the last one far from every row: it
/// gets no responsibility, and the first M-step re-seeds it on a row.
inline GmmInitialParams far_mean_start(Index D, double centre) {
  GmmInitialParams in;
  in.means = RowMatrix<double>::Constant(3, D, centre);
  in.means.row(1).array() += 4.0;
  in.means.row(2).setConstant(1e4);
  return in;
}

/// Whether a fit re-seeded a component.
template <class T>
bool reseeded_a_component(const GaussianMixture<T>& gm) {
  for (const GmmEvent& e : gm.events())
    if (e.kind == GmmEvent::Kind::component_reseeded) return true;
  return false;
}

/// A model to run single passes with: a short CPU fit from random rows.
template <class T>
GmmModel fitted_model(const RowMatrix<T>& x, CovarianceType t, int K) {
  GmmParams p;
  p.n_components = K;
  p.covariance_type = t;
  p.max_iter = 3;
  p.init = GmmInit::random_from_data;
  p.reg_covar = 1e-3;
  GaussianMixture<T> gm(p);
  gm.fit(x);
  return gm.model();
}

/// Shapes (rows, features, components) that reach the edges of the kernels' tilings: D = 1 and D
/// not a multiple of 4, log-density pages past one (D4 > 64), Gram blocks of one component and
/// components over several thread blocks (D > 85), more components than one log-density block
/// (K > 8), rows not a multiple of a tile.
struct EdgeShape {
  Index n, d;
  int K;
};
inline constexpr EdgeShape kEdgeShapes[] = {{1500, 1, 1}, {2100, 3, 9}, {3000, 5, 4}, {1025, 70, 3}, {2000, 130, 2}};

/// Rows of an edge shape (around 20, weight 0 on every fifth row) and a model fitted to them.
template <class T>
struct EdgeCase {
  RowMatrix<T> x;
  Eigen::Matrix<T, Eigen::Dynamic, 1> w;
  GmmModel model;
  std::string name;

  EdgeCase(const EdgeShape& s, CovarianceType t)
      : x(gmm_blobs<T>(s.n, s.d, static_cast<std::uint32_t>(s.n + s.d), 20.0)), w(x.rows()) {
    for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.5 + static_cast<double>(i % 3));
    model = fitted_model(x, t, s.K);
    name = std::string(to_string(t)) + " n " + std::to_string(s.n) + " d " + std::to_string(s.d) + " K " +
           std::to_string(s.K);
  }
};

/// Label patterns for the statistics of labels, with the shift rows model_from_labels makes (each
/// label's first row, 0 for components no row has): K-means-like labels; components left empty (the
/// odd ones, K > 1); all rows in the last component.
struct LabelCase {
  std::vector<std::int32_t> labels;
  RowMatrix<double> shift;
  std::string name;
};
template <class T>
std::vector<LabelCase> label_cases(const RowMatrix<T>& x, int K) {
  const Index n = x.rows();
  std::vector<LabelCase> out(3);
  out[0].name = "k-means-like";
  out[1].name = "odd components empty";
  out[2].name = "all in one";
  for (Index i = 0; i < n; ++i) {
    const std::int32_t l = static_cast<std::int32_t>((i / 7 + (x(i, 0) > 20)) % K);
    out[0].labels.push_back(l);
    out[1].labels.push_back(l - l % 2);
    out[2].labels.push_back(K - 1);
  }
  for (auto& c : out) {
    c.shift = RowMatrix<double>::Zero(K, x.cols());
    std::vector<bool> seen(static_cast<std::size_t>(K), false);
    for (Index i = 0; i < n; ++i)
      if (!seen[c.labels[i]]) {
        seen[c.labels[i]] = true;
        c.shift.row(c.labels[i]) = x.row(i).template cast<double>();
      }
  }
  return out;
}

/// Rows of a shape for the statistics of labels (around 20) and weights as EdgeCase's (0 on every
/// fifth row), without a fitted model.
template <class T>
struct LabelData {
  RowMatrix<T> x;
  Eigen::Matrix<T, Eigen::Dynamic, 1> w;
  std::string name;
  explicit LabelData(const EdgeShape& s)
      : x(gmm_blobs<T>(s.n, s.d, static_cast<std::uint32_t>(s.n + s.d), 20.0)), w(x.rows()) {
    for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.5 + static_cast<double>(i % 3));
    name = "n " + std::to_string(s.n) + " d " + std::to_string(s.d) + " K " + std::to_string(s.K);
  }
};

/// pass(shape, K, src, center, means) with the arguments gmm_label_stats gives cuda::gmm_resp_stats for
/// a label case of n rows (T: the data's scalar type).
template <class T, class Pass>
cuda::GmmPassStats label_pass(Index n, CovarianceType t, const LabelCase& lc, Pass&& pass) {
  const Index K = lc.shift.rows();
  const detail::GmmInitPassData<T> d(t, lc.shift, detail::labels_present(lc.labels.data(), n, K));
  cuda::GmmRespSource src;
  src.kind = cuda::GmmRespSource::Kind::labels;
  src.labels = lc.labels.data();
  return pass(static_cast<cuda::GmmShape>(static_cast<int>(t)), static_cast<int>(K), src, d.centre_or_null(),
              d.means());
}

/// The replayed pass of a label case: through the label kernels, or (one_hot) the one-hot rows through
/// the moments kernels.
template <class T>
cuda::GmmPassStats replay_label_pass(MatrixView<T> X, VectorView<T> w, CovarianceType t, const LabelCase& lc,
                                     bool one_hot) {
  return label_pass<T>(X.rows, t, lc, [&](cuda::GmmShape shape, int K, const cuda::GmmRespSource& src,
                                          const double* center, const double* means) {
    return replay_resp_stats(X, w, shape, K, src, center, means, one_hot);
  });
}

/// Two passes' statistics, bit for bit.
inline void expect_same_pass_bits(const cuda::GmmPassStats& a, const cuda::GmmPassStats& b, const std::string& at) {
  const auto same = [](const std::vector<double>& u, const std::vector<double>& v) {
    return u.size() == v.size() && (u.empty() || std::memcmp(u.data(), v.data(), u.size() * sizeof(double)) == 0);
  };
  EXPECT_TRUE(same(a.nk, b.nk)) << at << ": nk";
  EXPECT_TRUE(same(a.s1, b.s1)) << at << ": s1";
  EXPECT_TRUE(same(a.s2, b.s2)) << at << ": s2";
  EXPECT_TRUE(same_bits(a.weight, b.weight)) << at << ": weight";
}

/// Shapes for the statistics of labels beyond the edge shapes: K = 1 with D = 5, components over
/// several Gram thread blocks (D = 3: 32 a block) and over several diagonal blocks (K (D + 1) > 256),
/// D = 1 with 128 components in one diagonal block.
inline constexpr EdgeShape kLabelShapes[] = {{3000, 5, 1}, {5000, 3, 70}, {4100, 1, 200}};

/// How close a fit on the CUDA backend must follow the CPU's ELBO trace (relative, every iteration).
template <class T>
double trace_tolerance() {
  return std::is_same<T, float>::value ? 1e-5 : 1e-10;
}

/// Fits GaussianMixture<T> on the CPU and on `be` from the same parameters, for every covariance type
/// and init = kmeans, random, k-means++ (two restarts, tol = 0, max_iter iterations, K components,
/// weights 1, 2, 3, ...): the ELBO traces agree within trace_tolerance<T>() at every iteration of
/// every restart, the same restart is kept, the labels are the same, scores and posteriors close.
template <class T, class Backend>
void expect_fit_follows_the_cpu(const Backend& be, const RowMatrix<T>& x, int K, int max_iter) {
  const double tol = trace_tolerance<T>();
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(1 + i % 3);
  for (CovarianceType t : kTypes)
    for (GmmInit init : {GmmInit::kmeans, GmmInit::random, GmmInit::kmeans_plusplus}) {
      GmmParams p;
      p.n_components = K;
      p.covariance_type = t;
      p.init = init;
      p.tol = 0;
      p.max_iter = max_iter;
      p.n_init = 2;
      GaussianMixture<T> cpu(p), dev(p);
      cpu.fit(x, w);
      dev.fit_on(be, MatrixView<T>(x), VectorView<T>(w));
      const std::string at = std::string(to_string(t)) + " " + to_string(init);
      ASSERT_EQ(cpu.runs().size(), dev.runs().size());
      for (std::size_t r = 0; r < cpu.runs().size(); ++r) {
        const auto& a = cpu.runs()[r].trace;
        const auto& b = dev.runs()[r].trace;
        ASSERT_EQ(a.size(), b.size()) << at;
        for (std::size_t i = 0; i < a.size(); ++i) {
          EXPECT_NEAR(b[i].lower_bound, a[i].lower_bound, tol * std::abs(a[i].lower_bound)) << at << " restart " << r << " it " << i;
          EXPECT_NEAR(b[i].elbo_after_m, a[i].elbo_after_m, tol * std::abs(a[i].elbo_after_m)) << at << " restart " << r << " it " << i;
        }
      }
      EXPECT_EQ(dev.best_restart(), cpu.best_restart()) << at;
      EXPECT_EQ(dev.events().size(), cpu.events().size()) << at;
      EXPECT_EQ(dev.predict_on(be, MatrixView<T>(x)), cpu.predict(x)) << at;
      const Eigen::VectorXd sa = cpu.score_samples(x), sb = dev.score_samples_on(be, MatrixView<T>(x));
      EXPECT_LT((sa - sb).cwiseAbs().maxCoeff(), 10 * tol * sa.cwiseAbs().maxCoeff()) << at;
      const RowMatrix<double> pa = cpu.predict_proba(x), pb = dev.predict_proba_on(be, MatrixView<T>(x));
      EXPECT_LT((pa - pb).cwiseAbs().maxCoeff(), 100 * tol) << at;
    }
}

/// `m` with component 1 made a twin of component 0 (the same mean, factor and weight): every row's
/// weighted log-densities tie exactly at 0 and 1, and its label must be 0 (the first of equal ones).
inline GmmModel with_twin_components(GmmModel m) {
  const double w = 0.5 * (m.weights[0] + m.weights[1]);
  m.weights[0] = m.weights[1] = w;
  m.means.row(1) = m.means.row(0);
  if (m.type == CovarianceType::full) m.factor[1] = m.factor[0];
  if (m.type == CovarianceType::diag || m.type == CovarianceType::spherical) m.diag_factor.row(1) = m.diag_factor.row(0);
  return m;
}

/// Scoring on `be` (score_samples_on, predict_on, bic_on, aic_on; X in host memory) against the same
/// calls on `oracle`, over the edge shapes of the tilings, rows over several groups of the replayed
/// pass, and twin components (exact ties: the first index wins): log p within `rel` of the largest
/// |log p|, the same labels, the criteria within `rel` of their scale.
template <class T, class Backend, class Oracle>
void expect_scoring_matches(const Backend& be, const Oracle& oracle, double rel) {
  std::vector<EdgeShape> shapes(std::begin(kEdgeShapes), std::end(kEdgeShapes));
  shapes.push_back({7000, 6, 5});
  for (const EdgeShape& shape : shapes)
    for (CovarianceType t : kTypes) {
      const EdgeCase<T> c(shape, t);
      const MatrixView<T> X(c.x);
      for (const bool twins : {false, true}) {
        if (twins && shape.K < 2) continue;
        const std::string at = c.name + (twins ? " twins" : "");
        GaussianMixture<T> gm;
        gm.set_model(twins ? with_twin_components(c.model) : c.model);
        const Eigen::VectorXd a = gm.score_samples_on(be, X), b = gm.score_samples_on(oracle, X);
        const double scale = std::max(1.0, b.cwiseAbs().maxCoeff());
        EXPECT_LE((a - b).cwiseAbs().maxCoeff(), rel * scale) << at;
        const std::vector<std::int32_t> la = gm.predict_on(be, X), lb = gm.predict_on(oracle, X);
        EXPECT_EQ(la, lb) << at;
        if (twins) {
          EXPECT_EQ(std::count(la.begin(), la.end(), 1), 0) << at << ": a tie went to the later component";
        }
        const double n = static_cast<double>(X.rows);
        EXPECT_NEAR(gm.bic_on(be, X), gm.bic_on(oracle, X), rel * (2 * n * scale + std::abs(gm.bic_on(oracle, X)))) << at;
        EXPECT_NEAR(gm.aic_on(be, X), gm.aic_on(oracle, X), rel * (2 * n * scale + std::abs(gm.aic_on(oracle, X)))) << at;
      }
    }
}

/// A row's scores depend on its values and its index modulo the block, not on the rows scored with
/// it: rows [1280, 1980) scored alone give, bit for bit, their scores among all rows (every type).
template <class T, class Backend>
void expect_scores_row_independent(const Backend& be) {
  const RowMatrix<T> x = gmm_blobs<T>(3000, 4, 8);
  const RowMatrix<T> part = x.middleRows(1280, 700);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const Eigen::VectorXd all = gm.score_samples_on(be, MatrixView<T>(x));
    const Eigen::VectorXd some = gm.score_samples_on(be, MatrixView<T>(part));
    for (Index i = 0; i < part.rows(); ++i) ASSERT_EQ(some[i], all[1280 + i]) << to_string(t) << " row " << i;
  }
}

}  // namespace mixtura_test
