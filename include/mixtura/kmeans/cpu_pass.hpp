#pragma once
/// K-means data passes on the CPU: the only code here that touches all N rows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {
namespace detail {

/// Rows per block of the assignment pass. Fixed (never derived from the thread count), so results
/// do not depend on it; 256 rows keep a block and its K distances in L2 for K up to a few hundred.
inline constexpr Index kKMeansBlock = 256;

/// Exact squared distance, accumulated in double (no cancellation of the expanded form).
template <class T>
inline double sq_dist(const T* x, const T* c, Index d) {
  double acc = 0.0;
  for (Index j = 0; j < d; ++j) {
    const double t = static_cast<double>(x[j]) - static_cast<double>(c[j]);
    acc += t * t;
  }
  return acc;
}

template <class T>
inline double row_weight(VectorView<T> w, Index i) {
  return w.empty() ? 1.0 : static_cast<double>(w[i]);
}

/// Centres prepared for the GEMM form of the distance: -2 C^T (D x K) and ||c_k||^2.
template <class T>
struct PreparedCenters {
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> minus_two_ct;
  Eigen::Matrix<T, Eigen::Dynamic, 1> sq_norms;
  explicit PreparedCenters(const RowMatrix<T>& C)
      : minus_two_ct((T(-2) * C).transpose()), sq_norms(C.rowwise().squaredNorm()) {}
};

/// For rows [begin, end): nearest centre of each row, by ||c||^2 - 2 x.c from one GEMM of the block
/// against all centres. `fn(i, best)` is called per row in order.
template <class T, class Fn>
inline void nearest_centers_block(MatrixView<T> X, const PreparedCenters<T>& pc, RowMatrix<T>& dots, Index begin,
                                  Index end, Fn&& fn) {
  const Index rows = end - begin;
  const Index K = pc.sq_norms.size();
  auto block = dots.topRows(rows);
  block.noalias() = X.slice(begin, end).map() * pc.minus_two_ct;
  const T* norms = pc.sq_norms.data();
  for (Index r = 0; r < rows; ++r) {
    const T* dr = block.row(r).data();
    Index best = 0;
    T best_v = norms[0] + dr[0];
    for (Index k = 1; k < K; ++k) {
      const T v = norms[k] + dr[k];
      if (v < best_v) {  // strict: ties go to the lowest index
        best_v = v;
        best = k;
      }
    }
    fn(begin + r, best);
  }
}

}  // namespace detail

/// Assignment half-step fused with the statistics of the update half-step.
/// labels (n rows) holds the previous labels on entry (any value, e.g. -1, if none) and the new ones
/// on exit; the returned statistics count how many changed.
template <class T>
KMeansStats kmeans_assign(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels) {
  const Index K = C.rows(), D = C.cols();
  const detail::PreparedCenters<T> pc(C);
  return detail::fold_rows(
      X.rows, detail::kKMeansBlock, be.n_threads, [&] { return KMeansStats(K, D); },
      [&] { return RowMatrix<T>(detail::kKMeansBlock, K); },
      [&](KMeansStats& s, RowMatrix<T>& dots, Index begin, Index end) {
        detail::nearest_centers_block(X, pc, dots, begin, end, [&](Index i, Index k) {
          const T* x = X.row(i);
          const double wi = detail::row_weight(w, i);
          s.n_changed += labels[i] != static_cast<std::int32_t>(k);
          labels[i] = static_cast<std::int32_t>(k);
          s.weight[k] += wi;
          ++s.count[k];
          s.distortion += wi * detail::sq_dist(x, C.row(k).data(), D);
          double* sum = s.sums.data() + k * D;
          for (Index j = 0; j < D; ++j) sum[j] += wi * static_cast<double>(x[j]);
        });
      });
}

/// Labels only (prediction), plus the exact weighted distortion they give.
template <class T>
double kmeans_predict(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  const Index K = C.rows(), D = C.cols();
  const detail::PreparedCenters<T> pc(C);
  return detail::fold_rows(
             X.rows, detail::kKMeansBlock, be.n_threads, [] { return detail::SumStat{}; },
             [&] { return RowMatrix<T>(detail::kKMeansBlock, K); },
             [&](detail::SumStat& s, RowMatrix<T>& dots, Index begin, Index end) {
               detail::nearest_centers_block(X, pc, dots, begin, end, [&](Index i, Index k) {
                 if (labels) labels[i] = static_cast<std::int32_t>(k);
                 s.value += detail::row_weight(w, i) * detail::sq_dist(X.row(i), C.row(k).data(), D);
               });
             })
      .value;
}

/// Exact squared distance of every row to its assigned centre (used to re-seed empty clusters).
template <class T>
std::vector<double> kmeans_distances_to_assigned(const CpuBackend& be, MatrixView<T> X, const RowMatrix<T>& C,
                                                 const std::int32_t* labels) {
  std::vector<double> out(static_cast<std::size_t>(X.rows));
  detail::for_blocks(X.rows, 4096, be.n_threads, [] { return detail::NoScratch{}; },
                     [&](detail::NoScratch&, Index begin, Index end) {
                       for (Index i = begin; i < end; ++i)
                         out[i] = detail::sq_dist(X.row(i), C.row(labels[i]).data(), X.cols);
                     });
  return out;
}

/// Euclidean distance of every row to every centre (n x K), computed directly (no cancellation).
template <class T>
RowMatrix<T> kmeans_transform(const CpuBackend& be, MatrixView<T> X, const RowMatrix<T>& C) {
  RowMatrix<T> out(X.rows, C.rows());
  detail::for_blocks(X.rows, 1024, be.n_threads, [] { return detail::NoScratch{}; },
                     [&](detail::NoScratch&, Index begin, Index end) {
                       for (Index i = begin; i < end; ++i)
                         for (Index k = 0; k < C.rows(); ++k)
                           out(i, k) = static_cast<T>(std::sqrt(detail::sq_dist(X.row(i), C.row(k).data(), X.cols)));
                     });
  return out;
}

/// closest[i] = min(closest[i], ||x_i - c||^2) (or = when `reset`); returns sum_i w_i closest[i].
template <class T>
double kmeans_update_closest(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const T* c, double* closest,
                             bool reset) {
  return detail::fold_rows(
             X.rows, 4096, be.n_threads, [] { return detail::SumStat{}; }, [] { return detail::NoScratch{}; },
             [&](detail::SumStat& s, detail::NoScratch&, Index begin, Index end) {
               for (Index i = begin; i < end; ++i) {
                 const double d = detail::sq_dist(X.row(i), c, X.cols);
                 closest[i] = reset ? d : std::min(closest[i], d);
                 s.value += detail::row_weight(w, i) * closest[i];
               }
             })
      .value;
}

/// For each candidate row c_j: sum_i w_i min(closest[i], ||x_i - c_j||^2), in one pass over X.
template <class T>
std::vector<double> kmeans_candidate_potentials(const CpuBackend& be, MatrixView<T> X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  struct Pots {
    std::vector<double> v;
    void merge(const Pots& o) {
      for (std::size_t j = 0; j < v.size(); ++j) v[j] += o.v[j];
    }
  };
  const std::size_t m = candidates.size();
  return detail::fold_rows(
             X.rows, 4096, be.n_threads, [&] { return Pots{std::vector<double>(m, 0.0)}; },
             [] { return detail::NoScratch{}; },
             [&](Pots& s, detail::NoScratch&, Index begin, Index end) {
               for (Index i = begin; i < end; ++i) {
                 const double wi = detail::row_weight(w, i);
                 for (std::size_t j = 0; j < m; ++j)
                   s.v[j] += wi * std::min(closest[i], detail::sq_dist(X.row(i), X.row(candidates[j]), X.cols));
               }
             })
      .v;
}

/// Mean over features of the (unweighted, population) variance: the scale of scikit-learn's tol.
template <class T>
double mean_feature_variance(const CpuBackend& be, MatrixView<T> X) {
  struct Moments {
    std::vector<double> s1, s2;
    void merge(const Moments& o) {
      for (std::size_t j = 0; j < s1.size(); ++j) {
        s1[j] += o.s1[j];
        s2[j] += o.s2[j];
      }
    }
  };
  const Index D = X.cols;
  const T* shift = X.row(0);  // moments around the first row: no cancellation for offset data
  const auto m = detail::fold_rows(
      X.rows, 4096, be.n_threads,
      [&] { return Moments{std::vector<double>(D, 0.0), std::vector<double>(D, 0.0)}; },
      [] { return detail::NoScratch{}; },
      [&](Moments& s, detail::NoScratch&, Index begin, Index end) {
        for (Index i = begin; i < end; ++i) {
          const T* x = X.row(i);
          for (Index j = 0; j < D; ++j) {
            const double t = static_cast<double>(x[j]) - static_cast<double>(shift[j]);
            s.s1[j] += t;
            s.s2[j] += t * t;
          }
        }
      });
  const double n = static_cast<double>(X.rows);
  double total = 0.0;
  for (Index j = 0; j < D; ++j) {
    const double mean = m.s1[j] / n;
    total += std::max(0.0, m.s2[j] / n - mean * mean);
  }
  return total / static_cast<double>(D);
}

}  // namespace mixtura
