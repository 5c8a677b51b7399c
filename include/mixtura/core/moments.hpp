#pragma once
/// Per-feature variance of a data matrix: the scale behind K-means' tol and the floors of the
/// Gaussian-mixture policy. One deterministic pass, moments around the first row (no cancellation
/// for data far from the origin).

#include <Eigen/Core>

#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"

namespace mixtura {
namespace detail {

/// Unweighted population variance of each column of X (numpy's var(X, axis=0)).
template <class T>
Eigen::VectorXd feature_variances(MatrixView<T> X, int n_threads) {
  struct Moments {
    Eigen::VectorXd s1, s2;
    void merge(const Moments& o) {
      s1 += o.s1;
      s2 += o.s2;
    }
  };
  const Index D = X.cols;
  const T* shift = X.row(0);
  const auto m = fold_rows(
      X.rows, 4096, n_threads, [&] { return Moments{Eigen::VectorXd::Zero(D), Eigen::VectorXd::Zero(D)}; },
      [] { return NoScratch{}; },
      [&](Moments& s, NoScratch&, Index begin, Index end) {
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
  return (m.s2 / n - (m.s1 / n).array().square().matrix()).cwiseMax(0.0);
}

}  // namespace detail
}  // namespace mixtura
