#pragma once
/// Per-feature mean and variance of a data matrix: the scale behind K-means' tol and the floors of the
/// Gaussian-mixture policy. One deterministic pass, moments around the first row (no cancellation
/// for data far from the origin).

#include <Eigen/Core>

#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"

namespace mixtura {
namespace detail {

/// Unweighted mean and population variance of each column of X (numpy's mean / var(X, axis=0)).
struct FeatureMoments {
  Eigen::VectorXd mean, variance;
};

template <class T>
FeatureMoments feature_moments(MatrixView<T> X, int n_threads) {
  struct Sums {
    Eigen::VectorXd s1, s2;
    void merge(const Sums& o) {
      s1 += o.s1;
      s2 += o.s2;
    }
  };
  const Index D = X.cols;
  const T* shift = X.row(0);
  const auto m = fold_rows(
      X.rows, 4096, n_threads, [&] { return Sums{Eigen::VectorXd::Zero(D), Eigen::VectorXd::Zero(D)}; },
      [] { return NoScratch{}; },
      [&](Sums& s, NoScratch&, Index begin, Index end) {
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
  const Eigen::VectorXd d = m.s1 / n;  // mean - shift
  FeatureMoments out;
  out.mean = d + Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(shift, D).template cast<double>();
  out.variance = (m.s2 / n - d.array().square().matrix()).cwiseMax(0.0);
  return out;
}

/// Unweighted population variance of each column of X (numpy's var(X, axis=0)).
template <class T>
Eigen::VectorXd feature_variances(MatrixView<T> X, int n_threads) {
  return feature_moments(X, n_threads).variance;
}

}  // namespace detail
}  // namespace mixtura
