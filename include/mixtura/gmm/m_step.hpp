#pragma once
/// The M-step and the ELBO, from the statistics alone (K D^2 or K D^3 work, no pass over the data).

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/params.hpp"
#include "mixtura/gmm/stats.hpp"

namespace mixtura {
namespace detail {

/// What the M-step needs besides the statistics: regularisation and the data's scale (for the
/// degenerate-component policy), and where to record what it did.
struct MStepContext {
  double reg_covar = 0;
  Eigen::VectorXd data_variance;  ///< per feature, of the whole data (re-seeded covariances, floors)
  int restart = 0, iteration = 0;
  std::vector<GmmEvent>* events = nullptr;
};

/// The weighted scatter of component k around the point shift_k + d:
/// sum_i w_i r_ik (x_i - a_k - d)(x_i - a_k - d)^T = S2 - S1 d^T - d S1^T + N d d^T (diagonal only for
/// diag/spherical).
inline Eigen::MatrixXd scatter_around(const GmmStats& s, Index k, const Eigen::VectorXd& d) {
  const Eigen::VectorXd s1 = s.s1.row(k).transpose();
  const double n = s.nk[k];
  if (s.full_moments()) return s.second_moment(k) - s1 * d.transpose() - d * s1.transpose() + n * d * d.transpose();
  const Eigen::VectorXd diag = s.s2_diag.row(k).transpose().array() - 2 * s1.array() * d.array() + n * d.array().square();
  return diag.asDiagonal();
}

/// Floor for a variance or the first jitter added to a covariance that is not positive definite.
inline double floor_of(const MStepContext& c) {
  const double scale = c.data_variance.size() ? c.data_variance.mean() : 1.0;
  return std::max(c.reg_covar, 1e-10 * (scale > 0 ? scale : 1.0));
}

/// Sets the precision factor of a full/tied covariance, adding diagonal jitter (recorded) until it
/// is positive definite.
inline void set_factor(Eigen::MatrixXd cov, Eigen::MatrixXd& factor, int component, const MStepContext& c) {
  if (precision_factor_from_covariance(cov, factor)) return;
  double jitter = floor_of(c);
  const Eigen::MatrixXd base = cov;
  for (int attempt = 0; attempt < 60; ++attempt, jitter *= 10) {
    cov = base;
    cov.diagonal().array() += jitter;
    if (precision_factor_from_covariance(cov, factor)) {
      if (c.events) c.events->push_back({GmmEvent::Kind::covariance_floored, c.restart, c.iteration, component, -1, jitter});
      return;
    }
  }
  // Not even a huge jitter helps (non-finite statistics): fall back to the data's diagonal scale.
  cov = c.data_variance.size() ? Eigen::MatrixXd(c.data_variance.array().max(floor_of(c)).matrix().asDiagonal())
                               : Eigen::MatrixXd::Identity(base.rows(), base.cols());
  precision_factor_from_covariance(cov, factor);
  if (c.events) c.events->push_back({GmmEvent::Kind::covariance_floored, c.restart, c.iteration, component, -1, jitter});
}

/// A diagonal variance, floored (and recorded) when it is not positive and finite.
inline double checked_variance(double v, int component, const MStepContext& c) {
  if (v > 0 && std::isfinite(v)) return v;
  const double f = floor_of(c);
  if (c.events) c.events->push_back({GmmEvent::Kind::covariance_floored, c.restart, c.iteration, component, -1, f});
  return f;
}

/// New parameters from statistics (accumulated around s.shift), as scikit-learn's M-step
/// computes them (N_k + 10 eps in the denominators, reg_covar on the diagonal).
/// Degenerate data: a component with no weight left (N_k <= 10 eps W) is re-seeded on a
/// worst-explained row, with the data's diagonal covariance; a covariance that is not positive
/// definite gets diagonal jitter. Both are recorded as events.
inline GmmModel m_step(const GmmStats& s, const MStepContext& c,
                       const std::vector<std::pair<double, Index>>& worst_rows,
                       const std::function<Eigen::VectorXd(Index)>& row_of) {
  const Index K = s.n_components, D = s.n_features;
  const double eps10 = 10 * std::numeric_limits<double>::epsilon();
  GmmModel m(s.type, K, D);
  Eigen::VectorXd nk(K);
  std::vector<Eigen::MatrixXd> cov(static_cast<std::size_t>(K));
  std::vector<bool> reseeded(static_cast<std::size_t>(K), false);
  std::size_t next_worst = 0;
  for (Index k = 0; k < K; ++k) {
    if (s.nk[k] <= eps10 * s.weight && next_worst < worst_rows.size()) {
      const Index row = worst_rows[next_worst++].second;
      m.means.row(k) = row_of(row).transpose();
      nk[k] = s.weight / static_cast<double>(std::max<Index>(K, 1)) * 1e-3 + eps10;  // small, but alive
      cov[k] = Eigen::MatrixXd(c.data_variance.array().max(floor_of(c)).matrix().asDiagonal());
      cov[k].diagonal().array() += c.reg_covar;
      reseeded[k] = true;
      if (c.events) c.events->push_back({GmmEvent::Kind::component_reseeded, c.restart, c.iteration, static_cast<int>(k), row, 0});
      continue;
    }
    nk[k] = s.nk[k] + eps10;
    const Eigen::VectorXd d = s.s1.row(k).transpose() / nk[k];
    m.means.row(k) = s.shift.row(k) + d.transpose();
    cov[k] = scatter_around(s, k, d) / nk[k];
  }
  m.weights = nk / nk.sum();

  switch (s.type) {
    case CovarianceType::full:
      for (Index k = 0; k < K; ++k) {
        if (!reseeded[k]) cov[k].diagonal().array() += c.reg_covar;
        set_factor(cov[k], m.factor[k], static_cast<int>(k), c);
      }
      break;
    case CovarianceType::tied: {
      // sum_k N_k Sigma_k / sum_k N_k (the within-component scatter over the total weight).
      Eigen::MatrixXd tied = Eigen::MatrixXd::Zero(D, D);
      for (Index k = 0; k < K; ++k) tied += cov[k] * nk[k];
      tied /= nk.sum();
      tied.diagonal().array() += c.reg_covar;
      set_factor(tied, m.factor[0], -1, c);
      break;
    }
    case CovarianceType::diag:
      for (Index k = 0; k < K; ++k)
        for (Index j = 0; j < D; ++j) {
          const double v = cov[k](j, j) + (reseeded[k] ? 0.0 : c.reg_covar);
          m.diag_factor(k, j) = 1.0 / std::sqrt(checked_variance(v, static_cast<int>(k), c));
        }
      break;
    case CovarianceType::spherical:
      for (Index k = 0; k < K; ++k) {
        const double v = cov[k].diagonal().mean() + (reseeded[k] ? 0.0 : c.reg_covar);
        m.diag_factor(k, 0) = 1.0 / std::sqrt(checked_variance(v, static_cast<int>(k), c));
      }
      break;
  }
  return m;
}

/// ELBO(q, theta) per unit weight, where q is the E-step that produced `s`:
///   [ sum_k N_k (log pi_k - D/2 log 2 pi + log det C_k) - 1/2 sum_k tr(P_k Scatter_k) + H(q) ] / W,
/// with Scatter_k the weighted scatter of component k's responsibilities around theta's mean.
/// With theta = the E-step's parameters it equals the mean log-likelihood (the bound is tight there).
inline double elbo_from_stats(const GmmStats& s, const GmmModel& theta) {
  const Index K = s.n_components;
  double total = s.entropy;
  for (Index k = 0; k < K; ++k) {
    if (!(s.nk[k] > 0)) continue;  // no responsibility: contributes nothing (0 log 0 = 0)
    const Eigen::VectorXd d = (theta.means.row(k) - s.shift.row(k)).transpose();
    const Eigen::MatrixXd scatter = scatter_around(s, k, d);
    double trace;
    switch (theta.type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        const Eigen::MatrixXd& f = theta.factor_of(k);
        trace = (f.transpose() * scatter * f).trace();
        break;
      }
      case CovarianceType::diag: trace = (scatter.diagonal().array() * theta.diag_factor.row(k).transpose().array().square()).sum(); break;
      case CovarianceType::spherical: trace = scatter.diagonal().sum() * theta.diag_factor(k, 0) * theta.diag_factor(k, 0); break;
      default: trace = 0;
    }
    total += s.nk[k] * theta.log_normaliser(k) - 0.5 * trace;
  }
  return total / s.weight;
}

}  // namespace detail
}  // namespace mixtura
