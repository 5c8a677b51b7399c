#pragma once
/// Rows with gaps (NaN = a missing value) in the Gaussian-mixture passes on the CPU (Ghahramani &
/// Jordan 1994). A row with observed features o and missing ones m scores by the marginal density
/// N(x_o; mu_o, Sigma_oo) of each component, computed from the precision P = Sigma^-1 through its Schur
/// complement: with the conditional mean x^_m = mu_m - P_mm^-1 P_mo (x_o - mu_o) filled in,
///   (x^ - mu)^T P (x^ - mu) = (x_o - mu_o)^T Sigma_oo^-1 (x_o - mu_o),  log det Sigma_oo^-1 = log det P - log det P_mm,
/// so the full-D quadratic form of the stored factors gives the marginal, and the E-step's expected
/// statistics are those of x^ plus the conditional covariance C = P_mm^-1 on the missing block. The
/// factorisations of P_mm are done once per pattern, component and block.

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/stats.hpp"

namespace mixtura {
namespace detail {

/// What check_data_with_gaps finds: whether X has a NaN, the first value that is neither usable nor
/// NaN (row = -1: none) and the first row with no observed value (-1: none).
struct GapScan {
  bool has_gaps = false;
  Index bad_row = -1, bad_col = -1, empty_row = -1;
  void merge(const GapScan& o) {
    has_gaps = has_gaps || o.has_gaps;
    if (bad_row < 0 || (o.bad_row >= 0 && o.bad_row < bad_row)) {
      if (o.bad_row >= 0) {
        bad_row = o.bad_row;
        bad_col = o.bad_col;
      }
    }
    if (empty_row < 0 || (o.empty_row >= 0 && o.empty_row < empty_row))
      if (o.empty_row >= 0) empty_row = o.empty_row;
  }
};

/// check_data for estimators that take rows with gaps: NaN marks a missing value; +-inf and values
/// beyond kDataValueLimit are errors as in check_data, and so is a row with every value missing.
/// Returns whether X has a gap.
template <class T>
bool check_data_with_gaps(const char* where, MatrixView<T> X, int n_threads) {
  check_data_shape(where, X.data, X.rows, X.cols, X.stride);
  const GapScan scan = fold_rows(
      X.rows, 4096, n_threads, [] { return GapScan{}; }, [] { return NoScratch{}; },
      [&](GapScan& s, NoScratch&, Index begin, Index end) {
        for (Index i = begin; i < end; ++i) {
          const T* x = X.row(i);
          Index missing = 0;
          for (Index j = 0; j < X.cols; ++j) {
            if (usable_value(x[j])) continue;
            if (std::isnan(x[j])) {
              ++missing;
            } else if (s.bad_row < 0) {
              s.bad_row = i;
              s.bad_col = j;
            }
          }
          s.has_gaps = s.has_gaps || missing > 0;
          if (missing == X.cols && s.empty_row < 0) s.empty_row = i;
        }
      });
  if (scan.bad_row >= 0)
    expect_finite(where, {scan.bad_row, scan.bad_col, static_cast<double>(X.row(scan.bad_row)[scan.bad_col])});
  MIXTURA_EXPECTS(scan.empty_row < 0,
                  "%s: row %lld has no observed value (every feature is NaN); drop it, or fill a value", where,
                  static_cast<long long>(scan.empty_row));
  return scan.has_gaps;
}

/// The precision matrices P_k = C_k C_k^T of full and tied covariances (tied: one), made once per pass.
inline std::vector<Eigen::MatrixXd> gap_precisions(const GmmModel& m) {
  std::vector<Eigen::MatrixXd> p;
  if (m.type == CovarianceType::full || m.type == CovarianceType::tied)
    for (std::size_t k = 0; k < m.factor.size(); ++k) p.push_back(m.factor[k] * m.factor[k].transpose());
  return p;
}

/// One missingness pattern under one model: its observed and missing features and, per component
/// (tied: one), the gain G = P_mm^-1 P_mo, the conditional covariance C = P_mm^-1 and log det P_mm.
struct GapPattern {
  std::vector<Index> observed, missing;
  std::vector<Eigen::MatrixXd> gain, cond_cov;  ///< full: K, tied: 1, diag/spherical: none
  Eigen::VectorXd log_det_pmm;                  ///< K
  Eigen::VectorXd entropy;                      ///< K: entropy of N(x^_m, C_k) = (d_m log 2 pi e - log det P_mm) / 2

  GapPattern(const GmmModel& m, const std::vector<Eigen::MatrixXd>& precision, const std::vector<char>& is_missing) {
    const Index K = m.n_components, D = m.n_features;
    for (Index j = 0; j < D; ++j) (is_missing[static_cast<std::size_t>(j)] ? missing : observed).push_back(j);
    const Index dm = static_cast<Index>(missing.size()), dobs = static_cast<Index>(observed.size());
    log_det_pmm = Eigen::VectorXd::Zero(K);
    for (std::size_t p = 0; p < precision.size(); ++p) {
      const Eigen::MatrixXd& P = precision[p];
      Eigen::MatrixXd pmm(dm, dm), pmo(dm, dobs);
      for (Index a = 0; a < dm; ++a) {
        for (Index b = 0; b < dm; ++b) pmm(a, b) = P(missing[a], missing[b]);
        for (Index b = 0; b < dobs; ++b) pmo(a, b) = P(missing[a], observed[b]);
      }
      const Eigen::LLT<Eigen::MatrixXd> llt(pmm);
      const Eigen::MatrixXd l = llt.matrixL();
      MIXTURA_EXPECTS(llt.info() == Eigen::Success && (l.diagonal().array() > 0).all(),
                      "GaussianMixture: the precision of component %zu is not positive definite on %lld missing "
                      "features; the model's covariances are degenerate",
                      p, static_cast<long long>(dm));
      gain.push_back(llt.solve(pmo));
      cond_cov.push_back(llt.solve(Eigen::MatrixXd::Identity(dm, dm)));
      const double ld = 2 * l.diagonal().array().log().sum();
      if (m.type == CovarianceType::tied) log_det_pmm.setConstant(ld);
      else log_det_pmm[static_cast<Index>(p)] = ld;
    }
    if (m.type == CovarianceType::diag || m.type == CovarianceType::spherical)
      for (Index k = 0; k < K; ++k)
        for (const Index j : missing) {
          const double f = m.diag_factor(k, m.type == CovarianceType::diag ? j : 0);
          log_det_pmm[k] += 2 * std::log(f);
        }
    entropy = (0.5 * (static_cast<double>(dm) * (kLog2Pi + 1.0) - log_det_pmm.array())).matrix();
  }

  /// Conditional variance of missing feature missing[a] under component k (diag/spherical only).
  static double diag_cond_var(const GmmModel& m, Index k, Index j) {
    const double f = m.diag_factor(k, m.type == CovarianceType::diag ? j : 0);
    return 1.0 / (f * f);
  }

  /// log pi_k + log N(x_o | mu_k,o, Sigma_k,oo) of row x (D values, NaN where missing), and
  /// delta = x^ - mu_k (D values: the conditional mean filled in on the missing features).
  double log_prob(const GmmModel& m, Index k, const double* x, double* delta) const {
    const Index D = m.n_features, dm = static_cast<Index>(missing.size());
    for (const Index j : observed) delta[j] = x[j] - m.means(k, j);
    double q = 0;
    switch (m.type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        const Eigen::MatrixXd& g = gain[m.type == CovarianceType::tied ? 0 : static_cast<std::size_t>(k)];
        for (Index a = 0; a < dm; ++a) {
          double v = 0;
          for (std::size_t b = 0; b < observed.size(); ++b) v += g(a, static_cast<Index>(b)) * delta[observed[b]];
          delta[missing[a]] = -v;
        }
        q = (Eigen::Map<const Eigen::RowVectorXd>(delta, D) * m.factor_of(k)).squaredNorm();
        break;
      }
      case CovarianceType::diag:
        for (const Index j : missing) delta[j] = 0;
        for (const Index j : observed) q += delta[j] * m.diag_factor(k, j) * (delta[j] * m.diag_factor(k, j));
        break;
      case CovarianceType::spherical: {
        for (const Index j : missing) delta[j] = 0;
        for (const Index j : observed) q += delta[j] * delta[j];
        q *= m.diag_factor(k, 0) * m.diag_factor(k, 0);
        break;
      }
    }
    return m.log_normaliser(k) + 0.5 * static_cast<double>(dm) * kLog2Pi - 0.5 * log_det_pmm[k] - 0.5 * q;
  }
};

/// The rows of one block that have a gap, grouped by pattern: their offsets in the block, each one's
/// pattern, and (after log_prob) x^_k - mu_k of each row and component.
struct GapRows {
  std::vector<Index> rows;            ///< offsets in the block, ascending
  std::vector<std::size_t> pattern;   ///< per entry of rows: its index in patterns
  std::vector<GapPattern> patterns;
  RowMatrix<double> delta;            ///< rows.size() x K D
  Eigen::VectorXd x;                  ///< one row's values (D)

  bool empty() const { return rows.empty(); }

  /// Finds the rows of X[begin, end) with a NaN and sets up their patterns under m; zeroes those rows
  /// of block (the block's double copy of X[begin, end)) so that the block's dense passes stay finite.
  template <class T, class Block>
  void find(MatrixView<T> X, Index begin, Index end, const GmmModel& m, const std::vector<Eigen::MatrixXd>& precision,
            Block& block) {
    rows.clear();
    pattern.clear();
    patterns.clear();
    const Index D = X.cols;
    std::map<std::string, std::size_t> seen;
    std::string key(static_cast<std::size_t>(D), '\0');
    for (Index i = begin; i < end; ++i) {
      const T* xi = X.row(i);
      bool gap = false;
      for (Index j = 0; j < D; ++j) {
        key[static_cast<std::size_t>(j)] = std::isnan(xi[j]) ? 1 : 0;
        gap = gap || std::isnan(xi[j]);
      }
      if (!gap) continue;
      auto at = seen.find(key);
      if (at == seen.end()) {
        at = seen.emplace(key, patterns.size()).first;
        patterns.emplace_back(m, precision, std::vector<char>(key.begin(), key.end()));
      }
      rows.push_back(i - begin);
      pattern.push_back(at->second);
      block.row(i - begin).setZero();
    }
    delta.resize(static_cast<Index>(rows.size()), m.n_components * D);
    x.resize(D);
  }

  /// Writes lp(r, k) = log pi_k + log N_k(x_o) of every gap row (r its offset in the block) and fills delta.
  template <class T, class LogProb>
  void log_prob(MatrixView<T> X, Index begin, const GmmModel& m, LogProb& lp) {
    const Index D = m.n_features, K = m.n_components;
    for (std::size_t e = 0; e < rows.size(); ++e) {
      const T* xi = X.row(begin + rows[e]);
      for (Index j = 0; j < D; ++j) x[j] = static_cast<double>(xi[j]);
      const GapPattern& p = patterns[pattern[e]];
      for (Index k = 0; k < K; ++k)
        lp(rows[e], k) = p.log_prob(m, k, x.data(), delta.row(static_cast<Index>(e)).data() + k * D);
    }
  }
};

/// After fold_row_terms (lp(r, k) = w_r r_rk): adds the gap rows' expected statistics to st, around
/// shift (K x D) as the block's dense accumulation takes its moments: N_k, S1_k and S2_k of x^_k (plus
/// the conditional covariance C on the missing block), and the entropy of the filled-in values; then
/// zeroes their rows of lp, so that the dense accumulation skips them.
template <class LP>
void fold_gap_rows(GmmStats& st, const GapRows& g, LP& lp, const GmmModel& m, const RowMatrix<double>& shift) {
  const Index K = m.n_components, D = m.n_features, n = static_cast<Index>(g.rows.size());
  RowMatrix<double> z(n, D);
  Eigen::VectorXd r(n);
  std::vector<double> pattern_weight(g.patterns.size());
  for (Index k = 0; k < K; ++k) {
    const Eigen::RowVectorXd offset = m.means.row(k) - shift.row(k);
    std::fill(pattern_weight.begin(), pattern_weight.end(), 0.0);
    for (Index e = 0; e < n; ++e) {
      r[e] = lp(g.rows[static_cast<std::size_t>(e)], k);
      z.row(e) = g.delta.row(e).segment(k * D, D) + offset;
      pattern_weight[g.pattern[static_cast<std::size_t>(e)]] += r[e];
      st.entropy += r[e] * g.patterns[g.pattern[static_cast<std::size_t>(e)]].entropy[k];
    }
    st.nk[k] += r.sum();
    st.s1.row(k).noalias() += r.transpose() * z;
    if (st.full_moments()) {
      Eigen::MatrixXd& s2 = st.s2[static_cast<std::size_t>(k)];
      s2.noalias() += z.transpose() * (z.array().colwise() * r.array()).matrix();
      for (std::size_t p = 0; p < g.patterns.size(); ++p) {
        const GapPattern& pat = g.patterns[p];
        const Eigen::MatrixXd& c = pat.cond_cov[m.type == CovarianceType::tied ? 0 : static_cast<std::size_t>(k)];
        for (std::size_t a = 0; a < pat.missing.size(); ++a)
          for (std::size_t b = 0; b < pat.missing.size(); ++b)
            s2(pat.missing[a], pat.missing[b]) += pattern_weight[p] * c(static_cast<Index>(a), static_cast<Index>(b));
      }
    } else {
      st.s2_diag.row(k).noalias() += r.transpose() * z.array().square().matrix();
      for (std::size_t p = 0; p < g.patterns.size(); ++p)
        for (const Index j : g.patterns[p].missing)
          st.s2_diag(k, j) += pattern_weight[p] * GapPattern::diag_cond_var(m, k, j);
    }
  }
  for (const Index row : g.rows) lp.row(row).setZero();
}

}  // namespace detail
}  // namespace mixtura
