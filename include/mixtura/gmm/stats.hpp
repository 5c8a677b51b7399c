#pragma once
/// The sufficient statistics of a Gaussian-mixture E-step: additive, mergeable, in double.
///
/// Moments are accumulated around a shift a_k carried with them (the component's current mean, or
/// the mixture's mean for all components), never as raw uncentred moments:
/// S1_k = sum_i w_i r_ik (x_i - a_k), S2_k = sum_i w_i r_ik (x_i - a_k)(x_i - a_k)^T.

#include <algorithm>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mixtura/core/matrix_view.hpp"
#include "mixtura/gmm/params.hpp"

namespace mixtura {

/// The m rows with the lowest log-likelihood seen (ties to the lower index): where collapsed
/// components are re-seeded.
struct WorstRows {
  std::size_t capacity = 0;
  std::vector<std::pair<double, Index>> rows;  ///< (log p(x_i), i), ascending
  void offer(double logp, Index i) {
    if (capacity == 0) return;
    if (rows.size() == capacity && !(std::make_pair(logp, i) < rows.back())) return;
    const auto at = std::lower_bound(rows.begin(), rows.end(), std::make_pair(logp, i));
    rows.insert(at, {logp, i});
    if (rows.size() > capacity) rows.pop_back();
  }
  void merge(const WorstRows& o) {
    for (const auto& r : o.rows) offer(r.first, r.second);
  }
};

struct GmmStats {
  CovarianceType type = CovarianceType::full;
  Index n_components = 0, n_features = 0;
  std::vector<double> nk;               ///< [K] sum_i w_i r_ik
  RowMatrix<double> s1;                 ///< K x D
  RowMatrix<double> shift;              ///< K x D, the a_k the moments are taken around
  std::vector<Eigen::MatrixXd> s2;      ///< full/tied: K matrices D x D (lower triangle)
  RowMatrix<double> s2_packed;          ///< batched E-step: K x D(D+1)/2, upper triangles row by row; see unpack()
  RowMatrix<double> s2_diag;            ///< diag/spherical: K x D
  double log_likelihood = 0;            ///< sum_i w_i log p(x_i)
  double entropy = 0;                   ///< sum_i w_i H(q_i) = -sum_i w_i sum_k r_ik log r_ik
  double weight = 0;                    ///< sum_i w_i
  WorstRows worst;

  GmmStats() = default;
  GmmStats(CovarianceType t, Index k, Index d, std::size_t n_worst)
      : type(t), n_components(k), n_features(d), nk(static_cast<std::size_t>(k), 0.0),
        s1(RowMatrix<double>::Zero(k, d)), shift(RowMatrix<double>::Zero(k, d)) {
    if (full_moments()) s2.assign(static_cast<std::size_t>(k), Eigen::MatrixXd::Zero(d, d));
    else s2_diag = RowMatrix<double>::Zero(k, d);
    worst.capacity = n_worst;
  }
  bool full_moments() const { return type == CovarianceType::full || type == CovarianceType::tied; }

  void merge(const GmmStats& o) {
    for (std::size_t k = 0; k < nk.size(); ++k) nk[k] += o.nk[k];
    s1 += o.s1;
    for (std::size_t k = 0; k < s2.size(); ++k) s2[k] += o.s2[k];
    if (s2_packed.size()) s2_packed += o.s2_packed;
    if (s2_diag.size()) s2_diag += o.s2_diag;
    log_likelihood += o.log_likelihood;
    entropy += o.entropy;
    weight += o.weight;
    worst.merge(o.worst);
  }

  /// Moves packed second moments into s2 (lower triangles).
  void unpack() {
    if (!s2_packed.size()) return;
    for (Index k = 0; k < n_components; ++k) {
      Index idx = 0;
      for (Index i = 0; i < n_features; ++i)
        for (Index j = i; j < n_features; ++j) s2[k](j, i) += s2_packed(k, idx++);
    }
    s2_packed.resize(0, 0);
  }

  /// S2_k as a full symmetric matrix (the pass fills the lower triangle).
  Eigen::MatrixXd second_moment(Index k) const {
    if (full_moments()) return s2[static_cast<std::size_t>(k)].selfadjointView<Eigen::Lower>();
    return s2_diag.row(k).transpose().asDiagonal();
  }
};

}  // namespace mixtura
