#pragma once
/// The sufficient statistics of a K-means assignment pass: additive, mergeable, small (O(K·D)).
///
/// Public API for streams and scale-out (docs/streams.md): kmeans_statistics() computes them for a
/// chunk of rows under given centres (kmeans/statistics.hpp), merge() adds two, kmeans_update()
/// (kmeans/update.hpp) makes the new centres from them. KMeans::fit is that loop over one chunk.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"

namespace mixtura {

/// A row kept by the statistics as a candidate to re-seed an empty cluster: the farthest rows from
/// their assigned centre, as KMeans' empty-cluster policy picks them.
struct KMeansFarRow {
  double distance = 0;          ///< squared distance to its assigned centre (computed exactly, in double)
  double weight = 0;            ///< its sample weight (> 0)
  Index row = 0;                ///< its index, counted from the first row folded into these statistics
  std::int32_t cluster = 0;     ///< its assigned cluster
  std::vector<double> values;   ///< its n_features values

  /// The order of the policy: farther first, then the lower row.
  bool before(const KMeansFarRow& o) const { return distance > o.distance || (distance == o.distance && row < o.row); }
};

/// Per cluster: total weight, row count and weighted sum of rows (double, whatever the data type);
/// plus the exact distortion of the assignment, how many labels changed and, when asked for, the
/// farthest rows (re-seeding candidates).
///
/// merge() is associative; merging the same statistics in the same order gives the same bits.
struct KMeansStats {
  Index n_clusters = 0, n_features = 0;
  std::vector<double> weight;    ///< [K] sum of w_i over rows assigned to k
  std::vector<Index> count;      ///< [K] number of rows assigned to k (rows of zero weight included)
  std::vector<double> sums;      ///< [K * D] sum of w_i x_i, row-major
  double distortion = 0;         ///< sum_i w_i ||x_i - mu_{c_i}||^2, computed without cancellation
  std::int64_t n_changed = 0;    ///< rows whose label differs from the one held before the pass
  Index keep_farthest = 0;       ///< how many re-seeding candidates to keep (0: none)
  std::vector<KMeansFarRow> farthest;  ///< up to keep_farthest rows of positive weight, in KMeansFarRow order

  KMeansStats() = default;
  KMeansStats(Index k, Index d, Index keep = 0)
      : n_clusters(k), n_features(d), weight(static_cast<std::size_t>(k), 0.0),
        count(static_cast<std::size_t>(k), 0), sums(static_cast<std::size_t>(k * d), 0.0), keep_farthest(keep) {}

  /// Rows folded in (every row is counted in one cluster).
  Index rows() const {
    Index n = 0;
    for (const Index c : count) n += c;
    return n;
  }

  /// Adds the statistics of rows that follow these ones (their candidates' rows are renumbered after
  /// ours). Both must have the same shape.
  void merge(const KMeansStats& o) {
    MIXTURA_EXPECTS(o.n_clusters == n_clusters && o.n_features == n_features,
                    "KMeansStats::merge: shapes differ, (%lld, %lld) and (%lld, %lld)",
                    static_cast<long long>(n_clusters), static_cast<long long>(n_features),
                    static_cast<long long>(o.n_clusters), static_cast<long long>(o.n_features));
    if (keep_farthest > 0 || !o.farthest.empty()) merge_farthest(o);
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

  /// The candidates half of merge(): the first keep_farthest of both lists in KMeansFarRow order, o's
  /// rows counted after ours (call it before the counts of o's rows are added).
  void merge_farthest(const KMeansStats& o) {
    keep_farthest = std::max(keep_farthest, o.keep_farthest);
    const Index offset = rows();
    std::vector<KMeansFarRow> theirs = o.farthest;
    for (KMeansFarRow& f : theirs) f.row += offset;
    std::vector<KMeansFarRow> out;
    out.reserve(std::min(farthest.size() + theirs.size(), static_cast<std::size_t>(keep_farthest)));
    std::size_t a = 0, b = 0;
    while (out.size() < static_cast<std::size_t>(keep_farthest) && (a < farthest.size() || b < theirs.size())) {
      const bool take_ours = b == theirs.size() || (a < farthest.size() && farthest[a].before(theirs[b]));
      out.push_back(std::move(take_ours ? farthest[a++] : theirs[b++]));
    }
    farthest = std::move(out);
  }
};

namespace detail {
/// Recorded initial centres have the fitted centres' shape and finite values.
template <class T>
inline void check_initial_record(const char* where, const RowMatrix<T>& initial, const RowMatrix<T>& centers) {
  MIXTURA_EXPECTS(initial.rows() == centers.rows() && initial.cols() == centers.cols(),
                  "%s: initial centres have shape (%lld, %lld), expected (n_clusters, n_features) = (%lld, %lld)",
                  where, static_cast<long long>(initial.rows()), static_cast<long long>(initial.cols()),
                  static_cast<long long>(centers.rows()), static_cast<long long>(centers.cols()));
  MIXTURA_EXPECTS(initial.allFinite(), "%s: the initial centres contain a non-finite value", where);
}

/// The point the nearest-centre search measures from (C: K x D row-major): the centres' mean, summed
/// in double in centre order and rounded to T, the same bits for the CPU's search and the GPU's.
template <class T>
inline void argmin_shift(const T* C, Index K, Index D, T* shift) {
  for (Index d = 0; d < D; ++d) {
    double sum = 0;
    for (Index k = 0; k < K; ++k) sum += static_cast<double>(C[k * D + d]);
    shift[d] = static_cast<T>(sum / static_cast<double>(K));
  }
}
}  // namespace detail

}  // namespace mixtura
