#pragma once
/// The sufficient statistics of a Gaussian-mixture E-step: additive, mergeable, in double.
///
/// Moments are accumulated around a shift a_k carried with them (the component's current mean, or
/// the mixture's mean for all components), never as raw uncentred moments:
/// S1_k = sum_i w_i r_ik (x_i - a_k), S2_k = sum_i w_i r_ik (x_i - a_k)(x_i - a_k)^T.

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/gmm/params.hpp"

namespace mixtura {

/// The m rows with the lowest log-likelihood seen (ties to the lower index): where collapsed
/// components are re-seeded. A pass records indices only; statistics handed out for merging carry
/// the rows' values too (`values`, aligned with `rows`), so that an update needs no data.
struct WorstRows {
  std::size_t capacity = 0;
  std::vector<std::pair<double, Index>> rows;  ///< (log p(x_i), i), ascending
  std::vector<Eigen::VectorXd> values;         ///< empty, or x_i of each entry of rows (double)

  void offer(double logp, Index i) {
    if (capacity == 0) return;
    if (rows.size() == capacity && !(std::make_pair(logp, i) < rows.back())) return;
    const auto at = std::lower_bound(rows.begin(), rows.end(), std::make_pair(logp, i));
    rows.insert(at, {logp, i});
    if (rows.size() > capacity) rows.pop_back();
  }
  void merge(const WorstRows& o) {
    if (values.empty() && o.values.empty()) {
      for (const auto& r : o.rows) offer(r.first, r.second);
      return;
    }
    MIXTURA_EXPECTS(values.size() == rows.size() && o.values.size() == o.rows.size(),
                    "GmmStats::merge: worst rows with values merged with worst rows without");
    std::vector<std::size_t> order;  // 0..n-1: this, n..: o; merged by (log p, index), this first on a tie
    const std::size_t n = rows.size();
    std::vector<std::pair<double, Index>> all(rows);
    all.insert(all.end(), o.rows.begin(), o.rows.end());
    for (std::size_t j = 0; j < all.size(); ++j) order.push_back(j);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return all[a] < all[b]; });
    order.resize(std::min(order.size(), std::max(capacity, o.capacity)));
    std::vector<std::pair<double, Index>> r;
    std::vector<Eigen::VectorXd> v;
    for (const std::size_t j : order) {
      r.push_back(all[j]);
      v.push_back(j < n ? values[j] : o.values[j - n]);
    }
    capacity = std::max(capacity, o.capacity);
    rows = std::move(r);
    values = std::move(v);
  }
};

/// Additive over rows: merge() of the statistics of two sets of rows (under the same model) gives
/// those of their union; merging in a fixed order gives fixed bits.
struct GmmStats {
  CovarianceType type = CovarianceType::full;
  Index n_components = 0, n_features = 0;
  std::vector<double> nk;               ///< [K] sum_i w_i r_ik
  RowMatrix<double> s1;                 ///< K x D
  RowMatrix<double> shift;              ///< K x D, the a_k the moments are taken around
  std::vector<Eigen::MatrixXd> s2;      ///< full/tied: K matrices D x D (lower triangle)
  Eigen::MatrixXd s2_packed;            ///< batched E-step: (K rounded up to 8) x D(D+1)/2, pairs i <= j row by row; see unpack()
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

  /// Adds o in. Moments around another shift are first moved to this one's (exact algebra; the
  /// statistics of one pass all share one shift, so a pass's own merges never move anything).
  void merge(const GmmStats& o) {
    MIXTURA_EXPECTS(o.type == type && o.n_components == n_components && o.n_features == n_features,
                    "GmmStats::merge: statistics of %s, %lld components, %lld features merged with %s, %lld, %lld",
                    to_string(type), static_cast<long long>(n_components), static_cast<long long>(n_features),
                    to_string(o.type), static_cast<long long>(o.n_components), static_cast<long long>(o.n_features));
    if (o.shift.size() && shift.size() && o.shift != shift) {
      GmmStats moved = o;
      moved.move_shift(shift);
      add(moved);
      return;
    }
    add(o);
  }

  /// The same moments around another shift: S1' = S1 - N d, S2' = S2 - S1 d^T - d S1^T + N d d^T,
  /// d = new_shift - shift (per component).
  void move_shift(const RowMatrix<double>& new_shift) {
    unpack();
    for (Index k = 0; k < n_components; ++k) {
      const Eigen::VectorXd d = (new_shift.row(k) - shift.row(k)).transpose();
      const Eigen::VectorXd s1k = s1.row(k).transpose();
      const double n = nk[k];
      if (full_moments()) {
        Eigen::MatrixXd& s2k = s2[static_cast<std::size_t>(k)];
        s2k.triangularView<Eigen::Lower>() += Eigen::MatrixXd(-s1k * d.transpose() - d * s1k.transpose() + n * d * d.transpose());
      } else {
        s2_diag.row(k) += (-2 * s1k.array() * d.array() + n * d.array().square()).matrix().transpose();
      }
      s1.row(k) -= n * d.transpose();
    }
    shift = new_shift;
  }

  /// Every additive quantity times f (the worst rows are kept): the statistics of the same rows with
  /// all weights multiplied by f.
  void scale(double f) {
    for (double& v : nk) v *= f;
    s1 *= f;
    for (auto& m : s2) m *= f;
    if (s2_packed.size()) s2_packed *= f;
    if (s2_diag.size()) s2_diag *= f;
    log_likelihood *= f;
    entropy *= f;
    weight *= f;
  }

  /// Weighted per-feature variance of the rows behind the statistics (every row's responsibilities
  /// sum to 1, so the components' moments add up to the data's): the scale of the M-step's floors.
  Eigen::VectorXd data_variance() const {
    const Index D = n_features;
    if (!(weight > 0)) return Eigen::VectorXd::Zero(D);
    Eigen::VectorXd mean_shift = Eigen::VectorXd::Zero(D);  // common point: the weighted mean of the shifts
    for (Index k = 0; k < n_components; ++k) mean_shift += nk[k] * shift.row(k).transpose();
    mean_shift /= weight;
    Eigen::VectorXd m1 = Eigen::VectorXd::Zero(D), m2 = Eigen::VectorXd::Zero(D);
    for (Index k = 0; k < n_components; ++k) {
      const Eigen::ArrayXd d = (mean_shift - shift.row(k).transpose()).array();
      const Eigen::ArrayXd s1k = s1.row(k).transpose().array();
      const Eigen::ArrayXd s2k = full_moments() ? Eigen::ArrayXd(s2[static_cast<std::size_t>(k)].diagonal().array())
                                                : Eigen::ArrayXd(s2_diag.row(k).transpose().array());
      m1 += (s1k - nk[k] * d).matrix();
      m2 += (s2k - 2 * s1k * d + nk[k] * d.square()).matrix();
    }
    const Eigen::ArrayXd mean = m1.array() / weight;
    return (m2.array() / weight - mean.square()).max(0.0).matrix();
  }

  void add(const GmmStats& o) {
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
