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
  void merge(const GapScan& o) {  // the lowest rows win
    has_gaps = has_gaps || o.has_gaps;
    if (o.bad_row >= 0 && (bad_row < 0 || o.bad_row < bad_row)) {
      bad_row = o.bad_row;
      bad_col = o.bad_col;
    }
    if (o.empty_row >= 0 && (empty_row < 0 || o.empty_row < empty_row)) empty_row = o.empty_row;
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
/// (tied: one), P_mo, the Cholesky factor L of P_mm, the conditional covariance C = P_mm^-1 and
/// log det P_mm. (The gain P_mm^-1 P_mo is applied row by row, never formed: with gaps at random most
/// patterns have one row.)
struct GapPattern {
  std::vector<Index> observed, missing;
  std::vector<Eigen::MatrixXd> pmo, chol, cond_cov;  ///< full: K, tied: 1, diag/spherical: none
  Eigen::VectorXd log_det_pmm;                  ///< K
  Eigen::VectorXd entropy;                      ///< K: entropy of N(x^_m, C_k) = (d_m log 2 pi e - log det P_mm) / 2

  GapPattern() = default;
  GapPattern(const GmmModel& m, const std::vector<Eigen::MatrixXd>& precision, const char* is_missing) {
    set(m, precision, is_missing);
  }

  /// Sets up the pattern with is_missing[j] != 0 for the missing features (D flags), reusing this
  /// object's memory where the sizes allow: patterns are pooled per thread (GapRows), and with gaps at
  /// random nearly every row has its own.
  void set(const GmmModel& m, const std::vector<Eigen::MatrixXd>& precision, const char* is_missing) {
    const Index K = m.n_components, D = m.n_features;
    observed.clear();
    missing.clear();
    for (Index j = 0; j < D; ++j) (is_missing[j] ? missing : observed).push_back(j);
    const Index dm = static_cast<Index>(missing.size()), dobs = static_cast<Index>(observed.size());
    log_det_pmm.setZero(K);
    pmo.resize(precision.size());
    chol.resize(precision.size());
    cond_cov.resize(precision.size());
    for (std::size_t p = 0; p < precision.size(); ++p) {
      const Eigen::MatrixXd& P = precision[p];
      Eigen::MatrixXd& l = chol[p];
      l.resize(dm, dm);
      pmo[p].resize(dm, dobs);
      for (Index a = 0; a < dm; ++a) {
        for (Index b = 0; b < dm; ++b) l(a, b) = P(missing[a], missing[b]);
        for (Index b = 0; b < dobs; ++b) pmo[p](a, b) = P(missing[a], observed[b]);
      }
      MIXTURA_EXPECTS(cholesky_in_place(l),
                      "GaussianMixture: the precision of component %zu is not positive definite on %lld missing "
                      "features; the model's covariances are degenerate",
                      p, static_cast<long long>(dm));
      cond_cov[p].setIdentity(dm, dm);
      for (Index c = 0; c < dm; ++c) cholesky_solve_in_place(l, cond_cov[p].col(c).data());
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
  /// log_normaliser: m.log_normaliser(k) (made once per pass by the caller).
  double log_prob(const GmmModel& m, Index k, double log_normaliser, const double* x, double* delta) const {
    const Index D = m.n_features, dm = static_cast<Index>(missing.size());
    for (const Index j : observed) delta[j] = x[j] - m.means(k, j);
    double q = 0;
    switch (m.type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        const std::size_t p = m.type == CovarianceType::tied ? 0 : static_cast<std::size_t>(k);
        t_.resize(dm);  // x^_m - mu_m = -P_mm^-1 P_mo (x_o - mu_o)
        for (Index a = 0; a < dm; ++a) {
          double v = 0;
          for (std::size_t b = 0; b < observed.size(); ++b) v += pmo[p](a, static_cast<Index>(b)) * delta[observed[b]];
          t_[a] = v;
        }
        cholesky_solve_in_place(chol[p], t_.data());
        for (Index a = 0; a < dm; ++a) delta[missing[a]] = -t_[a];
        y_.resize(D);  // q = |C^T delta|^2 (Eigen's vectorised product into a kept buffer)
        y_.noalias() = m.factor_of(k).transpose() * Eigen::Map<const Eigen::VectorXd>(delta, D);
        q = y_.squaredNorm();
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
    return log_normaliser + 0.5 * static_cast<double>(dm) * kLog2Pi - 0.5 * log_det_pmm[k] - 0.5 * q;
  }

  /// (P_om P_mm^-1 P_mo)_bb of component k (full/tied): what the marginal precision Sigma_oo^-1 takes
  /// off P's diagonal at observed feature observed[b].
  double schur_diagonal(const GmmModel& m, Index k, std::size_t b) const {
    const std::size_t p = m.type == CovarianceType::tied ? 0 : static_cast<std::size_t>(k);
    const Eigen::MatrixXd& l = chol[p];
    const Index dm = l.rows();
    t_ = pmo[p].col(static_cast<Index>(b));
    double out = 0;
    for (Index i = 0; i < dm; ++i) {  // |L^-1 P_mo e_b|^2
      double v = t_[i];
      for (Index j = 0; j < i; ++j) v -= l(i, j) * t_[j];
      t_[i] = v / l(i, i);
      out += t_[i] * t_[i];
    }
    return out;
  }

 private:
  /// a = L L^T in place (L in the lower triangle); false if a is not positive definite. Plain loops: the
  /// blocks are small (the missing features of a row) and Eigen's LLT costs more in set-up than in work.
  static bool cholesky_in_place(Eigen::MatrixXd& a) {
    const Index n = a.rows();
    for (Index j = 0; j < n; ++j) {
      double d = a(j, j);
      for (Index k = 0; k < j; ++k) d -= a(j, k) * a(j, k);
      if (!(d > 0) || !std::isfinite(d)) return false;
      d = std::sqrt(d);
      a(j, j) = d;
      for (Index i = j + 1; i < n; ++i) {
        double v = a(i, j);
        for (Index k = 0; k < j; ++k) v -= a(i, k) * a(j, k);
        a(i, j) = v / d;
      }
    }
    return true;
  }
  /// x = (L L^T)^-1 x in place (n = L's size), L from cholesky_in_place.
  static void cholesky_solve_in_place(const Eigen::MatrixXd& l, double* x) {
    const Index n = l.rows();
    for (Index i = 0; i < n; ++i) {
      double v = x[i];
      for (Index k = 0; k < i; ++k) v -= l(i, k) * x[k];
      x[i] = v / l(i, i);
    }
    for (Index i = n - 1; i >= 0; --i) {
      double v = x[i];
      for (Index k = i + 1; k < n; ++k) v -= l(k, i) * x[k];
      x[i] = v / l(i, i);
    }
  }

  mutable Eigen::VectorXd t_, y_;  ///< log_prob's P_mo (x_o - mu_o) and C^T delta; a pattern belongs to one thread
};

/// The rows of one block that have a gap, grouped by pattern: their offsets in the block, each one's
/// pattern, and (after log_prob) x^_k - mu_k of each row and component.
struct GapRows {
  std::vector<Index> rows;            ///< offsets in the block, ascending
  std::vector<std::size_t> pattern;   ///< per entry of rows: its index in patterns
  std::vector<GapPattern> patterns;   ///< the first n_patterns are this block's (the rest: memory kept for reuse)
  std::size_t n_patterns = 0;
  RowMatrix<double> delta;            ///< rows.size() x K D
  Eigen::VectorXd x;                  ///< one row's values (D)
  Eigen::VectorXd log_normaliser;     ///< K: m.log_normaliser(k)

  bool empty() const { return rows.empty(); }

  /// Finds the rows of X[begin, end) with a NaN and sets up their patterns under m; zeroes those rows
  /// of block (the block's double copy of X[begin, end)) so that the block's dense passes stay finite.
  template <class T, class Block>
  void find(MatrixView<T> X, Index begin, Index end, const GmmModel& m, const std::vector<Eigen::MatrixXd>& precision,
            Block& block) {
    rows.clear();
    pattern.clear();
    n_patterns = 0;
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
        at = seen.emplace(key, n_patterns).first;
        if (n_patterns == patterns.size()) patterns.emplace_back();
        patterns[n_patterns++].set(m, precision, key.data());
      }
      rows.push_back(i - begin);
      pattern.push_back(at->second);
      block.row(i - begin).setZero();
    }
    delta.resize(static_cast<Index>(rows.size()), m.n_components * D);
    x.resize(D);
    log_normaliser.resize(m.n_components);
    for (Index k = 0; k < m.n_components; ++k) log_normaliser[k] = m.log_normaliser(k);
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
        lp(rows[e], k) = p.log_prob(m, k, log_normaliser[k], x.data(), delta.row(static_cast<Index>(e)).data() + k * D);
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
  std::vector<double> pattern_weight(g.n_patterns);
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
      for (std::size_t p = 0; p < g.n_patterns; ++p) {
        const GapPattern& pat = g.patterns[p];
        const Eigen::MatrixXd& c = pat.cond_cov[m.type == CovarianceType::tied ? 0 : static_cast<std::size_t>(k)];
        for (std::size_t a = 0; a < pat.missing.size(); ++a)
          for (std::size_t b = 0; b < pat.missing.size(); ++b)
            s2(pat.missing[a], pat.missing[b]) += pattern_weight[p] * c(static_cast<Index>(a), static_cast<Index>(b));
      }
    } else {
      st.s2_diag.row(k).noalias() += r.transpose() * z.array().square().matrix();
      for (std::size_t p = 0; p < g.n_patterns; ++p)
        for (const Index j : g.patterns[p].missing)
          st.s2_diag(k, j) += pattern_weight[p] * GapPattern::diag_cond_var(m, k, j);
    }
  }
  for (const Index row : g.rows) lp.row(row).setZero();
}

}  // namespace detail
}  // namespace mixtura
