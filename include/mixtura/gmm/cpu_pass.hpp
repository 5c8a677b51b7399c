#pragma once
/// Gaussian-mixture data passes on the CPU: log-densities of a block of rows under all components
/// (one GEMM per component against its precision factor), log-sum-exp, responsibilities, and the
/// statistics of the M-step, folded block by block; responsibilities are never kept for all rows.

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/stats.hpp"

namespace mixtura {
namespace detail {

inline constexpr Index kGmmBlock = 256;
inline constexpr double kLog2Pi = 1.8378770664093454835606594728112;

/// Working memory of one thread for one block.
struct GmmScratch {
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> x, diff, y, lp;
  Eigen::VectorXd col, log_p, entropy;
  GmmScratch(Index block, Index d, Index k)
      : x(block, d), diff(block, d), y(block, d), lp(block, k), col(block), log_p(block), entropy(block) {}
};

/// lp(r, k) = log pi_k + log N(x_r | mu_k, Sigma_k) for the rows of s.x (first `rows` rows), in double.
inline void weighted_log_prob_block(const GmmModel& m, Index rows, GmmScratch& s) {
  const Index D = m.n_features;
  auto x = s.x.topRows(rows);
  auto diff = s.diff.topRows(rows);
  for (Index k = 0; k < m.n_components; ++k) {
    const double constant = std::log(m.weights[k]) - 0.5 * static_cast<double>(D) * kLog2Pi + m.log_det_factor(k);
    diff = x.rowwise() - m.means.row(k);
    auto sq = s.col.head(rows);
    switch (m.type) {
      case CovarianceType::full:
      case CovarianceType::tied: {
        auto y = s.y.topRows(rows);
        y.noalias() = diff * m.factor_of(k);
        sq = y.rowwise().squaredNorm();
        break;
      }
      case CovarianceType::diag:
        sq = (diff.array().rowwise() * m.diag_factor.row(k).array()).square().rowwise().sum();
        break;
      case CovarianceType::spherical:
        sq = diff.rowwise().squaredNorm() * (m.diag_factor(k, 0) * m.diag_factor(k, 0));
        break;
    }
    s.lp.col(k).head(rows) = (constant - 0.5 * sq.array()).matrix();
  }
}

/// Turns each row of lp into responsibilities in place; returns log p(x_r) and H(q_r) per row.
inline void normalise_row(double* lp, Index K, double& log_p, double& entropy) {
  double mx = -std::numeric_limits<double>::infinity();
  for (Index k = 0; k < K; ++k) mx = std::max(mx, lp[k]);
  double sum = 0;
  for (Index k = 0; k < K; ++k) sum += std::exp(lp[k] - mx);
  log_p = mx + std::log(sum);
  double h = 0;
  for (Index k = 0; k < K; ++k) {
    const double log_r = lp[k] - log_p;
    const double r = std::exp(log_r);
    if (r > 0) h -= r * log_r;
    lp[k] = r;
  }
  entropy = h;
}

/// normalise_row for the first `rows` rows of lp at once, with Eigen's vectorised exp and log.
/// H(q_r) = log s_r - sum_k r_rk (lp_rk - m_r) with m_r the row maximum and s_r = sum_k exp(lp_rk - m_r).
inline void normalise_block(Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& lp, Index rows,
                            Eigen::VectorXd& log_p, Eigen::VectorXd& entropy) {
  auto a = lp.topRows(rows).array();
  const Eigen::ArrayXd mx = a.rowwise().maxCoeff();
  a.colwise() -= mx;                                  // lp - m (<= 0, -inf for zero weights)
  Eigen::ArrayXXd e = a.exp();
  const Eigen::ArrayXd sum = e.rowwise().sum();
  e.colwise() /= sum;                                 // responsibilities
  const Eigen::ArrayXd log_sum = sum.log();
  // r * (lp - m), with 0 where r == 0 (so that 0 * -inf counts as 0)
  const Eigen::ArrayXd r_dot = (e > 0).select(e * a, 0.0).rowwise().sum();
  log_p.head(rows) = (mx + log_sum).matrix();
  entropy.head(rows) = (log_sum - r_dot).matrix();
  a = e;
}

template <class T>
inline void load_block(MatrixView<T> X, Index begin, Index end, GmmScratch& s) {
  s.x.topRows(end - begin) = X.slice(begin, end).map().template cast<double>();
}

}  // namespace detail

/// The E-step fused with the statistics of the M-step, around the model's current means.
/// n_worst: how many lowest-likelihood rows to remember (for re-seeding collapsed components).
template <class T>
GmmStats gmm_e_step(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const GmmModel& m,
                    std::size_t n_worst) {
  const Index K = m.n_components, D = m.n_features;
  return detail::fold_rows(
      X.rows, detail::kGmmBlock, be.n_threads, [&] { return GmmStats(m.type, K, D, n_worst); },
      [&] { return detail::GmmScratch(detail::kGmmBlock, D, K); },
      [&](GmmStats& st, detail::GmmScratch& s, Index begin, Index end) {
        const Index rows = end - begin;
        detail::load_block(X, begin, end, s);
        detail::weighted_log_prob_block(m, rows, s);
        detail::normalise_block(s.lp, rows, s.log_p, s.entropy);
        for (Index r = 0; r < rows; ++r) {
          const double wr = detail::row_weight(w, begin + r);
          st.log_likelihood += wr * s.log_p[r];
          st.entropy += wr * s.entropy[r];
          st.weight += wr;
          if (wr > 0) st.worst.offer(s.log_p[r], begin + r);
          if (!w.empty()) s.lp.row(r) *= wr;  // now w_r r_rk
        }
        auto x = s.x.topRows(rows);
        auto diff = s.diff.topRows(rows);
        for (Index k = 0; k < K; ++k) {
          const auto rk = s.lp.col(k).head(rows);
          st.nk[k] += rk.sum();
          diff = x.rowwise() - m.means.row(k);
          st.s1.row(k).noalias() += rk.transpose() * diff;
          if (st.full_moments()) {
            diff = diff.array().colwise() * rk.array().sqrt();
            st.s2[k].selfadjointView<Eigen::Lower>().rankUpdate(diff.transpose());
          } else {
            st.s2_diag.row(k).noalias() += rk.transpose() * diff.array().square().matrix();
          }
        }
      });
}

/// The statistics of given hard labels (K-means initialisation), around `shift` (K x D).
template <class T>
GmmStats gmm_label_stats(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const std::int32_t* labels,
                         CovarianceType type, const RowMatrix<double>& shift) {
  const Index K = shift.rows(), D = shift.cols();
  return detail::fold_rows(
      X.rows, detail::kGmmBlock, be.n_threads, [&] { return GmmStats(type, K, D, 0); },
      [&] { return Eigen::VectorXd(D); },
      [&](GmmStats& st, Eigen::VectorXd& diff, Index begin, Index end) {
        for (Index i = begin; i < end; ++i) {
          const Index k = labels[i];
          const double wi = detail::row_weight(w, i);
          for (Index j = 0; j < D; ++j) diff[j] = static_cast<double>(X.row(i)[j]) - shift(k, j);
          st.nk[k] += wi;
          st.weight += wi;
          st.s1.row(k) += wi * diff.transpose();
          if (st.full_moments()) st.s2[k].selfadjointView<Eigen::Lower>().rankUpdate(diff, wi);
          else st.s2_diag.row(k) += wi * diff.array().square().matrix().transpose();
        }
      });
}

/// For scoring: calls out(begin, rows, lp) for every block, lp(r, k) = log pi_k + log N_k(x_r)
/// (before normalisation). Blocks may be visited in any order, from several threads.
template <class T, class Out>
void gmm_weighted_log_prob(const CpuBackend& be, MatrixView<T> X, const GmmModel& m, Out&& out) {
  detail::for_blocks(X.rows, detail::kGmmBlock, be.n_threads,
                     [&] { return detail::GmmScratch(detail::kGmmBlock, m.n_features, m.n_components); },
                     [&](detail::GmmScratch& s, Index begin, Index end) {
                       detail::load_block(X, begin, end, s);
                       detail::weighted_log_prob_block(m, end - begin, s);
                       out(begin, end - begin, s.lp);
                     });
}

}  // namespace mixtura
