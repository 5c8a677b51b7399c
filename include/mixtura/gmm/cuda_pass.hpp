#pragma once
/// Gaussian-mixture data passes on the CUDA backend: the same functions as gmm/cpu_pass.hpp and
/// gmm/init.hpp, overloaded on CudaBackend, so that GaussianMixture::fit_on and the *_on scoring
/// functions run unchanged on the GPU. They wrap the compiled passes of mixtura::cuda
/// (mixtura/cuda/gmm_pass.hpp, cuda/gmm_*.cu); link mixtura::cuda.
///
/// On the device: the E-step with the statistics (every iteration) and the log-densities for scoring.
/// On the host: the M-step (written once), and the two initialisation passes (label statistics,
/// random responsibilities: once per restart, the CPU's code, so the same seed gives the very same
/// starting model on both backends).

#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/backend/cuda.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/cuda/gmm_pass.hpp"
#include "mixtura/gmm/cpu_pass.hpp"
#include "mixtura/gmm/init.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/stats.hpp"
#include "mixtura/kmeans/cuda_pass.hpp"

namespace mixtura {
namespace detail {

static_assert(static_cast<int>(CovarianceType::full) == static_cast<int>(cuda::GmmShape::full) &&
                  static_cast<int>(CovarianceType::tied) == static_cast<int>(cuda::GmmShape::tied) &&
                  static_cast<int>(CovarianceType::diag) == static_cast<int>(cuda::GmmShape::diag) &&
                  static_cast<int>(CovarianceType::spherical) == static_cast<int>(cuda::GmmShape::spherical),
              "cuda::GmmShape follows CovarianceType");

/// A model as the device passes take it, with the arrays it points into. Full/tied: the centre is the
/// mixture mean rounded to T (the device centres rows in T), and the offsets are taken from it.
struct GmmPassModelData {
  std::vector<double> constant, center, factors, offset, means, scale;
  cuda::GmmPassModel view;  ///< points into the vectors above (a move keeps their storage; no copies)

  GmmPassModelData() = default;
  GmmPassModelData(GmmPassModelData&&) = default;
  GmmPassModelData(const GmmPassModelData&) = delete;
  GmmPassModelData& operator=(const GmmPassModelData&) = delete;

  template <class T>
  static GmmPassModelData of(const GmmModel& m) {
    GmmPassModelData d;
    const Index K = m.n_components, D = m.n_features;
    d.constant.resize(static_cast<std::size_t>(K));
    for (Index k = 0; k < K; ++k)
      d.constant[k] = std::log(m.weights[k]) - 0.5 * static_cast<double>(D) * kLog2Pi + m.log_det_factor(k);
    cuda::GmmPassModel& v = d.view;
    v.shape = static_cast<cuda::GmmShape>(static_cast<int>(m.type));
    v.K = K;
    v.D = D;
    if (m.type == CovarianceType::full || m.type == CovarianceType::tied) {
      const Eigen::RowVectorXd c = (m.weights.transpose() * m.means).template cast<T>().template cast<double>();
      d.center.assign(c.data(), c.data() + D);
      const Index n_factors = m.shared_factor() ? 1 : K;
      d.factors.resize(static_cast<std::size_t>(n_factors * D * D));
      for (Index k = 0; k < n_factors; ++k)
        Eigen::Map<RowMatrix<double>>(d.factors.data() + k * D * D, D, D) = m.factor[static_cast<std::size_t>(k)];
      d.offset.resize(static_cast<std::size_t>(K * D));
      for (Index k = 0; k < K; ++k)
        Eigen::Map<Eigen::RowVectorXd>(d.offset.data() + k * D, D) = (m.means.row(k) - c) * m.factor_of(k);
      v.center = d.center.data();
      v.factors = d.factors.data();
      v.offset = d.offset.data();
    } else {
      d.means.assign(m.means.data(), m.means.data() + K * D);
      d.scale.assign(m.diag_factor.data(), m.diag_factor.data() + m.diag_factor.size());
      v.means = d.means.data();
      v.scale = d.scale.data();
    }
    v.constant = d.constant.data();
    return d;
  }
};

/// What a CUDA scoring pass hands to a consumer of gmm_weighted_log_prob: the members of GmmScratch
/// that consumers use.
struct GmmScoreBlock {
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> lp;
  Eigen::VectorXd log_p, entropy;
  GmmScoreBlock(Index rows, Index k) : lp(rows, k), log_p(rows), entropy(rows) {}
};

/// The device pass's statistics as a GmmStats: full/tied around pm's centre, diag/spherical around
/// the means; the candidates for the lowest log-likelihoods offered to st.worst.
inline GmmStats stats_from_pass(const GmmModel& m, const GmmPassModelData& pm, const cuda::GmmPassStats& ps,
                                std::size_t n_worst) {
  const Index K = m.n_components, D = m.n_features;
  GmmStats st(m.type, K, D, n_worst);
  st.nk = ps.nk;
  st.s1 = Eigen::Map<const RowMatrix<double>>(ps.s1.data(), K, D);
  if (st.full_moments()) {
    for (Index k = 0; k < K; ++k) st.s2[k] = Eigen::Map<const RowMatrix<double>>(ps.s2.data() + k * D * D, D, D);
    st.shift = Eigen::Map<const Eigen::RowVectorXd>(pm.center.data(), D).replicate(K, 1);
  } else {
    st.s2_diag = Eigen::Map<const RowMatrix<double>>(ps.s2.data(), K, D);
    st.shift = m.means;
  }
  st.log_likelihood = ps.log_likelihood;
  st.entropy = ps.entropy;
  st.weight = ps.weight;
  for (std::size_t i = 0; i < ps.low_row.size(); ++i) st.worst.offer(ps.low_log_p[i], ps.low_row[i]);
  return st;
}

/// Hands rows [begin, begin + rows) of a device scoring pass (lp: rows x K row-major, begin a multiple
/// of kGmmBlock) to a consumer of gmm_weighted_log_prob as blocks of kGmmBlock rows, a short last
/// block padded with zero rows (as on the CPU: the same operations reach every row), from up to
/// n_threads threads.
template <class Out>
void hand_score_blocks(Index begin, Index rows, const double* lp, Index K, int n_threads, Out& out) {
  for_blocks(rows, kGmmBlock, n_threads, [&] { return GmmScoreBlock(kGmmBlock, K); },
             [&](GmmScoreBlock& s, Index b, Index e) {
               s.lp.topRows(e - b) = Eigen::Map<const RowMatrix<double>>(lp + b * K, e - b, K);
               if (e - b < kGmmBlock) s.lp.bottomRows(kGmmBlock - (e - b)).setZero();
               out(begin + b, e - b, s);
             });
}

}  // namespace detail

/// The E-step fused with the statistics of the M-step (see cpu_pass.hpp), on the GPU. Full/tied:
/// moments around the mixture mean rounded to T; diag/spherical: around each component's mean.
template <class T>
GmmStats gmm_e_step(const CudaBackend& be, MatrixView<T> X, VectorView<T> w, const GmmModel& m, std::size_t n_worst) {
  const detail::GmmPassModelData pm = detail::GmmPassModelData::of<T>(m);
  cuda::GmmPassStats ps;
  cuda::gmm_e_step(be, detail::host_matrix(X), detail::weights_or_null(w), pm.view, static_cast<std::int64_t>(n_worst),
                   ps);
  return detail::stats_from_pass(m, pm, ps, n_worst);
}

/// The statistics of given hard labels (K-means initialisation): the CPU's pass on the host copy of X.
template <class T>
GmmStats gmm_label_stats(const CudaBackend& be, MatrixView<T> X, VectorView<T> w, const std::int32_t* labels,
                         CovarianceType type, const RowMatrix<double>& shift) {
  return gmm_label_stats(CpuBackend{be.n_threads}, X, w, labels, type, shift);
}

/// Statistics of random responsibilities (init = random): the CPU's pass on the host copy of X.
template <class T>
GmmStats random_resp_stats(const CudaBackend& be, MatrixView<T> X, VectorView<T> w, CovarianceType type, Index K,
                           const CounterRng& rng, const RowMatrix<double>& shift) {
  return random_resp_stats(CpuBackend{be.n_threads}, X, w, type, K, rng, shift);
}

/// For scoring, as the CPU's gmm_weighted_log_prob: calls out(begin, rows, s) for blocks of
/// kGmmBlock rows with s.lp(r, k) = log pi_k + log N_k(x_r) computed on the device (a short last
/// block padded with zero rows), from up to be.n_threads host threads. A row's results depend only on
/// its values and its index modulo kGmmBlock.
template <class T, class Out>
void gmm_weighted_log_prob(const CudaBackend& be, MatrixView<T> X, const GmmModel& m, Out&& out) {
  const detail::GmmPassModelData pm = detail::GmmPassModelData::of<T>(m);
  const Index K = m.n_components;
  cuda::gmm_weighted_log_prob(be, detail::host_matrix(X), pm.view, [&](std::int64_t begin, std::int64_t rows, const double* lp) {
    detail::hand_score_blocks(begin, rows, lp, K, be.n_threads, out);
  });
}

}  // namespace mixtura
