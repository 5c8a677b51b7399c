#pragma once
/// The parameters of a fitted Gaussian mixture, held in double whatever the data type: weights,
/// means and factors C of the precisions (P = C C^T, C triangular: scikit-learn's precisions_cholesky_).

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <vector>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/gmm/params.hpp"

namespace mixtura {

namespace detail {
inline constexpr double kLog2Pi = 1.8378770664093454835606594728112;  ///< log(2 pi)
}  // namespace detail

struct GmmModel {
  CovarianceType type = CovarianceType::full;
  Index n_components = 0, n_features = 0;
  Eigen::VectorXd weights;              ///< [K], sum 1
  RowMatrix<double> means;              ///< K x D
  std::vector<Eigen::MatrixXd> factor;  ///< full: K matrices D x D; tied: 1; precision = C C^T
  RowMatrix<double> diag_factor;        ///< diag: K x D, 1 / sqrt(variance); spherical: K x 1

  GmmModel() = default;
  GmmModel(CovarianceType t, Index k, Index d) : type(t), n_components(k), n_features(d),
      weights(Eigen::VectorXd::Zero(k)), means(RowMatrix<double>::Zero(k, d)) {
    if (t == CovarianceType::full) factor.assign(static_cast<std::size_t>(k), Eigen::MatrixXd::Identity(d, d));
    if (t == CovarianceType::tied) factor.assign(1, Eigen::MatrixXd::Identity(d, d));
    if (t == CovarianceType::diag) diag_factor = RowMatrix<double>::Ones(k, d);
    if (t == CovarianceType::spherical) diag_factor = RowMatrix<double>::Ones(k, 1);
  }

  bool shared_factor() const { return type == CovarianceType::tied; }
  const Eigen::MatrixXd& factor_of(Index k) const { return factor[shared_factor() ? 0 : static_cast<std::size_t>(k)]; }

  /// log det C_k = 1/2 log det P_k (C triangular: the sum of the logs of its diagonal).
  double log_det_factor(Index k) const {
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: return factor_of(k).diagonal().array().log().sum();
      case CovarianceType::diag: return diag_factor.row(k).array().log().sum();
      case CovarianceType::spherical: return static_cast<double>(n_features) * std::log(diag_factor(k, 0));
    }
    return 0;
  }

  /// Precision matrix of component k (D x D).
  Eigen::MatrixXd precision(Index k) const {
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: return factor_of(k) * factor_of(k).transpose();
      case CovarianceType::diag: return diag_factor.row(k).array().square().matrix().asDiagonal();
      case CovarianceType::spherical:
        return Eigen::MatrixXd::Identity(n_features, n_features) * (diag_factor(k, 0) * diag_factor(k, 0));
    }
    return {};
  }

  /// Covariance matrix of component k (D x D), the inverse of its precision.
  Eigen::MatrixXd covariance(Index k) const {
    switch (type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        // Sigma = C^-T C^-1 with C triangular.
        const Eigen::MatrixXd& c = factor_of(k);
        const bool upper = c.isUpperTriangular();
        Eigen::MatrixXd inv = Eigen::MatrixXd::Identity(n_features, n_features);
        if (upper) c.triangularView<Eigen::Upper>().solveInPlace(inv);
        else c.triangularView<Eigen::Lower>().solveInPlace(inv);
        return inv.transpose() * inv;
      }
      case CovarianceType::diag: return diag_factor.row(k).array().square().inverse().matrix().asDiagonal();
      case CovarianceType::spherical:
        return Eigen::MatrixXd::Identity(n_features, n_features) / (diag_factor(k, 0) * diag_factor(k, 0));
    }
    return {};
  }

  /// log pi_k - D/2 log(2 pi) + log |det factor_k|: the constant of log pi_k + log N(x | mu_k, Sigma_k),
  /// the one expression every scoring pass uses (so that all of them round it alike).
  double log_normaliser(Index k) const {
    return std::log(weights[k]) - 0.5 * static_cast<double>(n_features) * detail::kLog2Pi + log_det_factor(k);
  }

  /// Free parameters (for BIC / AIC), as scikit-learn counts them.
  double n_parameters() const {
    const double k = static_cast<double>(n_components), d = static_cast<double>(n_features);
    double cov = 0;
    switch (type) {
      case CovarianceType::full: cov = k * d * (d + 1) / 2; break;
      case CovarianceType::tied: cov = d * (d + 1) / 2; break;
      case CovarianceType::diag: cov = k * d; break;
      case CovarianceType::spherical: cov = k; break;
    }
    return cov + k * d + k - 1;
  }
};

namespace detail {

/// For every component k, the first component j <= k whose weight, mean and factor are bit for bit
/// those of k. Scoring evaluates such twins once and copies the log-densities, so that their tie is
/// exact and goes to the first on every path (a blocked GEMM rounds a column by its position).
inline std::vector<Index> first_identical_components(const GmmModel& m) {
  const auto same = [](const double* a, const double* b, Index n) {
    return std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(double)) == 0;
  };
  const Index K = m.n_components, D = m.n_features;
  std::vector<Index> source(static_cast<std::size_t>(K));
  for (Index k = 0; k < K; ++k) {
    Index j = 0;
    for (; j < k; ++j) {
      if (source[static_cast<std::size_t>(j)] != j || !same(&m.weights[j], &m.weights[k], 1)) continue;
      bool twin = true;
      for (Index d = 0; d < D && twin; ++d) twin = same(&m.means(j, d), &m.means(k, d), 1);
      if (!twin) continue;
      if (m.type == CovarianceType::full) twin = same(m.factor_of(j).data(), m.factor_of(k).data(), D * D);
      else if (m.type != CovarianceType::tied)
        for (Index d = 0; d < m.diag_factor.cols() && twin; ++d) twin = same(&m.diag_factor(j, d), &m.diag_factor(k, d), 1);
      if (twin) break;
    }
    source[static_cast<std::size_t>(k)] = j;
  }
  return source;
}

/// The upper-triangular factor U = L^-T of the precision of a covariance with Cholesky factor L
/// (scikit-learn's convention). Returns false if the covariance is not positive definite.
inline bool precision_factor_from_covariance(const Eigen::MatrixXd& cov, Eigen::MatrixXd& out) {
  Eigen::LLT<Eigen::MatrixXd> llt(cov);
  if (llt.info() != Eigen::Success) return false;
  const Eigen::MatrixXd l = llt.matrixL();
  if (!(l.diagonal().array() > 0).all() || !l.allFinite()) return false;
  Eigen::MatrixXd inv = Eigen::MatrixXd::Identity(cov.rows(), cov.cols());
  l.triangularView<Eigen::Lower>().solveInPlace(inv);  // L^-1
  out = inv.transpose();                               // U = L^-T, upper triangular
  return out.allFinite();
}

}  // namespace detail
}  // namespace mixtura
