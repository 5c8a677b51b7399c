#pragma once
/// The Lloyd loop, written once for every backend: assignment half-step and statistics from the
/// backend's data pass, then the update half-step, empty-cluster handling and the trace here.
///
/// Labels and the backend: kmeans_assign may leave the labels it writes with the backend (the CUDA
/// backend keeps them on the device during a fit) instead of in the host array; passes that take
/// labels then read the backend's copy. Before the loop reads or edits the host array it calls
/// kmeans_labels_to_host(be, labels, n), which brings them back (a no-op on the CPU, where they never
/// leave). kmeans_predict always writes the host array.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/timer.hpp"
#include "mixtura/kmeans/params.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {

/// The CPU backend's labels are the host array: nothing to bring back.
inline void kmeans_labels_to_host(const CpuBackend&, std::int32_t*, Index) {}

namespace detail {

/// Called after every iteration; returning false stops the fit (mixtura::Interrupted is thrown).
using KMeansCallback = std::function<bool(int restart, int iteration, const KMeansIteration&)>;

/// Rows to re-seed `n_empty` empty clusters from: the rows farthest from their assigned centre
/// (ties to the lower index), among rows of positive weight (w: host weights). Fewer if there are not
/// enough rows.
template <class Backend, template <class> class View, class T>
std::vector<Index> farthest_rows(const Backend& be, View<T> X, VectorView<T> w, const RowMatrix<T>& centers,
                                 const std::int32_t* labels, std::size_t n_empty) {
  const auto dist = kmeans_distances_to_assigned(be, X, centers, labels);
  std::vector<Index> idx;
  idx.reserve(static_cast<std::size_t>(X.rows));
  for (Index i = 0; i < X.rows; ++i)
    if (row_weight(w, i) > 0) idx.push_back(i);
  const std::size_t m = std::min(n_empty, idx.size());
  auto farther = [&](Index a, Index b) { return dist[a] > dist[b] || (dist[a] == dist[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(m), idx.end(), farther);
  idx.resize(m);
  return idx;
}

/// One restart of Lloyd's algorithm from `centers` (updated in place). `labels` (n rows) receives the
/// final labels. tol_abs is the absolute bound on the squared centre shift. X: MatrixView or
/// DeviceMatrixView, w: VectorView or DeviceVectorView; the loop reads their values only through the
/// backend (passes, fetch_rows, host_weights on iterations that re-seed a cluster).
///
/// J after the update half-step is computed from the statistics alone: for cluster k with weight W_k,
/// exact mean m_k, old centre a_k and new centre b_k (m_k rounded to T),
///   sum_{i in k} w_i ||x_i - b_k||^2 = sum_{i in k} w_i ||x_i - a_k||^2 - W_k ||m_k - a_k||^2 + W_k ||m_k - b_k||^2.
template <class Backend, template <class> class View, template <class> class WView, class T>
KMeansRun lloyd(const Backend& be, View<T> X, WView<T> w, RowMatrix<T>& centers,
                std::vector<std::int32_t>& labels, int max_iter, double tol_abs, int restart,
                std::vector<KMeansEvent>& events, const KMeansCallback& callback) {
  const Index K = centers.rows(), D = centers.cols();
  KMeansRun run;
  labels.assign(static_cast<std::size_t>(X.rows), -1);
  RowMatrix<T> next(K, D);
  bool strict = false;
  for (int it = 0; it < max_iter; ++it) {
    Stopwatch clock;
    KMeansStats s = kmeans_assign(be, X, w, centers, labels.data());
    KMeansIteration rec;
    rec.distortion_assign = s.distortion;
    rec.n_changed = s.n_changed;
    double j = s.distortion;

    // Empty clusters: move the farthest rows into them (scikit-learn's policy), in the statistics
    // and in the labels, so that J after the update stays exact for the labels we hold.
    std::vector<Index> empty;
    for (Index k = 0; k < K; ++k)
      if (!(s.weight[k] > 0)) empty.push_back(k);
    std::vector<Index> seeded_from(static_cast<std::size_t>(K), -1);  // row of seed_rows that re-seeds k
    RowMatrix<T> seed_rows;                                            // row e: X row dist_rows[e]
    if (!empty.empty()) {
      std::vector<T> weights_copy;  // device weights: copied for this choice (host weights: used as they are)
      const VectorView<T> w_host = host_weights(be, w, weights_copy);
      const auto dist_rows = farthest_rows(be, X, w_host, centers, labels.data(), empty.size());
      seed_rows = fetch_rows(be, X, dist_rows);
      kmeans_labels_to_host(be, labels.data(), X.rows);  // read and edited below
      for (std::size_t e = 0; e < empty.size(); ++e) {
        const Index k = empty[e];
        if (e >= dist_rows.size()) {
          events.push_back({KMeansEvent::Kind::empty_cluster_kept, restart, it, static_cast<int>(k), -1});
          continue;
        }
        const Index r = dist_rows[e];
        const Index from = labels[r];
        const double wr = row_weight(w_host, r);
        const T* xr = seed_rows.row(static_cast<Index>(e)).data();
        j -= wr * sq_dist(xr, centers.row(from).data(), D);
        s.move_row(xr, wr, from, k);
        if (s.count[from] == 0 || !(s.weight[from] > 0)) {  // nothing left to average: keep its centre
          s.weight[from] = 0;
          std::fill_n(s.sums.begin() + from * D, D, 0.0);
        }
        labels[r] = static_cast<std::int32_t>(k);
        seeded_from[k] = static_cast<Index>(e);
        events.push_back({KMeansEvent::Kind::empty_cluster_reseeded, restart, it, static_cast<int>(k), r});
      }
    }

    double shift = 0.0;
    for (Index k = 0; k < K; ++k) {
      const T* old_c = centers.row(k).data();
      T* new_c = next.row(k).data();
      if (seeded_from[k] >= 0) {
        std::copy_n(seed_rows.row(seeded_from[k]).data(), D, new_c);  // its one row sits on it: contributes 0
      } else if (s.weight[k] > 0) {
        const double W = s.weight[k];
        double to_old = 0.0, to_new = 0.0;
        for (Index d = 0; d < D; ++d) {
          const double m = s.sums[k * D + d] / W;
          new_c[d] = static_cast<T>(m);
          to_old += (m - static_cast<double>(old_c[d])) * (m - static_cast<double>(old_c[d]));
          to_new += (m - static_cast<double>(new_c[d])) * (m - static_cast<double>(new_c[d]));
        }
        j += W * (to_new - to_old);
      } else {
        std::copy_n(old_c, D, new_c);
      }
      shift += sq_dist(new_c, old_c, D);
    }
    rec.distortion_update = std::max(0.0, std::min(j, rec.distortion_assign));
    rec.center_shift = shift;
    centers.swap(next);
    rec.seconds = clock.seconds();
    run.trace.push_back(rec);
    run.n_iter = it + 1;
    if (callback && !callback(restart, it, rec))
      throw Interrupted(format("KMeans::fit: interrupted by the caller at restart %d, iteration %d", restart, it));
    // scikit-learn's rule: labels unchanged (never on the first iteration), else shift <= tol.
    if (it > 0 && s.n_changed == 0 && empty.empty()) {
      strict = true;
      break;
    }
    if (shift <= tol_abs) break;
  }
  run.converged = strict || (!run.trace.empty() && run.trace.back().center_shift <= tol_abs);
  if (strict && run.trace.back().center_shift == 0.0) {
    run.inertia = run.trace.back().distortion_assign;  // same labels, same centres: nothing to redo
  } else {
    run.inertia = kmeans_predict(be, X, w, centers, labels.data());
  }
  kmeans_labels_to_host(be, labels.data(), X.rows);  // the caller keeps them
  return run;
}

}  // namespace detail
}  // namespace mixtura
