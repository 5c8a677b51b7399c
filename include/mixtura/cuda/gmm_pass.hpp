#pragma once
/// The Gaussian-mixture data passes of the CUDA backend, compiled in mixtura::cuda (cuda/gmm_*.cu) for
/// float and double. Plain pointers, no Eigen: gmm/cuda_pass.hpp wraps them as the overloads the
/// generic fit loop and the scoring functions call. Every function returns after its results are in
/// host memory.

#include <cstdint>
#include <functional>
#include <vector>

#include "mixtura/backend/cuda.hpp"
#include "mixtura/cuda/gmm_reduce.hpp"
#include "mixtura/cuda/host_matrix.hpp"

namespace mixtura {
namespace cuda {

/// A mixture as the passes take it: host arrays in double, kept alive by the caller during the call.
struct GmmPassModel {
  GmmShape shape = GmmShape::full;
  std::int64_t K = 0, D = 0;
  const double* constant = nullptr;  ///< [K] log pi_k - D/2 log 2 pi + log det C_k
  const double* center = nullptr;    ///< full/tied: [D] c, a value of T: rows are centred on it, moments taken around it
  const double* factors = nullptr;   ///< full: K x D x D, tied: D x D; C_k row-major, y_k = (x - c) C_k
  const double* offset = nullptr;    ///< full/tied: K x D, (mu_k - c) C_k
  const double* means = nullptr;     ///< diag/spherical: K x D (moments are taken around them)
  const double* scale = nullptr;     ///< diag: K x D, spherical: K; the precision factors (1 / standard deviation)
};

/// The full/tied model as the kernels read it: c in T, the factors [C_1 ... C_K] as one D x (K D4)
/// matrix in T (D4 = padded4(D), columns past D zero; tied repeats its factor) and the offsets as
/// K x D4 doubles (zero past D). Sizes: D, D K D4, K D4.
template <class T>
void pack_full_model(const GmmPassModel& m, T* center, T* factors, double* offset) {
  const std::int64_t K = m.K, D = m.D, d4 = padded4(static_cast<int>(D));
  for (std::int64_t j = 0; j < D; ++j) center[j] = static_cast<T>(m.center[j]);
  for (std::int64_t i = 0; i < D * K * d4; ++i) factors[i] = T(0);
  for (std::int64_t i = 0; i < K * d4; ++i) offset[i] = 0.0;
  for (std::int64_t k = 0; k < K; ++k) {
    const double* f = m.factors + (m.shape == GmmShape::tied ? 0 : k) * D * D;
    for (std::int64_t a = 0; a < D; ++a)
      for (std::int64_t j = 0; j < D; ++j) factors[a * K * d4 + k * d4 + j] = static_cast<T>(f[a * D + j]);
    for (std::int64_t j = 0; j < D; ++j) offset[k * d4 + j] = m.offset[k * D + j];
  }
}

/// The E-step's statistics (stats.hpp) in host memory, around `center` (full/tied, every component)
/// or each component's mean (diag/spherical).
struct GmmPassStats {
  std::vector<double> nk;  ///< [K] sum_i w_i r_ik
  std::vector<double> s1;  ///< K x D
  std::vector<double> s2;  ///< full/tied: K symmetric D x D matrices; diag/spherical: K x D
  double log_likelihood = 0, entropy = 0, weight = 0;
  /// Candidates for the n_worst rows of lowest log p(x) among rows of positive weight (a superset,
  /// in no particular order): log p and row index.
  std::vector<double> low_log_p;
  std::vector<std::int64_t> low_row;
};

/// The E-step fused with the statistics of the M-step (gmm/cpu_pass.hpp's gmm_e_step). w: host weights
/// (uploaded beside X) or, with device X, device weights (read in place); data nullptr: unit weights.
template <class T>
void gmm_e_step(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const GmmPassModel& m, std::int64_t n_worst,
                GmmPassStats& out);

/// The statistics of given responsibilities (an initialisation pass: see GmmRespSource), with the
/// moments kernels of gmm_e_step in the same tile order: nk, s1, s2 as there, weight = sum_i w_i,
/// log_likelihood = entropy = 0, no low rows. Full/tied (gram shapes): around `center` ([D], values of
/// T), as the E-step; diag/spherical: around `means` (K x D). w: as for gmm_e_step. With
/// GmmRespSource::Kind::labels, src.labels is a host array of X.rows labels in [0, K), and the moments
/// come from the label kernels (N D^2 or N D work, no N x K responsibilities) with the bits of the
/// moments kernels on one-hot responsibilities.
template <class T>
void gmm_resp_stats(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, GmmShape shape, std::int64_t K,
                    const GmmRespSource& src, const double* center, const double* means, GmmPassStats& out);

/// For scoring without the N x K matrix: per row, log p(x) = log-sum-exp_k (log pi_k + log N(x | k))
/// into log_p and the most probable component (the first of equal ones) into labels, host arrays of
/// X.rows values, either nullptr (score_row in gmm_reduce.hpp, on the device). Only these cross PCIe:
/// 8 bytes a row for log_p, 4 for labels. Each row's values depend on that row alone.
template <class T>
void gmm_score_rows(const CudaBackend& be, HostMatrix<T> X, const GmmPassModel& m, double* log_p, std::int32_t* labels);

/// Receives rows [begin, begin + rows) with lp: rows x K row-major, lp(i, k) = log pi_k + log N(x | k),
/// in host memory valid during the call. begin is a multiple of kGmmTileRows.
using GmmLogProbSink = std::function<void(std::int64_t begin, std::int64_t rows, const double* lp)>;

/// Weighted log-densities of every row, handed to `sink` in row order, a group of rows at a time: the
/// N x K matrix crosses PCIe (K doubles a row), for the callers that return it (posteriors,
/// per-component densities). Each row's values depend on that row alone.
template <class T>
void gmm_weighted_log_prob(const CudaBackend& be, HostMatrix<T> X, const GmmPassModel& m, const GmmLogProbSink& sink);

}  // namespace cuda
}  // namespace mixtura
