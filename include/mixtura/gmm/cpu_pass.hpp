#pragma once
/// Gaussian-mixture data passes on the CPU: log-densities of a block of rows under all components
/// (full and tied: one GEMM against all K precision factors side by side; diag and spherical:
/// component by component), log-sum-exp, responsibilities, and the statistics of the M-step, folded
/// block by block; responsibilities are never kept for all rows.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include <Eigen/Core>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/gmm/gaps.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/stats.hpp"

namespace mixtura {
namespace detail {

inline constexpr Index kGmmBlock = 256;

/// Working memory of one thread for one block.
struct GmmScratch {
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> x, diff, lp;
  Eigen::VectorXd col, log_p, entropy;
  GmmScratch(Index block, Index d, Index k)
      : x(block, d), diff(block, d), lp(block, k), col(block), log_p(block), entropy(block) {}
};

/// Diagonal and spherical covariances: lp(r, k) = log pi_k + log N(x_r | mu_k, Sigma_k) for the first
/// `rows` rows of s.x, in double, component by component (full and tied: BatchedLogProb below).
/// `source`: detail::first_identical_components(m) (a twin's column is copied from its first).
inline void diagonal_log_prob_block(const GmmModel& m, const std::vector<Index>& source, Index rows, GmmScratch& s) {
  auto x = s.x.topRows(rows);
  auto diff = s.diff.topRows(rows);
  for (Index k = 0; k < m.n_components; ++k) {
    if (source[static_cast<std::size_t>(k)] != k) {
      s.lp.col(k).head(rows) = s.lp.col(source[static_cast<std::size_t>(k)]).head(rows);
      continue;
    }
    const double constant = m.log_normaliser(k);
    diff = x.rowwise() - m.means.row(k);
    auto sq = s.col.head(rows);
    if (m.type == CovarianceType::diag)
      sq = (diff.array().rowwise() * m.diag_factor.row(k).array()).square().rowwise().sum();
    else
      sq = diff.rowwise().squaredNorm() * (m.diag_factor(k, 0) * m.diag_factor(k, 0));
    s.lp.col(k).head(rows) = (constant - 0.5 * sq.array()).matrix();
  }
}

/// Turns the first `rows` rows of lp into responsibilities in place, with log p(x_r) and H(q_r) per
/// row, using Eigen's vectorised exp and log.
/// H(q_r) = log s_r - sum_k r_rk (lp_rk - m_r) with m_r the row maximum and s_r = sum_k exp(lp_rk - m_r).
inline void normalise_block(Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& lp, Index rows,
                            Eigen::VectorXd& log_p, Eigen::VectorXd& entropy) {
  Eigen::Array<double, 1, Eigen::Dynamic> e(lp.cols());
  for (Index r = 0; r < rows; ++r) {  // row by row: a row of lp is contiguous, so exp runs on packets
    auto a = lp.row(r).array();
    const double mx = a.maxCoeff();
    a -= mx;  // lp - m (<= 0, -inf for zero weights)
    const bool all_above = a.minCoeff() >= -700.0;  // the common row: every exp >= 1e-304, every r_k > 0
    // Otherwise exp below -700 (< 1e-304) is flushed to 0 so that no subnormal responsibility reaches
    // the moment GEMMs (subnormal arithmetic ran those 20x slower); the statistics move by < 1e-300.
    if (all_above) e = a.exp();
    else e = (a < -700.0).select(0.0, a.exp());
    const double sum = e.sum();
    e /= sum;
    // sum_k r_k (lp_k - m), with 0 where r_k == 0 (so that 0 * -inf counts as 0)
    const double r_dot = all_above ? (e * a).sum() : (e > 0).select(e * a, 0.0).sum();
    const double log_sum = std::log(sum);
    log_p[r] = mx + log_sum;
    entropy[r] = log_sum - r_dot;
    a = e;
  }
}

/// log p(x_r) = m_r + log sum_k exp(lp_rk - m_r) of the first `rows` rows of lp, lp left as it is: what
/// scoring needs of normalise_block, without the responsibilities and the entropy, and with Eigen's
/// vectorised exp (terms below e^-700 are not flushed here: they round away in a sum >= 1).
inline void log_sum_exp_block(const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& lp,
                              Index rows, Eigen::VectorXd& log_p) {
  for (Index r = 0; r < rows; ++r) {  // row by row: a row of lp is contiguous, so exp runs on packets
    const auto a = lp.row(r).array();
    const double mx = a.maxCoeff();
    // Every component's density underflowed to 0 (-inf): log p is -inf, not the NaN of -inf - -inf.
    log_p[r] = mx == -std::numeric_limits<double>::infinity() ? mx : mx + std::log((a - mx).exp().sum());
  }
}

/// The log-densities of full and tied covariances in batched form: a block of rows centred once on
/// the mixture mean c, y = (x - c) [C_1 ... C_K] by GEMM (one C if tied), then per component
/// lp_k = log pi_k - D/2 log 2 pi + log|C_k| - |y_k - (mu_k - c) C_k|^2 / 2. Centring on c keeps the
/// data's offset out of the products; in double the remaining cancellation (|mu_k - c| against the
/// component's spread) costs nothing that matters.
///
/// The factors are triangular (upper from the M-step, upper or lower from a model file): the columns
/// of y are cut into up to 4 blocks, and each block's GEMM reads only the rows of x whose factor
/// rows are not all zero there (columns [lo, hi) of an upper factor need rows [0, hi) only), which
/// skips up to 3/8 of the multiply-adds. Within a block the columns of the G distinct factors are
/// interleaved (column j of every factor side by side), so that summing the squares over columns is
/// a sum of G-long vectors.
struct BatchedLogProb {
  bool shared;
  Eigen::RowVectorXd c;
  std::vector<Index> source;       ///< K: detail::first_identical_components (twins are evaluated once)
  std::vector<Index> group;        ///< K: the distinct factor of component k (0 if tied)
  Index n_groups = 0, width = 0;   ///< G distinct factors; columns of each factor per block
  std::vector<Index> from, to;     ///< per block: the factor rows [from, to) that hold a non-zero there
  Eigen::MatrixXd factors;         ///< D x (blocks width G): column (b width + j) G + g = column b width + j of factor g
  Eigen::RowVectorXd offset_cols;  ///< full: (mu_k - c) C_k in the columns of y (zero in the padding)
  RowMatrix<double> offset;        ///< K x D: (mu_k - c) C_k
  Eigen::VectorXd constant;        ///< K: log pi_k - D/2 log 2 pi + log|C_k|

  explicit BatchedLogProb(const GmmModel& m)
      : shared(m.shared_factor()), c(m.weights.transpose() * m.means), source(first_identical_components(m)),
        group(source.size(), 0), offset(m.n_components, m.n_features), constant(m.n_components) {
    const Index K = m.n_components, D = m.n_features;
    std::vector<Index> owner;  // the component whose factor is distinct factor g
    for (Index k = 0; k < K; ++k) {
      const auto at = static_cast<std::size_t>(k);
      if (shared) continue;
      if (source[at] != k) group[at] = group[static_cast<std::size_t>(source[at])];
      else group[at] = static_cast<Index>(owner.size()), owner.push_back(k);
    }
    if (shared) owner.push_back(0);
    n_groups = static_cast<Index>(owner.size());
    const Index blocks = std::clamp<Index>(D / 8, 1, 4);  // blocks of >= 8 columns: GEMMs stay efficient
    width = (D + blocks - 1) / blocks;
    factors = Eigen::MatrixXd::Zero(D, blocks * width * n_groups);
    for (Index b = 0; b < blocks; ++b) {
      const Index lo = std::min(D, b * width), w = std::min(D, lo + width) - lo;
      Index first = D, last = 0;
      for (Index g = 0; g < n_groups; ++g) {
        const auto f = m.factor_of(owner[static_cast<std::size_t>(g)]).middleCols(lo, w);
        for (Index i = 0; i < D; ++i)
          if ((f.row(i).array() != 0).any()) first = std::min(first, i), last = std::max(last, i + 1);
        for (Index j = 0; j < w; ++j) factors.col((b * width + j) * n_groups + g) = f.col(j);
      }
      from.push_back(std::min(first, last));
      to.push_back(last);
    }
    if (!shared) offset_cols = Eigen::RowVectorXd::Zero(factors.cols());
    for (Index k = 0; k < K; ++k) {
      const auto at = static_cast<std::size_t>(k);
      if (source[at] != k) {
        offset.row(k) = offset.row(source[at]);
        constant[k] = constant[source[at]];
        continue;
      }
      offset.row(k) = (m.means.row(k) - c) * m.factor_of(k);
      constant[k] = m.log_normaliser(k);
      if (!shared)
        for (Index j = 0; j < D; ++j) offset_cols[j * n_groups + group[at]] = offset(k, j);
    }
  }
  Index columns() const { return factors.cols(); }

  /// Rows per GEMM: y of kChunk rows (kChunk x columns() doubles, 128 KiB at K D = 256) stays in L2
  /// until it is read back; the chunks of a block are always cut alike, so a row's values still
  /// depend only on its values and its place in the block.
  static constexpr Index kChunk = 64;

  /// Centres the first `rows` rows of s.x on c in place and writes their s.lp; yall: at least
  /// min(rows, kChunk) x columns().
  void operator()(Index rows, GmmScratch& s,
                  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& yall) const {
    const Index K = offset.rows(), D = c.size(), blocks = static_cast<Index>(from.size());
    const Index span = width * n_groups, all = blocks * span;
    for (Index first = 0; first < rows; first += kChunk) {
      const Index n = std::min(kChunk, rows - first);
      auto xc = s.x.middleRows(first, n);
      xc.rowwise() -= c;
      for (Index b = 0; b < blocks; ++b) {
        const auto at = static_cast<std::size_t>(b);
        auto y = yall.block(0, b * span, n, span);
        if (to[at] > from[at])
          y.noalias() = xc.middleCols(from[at], to[at] - from[at]) * factors.block(from[at], b * span, to[at] - from[at], span);
        else
          y.setZero();
      }
      for (Index r = 0; r < n; ++r) {
        double* e = yall.row(r).data();
        auto lp = s.lp.row(first + r);
        if (shared) {  // one factor: y's columns are in their natural order
          const Eigen::Map<const Eigen::RowVectorXd> y(e, D);
          for (Index k = 0; k < K; ++k)
            lp[k] = source[static_cast<std::size_t>(k)] != k ? lp[source[static_cast<std::size_t>(k)]]
                                                             : constant[k] - 0.5 * (y - offset.row(k)).squaredNorm();
          continue;
        }
        const double* off = offset_cols.data();
        for (Index t = 0; t < all; ++t) e[t] = (e[t] - off[t]) * (e[t] - off[t]);
        sum_strided(e, all, n_groups);
        for (Index k = 0; k < K; ++k) lp[k] = constant[k] - 0.5 * e[group[static_cast<std::size_t>(k)]];
      }
    }
  }

 private:
  /// e[g] = sum over t of e[t G + g], for g < G (len a multiple of G); 8 sums at a time in registers
  /// (summing into e itself would wait on its own stores).
  static void sum_strided(double* e, Index len, Index G) {
    Index g0 = 0;
    for (; g0 + 8 <= G; g0 += 8) {
      double acc[8];
      for (int l = 0; l < 8; ++l) acc[l] = e[g0 + l];
      for (Index t = G; t < len; t += G)
        for (int l = 0; l < 8; ++l) acc[l] += e[t + g0 + l];
      for (int l = 0; l < 8; ++l) e[g0 + l] = acc[l];
    }
    for (; g0 < G; ++g0) {
      double acc = e[g0];
      for (Index t = G; t < len; t += G) acc += e[t + g0];
      e[g0] = acc;
    }
  }
};

/// Adds row x with responsibility weight wr to component k's N, S1, S2 (around shift row k), one
/// row at a time (initialisations; the E-step folds whole blocks with GEMMs).
template <class T>
inline void add_row(GmmStats& st, Index k, const T* x, double wr, const RowMatrix<double>& shift, Eigen::VectorXd& diff) {
  for (Index j = 0; j < st.n_features; ++j) diff[j] = static_cast<double>(x[j]) - shift(k, j);
  st.nk[k] += wr;
  st.s1.row(k) += wr * diff.transpose();
  if (st.full_moments()) st.s2[k].selfadjointView<Eigen::Lower>().rankUpdate(diff, wr);
  else st.s2_diag.row(k) += wr * diff.array().square().matrix().transpose();
}

template <class T>
inline void load_block(MatrixView<T> X, Index begin, Index end, GmmScratch& s) {
  s.x.topRows(end - begin) = X.slice(begin, end).map().template cast<double>();
}

}  // namespace detail

namespace detail {

/// The second moments of a chunk of rows, pair by pair: acc (column-major Kp x P; column p = pair
/// (i, j), i <= j, in the order of the upper triangles row by row; row k = component k) +=
/// sum_t xt(i, t) xt(j, t) R(t, :) over the n columns t of xt (D rows, then at least 7 zero rows;
/// row stride ld). R: n x Kp row-major, w_t r_tk zero-padded to Kp, a multiple of 8.
/// J pairs at a time, each one accumulator of 8 component lanes held in registers over all n rows:
/// no matrix of products is built or packed (a GEMM against such a matrix spent more time building
/// and packing it than multiplying). J fills the vector registers: 8 x 8 doubles in 32 zmm, 4 x 2 ymm
/// in 16 (J = 8 there spills), 2 x 4 xmm otherwise.
inline void add_pair_moments(const double* xt, Index ld, Index D, const double* R, Index Kp, Index n, double* acc) {
#if defined(EIGEN_VECTORIZE_AVX512)
  constexpr int J = 8;
#elif defined(EIGEN_VECTORIZE_AVX)
  constexpr int J = 4;
#else
  constexpr int J = 2;
#endif
  using Lanes = Eigen::Matrix<double, 8, 1>;
  Index p = 0;
  for (Index i = 0; i < D; ++i) {
    const double* xi = xt + i * ld;
    for (Index j0 = i; j0 < D; j0 += J) {
      const double* xj = xt + j0 * ld;  // rows j0 .. j0 + J - 1, the ones past D zero
      for (Index kb = 0; kb < Kp; kb += 8) {
        Lanes a[J];
        for (int l = 0; l < J; ++l) a[l].setZero();
        for (Index t = 0; t < n; ++t) {
          const Lanes v = xi[t] * Eigen::Map<const Lanes>(R + t * Kp + kb);
          for (int l = 0; l < J; ++l) a[l] += xj[l * ld + t] * v;
        }
        for (Index l = 0; l < std::min<Index>(J, D - j0); ++l) Eigen::Map<Lanes>(acc + (p + l) * Kp + kb) += a[l];
      }
      p += std::min<Index>(J, D - j0);
    }
  }
}

/// Per-row bookkeeping shared by both E-step paths: turns s.lp into w_r r_rk and folds log p, H.
template <class T>
inline void fold_row_terms(GmmStats& st, GmmScratch& s, VectorView<T> w, Index begin, Index rows) {
  normalise_block(s.lp, rows, s.log_p, s.entropy);
  for (Index r = 0; r < rows; ++r) {
    const double wr = row_weight(w, begin + r);
    st.log_likelihood += wr * s.log_p[r];
    st.entropy += wr * s.entropy[r];
    st.weight += wr;
    if (wr > 0) st.worst.offer(s.log_p[r], begin + r);
    if (!w.empty()) s.lp.row(r) *= wr;  // now w_r r_rk
  }
}

/// Full and tied covariances, batched: the block is centred once on the mixture mean c, the
/// log-densities of all components come from GEMMs against [C_1 ... C_K] (BatchedLogProb), the
/// first moments around c from one more (R^T Xc) and the second from add_pair_moments, per kChunk
/// rows; instead of 3 K small GEMMs.
/// Centring on c keeps the products free of the data's offset; in double the remaining
/// cancellation (|mu_k - c|^2 against the within-component variance) costs nothing that matters.
template <class T>
GmmStats e_step_batched(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const GmmModel& m,
                        std::size_t n_worst, bool gaps) {
  const Index K = m.n_components, D = m.n_features, P = D * (D + 1) / 2, Kp = (K + 7) / 8 * 8;
  const BatchedLogProb log_prob(m);
  const Index F = log_prob.columns();
  const std::vector<Eigen::MatrixXd> precision = gaps ? gap_precisions(m) : std::vector<Eigen::MatrixXd>{};
  const RowMatrix<double> shift = log_prob.c.replicate(K, 1);
  struct Scratch {
    GmmScratch base;
    // xt: (D + 7) x kChunk, a chunk's rows transposed (the last 7 rows stay 0); rk: kChunk x Kp
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> yall, xt, rk;
    GapRows gap;
  };
  GmmStats out = fold_rows(
      X.rows, kGmmBlock, be.n_threads,
      [&] {
        GmmStats st(m.type, K, D, n_worst);
        st.s2_packed = Eigen::MatrixXd::Zero(Kp, P);
        return st;
      },
      [&] {
        constexpr Index C = BatchedLogProb::kChunk;
        return Scratch{GmmScratch(kGmmBlock, D, K), {C, F}, RowMatrix<double>::Zero(D + 7, C), RowMatrix<double>::Zero(C, Kp), {}};
      },
      [&](GmmStats& st, Scratch& sc, Index begin, Index end) {
        GmmScratch& s = sc.base;
        const Index rows = end - begin;
        load_block(X, begin, end, s);
        if (gaps) sc.gap.find(X, begin, end, m, precision, s.x);
        log_prob(rows, s, sc.yall);  // s.x is now centred on c
        if (gaps) sc.gap.log_prob(X, begin, m, s.lp);
        const auto xc = s.x.topRows(rows);
        fold_row_terms(st, s, w, begin, rows);
        if (gaps && !sc.gap.empty()) fold_gap_rows(st, sc.gap, s.lp, m, shift);
        const auto r = s.lp.topRows(rows);
        st.s1.noalias() += r.transpose() * xc;
        for (Index k = 0; k < K; ++k) st.nk[k] += r.col(k).sum();
        for (Index first = 0; first < rows; first += BatchedLogProb::kChunk) {
          const Index n = std::min(BatchedLogProb::kChunk, rows - first);
          sc.xt.topLeftCorner(D, n) = xc.middleRows(first, n).transpose();
          sc.rk.topLeftCorner(n, K) = r.middleRows(first, n);
          add_pair_moments(sc.xt.data(), sc.xt.cols(), D, sc.rk.data(), Kp, n, st.s2_packed.data());
        }
      });
  out.unpack();
  out.shift = shift;
  return out;
}

/// Diagonal and spherical covariances: per component, around the component's mean.
template <class T>
GmmStats e_step_per_component(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const GmmModel& m,
                              std::size_t n_worst, bool gaps) {
  const Index K = m.n_components, D = m.n_features;
  const std::vector<Index> source = first_identical_components(m);
  struct Scratch {
    GmmScratch base;
    GapRows gap;
  };
  GmmStats out = fold_rows(
      X.rows, kGmmBlock, be.n_threads, [&] { return GmmStats(m.type, K, D, n_worst); },
      [&] { return Scratch{GmmScratch(kGmmBlock, D, K), {}}; },
      [&](GmmStats& st, Scratch& sc, Index begin, Index end) {
        GmmScratch& s = sc.base;
        const Index rows = end - begin;
        load_block(X, begin, end, s);
        if (gaps) sc.gap.find(X, begin, end, m, {}, s.x);
        diagonal_log_prob_block(m, source, rows, s);
        if (gaps) sc.gap.log_prob(X, begin, m, s.lp);
        fold_row_terms(st, s, w, begin, rows);
        if (gaps && !sc.gap.empty()) fold_gap_rows(st, sc.gap, s.lp, m, m.means);
        auto x = s.x.topRows(rows);
        auto diff = s.diff.topRows(rows);
        for (Index k = 0; k < K; ++k) {
          const auto rk = s.lp.col(k).head(rows);
          st.nk[k] += rk.sum();
          diff = x.rowwise() - m.means.row(k);
          st.s1.row(k).noalias() += rk.transpose() * diff;
          st.s2_diag.row(k).noalias() += rk.transpose() * diff.array().square().matrix();
        }
      });
  out.shift = m.means;
  return out;
}

}  // namespace detail

/// The E-step fused with the statistics of the M-step: log p(x_i), H(q_i), and N_k, S1_k, S2_k
/// around the shift recorded in the result. n_worst: how many lowest-likelihood rows to remember
/// (for re-seeding collapsed components). gaps: X may hold NaN (missing values, gmm/gaps.hpp): such
/// rows give log p(x_o), the expected statistics of their filled-in values, and H(q_i) plus the
/// entropy of those values, so that the ELBO stays tight at the E-step's parameters.
template <class T>
GmmStats gmm_e_step(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const GmmModel& m,
                    std::size_t n_worst, bool gaps = false) {
  if (m.type == CovarianceType::full || m.type == CovarianceType::tied)
    return detail::e_step_batched(be, X, w, m, n_worst, gaps);
  return detail::e_step_per_component(be, X, w, m, n_worst, gaps);
}

/// The statistics of given hard labels (K-means initialisation), around `shift` (K x D).
template <class T>
GmmStats gmm_label_stats(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const std::int32_t* labels,
                         CovarianceType type, const RowMatrix<double>& shift) {
  const Index K = shift.rows(), D = shift.cols();
  GmmStats out = detail::fold_rows(
      X.rows, detail::kGmmBlock, be.n_threads, [&] { return GmmStats(type, K, D, 0); },
      [&] { return Eigen::VectorXd(D); },
      [&](GmmStats& st, Eigen::VectorXd& diff, Index begin, Index end) {
        for (Index i = begin; i < end; ++i) {
          const double wi = detail::row_weight(w, i);
          st.weight += wi;
          detail::add_row(st, labels[i], X.row(i), wi, shift, diff);
        }
      });
  out.shift = shift;
  return out;
}

/// For scoring: calls out(begin, rows, s) for every block, with s.lp(r, k) = log pi_k + log N_k(x_r)
/// (before normalisation; normalise_block(s.lp, s.lp.rows(), s.log_p, s.entropy) turns it into
/// posteriors). Blocks may be visited in any order, from several threads.
///
/// Full and tied covariances take the E-step's batched form (detail::BatchedLogProb: one GEMM
/// against all K factors); diagonal and spherical ones go component by component. s.x holds the
/// block's rows, centred on the mixture mean for full and tied.
///
/// Every block is computed at its full kGmmBlock rows, a short last block padded with zero rows, so
/// that the same operations (GEMM kernel paths, vector tails) reach every row: a row's results depend
/// only on its values and on its index modulo kGmmBlock, not on how many rows were scored with it.
/// (This is what lets a stream be scored chunk by chunk with the scores of the whole.)
///
/// gaps: X may hold NaN (missing values); such a row's lp is its observed features' marginal
/// (gmm/gaps.hpp), which depends only on its values; the other rows' values are as without gaps.
template <class T, class Out>
void gmm_weighted_log_prob(const CpuBackend& be, MatrixView<T> X, const GmmModel& m, Out&& out, bool gaps = false) {
  constexpr Index B = detail::kGmmBlock;
  const bool batched = m.type == CovarianceType::full || m.type == CovarianceType::tied;
  std::optional<detail::BatchedLogProb> log_prob;
  std::vector<Index> source;
  if (batched) log_prob.emplace(m);
  else source = detail::first_identical_components(m);
  const std::vector<Eigen::MatrixXd> precision = gaps ? detail::gap_precisions(m) : std::vector<Eigen::MatrixXd>{};
  struct Scratch {
    detail::GmmScratch base;
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> yall;
    detail::GapRows gap;
  };
  detail::for_blocks(X.rows, B, be.n_threads,
                     [&] { return Scratch{detail::GmmScratch(B, m.n_features, m.n_components),
                                          {batched ? detail::BatchedLogProb::kChunk : 0,
                                           batched ? log_prob->columns() : 0},
                                          {}}; },
                     [&](Scratch& sc, Index begin, Index end) {
                       detail::GmmScratch& s = sc.base;
                       detail::load_block(X, begin, end, s);
                       if (end - begin < B) s.x.bottomRows(B - (end - begin)).setZero();
                       if (gaps) sc.gap.find(X, begin, end, m, precision, s.x);
                       if (batched) (*log_prob)(B, s, sc.yall);
                       else detail::diagonal_log_prob_block(m, source, B, s);
                       if (gaps) sc.gap.log_prob(X, begin, m, s.lp);
                       out(begin, end - begin, s);
                     });
}

/// For scoring: log p(x) (log_p) and the most probable component (labels: the first of equal ones,
/// Eigen's maxCoeff) of every row, X.rows values each, either nullptr; from gmm_weighted_log_prob's
/// blocks (log_sum_exp_block), so a row's values depend on its values and its index modulo kGmmBlock.
template <class T>
void gmm_score_rows(const CpuBackend& be, MatrixView<T> X, const GmmModel& m, double* log_p, std::int32_t* labels,
                    bool gaps = false) {
  gmm_weighted_log_prob(be, X, m, [&](Index begin, Index rows, detail::GmmScratch& s) {
    if (labels)  // before normalising: the argmax of lp itself
      for (Index r = 0; r < rows; ++r) {
        Index best;
        s.lp.row(r).maxCoeff(&best);
        labels[begin + r] = static_cast<std::int32_t>(best);
      }
    if (log_p) {
      detail::log_sum_exp_block(s.lp, s.lp.rows(), s.log_p);
      Eigen::Map<Eigen::VectorXd>(log_p + begin, rows) = s.log_p.head(rows);
    }
  }, gaps);
}

}  // namespace mixtura
