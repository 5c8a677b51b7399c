#pragma once
/// Model selection: fit a range of component counts and covariance types, tabulate BIC and AIC.

#include <limits>
#include <vector>

#include "mixtura/gmm/gaussian_mixture.hpp"

namespace mixtura {

/// One candidate of a model selection.
struct GmmCandidate {
  int n_components = 0;
  CovarianceType covariance_type = CovarianceType::full;
  double bic = 0, aic = 0;
  double lower_bound = 0;  ///< per-sample log-likelihood of the kept restart
  int n_iter = 0;
  bool converged = false;
};

/// The table of candidates (count by count, covariance types within a count), and the model with the lowest BIC.
template <class T>
struct GmmSelection {
  std::vector<GmmCandidate> table;
  std::size_t best = 0;  ///< index into table (lowest BIC; ties to the first)
  GaussianMixture<T> model;
};

/// select_gaussian_mixture with every fit (the K-means behind the initialisation, EM) and every
/// criterion's scoring pass on backend `be` (CpuBackend, or CudaBackend with mixtura/cuda.hpp); X and
/// the weights in host memory, held on the backend for the whole selection (one upload to a GPU).
/// callback / kmeans_callback: set on every EM fit / the shared K-means fits (return false to stop:
/// Interrupted is thrown).
template <class Backend, class T>
GmmSelection<T> select_gaussian_mixture_on(const Backend& be, MatrixView<T> X, const std::vector<int>& n_components,
                                           const std::vector<CovarianceType>& covariance_types, GmmParams base = {},
                                           VectorView<T> sample_weight = {},
                                           const typename GaussianMixture<T>::Callback& callback = {},
                                           const typename KMeans<T>::Callback& kmeans_callback = {}) {
  MIXTURA_EXPECTS(!n_components.empty() && !covariance_types.empty(),
                  "select_gaussian_mixture: need at least one component count and one covariance type (got %zu, %zu)",
                  n_components.size(), covariance_types.size());
  const auto scope = data_scope(be);
  GmmSelection<T> out;
  double best_bic = std::numeric_limits<double>::infinity();
  const bool share_kmeans = base.init == GmmInit::kmeans && base.n_init == 1;
  // Rows with gaps: the shared K-means runs on the copy each fit initialises from (gaps filled with
  // the feature's observed mean, GaussianMixture::fit), so the fits stay those of independent ones.
  RowMatrix<T> filled;
  MatrixView<T> X_init = X;
  if constexpr (detail::takes_gaps<Backend, MatrixView<T>, VectorView<T>>()) {
    if (share_kmeans && detail::check_data_with_gaps("select_gaussian_mixture", X, base.n_threads)) {
      filled = detail::filled_copy(X, detail::observed_feature_moments("select_gaussian_mixture", X).mean);
      X_init = MatrixView<T>(filled);
    }
  }
  for (int k : n_components) {
    std::vector<std::int32_t> labels;
    if (share_kmeans) {
      GmmParams p = base;
      p.n_components = k;
      MIXTURA_EXPECTS(k >= 1, "select_gaussian_mixture: n_components must be >= 1, got %d", k);
      KMeans<T> km(detail::kmeans_init_params(p, 0));
      km.set_callback(kmeans_callback);
      km.fit_on(be, X_init, sample_weight);
      labels = km.labels();
    }
    for (CovarianceType t : covariance_types) {
      GmmParams p = base;
      p.n_components = k;
      p.covariance_type = t;
      GaussianMixture<T> gm(p);
      gm.set_callback(callback);
      gm.set_initial_labels(labels);
      gm.fit_on(be, X, sample_weight);
      GmmCandidate c;
      c.n_components = k;
      c.covariance_type = t;
      c.bic = gm.bic_on(be, X);
      c.aic = gm.aic_on(be, X);
      c.lower_bound = gm.lower_bound();
      c.n_iter = gm.n_iter();
      c.converged = gm.converged();
      out.table.push_back(c);
      if (c.bic < best_bic) {
        best_bic = c.bic;
        out.best = out.table.size() - 1;
        out.model = std::move(gm);
      }
    }
  }
  return out;
}

/// Fits GaussianMixture(base with n_components = k, covariance_type = t) for every k in
/// n_components and t in covariance_types, and keeps the one with the lowest BIC. With
/// init = kmeans and one restart, the K-means behind the initialisation runs once per count and its
/// labels start every covariance type (the results are those of independent fits, bit for bit).
template <class T>
GmmSelection<T> select_gaussian_mixture(MatrixView<T> X, const std::vector<int>& n_components,
                                        const std::vector<CovarianceType>& covariance_types, GmmParams base = {},
                                        VectorView<T> sample_weight = {}) {
  return select_gaussian_mixture_on(CpuBackend{base.n_threads}, X, n_components, covariance_types, base, sample_weight);
}

}  // namespace mixtura
