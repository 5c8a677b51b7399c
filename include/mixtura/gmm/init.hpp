#pragma once
/// Starting points of EM: parameters from K-means labels, from chosen rows, or from random
/// responsibilities (scikit-learn's init_params), all driven by the counter-based generator.

#include <cstdint>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/gmm/cpu_pass.hpp"
#include "mixtura/gmm/m_step.hpp"
#include "mixtura/kmeans/kmeans.hpp"

namespace mixtura {

/// Statistics of uniform random responsibilities (init = random), around the data mean: a data pass,
/// overloaded per backend (r_ik from counter i K + k of `rng`, so the same on every backend).
template <class T>
GmmStats random_resp_stats(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, CovarianceType type, Index K,
                           const CounterRng& rng, const RowMatrix<double>& shift) {
  const Index D = X.cols;
  GmmStats out = detail::fold_rows(
      X.rows, detail::kGmmBlock, be.n_threads, [&] { return GmmStats(type, K, D, 0); },
      [&] { return std::make_pair(Eigen::VectorXd(K), Eigen::VectorXd(D)); },
      [&](GmmStats& st, std::pair<Eigen::VectorXd, Eigen::VectorXd>& s, Index begin, Index end) {
        auto& r = s.first;
        auto& diff = s.second;
        for (Index i = begin; i < end; ++i) {
          for (Index k = 0; k < K; ++k) r[k] = rng.uniform_at(static_cast<std::uint64_t>(i * K + k));
          r /= r.sum();
          const double wi = detail::row_weight(w, i);
          st.weight += wi;
          for (Index k = 0; k < K; ++k) detail::add_row(st, k, X.row(i), wi * r[k], shift, diff);
        }
      });
  out.shift = shift;
  return out;
}

/// Unweighted per-feature mean and variance of X, once per fit: the data's scale for the
/// degenerate-component policy (M-step floors, re-seeded covariances). A data pass, overloaded per
/// backend (gmm/cuda_pass.hpp).
template <class T>
detail::FeatureMoments gmm_feature_moments(const CpuBackend& be, MatrixView<T> X) {
  return detail::feature_moments(X, be.n_threads);
}

/// The point random responsibilities' statistics are taken around (init = random): the data mean, here
/// summed row by row on the host; a device backend takes the mean of `data` (its feature moments).
template <class T>
Eigen::RowVectorXd gmm_data_mean(const CpuBackend&, MatrixView<T> X, const detail::FeatureMoments&) {
  Eigen::RowVectorXd mean = Eigen::RowVectorXd::Zero(X.cols);
  for (Index i = 0; i < X.rows; ++i)
    for (Index j = 0; j < X.cols; ++j) mean[j] += static_cast<double>(X.row(i)[j]);
  return mean / static_cast<double>(X.rows);
}

namespace detail {

/// Parameters with each component on one row (init = k-means++ / random_from_data): equal
/// weights, the row as mean, covariance reg_covar * I (scikit-learn's M-step on one-hot rows).
/// `rows`: the chosen rows of X (K x D, fetched from X by the caller).
template <class T>
GmmModel model_on_rows(const RowMatrix<T>& rows, CovarianceType type, const MStepContext& c) {
  const Index K = rows.rows(), D = rows.cols();
  GmmModel m(type, K, D);
  m.weights.setConstant(1.0 / static_cast<double>(K));
  m.means = rows.template cast<double>();
  const Eigen::MatrixXd cov = Eigen::MatrixXd::Identity(D, D) * c.reg_covar;
  switch (type) {
    case CovarianceType::full:
      for (Index k = 0; k < K; ++k) set_factor(cov, m.factor[k], static_cast<int>(k), c);
      break;
    case CovarianceType::tied: set_factor(cov, m.factor[0], -1, c); break;
    case CovarianceType::diag:
    case CovarianceType::spherical:
      for (Index k = 0; k < K; ++k)
        m.diag_factor.row(k).setConstant(1.0 / std::sqrt(checked_variance(c.reg_covar, static_cast<int>(k), c)));
      break;
  }
  return m;
}

}  // namespace detail
}  // namespace mixtura
