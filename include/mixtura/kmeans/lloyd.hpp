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
#include <type_traits>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/timer.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"
#include "mixtura/kmeans/sparse_pass.hpp"
#include "mixtura/kmeans/params.hpp"
#include "mixtura/kmeans/stats.hpp"
#include "mixtura/kmeans/update.hpp"

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

/// The n rows of positive weight farthest from their assigned centre, as re-seeding candidates
/// (KMeansStats::farthest), read through the backend; the labels are on the host afterwards.
template <class Backend, template <class> class View, template <class> class WView, class T>
std::vector<KMeansFarRow> farthest_candidates(const Backend& be, View<T> X, WView<T> w, const RowMatrix<T>& centers,
                                              std::int32_t* labels, std::size_t n) {
  std::vector<T> weights_copy;  // device weights: copied for this choice (host weights: used as they are)
  const VectorView<T> w_host = host_weights(be, w, weights_copy);
  const auto dist_rows = farthest_rows(be, X, w_host, centers, labels, n);
  const RowMatrix<T> seed_rows = fetch_rows(be, X, dist_rows);
  kmeans_labels_to_host(be, labels, X.rows);
  std::vector<KMeansFarRow> out;
  for (std::size_t e = 0; e < dist_rows.size(); ++e) {
    const Index r = dist_rows[e];
    const T* xr = seed_rows.row(static_cast<Index>(e)).data();
    KMeansFarRow f;
    f.distance = sq_dist(xr, centers.row(labels[r]).data(), X.cols);
    f.weight = row_weight(w_host, r);
    f.row = r;
    f.cluster = labels[r];
    f.values.resize(static_cast<std::size_t>(X.cols));  // (a loop: GCC 12 sees a null memmove in assign)
    for (Index d = 0; d < X.cols; ++d) f.values[d] = static_cast<double>(xr[d]);
    out.push_back(std::move(f));
  }
  return out;
}

/// The search a CPU fit on host data runs for `algorithm`: automatic picks by K and D (params.hpp);
/// yinyang needs dense rows and the vector path (kCanGroupSearch), and is hamerly elsewhere.
inline KMeansAlgorithm bounded_search(KMeansAlgorithm algorithm, Index K, Index D, bool dense) {
  const bool can_group = dense && kCanGroupSearch;
  if (algorithm == KMeansAlgorithm::automatic) {
    if (static_cast<long long>(K) * static_cast<long long>(D) < kHamerlyMinWork) return KMeansAlgorithm::lloyd;
    return can_group && K >= kYinyangMinK && D >= kYinyangMinD ? KMeansAlgorithm::yinyang : KMeansAlgorithm::hamerly;
  }
  if (algorithm == KMeansAlgorithm::yinyang && !can_group) return KMeansAlgorithm::hamerly;
  return algorithm;
}

/// One restart of Lloyd's algorithm from `centers` (updated in place). `labels` (n rows) receives the
/// final labels. tol_abs is the absolute bound on the squared centre shift. X: MatrixView or
/// DeviceMatrixView, w: VectorView or DeviceVectorView; the loop reads their values only through the
/// backend (passes, fetch_rows, host_weights on iterations that re-seed a cluster). The update
/// half-step and J after it come from the statistics alone (kmeans/update.hpp).
/// algorithm = hamerly or yinyang (or automatic, bounded_search) searches only what its bounds cannot
/// settle (CPU backend, host data, dense or sparse; other backends search every row): the same bits
/// either way.
template <class Backend, template <class> class View, template <class> class WView, class T>
KMeansRun lloyd(const Backend& be, View<T> X, WView<T> w, RowMatrix<T>& centers,
                std::vector<std::int32_t>& labels, int max_iter, double tol_abs, int restart,
                std::vector<KMeansEvent>& events, const KMeansCallback& callback,
                KMeansAlgorithm algorithm = KMeansAlgorithm::automatic) {
  constexpr bool kCanBound = is_host_cpu_backend<Backend>::value &&
                             (std::is_same_v<View<T>, MatrixView<T>> || std::is_same_v<View<T>, CsrMatrixView<T>>) &&
                             std::is_same_v<WView<T>, VectorView<T>>;
  const Index K = centers.rows();
  KMeansRun run;
  labels.assign(static_cast<std::size_t>(X.rows), -1);
  KMeansBounds<T> bounds;
  KMeansGroupBounds<T> group_bounds;
  constexpr bool kDense = std::is_same_v<View<T>, MatrixView<T>>;
  const KMeansAlgorithm search = kCanBound ? bounded_search(algorithm, K, X.cols, kDense) : KMeansAlgorithm::lloyd;
  const bool bounded = search != KMeansAlgorithm::lloyd, grouped = search == KMeansAlgorithm::yinyang;
  bool strict = false;
  for (int it = 0; it < max_iter; ++it) {
    Stopwatch clock;
    KMeansStats s;
    if constexpr (kCanBound) {
      if constexpr (kDense && kCanGroupSearch) {
        if (grouped) s = kmeans_assign_grouped(be, X, w, centers, labels.data(), group_bounds);
      }
      if (!grouped)
        s = bounded ? kmeans_assign_bounded(be, X, w, centers, labels.data(), bounds)
                    : kmeans_assign(be, X, w, centers, labels.data());
    } else {
      s = kmeans_assign(be, X, w, centers, labels.data());
    }

    // Empty clusters: the farthest rows are their candidates (scikit-learn's policy); the update moves
    // them in the statistics and we move them in the labels.
    std::size_t n_empty = 0;
    for (Index k = 0; k < K; ++k) n_empty += !(s.weight[k] > 0);
    if (n_empty > 0) s.farthest = farthest_candidates(be, X, w, centers, labels.data(), n_empty);  // labels: on the host
    const std::size_t first_event = events.size();
    KMeansIteration rec = update_centers(std::move(s), centers, events, restart, it);
    for (std::size_t e = first_event; e < events.size(); ++e)
      if (events[e].kind == KMeansEvent::Kind::empty_cluster_reseeded) {
        labels[events[e].row] = static_cast<std::int32_t>(events[e].cluster);
        bounds.forget_row(events[e].row);  // moved by hand: searched next pass
        group_bounds.forget_row(events[e].row);
      }
    const bool reseeded = events.size() > first_event;
    const double shift = rec.center_shift;
    rec.n_searched = grouped   ? group_bounds.n_searched
                     : bounded ? bounds.n_searched
                               : static_cast<std::int64_t>(X.rows);
    rec.seconds = clock.seconds();
    run.trace.push_back(rec);
    run.n_iter = it + 1;
    if (callback && !callback(restart, it, rec))
      throw Interrupted(format("KMeans::fit: interrupted by the caller at restart %d, iteration %d", restart, it));
    // scikit-learn's rule: labels unchanged (never on the first iteration), else shift <= tol.
    if (it > 0 && rec.n_changed == 0 && !reseeded) {
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
