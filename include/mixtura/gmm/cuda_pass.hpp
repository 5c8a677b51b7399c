#pragma once
/// Gaussian-mixture data passes on the CUDA backend: the same functions as gmm/cpu_pass.hpp and
/// gmm/init.hpp, overloaded on CudaBackend, so that GaussianMixture::fit_on and the *_on scoring
/// functions run unchanged on the GPU. They wrap the compiled passes of mixtura::cuda
/// (mixtura/cuda/gmm_pass.hpp, cuda/gmm_*.cu); link mixtura::cuda.
///
/// On the device: the E-step with the statistics (every iteration), scoring (score_samples_on,
/// score_on and predict_on reduce each row to log p(x) and its most probable component there, so 8
/// bytes of log p and/or 4 of label a row cross PCIe; predict_proba_on and component_log_density_on
/// return N x K and bring back the K weighted log-densities of each row, normalised on the host),
/// and the initialisation passes (the data's feature moments once per fit; the statistics of K-means
/// labels or of random responsibilities once per restart: the E-step's moments kernels on given
/// responsibilities, or for labels kernels that walk each component's rows only). On the host: the
/// M-step (written once).
///
/// X is a MatrixView (host memory: uploaded once per fit) or a DeviceMatrixView (device memory: used in
/// place); the weights a VectorView (uploaded beside X) or, with device X, a DeviceVectorView (read in
/// place). All go through the same kernels, so a fit gives the same bits either way.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/backend/cuda.hpp"
#include "mixtura/backend/cuda_data.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/cuda/gmm_pass.hpp"
#include "mixtura/gmm/cpu_pass.hpp"
#include "mixtura/gmm/init.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/stats.hpp"
#include "mixtura/kmeans/cuda_pass.hpp"  // init = kmeans runs K-means on the same backend

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
      d.constant[k] = m.log_normaliser(k);
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

/// A device pass's statistics as a GmmStats of `type`, around `shift` (K x D); the candidates for the
/// lowest log-likelihoods offered to st.worst.
inline GmmStats stats_of_pass(CovarianceType type, const RowMatrix<double>& shift, const cuda::GmmPassStats& ps,
                              std::size_t n_worst) {
  const Index K = shift.rows(), D = shift.cols();
  GmmStats st(type, K, D, n_worst);
  st.nk = ps.nk;
  st.s1 = Eigen::Map<const RowMatrix<double>>(ps.s1.data(), K, D);
  if (st.full_moments()) {
    for (Index k = 0; k < K; ++k) st.s2[k] = Eigen::Map<const RowMatrix<double>>(ps.s2.data() + k * D * D, D, D);
  } else {
    st.s2_diag = Eigen::Map<const RowMatrix<double>>(ps.s2.data(), K, D);
  }
  st.shift = shift;
  st.log_likelihood = ps.log_likelihood;
  st.entropy = ps.entropy;
  st.weight = ps.weight;
  for (std::size_t i = 0; i < ps.low_row.size(); ++i) st.worst.offer(ps.low_log_p[i], ps.low_row[i]);
  return st;
}

/// The E-step pass's statistics as a GmmStats: full/tied around pm's centre, diag/spherical around
/// the means.
inline GmmStats stats_from_pass(const GmmModel& m, const GmmPassModelData& pm, const cuda::GmmPassStats& ps,
                                std::size_t n_worst) {
  const bool full = m.type == CovarianceType::full || m.type == CovarianceType::tied;
  return stats_of_pass(m.type,
                       full ? RowMatrix<double>(Eigen::Map<const Eigen::RowVectorXd>(pm.center.data(), m.n_features)
                                                    .replicate(m.n_components, 1))
                            : m.means,
                       ps, n_worst);
}

/// What an initialisation pass (cuda::gmm_resp_stats) takes to give moments around a caller's shift
/// (K x D), and its result as GmmStats. Full/tied: the E-step's Gram kernel centres every row on one
/// point in T, here the mean of the shift rows of the components that have rows (points near their
/// means, or all the data mean) rounded to T, and the statistics are around it. Diag/spherical: around
/// the shift rows themselves.
template <class T>
struct GmmInitPassData {
  std::vector<double> center;  ///< full/tied: [D], values of T
  RowMatrix<double> shift;     ///< what the pass takes its moments around (K x D)

  /// present: which components have rows (empty: all).
  GmmInitPassData(CovarianceType type, const RowMatrix<double>& s, const std::vector<bool>& present = {}) : shift(s) {
    if (type != CovarianceType::full && type != CovarianceType::tied) return;
    Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(s.cols());
    Index n = 0;
    for (Index k = 0; k < s.rows(); ++k)
      if (present.empty() || present[static_cast<std::size_t>(k)]) {
        sum += s.row(k);
        ++n;
      }
    const Eigen::RowVectorXd c = (sum / static_cast<double>(std::max<Index>(n, 1))).template cast<T>().template cast<double>();
    center.assign(c.data(), c.data() + c.size());
    shift = c.replicate(s.rows(), 1);
  }
  const double* centre_or_null() const { return center.empty() ? nullptr : center.data(); }
  const double* means() const { return shift.data(); }

  /// The pass's statistics as GmmStats. A component with no weight keeps the caller's shift row
  /// (`caller`): its moments are zero around any point, and the M-step then puts its mean there, as
  /// the CPU's pass does.
  GmmStats stats(CovarianceType type, const RowMatrix<double>& caller, const cuda::GmmPassStats& ps) const {
    GmmStats st = stats_of_pass(type, shift, ps, 0);
    for (Index k = 0; k < st.n_components; ++k)
      if (st.nk[static_cast<std::size_t>(k)] == 0.0) st.shift.row(k) = caller.row(k);
    return st;
  }
};

/// Which of K components the labels (n of them, in [0, K)) give rows to; stops once all have some.
inline std::vector<bool> labels_present(const std::int32_t* labels, Index n, Index K) {
  std::vector<bool> present(static_cast<std::size_t>(K), false);
  Index seen = 0;
  for (Index i = 0; i < n && seen < K; ++i)
    if (!present[static_cast<std::size_t>(labels[i])]) {
      present[static_cast<std::size_t>(labels[i])] = true;
      ++seen;
    }
  return present;
}

/// The data's feature moments (feature_moments in core/moments.hpp: around the first row) from a pass
/// with unit responsibilities (one component, diag) around `first`, of `n` rows.
inline FeatureMoments feature_moments_of_pass(const Eigen::RowVectorXd& first, const cuda::GmmPassStats& ps, Index n) {
  const Index D = first.size();
  const Eigen::VectorXd s1 = Eigen::Map<const Eigen::VectorXd>(ps.s1.data(), D);
  const Eigen::VectorXd s2 = Eigen::Map<const Eigen::VectorXd>(ps.s2.data(), D);
  const double nn = static_cast<double>(n);
  const Eigen::VectorXd d = s1 / nn;  // mean - first
  FeatureMoments out;
  out.mean = d + first.transpose();
  out.variance = (s2 / nn - d.array().square().matrix()).cwiseMax(0.0);
  return out;
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
template <template <class> class View, template <class> class WView, class T>
GmmStats gmm_e_step(const CudaBackend& be, View<T> X, WView<T> w, const GmmModel& m, std::size_t n_worst) {
  const detail::GmmPassModelData pm = detail::GmmPassModelData::of<T>(m);
  cuda::GmmPassStats ps;
  cuda::gmm_e_step(be, detail::host_matrix(X), detail::row_weights(w), pm.view, static_cast<std::int64_t>(n_worst), ps);
  return detail::stats_from_pass(m, pm, ps, n_worst);
}

/// The statistics of given hard labels (K-means initialisation) on the device: the label kernels, each
/// component's statistics from its own rows (the bits of the E-step's moments kernels on one-hot
/// responsibilities; full/tied around one centre, see GmmInitPassData).
template <template <class> class View, template <class> class WView, class T>
GmmStats gmm_label_stats(const CudaBackend& be, View<T> X, WView<T> w, const std::int32_t* labels,
                         CovarianceType type, const RowMatrix<double>& shift) {
  const detail::GmmInitPassData<T> d(type, shift, detail::labels_present(labels, X.rows, shift.rows()));
  cuda::GmmRespSource src;
  src.kind = cuda::GmmRespSource::Kind::labels;
  src.labels = labels;
  cuda::GmmPassStats ps;
  cuda::gmm_resp_stats(be, detail::host_matrix(X), detail::row_weights(w),
                       static_cast<cuda::GmmShape>(static_cast<int>(type)), shift.rows(), src, d.centre_or_null(),
                       d.means(), ps);
  return d.stats(type, shift, ps);
}

/// Statistics of random responsibilities (init = random) on the device, from the same generator and
/// counters as the CPU's (see GmmInitPassData for the point they are taken around).
template <template <class> class View, template <class> class WView, class T>
GmmStats random_resp_stats(const CudaBackend& be, View<T> X, WView<T> w, CovarianceType type, Index K,
                           const CounterRng& rng, const RowMatrix<double>& shift) {
  const detail::GmmInitPassData<T> d(type, shift);
  cuda::GmmRespSource src;
  src.kind = cuda::GmmRespSource::Kind::random;
  src.seed = rng.seed();
  src.stream = rng.stream();
  cuda::GmmPassStats ps;
  cuda::gmm_resp_stats(be, detail::host_matrix(X), detail::row_weights(w),
                       static_cast<cuda::GmmShape>(static_cast<int>(type)), K, src, d.centre_or_null(), d.means(), ps);
  return d.stats(type, shift, ps);
}

/// Unweighted per-feature mean and variance of X (the data's scale for the degenerate-component
/// policy, and the point random responsibilities are taken around): one pass on the device, moments
/// around the first row (fetched: D values) as on the CPU.
template <template <class> class View, class T>
detail::FeatureMoments gmm_feature_moments(const CudaBackend& be, View<T> X) {
  const Eigen::RowVectorXd first = fetch_rows(be, X, {0}).row(0).template cast<double>();
  cuda::GmmRespSource src;  // ones
  cuda::GmmPassStats ps;
  cuda::gmm_resp_stats(be, detail::host_matrix(X), cuda::RowWeights<T>{}, cuda::GmmShape::diag, 1, src,
                       nullptr, first.data(), ps);
  return detail::feature_moments_of_pass(first, ps, X.rows);
}

/// The centre of random responsibilities: the data mean of the fit's feature moments.
template <template <class> class View, class T>
Eigen::RowVectorXd gmm_data_mean(const CudaBackend&, View<T>, const detail::FeatureMoments& data) {
  return data.mean.transpose();
}

/// For scoring, as the CPU's gmm_score_rows: log p(x) (log_p) and the most probable component
/// (labels) of every row, X.rows values each, either nullptr, reduced on the device (the log-sum-exp
/// and argmax of cuda/gmm_reduce.hpp's score_row); only those values come back.
template <template <class> class View, class T>
void gmm_score_rows(const CudaBackend& be, View<T> X, const GmmModel& m, double* log_p, std::int32_t* labels) {
  const detail::GmmPassModelData pm = detail::GmmPassModelData::of<T>(m);
  cuda::gmm_score_rows(be, detail::host_matrix(X), pm.view, log_p, labels);
}

/// For scoring, as the CPU's gmm_weighted_log_prob: calls out(begin, rows, s) for blocks of
/// kGmmBlock rows with s.lp(r, k) = log pi_k + log N_k(x_r) computed on the device (a short last
/// block padded with zero rows), from up to be.n_threads host threads. A row's results depend only on
/// its values and its index modulo kGmmBlock.
template <template <class> class View, class T, class Out>
void gmm_weighted_log_prob(const CudaBackend& be, View<T> X, const GmmModel& m, Out&& out) {
  const detail::GmmPassModelData pm = detail::GmmPassModelData::of<T>(m);
  const Index K = m.n_components;
  cuda::gmm_weighted_log_prob(be, detail::host_matrix(X), pm.view, [&](std::int64_t begin, std::int64_t rows, const double* lp) {
    detail::hand_score_blocks(begin, rows, lp, K, be.n_threads, out);
  });
}

}  // namespace mixtura
