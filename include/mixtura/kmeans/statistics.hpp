#pragma once
/// K-means as statistics of chunks: compute them under the current centres, merge them, update the
/// centres from them. For streams, out-of-core data and scale-out (docs/streams.md):
///
///   for each iteration:
///     KMeansStats s = kmeans_statistics(chunk_0, w_0, centers);
///     for each further chunk c: s.merge(kmeans_statistics(chunk_c, w_c, centers));
///     kmeans_update(s, centers, &events);
///
/// is one Lloyd iteration of KMeans::fit over the concatenated chunks: the same bits when the chunks
/// are the fit's reduction groups (core/parallel.hpp's BlockPlan over all the rows, up to 64 blocks of
/// 256 rows per group, i.e. up to 2^20 rows in all), within rounding (1e-12 relative) for any chunking.

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/backend/contract.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"
#include "mixtura/kmeans/lloyd.hpp"
#include "mixtura/kmeans/params.hpp"
#include "mixtura/kmeans/sparse_pass.hpp"
#include "mixtura/kmeans/stats.hpp"
#include "mixtura/kmeans/update.hpp"

namespace mixtura {
namespace detail {

/// Sample weights of a chunk: one per row, finite, >= 0 (a chunk may weigh nothing in all).
template <class T>
void check_chunk_weights(const char* where, VectorView<T> w, Index n_rows) {
  if (w.empty()) return;
  check_weights_size(where, w.size, n_rows);
  for (Index i = 0; i < w.size; ++i)
    MIXTURA_EXPECTS(std::isfinite(w[i]) && w[i] >= 0, "%s: sample_weight[%lld] = %g is not finite and >= 0", where,
                    static_cast<long long>(i), static_cast<double>(w[i]));
}

/// kmeans_statistics for host rows, dense (MatrixView) or sparse (CsrMatrixView), on a host CPU
/// backend (is_host_cpu_backend): one fused pass, the re-seeding candidates tracked in it.
template <class T, class Backend, class XView>
KMeansStats host_statistics(const Backend& be, const XView& X, VectorView<T> sample_weight,
                            const RowMatrix<T>& centers, std::int32_t* labels, Index keep_farthest) {
  const char* where = "kmeans_statistics";
  MIXTURA_EXPECTS(be.n_threads >= 0 && be.n_threads <= kMaxThreads, "%s: n_threads must be in [0, %d], got %d",
                  where, kMaxThreads, be.n_threads);
  MIXTURA_EXPECTS(centers.rows() >= 1 && centers.cols() >= 1, "%s: centers are empty (%lld x %lld)", where,
                  static_cast<long long>(centers.rows()), static_cast<long long>(centers.cols()));
  MIXTURA_EXPECTS(centers.allFinite(), "%s: the centres contain a non-finite value", where);
  MIXTURA_EXPECTS(keep_farthest >= -1 && keep_farthest < centers.rows(),
                  "%s: keep_farthest must be in [-1, n_clusters - 1 = %lld], got %lld", where,
                  static_cast<long long>(centers.rows() - 1), static_cast<long long>(keep_farthest));
  check_data_on(be, where, X);
  detail::check_features(where, X.cols, centers.cols());
  detail::check_chunk_weights(where, sample_weight, X.rows);
  std::vector<std::int32_t> fresh;
  if (!labels) {
    fresh.assign(static_cast<std::size_t>(X.rows), -1);
    labels = fresh.data();
  }
  return kmeans_assign(be, X, sample_weight, centers, labels, keep_farthest < 0 ? centers.rows() - 1 : keep_farthest);
}

}  // namespace detail

/// The statistics of a chunk X (n_samples x n_features) with sample weights (n_samples, >= 0, or
/// empty: unit weights) under `centers` (n_clusters x n_features): per cluster the weight, row count
/// and weighted sum of its rows, the exact distortion, and the n_clusters - 1 rows farthest from their
/// centre (re-seeding candidates for empty clusters). Size O(n_clusters x n_features), whatever n_samples.
///
/// labels: nullptr, or n_samples labels from the previous iteration (or -1), replaced by the new
/// ones; the statistics count how many changed (with nullptr: every row). Bit-identical for any
/// n_threads (0: OpenMP's default). keep_farthest: re-seeding candidates kept, -1 for n_clusters - 1;
/// 0 skips their tracking (a loop that asks again only when a cluster comes up empty, as fit does).
///
/// X may also be sparse rows (the CsrMatrixView overload below).
template <class T>
KMeansStats kmeans_statistics(MatrixView<T> X, VectorView<T> sample_weight, const RowMatrix<T>& centers,
                              std::int32_t* labels = nullptr, int n_threads = 0, Index keep_farthest = -1) {
  return detail::host_statistics(CpuBackend{n_threads}, X, sample_weight, centers, labels, keep_farthest);
}

/// kmeans_statistics of sparse rows (kmeans/sparse_pass.hpp): the statistics of the same rows dense,
/// bit for bit where the labels are the same (the distortion to its rounding).
template <class T>
KMeansStats kmeans_statistics(const CsrMatrixView<T>& X, VectorView<T> sample_weight, const RowMatrix<T>& centers,
                              std::int32_t* labels = nullptr, int n_threads = 0, Index keep_farthest = -1) {
  return detail::host_statistics(CpuBackend{n_threads}, X, sample_weight, centers, labels, keep_farthest);
}

/// kmeans_statistics on a given backend, e.g. make_cuda_backend() (mixtura/cuda.hpp) with X in host
/// memory (MatrixView, RowMatrix) or device memory (DeviceMatrixView) and weights to match (empty:
/// unit weights; given, they must have a positive sum): the backend's assignment pass (on the device,
/// where KMeans::fit_on runs it), then the re-seeding candidates from its distances to the assigned
/// centres (one more pass) and the rows they name (fetch_rows). The CPU backends (the header's, the
/// dispatched one) take kmeans_statistics' fused pass instead. labels: as there.
template <class T, class Backend, class XView, class WView = VectorView<T>>
KMeansStats kmeans_statistics_on(const Backend& be, const XView& X_in, const RowMatrix<T>& centers,
                                 const WView& sample_weight = {}, std::int32_t* labels = nullptr) {
  const auto X = detail::data_view_t<T, XView>(X_in);
  const auto w = detail::weights_view_t<T, WView>(sample_weight);
  if constexpr (detail::is_host_cpu_backend<Backend>::value &&
                (std::is_same<decltype(X), const MatrixView<T>>::value ||
                 std::is_same<decltype(X), const CsrMatrixView<T>>::value)) {
    return detail::host_statistics(be, X, w, centers, labels, -1);
  } else {
    static_assert(detail::satisfies_kmeans_contract<Backend, T, std::decay_t<decltype(X)>, std::decay_t<decltype(w)>>(), "");
    const char* where = "kmeans_statistics";
    MIXTURA_EXPECTS(centers.rows() >= 1 && centers.cols() >= 1, "%s: centers are empty (%lld x %lld)", where,
                    static_cast<long long>(centers.rows()), static_cast<long long>(centers.cols()));
    MIXTURA_EXPECTS(centers.allFinite(), "%s: the centres contain a non-finite value", where);
    check_data_on(be, where, X);
    detail::check_features(where, X.cols, centers.cols());
    check_weights_on(be, where, w, X.rows);
    std::vector<std::int32_t> fresh;
    if (!labels) {
      fresh.assign(static_cast<std::size_t>(X.rows), -1);
      labels = fresh.data();
    }
    const auto scope = data_scope(be);
    KMeansStats s = kmeans_assign(be, X, w, centers, labels);
    s.keep_farthest = centers.rows() - 1;
    s.farthest = detail::farthest_candidates(be, X, w, centers, labels, static_cast<std::size_t>(s.keep_farthest));
    return s;
  }
}

/// The update half-step from (merged) statistics: each centre moves to the mean of its cluster; an
/// empty cluster is re-seeded from the statistics' farthest rows (KMeans' policy) or, with none left,
/// keeps its centre. `centers` (n_clusters x n_features, the centres the statistics were computed
/// under) is replaced. Empty-cluster actions are appended to `events` (if given) with the given restart
/// and iteration; their rows count from the first row of the merged statistics. Returns the record of
/// the iteration: J before and after the update (for the statistics' rows), the squared centre shift,
/// the labels changed.
template <class T>
KMeansIteration kmeans_update(const KMeansStats& stats, RowMatrix<T>& centers, std::vector<KMeansEvent>* events = nullptr,
                              int restart = 0, int iteration = 0) {
  const char* where = "kmeans_update";
  MIXTURA_EXPECTS(stats.n_clusters == centers.rows() && stats.n_features == centers.cols(),
                  "%s: statistics of shape (%lld, %lld) but centres of shape (%lld, %lld)", where,
                  static_cast<long long>(stats.n_clusters), static_cast<long long>(stats.n_features),
                  static_cast<long long>(centers.rows()), static_cast<long long>(centers.cols()));
  MIXTURA_EXPECTS(stats.weight.size() == static_cast<std::size_t>(stats.n_clusters) &&
                      stats.count.size() == static_cast<std::size_t>(stats.n_clusters) &&
                      stats.sums.size() == static_cast<std::size_t>(stats.n_clusters * stats.n_features),
                  "%s: statistics arrays do not match their shape (%lld, %lld)", where,
                  static_cast<long long>(stats.n_clusters), static_cast<long long>(stats.n_features));
  for (const KMeansFarRow& f : stats.farthest)
    MIXTURA_EXPECTS(f.cluster >= 0 && f.cluster < stats.n_clusters &&
                        f.values.size() == static_cast<std::size_t>(stats.n_features),
                    "%s: a re-seeding candidate (row %lld) has cluster %d or %zu values, expected [0, %lld) and %lld",
                    where, static_cast<long long>(f.row), f.cluster, f.values.size(),
                    static_cast<long long>(stats.n_clusters), static_cast<long long>(stats.n_features));
  std::vector<KMeansEvent> ignored;
  return detail::update_centers(stats, centers, events ? *events : ignored, restart, iteration);
}

}  // namespace mixtura
