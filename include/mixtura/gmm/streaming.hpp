#pragma once
/// Updates from statistics alone (no data): the M-step of merged chunk statistics, and the running
/// statistics of online (stepwise) EM with their step sizes.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mixtura/core/errors.hpp"
#include "mixtura/gmm/m_step.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/params.hpp"
#include "mixtura/gmm/stats.hpp"

namespace mixtura {
namespace detail {

/// A component whose share of the running statistics falls below this keeps it (online EM): it
/// stays where it was, alive, ready for the rows that come back to it.
inline constexpr double kStreamWeightFloor = 1e-6;

/// The M-step of statistics that carry everything it needs: the floors' scale from the statistics'
/// own data variance, re-seeded components on the worst rows the statistics carry (their values
/// when present, else row_of(index)).
inline GmmModel update_from_statistics(const GmmStats& s, double reg_covar, std::vector<GmmEvent>* events, int restart,
                                       int iteration, const std::function<Eigen::VectorXd(Index)>& row_of = {}) {
  MStepContext ctx;
  ctx.reg_covar = reg_covar;
  ctx.data_variance = s.data_variance();
  ctx.restart = restart;
  ctx.iteration = iteration;
  ctx.events = events;
  if (!s.worst.values.empty()) {
    const WorstRows& w = s.worst;
    return m_step(s, ctx, w.rows, [&w](Index row) {
      for (std::size_t j = 0; j < w.rows.size(); ++j)
        if (w.rows[j].second == row) return w.values[j];
      return w.values.front();  // (m_step asks only for rows of w.rows)
    });
  }
  if (!row_of) return m_step(s, ctx, {}, {});  // no rows to re-seed on: a starved component keeps its place
  return m_step(s, ctx, s.worst.rows, row_of);
}

/// The statistics a model would have from unit weight of its own data: N_k = pi_k, S1_k = 0 around
/// mu_k, S2_k = pi_k (Sigma_k - reg_covar I), so that update_from_statistics gives the model back.
/// Where online EM starts from a fitted model.
inline GmmStats model_statistics(const GmmModel& m, double reg_covar) {
  const Index K = m.n_components, D = m.n_features;
  GmmStats s(m.type, K, D, static_cast<std::size_t>(K));
  s.shift = m.means;
  s.weight = 1;
  for (Index k = 0; k < K; ++k) {
    const double pi = m.weights[k];
    s.nk[static_cast<std::size_t>(k)] = pi;
    Eigen::MatrixXd cov = m.covariance(k);
    cov.diagonal().array() -= reg_covar;
    if (s.full_moments()) s.s2[static_cast<std::size_t>(k)] = pi * cov;
    else s.s2_diag.row(k) = pi * cov.diagonal().transpose();
  }
  return s;
}

/// Step of online EM for chunk number t (1 = the first chunk, which starts the statistics):
/// (learning_offset + t)^(-learning_decay); with half_life > 0 (rows), the constant
/// 1 - 0.5^(weight / half_life) instead, so that a row's influence halves every half_life rows.
inline double stream_step(const GmmParams& p, std::int64_t t, double chunk_weight) {
  if (p.half_life > 0) return -std::expm1(chunk_weight / p.half_life * std::log(0.5));
  return std::pow(p.learning_offset + static_cast<double>(t), -p.learning_decay);
}

/// running <- (1 - rho) running + rho chunk / W_chunk (both per unit weight after the step), around
/// the chunk's shift. The worst rows are the chunk's.
inline void blend(GmmStats& running, const GmmStats& chunk, double rho) {
  GmmStats c = chunk;
  c.unpack();
  c.scale(rho / c.weight);
  running.unpack();
  running.move_shift(c.shift);
  running.scale(1 - rho);
  running.add(c);
  running.worst = c.worst;
}

/// Raises every component whose share of the running statistics fell below kStreamWeightFloor back
/// to it (its moments scaled with it: mean and covariance unchanged). starved[k] says whether k was
/// at the floor already; an event is recorded when a component reaches it.
inline void floor_starving(GmmStats& s, std::vector<bool>& starved, std::vector<GmmEvent>* events, int restart,
                           int iteration) {
  const double total = s.weight;
  for (Index k = 0; k < s.n_components; ++k) {
    const auto at = static_cast<std::size_t>(k);
    const double share = s.nk[at] / total;
    if (share >= kStreamWeightFloor) {
      if (share > 2 * kStreamWeightFloor) starved[at] = false;
      continue;
    }
    const double f = share > 0 ? kStreamWeightFloor / share : 0;
    if (f > 0) {
      s.weight += (f - 1) * s.nk[at];
      s.nk[at] *= f;
      s.s1.row(k) *= f;
      if (s.full_moments()) s.s2[at] *= f;
      else s.s2_diag.row(k) *= f;
    }  // else nothing is left at all, no mean to keep: the M-step re-seeds it on a worst row
    if (!starved[at] && events) events->push_back({GmmEvent::Kind::component_starved, restart, iteration, static_cast<int>(k), -1, share});
    starved[at] = true;
  }
}

}  // namespace detail
}  // namespace mixtura
