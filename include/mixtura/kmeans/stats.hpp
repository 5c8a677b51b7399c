#pragma once
/// The sufficient statistics of a K-means assignment pass: additive, mergeable.

#include <cstdint>
#include <vector>

#include "mixtura/core/matrix_view.hpp"

namespace mixtura {

/// Per cluster: total weight, row count and weighted sum of rows (double, whatever the data type);
/// plus the exact distortion of the assignment and how many labels changed.
struct KMeansStats {
  Index n_clusters = 0, n_features = 0;
  std::vector<double> weight;    ///< [K] sum of w_i over rows assigned to k
  std::vector<Index> count;      ///< [K] number of rows assigned to k
  std::vector<double> sums;      ///< [K * D] sum of w_i x_i, row-major
  double distortion = 0;         ///< sum_i w_i ||x_i - mu_{c_i}||^2, computed without cancellation
  std::int64_t n_changed = 0;    ///< rows whose label differs from the one held before the pass

  KMeansStats() = default;
  KMeansStats(Index k, Index d)
      : n_clusters(k), n_features(d), weight(static_cast<std::size_t>(k), 0.0),
        count(static_cast<std::size_t>(k), 0), sums(static_cast<std::size_t>(k * d), 0.0) {}

  void merge(const KMeansStats& o) {
    for (std::size_t k = 0; k < weight.size(); ++k) {
      weight[k] += o.weight[k];
      count[k] += o.count[k];
    }
    for (std::size_t j = 0; j < sums.size(); ++j) sums[j] += o.sums[j];
    distortion += o.distortion;
    n_changed += o.n_changed;
  }

  /// Moves row x (weight w) from cluster `from` to cluster `to` in the statistics.
  template <class T>
  void move_row(const T* x, double w, Index from, Index to) {
    weight[from] -= w;
    weight[to] += w;
    --count[from];
    ++count[to];
    for (Index j = 0; j < n_features; ++j) {
      sums[from * n_features + j] -= w * static_cast<double>(x[j]);
      sums[to * n_features + j] += w * static_cast<double>(x[j]);
    }
  }
};

}  // namespace mixtura
