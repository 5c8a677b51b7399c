#pragma once
/// Per-feature mean and variance of a data matrix: the scale behind K-means' tol and the floors of the
/// Gaussian-mixture policy. One deterministic pass, moments around the first row (no cancellation
/// for data far from the origin).

#include <cmath>

#include <Eigen/Core>

#include "mixtura/core/errors.hpp"
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

/// Per-feature mean and variance over the observed (non-NaN) values; a feature with no observed
/// value is an error naming it.
template <class T>
FeatureMoments observed_feature_moments(const char* where, MatrixView<T> X) {
  const Index D = X.cols;
  Eigen::VectorXd count = Eigen::VectorXd::Zero(D), s1 = Eigen::VectorXd::Zero(D), s2 = Eigen::VectorXd::Zero(D);
  for (Index i = 0; i < X.rows; ++i)  // two passes (mean, then squares around it): no cancellation
    for (Index j = 0; j < D; ++j)
      if (!std::isnan(X.row(i)[j])) {
        count[j] += 1;
        s1[j] += static_cast<double>(X.row(i)[j]);
      }
  for (Index j = 0; j < D; ++j)
    MIXTURA_EXPECTS(count[j] > 0, "%s: feature %lld has no observed value (every row is NaN there)", where,
                    static_cast<long long>(j));
  FeatureMoments out;
  out.mean = s1.array() / count.array();
  for (Index i = 0; i < X.rows; ++i)
    for (Index j = 0; j < D; ++j)
      if (!std::isnan(X.row(i)[j])) {
        const double d = static_cast<double>(X.row(i)[j]) - out.mean[j];
        s2[j] += d * d;
      }
  out.variance = s2.array() / count.array();
  return out;
}

/// A copy of X with every gap filled by its feature's observed mean (what the initialisations run on).
template <class T>
RowMatrix<T> filled_copy(MatrixView<T> X, const Eigen::VectorXd& mean) {
  RowMatrix<T> out(X.rows, X.cols);
  for (Index i = 0; i < X.rows; ++i)
    for (Index j = 0; j < X.cols; ++j) {
      const T v = X.row(i)[j];
      out(i, j) = std::isnan(v) ? static_cast<T>(mean[j]) : v;
    }
  return out;
}

}  // namespace detail
}  // namespace mixtura
