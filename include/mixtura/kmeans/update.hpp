#pragma once
/// The update half-step of Lloyd's algorithm from statistics alone: new centres, the empty-cluster
/// policy, and J after the update (no pass over the rows). Shared by KMeans::fit (kmeans/lloyd.hpp)
/// and the public kmeans_update (kmeans/statistics.hpp).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "mixtura/core/matrix_view.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"
#include "mixtura/kmeans/params.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {
namespace detail {

/// Replaces `centers` by the means of the statistics' clusters. An empty cluster (no weight) takes the
/// next of s.farthest (scikit-learn's policy: the farthest rows), moved in the statistics so that J
/// after the update stays exact for the labels that move implies; with no candidate left it keeps its
/// centre. Each is recorded in `events` (iteration `it` of restart `restart`). Returns the iteration's
/// record (seconds left at 0).
///
/// J after the update: for cluster k with weight W_k, exact mean m_k, old centre a_k and new centre b_k
/// (m_k rounded to T), sum_{i in k} w_i ||x_i - b_k||^2 = sum_{i in k} w_i ||x_i - a_k||^2
///   - W_k ||m_k - a_k||^2 + W_k ||m_k - b_k||^2.
template <class T>
KMeansIteration update_centers(KMeansStats s, RowMatrix<T>& centers, std::vector<KMeansEvent>& events, int restart,
                               int it) {
  const Index K = centers.rows(), D = centers.cols();
  KMeansIteration rec;
  rec.distortion_assign = s.distortion;
  rec.n_changed = s.n_changed;
  double j = s.distortion;

  std::vector<Index> empty;
  for (Index k = 0; k < K; ++k)
    if (!(s.weight[k] > 0)) empty.push_back(k);
  std::vector<Index> seeded_from(static_cast<std::size_t>(K), -1);  // index into s.farthest that re-seeds k
  for (std::size_t e = 0; e < empty.size(); ++e) {
    const Index k = empty[e];
    if (e >= s.farthest.size()) {
      events.push_back({KMeansEvent::Kind::empty_cluster_kept, restart, it, static_cast<int>(k), -1});
      continue;
    }
    const KMeansFarRow& f = s.farthest[e];
    const Index from = f.cluster;
    j -= f.weight * f.distance;
    s.move_row(f.values.data(), f.weight, from, k);
    if (s.count[from] == 0 || !(s.weight[from] > 0)) {  // nothing left to average: keep its centre
      s.weight[from] = 0;
      std::fill_n(s.sums.begin() + from * D, D, 0.0);
    }
    seeded_from[k] = static_cast<Index>(e);
    events.push_back({KMeansEvent::Kind::empty_cluster_reseeded, restart, it, static_cast<int>(k), f.row});
  }

  RowMatrix<T> next(K, D);
  double shift = 0.0;
  for (Index k = 0; k < K; ++k) {
    const T* old_c = centers.row(k).data();
    T* new_c = next.row(k).data();
    if (seeded_from[k] >= 0) {  // its one row sits on it: contributes 0
      const std::vector<double>& v = s.farthest[static_cast<std::size_t>(seeded_from[k])].values;
      for (Index d = 0; d < D; ++d) new_c[d] = static_cast<T>(v[d]);
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
  return rec;
}

}  // namespace detail
}  // namespace mixtura
