#pragma once
/// K-means data passes on the CPU for sparse rows (CsrMatrixView): a pass costs the stored values
/// times the centres, never n_samples x n_features.
///
/// Nearest centre: e_k = ||c_k||^2 - 2 x.c_k, the products accumulated in T over the row's stored
/// values and vectorised across centres (-2 C^T holds one contiguous row of centres per feature).
/// The dense search measures from the centres' mean to avoid cancellation; here a shift would fill
/// in the zeros, so every centre whose e_k lies within twice e's rounding bound of the smallest is
/// compared by its exact distance instead: the label is the nearest centre by the exact distance
/// (ties to the lowest index), whatever the SIMD width.
///
/// Exact distance of a row x to a centre c, in double:
///   ||x - c||^2 = sum_{j stored} (x_j - c_j)^2 + (||c||^2 - sum_{j stored} c_j^2),
/// all terms positive but the bracket, which is c's squared norm over the columns x does not store
/// (absolute error about (n_features + stored) u ||c||^2, u = 2^-53). The statistics fold the rows
/// as the dense pass folds them (blocks of kKMeansBlock rows): the same labels give the same
/// counts, weights and sums, bit for bit.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/csr_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/simd.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {
namespace detail {

/// Centre slots per feature row of the transposed centres: K rounded up to whole 64-byte vectors of
/// float (the search's; so of double too, and of every narrower width), or of double alone.
inline Index sparse_center_pitch(Index K, bool search) { return search ? (K + 15) / 16 * 16 : (K + 7) / 8 * 8; }

/// What of SparseCenters a pass needs: the search's arrays (in T), the transposed rows in double
/// (exact distances to every row of the set, vectorised), or only the norms.
enum SparseParts : unsigned { kSparseNorms = 0, kSparseSearch = 1, kSparseAll = 2 };

/// A set of dense rows (centres, or k-means++ candidates) prepared for sparse rows, transposed:
/// [j * ld + k] = row k's value at feature j; padding slots hold zeros.
template <class T>
struct SparseCenters {
  Index K = 0, D = 0, ld = 0;
  std::vector<T> minus_two_ct;  ///< kSparseSearch: -2 C^T in T (the search's products)
  std::vector<T> sq_norms;      ///< kSparseSearch: ||c_k||^2 summed in double, rounded to T (the search's e_k)
  std::vector<double> ct;       ///< kSparseAll: C^T in double (exact distances to every row)
  std::vector<double> norms;    ///< ||c_k||^2 in double
  double cmax = 0;              ///< max_k ||c_k||, rounded up
  bool halvable = false;        ///< kSparseSearch: -0.5 * minus_two_ct gives C back exactly (no -2c overflowed T)

  /// C: K x D row-major.
  SparseCenters(const T* C, Index k, Index d, unsigned parts)
      : K(k), D(d), ld(sparse_center_pitch(k, parts & kSparseSearch)), norms(static_cast<std::size_t>(k), 0.0) {
    const bool search = parts & kSparseSearch, all = parts & kSparseAll;
    if (search) {
      minus_two_ct.assign(static_cast<std::size_t>(d * ld), T(0));
      sq_norms.assign(static_cast<std::size_t>(k), T(0));
      halvable = true;
    }
    if (all) ct.assign(static_cast<std::size_t>(d * ld), 0.0);
    for (Index c = 0; c < K; ++c) {
      double norm = 0;
      for (Index j = 0; j < D; ++j) {
        const T v = C[c * D + j];
        if (all) ct[static_cast<std::size_t>(j * ld + c)] = static_cast<double>(v);
        if (search) {
          const T m = T(-2) * v;
          minus_two_ct[static_cast<std::size_t>(j * ld + c)] = m;
          halvable &= T(-0.5) * m == v;
        }
        norm += static_cast<double>(v) * static_cast<double>(v);
      }
      norms[static_cast<std::size_t>(c)] = norm;
      if (search) sq_norms[static_cast<std::size_t>(c)] = static_cast<T>(norm);
      cmax = std::max(cmax, std::sqrt(norm));
    }
    cmax *= 1 + 1e-12;
  }
};

/// Exact squared distance of a sparse row (nnz values `v` at columns `idx`) to a dense row c (double,
/// or T for k-means++'s chosen centre) of squared norm c_norm (double, summed over all features).
template <class T, class C>
inline double sparse_sq_dist(const T* v, const std::int32_t* idx, Index nnz, const C* c, double c_norm) {
  double s1 = 0, s2 = 0;
  for (Index p = 0; p < nnz; ++p) {
    const double cj = static_cast<double>(c[idx[p]]);
    const double t = static_cast<double>(v[p]) - cj;
    s1 += t * t;
    s2 += cj * cj;
  }
  return s1 + std::max(0.0, c_norm - s2);
}

/// sparse_sq_dist to centre k read from the search's -2 C^T (halvable: -0.5 times it is C exactly):
/// the row's feature rows of it were just read by the search, so they are in cache.
template <class T>
inline double sparse_sq_dist_t(const T* v, const std::int32_t* idx, Index nnz, const SparseCenters<T>& sc, Index k) {
  double s1 = 0, s2 = 0;
  const T* ct = sc.minus_two_ct.data() + k;
  for (Index p = 0; p < nnz; ++p) {
    const double cj = static_cast<double>(T(-0.5) * ct[static_cast<Index>(idx[p]) * sc.ld]);
    const double t = static_cast<double>(v[p]) - cj;
    s1 += t * t;
    s2 += cj * cj;
  }
  return s1 + std::max(0.0, sc.norms[static_cast<std::size_t>(k)] - s2);
}

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)

/// out[k0, k0 + NV lanes) = sum_p v[p] * ct[idx[p] * ld + k]: NV vectors of accumulators in registers.
template <class T, int NV>
inline void sparse_dots_tile(const T* v, const std::int32_t* idx, Index nnz, const T* ct, Index ld, Index k0, T* out) {
  using S = Simd<T>;
  using Vec = typename S::Vec;
  constexpr int L = S::kLanes;
  Vec acc[NV];
  for (int q = 0; q < NV; ++q) acc[q] = Vec{};
  for (Index p = 0; p < nnz; ++p) {
    const Vec x = S::broadcast(v[p]);
    const T* c = ct + static_cast<Index>(idx[p]) * ld + k0;
    for (int q = 0; q < NV; ++q) acc[q] += x * S::load(c + q * L);
  }
  for (int q = 0; q < NV; ++q) S::store(out + k0 + q * L, acc[q]);
}

template <class T, int NV = 8>
inline void sparse_dots_tail(int nv, const T* v, const std::int32_t* idx, Index nnz, const T* ct, Index ld, Index k0,
                             T* out) {
  if constexpr (NV > 1) {
    if (nv < NV) return sparse_dots_tail<T, NV - 1>(nv, v, idx, nnz, ct, ld, k0, out);
  }
  sparse_dots_tile<T, NV>(v, idx, nnz, ct, ld, k0, out);
}

/// out[0, ld) = x . column k of ct (ld = sparse_center_pitch(K, true)), in tiles of up to 8 vectors.
template <class T>
MIXTURA_NOINLINE void sparse_dots(const T* v, const std::int32_t* idx, Index nnz, const T* ct, Index ld, T* out) {
  constexpr Index L = Simd<T>::kLanes;
  for (Index k0 = 0; k0 < ld; k0 += 8 * L)
    sparse_dots_tail<T>(static_cast<int>(std::min<Index>(8, (ld - k0) / L)), v, idx, nnz, ct, ld, k0, out);
}

#else

template <class T>
MIXTURA_NOINLINE void sparse_dots(const T* v, const std::int32_t* idx, Index nnz, const T* ct, Index ld, T* out) {
  std::fill(out, out + ld, T(0));
  for (Index p = 0; p < nnz; ++p) {
    const T x = v[p];
    const T* c = ct + static_cast<Index>(idx[p]) * ld;
    for (Index k = 0; k < ld; ++k) out[k] += x * c[k];
  }
}

#endif

/// Exact squared distances of a sparse row to every row of a prepared set, out[0, K), vectorised
/// across the set's rows. s1, s2: scratch of ld doubles.
template <class T>
inline void sparse_sq_dists_all(const T* v, const std::int32_t* idx, Index nnz, const SparseCenters<T>& sc,
                                double* s1, double* s2, double* out) {
  const Index ld = sc.ld;
  std::fill(s1, s1 + ld, 0.0);
  std::fill(s2, s2 + ld, 0.0);
  for (Index p = 0; p < nnz; ++p) {
    const double x = static_cast<double>(v[p]);
    const double* c = sc.ct.data() + static_cast<Index>(idx[p]) * ld;
    for (Index k = 0; k < ld; ++k) {
      const double t = x - c[k];
      s1[k] += t * t;
      s2[k] += c[k] * c[k];
    }
  }
  for (Index k = 0; k < sc.K; ++k) out[k] = s1[k] + std::max(0.0, sc.norms[static_cast<std::size_t>(k)] - s2[k]);
}

/// Working memory of sparse_sq_dists_all for a prepared set: its two sums (ld) and the distances (K).
struct SparseDistancesScratch {
  std::vector<double> s1, s2, d;
  template <class T>
  explicit SparseDistancesScratch(const SparseCenters<T>& sc)
      : s1(static_cast<std::size_t>(sc.ld)), s2(static_cast<std::size_t>(sc.ld)), d(static_cast<std::size_t>(sc.K)) {}
  /// Exact squared distances of sparse row i to every row of sc, in d.
  template <class T>
  const double* of_row(const CsrMatrixView<T>& X, Index i, const SparseCenters<T>& sc) {
    const Index b = X.row_begin(i);
    sparse_sq_dists_all(X.values + b, X.indices + b, X.row_begin(i + 1) - b, sc, s1.data(), s2.data(), d.data());
    return d.data();
  }
};

/// The bound on |e_k - (||x - c_k||^2 - ||x||^2)| for the search's arithmetic in T over nnz products:
/// (nnz + 3) u (||x|| + ||c_k||)^2 to first order (Higham, ch. 3), taken four times over.
template <class T>
inline double sparse_expanded_error(Index nnz, double r) {
  const double u = static_cast<double>(std::numeric_limits<T>::epsilon()) / 2;
  return 4.0 * (static_cast<double>(nnz) + 4.0) * u * r * r;
}

/// Working memory of the sparse search: the products of one row with every centre.
template <class T>
struct SparseNearestScratch {
  std::vector<T> dots;
  std::vector<Index> candidates;
  explicit SparseNearestScratch(Index ld) : dots(static_cast<std::size_t>(ld)) {}
};

/// Exact squared distance of sparse row i to centre k (from the search's arrays when halvable, else
/// from centers_d, K x D in double).
template <class T>
inline double sparse_exact(const CsrMatrixView<T>& X, Index i, const SparseCenters<T>& sc,
                           const RowMatrix<double>& centers_d, Index k) {
  const Index b = X.row_begin(i), nnz = X.row_begin(i + 1) - b;
  return sc.halvable ? sparse_sq_dist_t(X.values + b, X.indices + b, nnz, sc, k)
                     : sparse_sq_dist(X.values + b, X.indices + b, nnz, centers_d.data() + k * sc.D,
                                      sc.norms[static_cast<std::size_t>(k)]);
}

/// What the sparse search found for a row: the nearest centre by exact distance and that distance;
/// for Hamerly's bounds, the smallest expanded distance e_k of the other centres, ||x||^2 and the
/// bound on e's rounding error (every other centre is at least second + xnorm2 - error away, squared).
struct SparseRowSearch {
  std::int32_t label = -1;
  double dist = 0, second = std::numeric_limits<double>::infinity(), xnorm2 = 0, error = 0;
};

/// The nearest centre of sparse row i (by exact distance, ties to the lowest index), its exact
/// squared distance and SparseRowSearch's bound terms (`second` only with want_second: Hamerly's
/// bounds). centers_d: as in sparse_exact.
template <class T>
inline SparseRowSearch nearest_sparse_row(const CsrMatrixView<T>& X, Index i, const SparseCenters<T>& sc,
                                          const RowMatrix<double>& centers_d, SparseNearestScratch<T>& s,
                                          bool want_second = false) {
  const Index b = X.row_begin(i), nnz = X.row_begin(i + 1) - b;
  const T* v = X.values + b;
  const std::int32_t* idx = X.indices + b;
  const Index K = sc.K;
  sparse_dots(v, idx, nnz, sc.minus_two_ct.data(), sc.ld, s.dots.data());
  auto e = [&](Index k) { return s.dots[static_cast<std::size_t>(k)] + sc.sq_norms[static_cast<std::size_t>(k)]; };
  T best = std::numeric_limits<T>::infinity();
  std::int32_t arg = -1;
  for (Index k = 0; k < K; ++k)
    if (e(k) < best) {
      best = e(k);
      arg = static_cast<std::int32_t>(k);
    }
  SparseRowSearch out;
  for (Index p = 0; p < nnz; ++p) out.xnorm2 += static_cast<double>(v[p]) * static_cast<double>(v[p]);
  const double r = std::sqrt(out.xnorm2) + sc.cmax;
  out.error = sparse_expanded_error<T>(nnz, r);
  const double limit = static_cast<double>(best) + 2 * out.error;
  s.candidates.clear();
  for (Index k = 0; k < K; ++k)  // an e_k that overflowed T is a candidate too
    if (arg < 0 || !std::isfinite(limit) || !std::isfinite(e(k)) || static_cast<double>(e(k)) <= limit)
      s.candidates.push_back(k);
  for (const Index k : s.candidates) {
    const double d = sparse_exact(X, i, sc, centers_d, k);
    if (out.label < 0 || d < out.dist) {
      out.dist = d;
      out.label = static_cast<std::int32_t>(k);
    }
  }
  if (!want_second) return out;
  bool bounded = std::isfinite(limit);  // an overflowed e_k bounds nothing
  for (Index k = 0; k < K; ++k)
    if (k != out.label) {
      bounded &= std::isfinite(e(k));
      out.second = std::min(out.second, static_cast<double>(e(k)));
    }
  if (!bounded) out.second = -std::numeric_limits<double>::infinity();
  return out;
}

/// The statistics of one reduction group of sparse rows: weight, count, distortion, changes and
/// candidates as in KMeansStats, the sums as (position, value) entries for the positions the group
/// touched (the others are zero). merge() makes the running total's sums dense: O(K D) once, then
/// O(entries) a group, where dense statistics per group would cost O(K D) each.
struct SparseGroupStats {
  KMeansStats stats;  ///< sums empty until `dense`
  std::vector<std::pair<Index, double>> entries;
  bool dense = false;

  SparseGroupStats(Index K, Index D, Index keep) : stats(K, 0, keep) { stats.n_features = D; }
  void make_dense() {
    if (dense) return;
    stats.sums.assign(static_cast<std::size_t>(stats.n_clusters * stats.n_features), 0.0);
    for (const auto& e : entries) stats.sums[static_cast<std::size_t>(e.first)] += e.second;
    entries.clear();
    dense = true;
  }
  /// KMeansStats::merge for statistics held this way (the same additions in the same order).
  void merge(const SparseGroupStats& o) {
    make_dense();
    if (stats.keep_farthest > 0 || !o.stats.farthest.empty()) stats.merge_farthest(o.stats);
    for (std::size_t k = 0; k < stats.weight.size(); ++k) {
      stats.weight[k] += o.stats.weight[k];
      stats.count[k] += o.stats.count[k];
    }
    for (const auto& e : o.entries) stats.sums[static_cast<std::size_t>(e.first)] += e.second;
    stats.distortion += o.stats.distortion;
    stats.n_changed += o.stats.n_changed;
  }
};

/// Working memory of the sparse assignment pass (one per thread): the search's; the cluster and exact
/// distance of each row of the group so far; the group's rows ordered by cluster; one cluster's sums
/// over a block and over the group (D each, all zero between uses, with the features they touched).
template <class T>
struct SparseAssignScratch {
  SparseNearestScratch<T> nearest;
  std::vector<std::int32_t> label;
  std::vector<double> dist;
  std::vector<Index> order, first;  ///< the group's rows by cluster; first[k]: where cluster k's end
  std::vector<double> bsum, gsum;
  std::vector<Index> btouched, gtouched;  ///< repeats allowed
  std::vector<std::pair<double, Index>> far;
  SparseAssignScratch(Index K, Index D, Index ld)
      : nearest(ld), first(static_cast<std::size_t>(K + 1)), bsum(static_cast<std::size_t>(D), 0.0),
        gsum(static_cast<std::size_t>(D), 0.0) {}
};

/// Folds the sums and weights of a group's rows [begin, end) (their clusters in sc.label) into s, as
/// the dense fold makes them: per block and cluster, the weights and sums of its rows in row order
/// (zeros left out: adding them changes nothing), added block by block to the group's. Done cluster by
/// cluster, so that the sums being added to are one cluster's (in cache), not the group's K x D.
/// The group's sums become s.entries.
template <class T>
void fold_sparse_group(const CsrMatrixView<T>& X, VectorView<T> w, Index begin, Index end, SparseAssignScratch<T>& sc,
                       SparseGroupStats& s) {
  const Index rows = end - begin, K = s.stats.n_clusters, D = s.stats.n_features;
  sc.order.resize(static_cast<std::size_t>(rows));
  std::fill(sc.first.begin(), sc.first.end(), Index{0});  // counting sort of the rows by cluster (stable)
  for (Index r = 0; r < rows; ++r) ++sc.first[static_cast<std::size_t>(sc.label[static_cast<std::size_t>(r)]) + 1];
  for (Index k = 0; k < K; ++k) sc.first[static_cast<std::size_t>(k + 1)] += sc.first[static_cast<std::size_t>(k)];
  for (Index r = 0; r < rows; ++r)
    sc.order[static_cast<std::size_t>(sc.first[static_cast<std::size_t>(sc.label[static_cast<std::size_t>(r)])]++)] = r;
  Index at = 0;  // first[k] is now where cluster k's rows end in order[]
  for (Index k = 0; k < K; ++k) {
    const Index stop = sc.first[static_cast<std::size_t>(k)];
    while (at < stop) {  // one block's rows of cluster k
      const Index block = sc.order[static_cast<std::size_t>(at)] / kKMeansBlock;
      double bw = 0;
      for (; at < stop && sc.order[static_cast<std::size_t>(at)] / kKMeansBlock == block; ++at) {
        const Index i = begin + sc.order[static_cast<std::size_t>(at)];
        const double wi = row_weight(w, i);
        bw += wi;
        for (Index p = X.row_begin(i); p < X.row_begin(i + 1); ++p) {
          const std::size_t j = static_cast<std::size_t>(X.indices[p]);
          if (sc.bsum[j] == 0) sc.btouched.push_back(static_cast<Index>(j));
          sc.bsum[j] += wi * static_cast<double>(X.values[p]);
        }
      }
      if (!w.empty()) s.stats.weight[k] += bw;
      for (const Index j : sc.btouched) {
        double& g = sc.gsum[static_cast<std::size_t>(j)];
        if (g == 0) sc.gtouched.push_back(j);
        g += sc.bsum[static_cast<std::size_t>(j)];
        sc.bsum[static_cast<std::size_t>(j)] = 0;
      }
      sc.btouched.clear();
    }
    for (const Index j : sc.gtouched) {
      double& g = sc.gsum[static_cast<std::size_t>(j)];
      if (g != 0) s.entries.emplace_back(k * D + j, g);  // a repeated feature reads the 0 left here
      g = 0;
    }
    sc.gtouched.clear();
  }
}

}  // namespace detail

namespace detail {
/// The sparse assignment pass over every row: row(scratch, i, searched) gives row i's label and its
/// exact squared distance (searched: whether it searched the centres, counted into *n_searched if
/// given); the statistics are folded as the dense pass folds them. keep_farthest > 0: also that many
/// re-seeding candidates.
template <class T, class Row>
KMeansStats sparse_assign_rows(const CpuBackend& be, const CsrMatrixView<T>& X, VectorView<T> w, Index K, Index D,
                               Index ld, std::int32_t* labels, Index keep_farthest, std::int64_t* n_searched,
                               Row&& row) {
  // Each reduction group's first row (fold_rows' plan): a group's rows are searched block by block,
  // then folded together at its last block.
  const BlockPlan plan(X.rows, kKMeansBlock);
  std::vector<Index> group_begin(static_cast<std::size_t>(plan.n_blocks));
  for (Index g = 0; g < plan.n_groups; ++g)
    for (Index b = plan.group_first(g); b < plan.group_first(g + 1); ++b)
      group_begin[static_cast<std::size_t>(b)] = plan.block_begin(plan.group_first(g));
  std::vector<std::int64_t> searched_per_block(static_cast<std::size_t>(plan.n_blocks), 0);
  SparseGroupStats total = fold_rows(
      X.rows, kKMeansBlock, be.n_threads, [&] { return SparseGroupStats(K, D, keep_farthest); },
      [&] { return SparseAssignScratch<T>(K, D, ld); },
      [&](SparseGroupStats& s, SparseAssignScratch<T>& scr, Index begin, Index end) {
        const Index b = begin / kKMeansBlock, g0 = group_begin[static_cast<std::size_t>(b)];
        scr.label.resize(static_cast<std::size_t>(end - g0));
        scr.dist.resize(static_cast<std::size_t>(end - g0));
        double lanes[4] = {0, 0, 0, 0};  // the distortion by row index mod 4
        std::int64_t changed = 0, searched = 0;
        for (Index i = begin; i < end; ++i) {
          bool searched_row = true;
          const auto [k, dist] = row(scr, i, searched_row);
          searched += searched_row;
          scr.label[static_cast<std::size_t>(i - g0)] = k;
          scr.dist[static_cast<std::size_t>(i - g0)] = dist;
          changed += labels[i] != k;
          labels[i] = k;
          lanes[(i - begin) & 3] += row_weight(w, i) * dist;
        }
        searched_per_block[static_cast<std::size_t>(b)] = searched;
        if (keep_farthest > 0) {  // the block's candidates join the group's before its rows are counted
          KMeansStats blk(K, 0, keep_farthest);
          scr.far.clear();
          for (Index i = begin; i < end; ++i)
            if (row_weight(w, i) > 0) scr.far.emplace_back(scr.dist[static_cast<std::size_t>(i - g0)], i - begin);
          const std::size_t m = std::min(scr.far.size(), static_cast<std::size_t>(keep_farthest));
          std::partial_sort(scr.far.begin(), scr.far.begin() + static_cast<std::ptrdiff_t>(m), scr.far.end(),
                            [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
          for (std::size_t e = 0; e < m; ++e) {
            const Index i = begin + scr.far[e].second;
            KMeansFarRow f;
            f.distance = scr.far[e].first;
            f.weight = row_weight(w, i);
            f.row = scr.far[e].second;
            f.cluster = labels[i];
            f.values.assign(static_cast<std::size_t>(D), 0.0);
            for (Index p = X.row_begin(i); p < X.row_begin(i + 1); ++p)
              f.values[static_cast<std::size_t>(X.indices[p])] = static_cast<double>(X.values[p]);
            blk.farthest.push_back(std::move(f));
          }
          s.stats.merge_farthest(blk);
        }
        for (Index i = begin; i < end; ++i) ++s.stats.count[labels[i]];
        s.stats.distortion += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        s.stats.n_changed += changed;
        if (end == plan.block_end(plan.n_blocks - 1) || group_begin[static_cast<std::size_t>(b + 1)] != g0)
          fold_sparse_group(X, w, g0, end, scr, s);
      });
  total.make_dense();
  if (w.empty()) weights_from_counts(total.stats);
  if (n_searched) {
    *n_searched = 0;
    for (const std::int64_t m : searched_per_block) *n_searched += m;
  }
  return std::move(total.stats);
}
}  // namespace detail

/// kmeans_assign for sparse rows: labels by exact distance (see the file comment), the statistics
/// folded as the dense pass folds them. keep_farthest > 0: also that many re-seeding candidates.
template <class T>
KMeansStats kmeans_assign(const CpuBackend& be, const CsrMatrixView<T>& X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels, Index keep_farthest = 0) {
  const Index K = C.rows(), D = C.cols();
  const detail::SparseCenters<T> sc(C.data(), K, D, detail::kSparseSearch);
  const RowMatrix<double> centers_d = sc.halvable ? RowMatrix<double>() : RowMatrix<double>(C.template cast<double>());
  return detail::sparse_assign_rows(be, X, w, K, D, sc.ld, labels, keep_farthest, nullptr,
                                    [&](detail::SparseAssignScratch<T>& scr, Index i, bool&) {
                                      const detail::SparseRowSearch r = detail::nearest_sparse_row(X, i, sc, centers_d, scr.nearest);
                                      return std::make_pair(r.label, r.dist);
                                    });
}

/// kmeans_assign_bounded for sparse rows: Hamerly's bounds (kmeans/cpu_pass.hpp) around the sparse
/// search, which returns the nearest centre by exact distance. A row keeps its label unsearched when
/// its bounds leave a gap l^2 - u^2 wider than the exact distances' rounding could close; a searched
/// row's lower bound is the second smallest expanded distance less its rounding bound. Labels,
/// statistics and distortion are kmeans_assign's bit for bit (each row's distance is the same exact
/// distance to the same centre).
template <class T>
KMeansStats kmeans_assign_bounded(const CpuBackend& be, const CsrMatrixView<T>& X, VectorView<T> w,
                                  const RowMatrix<T>& C, std::int32_t* labels, detail::KMeansBounds<T>& b) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const Index K = C.rows(), D = C.cols(), n = X.rows;
  const detail::SparseCenters<T> sc(C.data(), K, D, detail::kSparseSearch);
  const RowMatrix<double> centers_d = sc.halvable ? RowMatrix<double>() : RowMatrix<double>(C.template cast<double>());
  const bool have = b.centers.rows() == K && b.centers.cols() == D && static_cast<Index>(b.upper.size()) == n;
  if (!have) {
    b.upper.assign(static_cast<std::size_t>(n), kInf);
    b.lower.assign(static_cast<std::size_t>(n), 0.0);
  }
  const detail::CenterMoves mv = have ? detail::center_moves(C, b.centers) : detail::CenterMoves(K);
  const double u = std::ldexp(1.0, -53), c2 = sc.cmax * sc.cmax;
  KMeansStats stats = detail::sparse_assign_rows(
      be, X, w, K, D, sc.ld, labels, 0, &b.n_searched,
      [&](detail::SparseAssignScratch<T>& scr, Index i, bool& searched) {
        const Index nnz = X.row_begin(i + 1) - X.row_begin(i);
        const std::int32_t a = labels[i];
        double& up = b.upper[static_cast<std::size_t>(i)];
        double& lo = b.lower[static_cast<std::size_t>(i)];
        // An exact distance d is computed within (nnz + 2) u d + (D + nnz) u cmax^2: the label stays the
        // search's when lo^2 - up^2 exceeds both rows' errors (four times over).
        const double rel = (static_cast<double>(nnz) + 2) * u, abs = (static_cast<double>(D + nnz) + 2) * u * c2;
        const auto settled = [&] { return lo * lo - up * up > 4 * (rel * (lo * lo + up * up) + 2 * abs); };
        const auto upper_of = [&](double d) { return std::sqrt(d * (1 + 2 * rel) + 2 * abs) * (1 + 1e-12); };
        if (have && a >= 0 && up < kInf) {
          up += mv.moved[static_cast<std::size_t>(a)];
          lo = std::max(0.0, lo - (a == mv.arg1 ? mv.max2 : mv.max1));
          const bool keep = settled();
          const double d = detail::sparse_exact(X, i, sc, centers_d, a);  // the distortion needs it anyway
          up = std::min(up, upper_of(d));  // tightened (and tested again if it was not settled)
          if (keep || settled()) {
            searched = false;
            return std::make_pair(a, d);
          }
        }
        const detail::SparseRowSearch r = detail::nearest_sparse_row(X, i, sc, centers_d, scr.nearest, true);
        up = upper_of(r.dist);
        lo = std::sqrt(std::max(0.0, (r.second + r.xnorm2 * (1 - 2 * rel) - r.error) * (1 - 1e-12)));
        return std::make_pair(r.label, r.dist);
      });
  b.centers = C;
  return stats;
}

/// Labels of sparse rows (nullptr: none) and the exact weighted distortion they give.
template <class T>
double kmeans_predict(const CpuBackend& be, const CsrMatrixView<T>& X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  const Index K = C.rows(), D = C.cols();
  const detail::SparseCenters<T> sc(C.data(), K, D, detail::kSparseSearch);
  const RowMatrix<double> centers_d = sc.halvable ? RowMatrix<double>() : RowMatrix<double>(C.template cast<double>());
  return detail::fold_rows(
             X.rows, detail::kKMeansBlock, be.n_threads, [] { return detail::SumStat{}; },
             [&] { return detail::SparseNearestScratch<T>(sc.ld); },
             [&](detail::SumStat& s, detail::SparseNearestScratch<T>& scr, Index begin, Index end) {
               double lanes[4] = {0, 0, 0, 0};
               for (Index i = begin; i < end; ++i) {
                 const detail::SparseRowSearch r = detail::nearest_sparse_row(X, i, sc, centers_d, scr);
                 if (labels) labels[i] = r.label;
                 lanes[(i - begin) & 3] += detail::row_weight(w, i) * r.dist;
               }
               s.value += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
             })
      .value;
}

/// Exact squared distance of every sparse row to its assigned centre (the assignment pass's bits).
template <class T>
std::vector<double> kmeans_distances_to_assigned(const CpuBackend& be, const CsrMatrixView<T>& X, const RowMatrix<T>& C,
                                                 const std::int32_t* labels) {
  const detail::SparseCenters<T> sc(C.data(), C.rows(), C.cols(), detail::kSparseNorms);
  const RowMatrix<double> centers_d = C.template cast<double>();
  std::vector<double> out(static_cast<std::size_t>(X.rows));
  detail::for_blocks(X.rows, 4096, be.n_threads, [] { return detail::NoScratch{}; },
                     [&](detail::NoScratch&, Index begin, Index end) {
                       for (Index i = begin; i < end; ++i)
                         out[static_cast<std::size_t>(i)] = detail::sparse_exact(X, i, sc, centers_d, labels[i]);
                     });
  return out;
}

/// Euclidean distance of every sparse row to every centre (n x K), exact as above.
template <class T>
RowMatrix<T> kmeans_transform(const CpuBackend& be, const CsrMatrixView<T>& X, const RowMatrix<T>& C) {
  const Index K = C.rows();
  const detail::SparseCenters<T> sc(C.data(), K, C.cols(), detail::kSparseAll);
  RowMatrix<T> out(X.rows, K);
  detail::for_blocks(X.rows, 256, be.n_threads, [&] { return detail::SparseDistancesScratch(sc); },
                     [&](detail::SparseDistancesScratch& s, Index begin, Index end) {
                       for (Index i = begin; i < end; ++i) {
                         const double* d = s.of_row(X, i, sc);
                         for (Index k = 0; k < K; ++k) out(i, k) = static_cast<T>(std::sqrt(d[k]));
                       }
                     });
  return out;
}

/// closest[i] = min(closest[i], ||x_i - c||^2) (or = when `reset`) for a dense row c; returns
/// sum_i w_i closest[i].
template <class T>
double kmeans_update_closest(const CpuBackend& be, const CsrMatrixView<T>& X, VectorView<T> w, const T* c,
                             double* closest, bool reset) {
  double c_norm = 0;
  for (Index j = 0; j < X.cols; ++j) c_norm += static_cast<double>(c[j]) * static_cast<double>(c[j]);
  return detail::fold_rows(
             X.rows, 4096, be.n_threads, [] { return detail::SumStat{}; }, [] { return detail::NoScratch{}; },
             [&](detail::SumStat& s, detail::NoScratch&, Index begin, Index end) {
               for (Index i = begin; i < end; ++i) {
                 const Index b = X.row_begin(i);
                 const double d = detail::sparse_sq_dist(X.values + b, X.indices + b, X.row_begin(i + 1) - b, c, c_norm);
                 closest[i] = reset ? d : std::min(closest[i], d);
                 s.value += detail::row_weight(w, i) * closest[i];
               }
             })
      .value;
}

/// For each candidate row j: sum_i w_i min(closest[i], ||x_i - x_j||^2), in one pass over X.
template <class T>
std::vector<double> kmeans_candidate_potentials(const CpuBackend& be, const CsrMatrixView<T>& X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  const Index m = static_cast<Index>(candidates.size());
  const RowMatrix<T> cand = fetch_rows(be, X, candidates);
  const detail::SparseCenters<T> sc(cand.data(), m, X.cols, detail::kSparseAll);
  struct Pots {
    std::vector<double> v;
    void merge(const Pots& o) {
      for (std::size_t j = 0; j < v.size(); ++j) v[j] += o.v[j];
    }
  };
  return detail::fold_rows(
             X.rows, 4096, be.n_threads, [&] { return Pots{std::vector<double>(static_cast<std::size_t>(m), 0.0)}; },
             [&] { return detail::SparseDistancesScratch(sc); },
             [&](Pots& s, detail::SparseDistancesScratch& scr, Index begin, Index end) {
               for (Index i = begin; i < end; ++i) {
                 const double* d = scr.of_row(X, i, sc);
                 const double wi = detail::row_weight(w, i);
                 for (Index j = 0; j < m; ++j) s.v[static_cast<std::size_t>(j)] += wi * std::min(closest[i], d[j]);
               }
             })
      .v;
}

/// Mean over features of the (unweighted, population) variance of sparse rows, zeros included:
/// the scale of scikit-learn's tol. Two passes (the means, then squares around them).
template <class T>
double mean_feature_variance(const CpuBackend&, const CsrMatrixView<T>& X) {
  const Index D = X.cols, nnz = X.nnz();
  std::vector<double> sum(static_cast<std::size_t>(D), 0.0), sq(static_cast<std::size_t>(D), 0.0);
  std::vector<Index> stored(static_cast<std::size_t>(D), 0);
  for (Index p = 0; p < nnz; ++p) sum[static_cast<std::size_t>(X.indices[p])] += static_cast<double>(X.values[p]);
  const double n = static_cast<double>(X.rows);
  for (double& s : sum) s /= n;  // now the means
  for (Index p = 0; p < nnz; ++p) {
    const std::size_t j = static_cast<std::size_t>(X.indices[p]);
    const double t = static_cast<double>(X.values[p]) - sum[j];
    sq[j] += t * t;
    ++stored[j];
  }
  double total = 0;
  for (std::size_t j = 0; j < sum.size(); ++j)
    total += (sq[j] + static_cast<double>(X.rows - stored[j]) * sum[j] * sum[j]) / n;
  return total / static_cast<double>(D);
}

}  // namespace mixtura
