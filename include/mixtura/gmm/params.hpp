#pragma once
/// Gaussian-mixture parameters and the records a fit leaves behind (the ELBO trace, events).

#include <cstdint>
#include <vector>

#include "mixtura/core/matrix_view.hpp"

namespace mixtura {

/// Shape of the component covariances (scikit-learn's covariance_type).
enum class CovarianceType {
  full,       ///< each component has its own general covariance matrix
  tied,       ///< all components share one general covariance matrix
  diag,       ///< each component has its own diagonal covariance
  spherical,  ///< each component has its own single variance
};

/// How the responsibilities that start EM are made (scikit-learn's init_params).
enum class GmmInit {
  kmeans,            ///< hard labels of mixtura::KMeans (one restart, same seed)
  kmeans_plusplus,   ///< each component on one row chosen by greedy k-means++; covariance reg_covar * I
  random,            ///< uniform random responsibilities
  random_from_data,  ///< each component on one row drawn at random; covariance reg_covar * I
};

/// What fit does when a component degenerates (no weight left, or a covariance that is not positive
/// definite): recover and record an event (the default), or raise as scikit-learn does.
enum class DegeneratePolicy {
  recover,  ///< re-seed the component or add diagonal jitter; recorded in events()
  raise,    ///< throw InvalidArgument naming the component, restart and iteration
};

inline const char* to_string(CovarianceType t) {
  switch (t) {
    case CovarianceType::full: return "full";
    case CovarianceType::tied: return "tied";
    case CovarianceType::diag: return "diag";
    case CovarianceType::spherical: return "spherical";
  }
  return "unknown";
}

inline const char* to_string(GmmInit i) {
  switch (i) {
    case GmmInit::kmeans: return "kmeans";
    case GmmInit::kmeans_plusplus: return "k-means++";
    case GmmInit::random: return "random";
    case GmmInit::random_from_data: return "random_from_data";
  }
  return "unknown";
}

/// Parameters of GaussianMixture; names and meanings follow scikit-learn.
struct GmmParams {
  int n_components = 1;                                  ///< K (>= 1)
  CovarianceType covariance_type = CovarianceType::full; ///< covariance shape
  double tol = 1e-3;          ///< stop when the per-sample lower bound changes by less than tol
  double reg_covar = 1e-6;    ///< added to the diagonal of every covariance (>= 0)
  int max_iter = 100;         ///< EM iterations per restart (>= 0; 0: the initial parameters, one restart)
  int n_init = 1;             ///< restarts; the one with the highest lower bound is kept
  GmmInit init = GmmInit::kmeans;
  bool warm_start = false;    ///< start from the fitted model (one restart) instead of init
  DegeneratePolicy on_degenerate = DegeneratePolicy::recover;  ///< fit only; partial_fit always recovers
  std::uint64_t seed = 0;     ///< key of the counter-based random numbers
  int n_threads = 0;          ///< OpenMP threads for data passes; 0 = OpenMP's default
  // Online EM (partial_fit): chunk t >= 2 is blended into the running statistics with step
  // (learning_offset + t)^(-learning_decay), or with half_life > 0 the constant 1 - 0.5^(rows / half_life).
  double learning_offset = 10;  ///< >= 0
  double learning_decay = 0.7;  ///< in (0.5, 1]
  double half_life = 0;         ///< rows (total sample weight) after which a row's influence halves; 0: none
};

/// One EM iteration: the two steps of the ELBO staircase, per sample (scikit-learn's scale).
struct GmmIteration {
  double lower_bound = 0;  ///< L(theta_t) = ELBO(q_t, theta_t): mean log-likelihood before the M-step
  double elbo_after_m = 0; ///< ELBO(q_t, theta_{t+1}): after the M-step, from the statistics alone
  double entropy = 0;      ///< H(q_t) per sample (the ELBO's entropy term)
  double seconds = 0;      ///< wall time of the iteration
};

/// Something the fit did to keep going on degenerate data, recorded rather than thrown.
struct GmmEvent {
  enum class Kind {  // the values are the codes in model files
    component_reseeded = 0,  ///< component had (almost) no weight: moved to a worst-explained row
    covariance_floored = 1,  ///< covariance not positive definite: `value` added to its diagonal
    component_starved = 2,    ///< online EM: share fell to `value`, raised to a floor (mean, covariance kept)
    roundoff_decrease = 3,    ///< L(theta_t) fell below L(theta_t-1) by `value` <= round-off: step dropped, converged
  };
  Kind kind = Kind::component_reseeded;
  int restart = 0;
  int iteration = 0;   ///< -1: during initialisation; online EM: the step (chunk number, from 1)
  int component = 0;
  Index row = -1;      ///< re-seeded at this row (component_reseeded)
  double value = 0;    ///< added to the diagonal (covariance_floored); the bound's fall (roundoff_decrease)
};

inline const char* to_string(GmmEvent::Kind k) {
  switch (k) {
    case GmmEvent::Kind::component_reseeded: return "component_reseeded";
    case GmmEvent::Kind::covariance_floored: return "covariance_floored";
    case GmmEvent::Kind::component_starved: return "component_starved";
    case GmmEvent::Kind::roundoff_decrease: return "roundoff_decrease";
  }
  return "unknown";
}

/// What one restart did.
struct GmmRun {
  std::vector<GmmIteration> trace;
  double lower_bound = 0;  ///< the last L(theta_t)
  int n_iter = 0;
  bool converged = false;
  double init_seconds = 0;
  double seconds = 0;
};

}  // namespace mixtura
