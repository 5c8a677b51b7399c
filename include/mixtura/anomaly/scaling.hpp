#pragma once
/// Per-feature centre and scale of raw sensor channels (different units, constant channels,
/// heavy tails), and the scaled copy of a block of rows.

#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Core>

#include "mixtura/anomaly/params.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"

namespace mixtura {

/// z = (x - center) / scale, feature by feature.
struct ScalingFit {
  Eigen::VectorXd center, scale;
  /// sum_j log scale_j: subtracting it turns a log-density of z into one of x.
  double log_jacobian() const { return scale.array().log().sum(); }
};

namespace detail {

/// Linear-interpolated q-quantile of v (numpy's default), 0 <= q <= 1; v is reordered.
inline double quantile(std::vector<double>& v, double q) {
  const double h = (static_cast<double>(v.size()) - 1) * q;
  const std::size_t lo = static_cast<std::size_t>(std::floor(h));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  if (lo + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (h - static_cast<double>(lo)) * (b - a);
}

/// numpy.median of v (v is reordered): the middle value, or (a + b) / 2 of the two middle ones; NaN
/// when v holds a NaN, as numpy's. v must not be empty.
inline double median(std::vector<double>& v) {
  if (std::any_of(v.begin(), v.end(), [](double x) { return std::isnan(x); })) return std::nan("");
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  if (v.size() % 2 == 1) return v[mid];
  const double below = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (below + v[mid]) / 2;
}

/// The scales a fitted detector holds (the fit's are >= 1e-12): dividing values within +-1e150 by a
/// smaller one, a subnormal say, would give infinities; set_fitted and the model-file loader check it.
inline constexpr double kMinScale = 1e-150, kMaxScale = 1e150;

/// A scale of 0 (constant channel) or one lost in the round-off of the centre becomes 1: the
/// channel is kept in its own units.
inline double usable_scale(double scale, double center) {
  return scale > 1e-12 * std::max(1.0, std::abs(center)) && std::isfinite(scale) ? scale : 1.0;
}

}  // namespace detail

/// Centre and scale of each column of X under `how`. gaps: X may hold NaN (missing values), which
/// every statistic ignores (a column with no observed value is an error).
template <class T>
ScalingFit fit_scaling(MatrixView<T> X, FeatureScaling how, int n_threads, bool gaps = false) {
  const Index D = X.cols;
  ScalingFit s{Eigen::VectorXd::Zero(D), Eigen::VectorXd::Ones(D)};
  if (how == FeatureScaling::none) return s;
  const detail::FeatureMoments m = gaps ? detail::observed_feature_moments("DensityAnomalyDetector::fit", X)
                                        : detail::feature_moments(X, n_threads);
  for (Index j = 0; j < D; ++j) {
    s.center[j] = m.mean[j];
    s.scale[j] = std::sqrt(m.variance[j]);
  }
  if (how == FeatureScaling::robust) {
    std::vector<double> col;
    for (Index j = 0; j < D; ++j) {
      col.clear();
      for (Index i = 0; i < X.rows; ++i)
        if (!std::isnan(X.row(i)[j])) col.push_back(static_cast<double>(X.row(i)[j]));
      const double median = detail::quantile(col, 0.5);
      const double iqr = detail::quantile(col, 0.75) - detail::quantile(col, 0.25);
      s.center[j] = median;
      if (iqr > 0) s.scale[j] = iqr / 1.3489795003921634;  // the IQR of N(0, 1)
    }
  }
  for (Index j = 0; j < D; ++j) s.scale[j] = detail::usable_scale(s.scale[j], s.center[j]);
  return s;
}

/// One row x of D features, scaled, into z (in double, rounded to T once; a missing value stays NaN).
template <class T>
void scale_row(const T* x, const ScalingFit& s, Index D, T* z) {
  for (Index j = 0; j < D; ++j) z[j] = static_cast<T>((static_cast<double>(x[j]) - s.center[j]) / s.scale[j]);
}

/// Rows [begin, begin + out.rows()) of X, scaled, into out.
template <class T>
void scale_rows(MatrixView<T> X, const ScalingFit& s, Index begin, RowMatrix<T>& out) {
  for (Index r = 0; r < out.rows(); ++r) scale_row(X.row(begin + r), s, X.cols, out.row(r).data());
}

}  // namespace mixtura
