// mixtura._core's Gaussian mixtures: fit, the scoring functions and sampling, on host arrays and on
// arrays in CUDA device memory, registered per float type (bindings.hpp); and the conversions between
// the model and scikit-learn's arrays that the detector shares.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io/models.hpp"

namespace mixtura_py {

mixtura::CovarianceType parse_covariance(const std::string& t) {
  if (t == "full") return mixtura::CovarianceType::full;
  if (t == "tied") return mixtura::CovarianceType::tied;
  if (t == "diag") return mixtura::CovarianceType::diag;
  if (t == "spherical") return mixtura::CovarianceType::spherical;
  throw mixtura::InvalidArgument("GaussianMixture: covariance_type must be 'full', 'tied', 'diag' or 'spherical', got '" + t + "'");
}

namespace {
/// scikit-learn's shapes of precisions / precisions_cholesky / covariances for each type.
std::vector<py::ssize_t> param_shape(mixtura::CovarianceType t, py::ssize_t k, py::ssize_t d) {
  switch (t) {
    case mixtura::CovarianceType::full: return {k, d, d};
    case mixtura::CovarianceType::tied: return {d, d};
    case mixtura::CovarianceType::diag: return {k, d};
    case mixtura::CovarianceType::spherical: return {k};
  }
  return {};
}
}  // namespace

/// Precision factors (scikit-learn's precisions_cholesky_) from the model, in scikit-learn's shape.
DArray factors_of(const mixtura::GmmModel& m) {
  const py::ssize_t K = m.n_components, D = m.n_features;
  DArray out(param_shape(m.type, K, D));
  double* o = out.mutable_data();
  switch (m.type) {
    case mixtura::CovarianceType::full:
    case mixtura::CovarianceType::tied:
      for (std::size_t k = 0; k < m.factor.size(); ++k)
        for (py::ssize_t i = 0; i < D; ++i)
          for (py::ssize_t j = 0; j < D; ++j) *o++ = m.factor[k](i, j);
      break;
    case mixtura::CovarianceType::diag:
    case mixtura::CovarianceType::spherical:
      std::copy(m.diag_factor.data(), m.diag_factor.data() + m.diag_factor.size(), o);
      break;
  }
  return out;
}

/// Covariances (or precisions) in scikit-learn's shape.
DArray matrices_of(const mixtura::GmmModel& m, bool precision) {
  const py::ssize_t K = m.n_components, D = m.n_features;
  DArray out(param_shape(m.type, K, D));
  double* o = out.mutable_data();
  const py::ssize_t n = m.type == mixtura::CovarianceType::tied ? 1 : K;
  for (py::ssize_t k = 0; k < n; ++k) {
    const Eigen::MatrixXd a = precision ? m.precision(k) : m.covariance(k);
    switch (m.type) {
      case mixtura::CovarianceType::full:
      case mixtura::CovarianceType::tied:
        for (py::ssize_t i = 0; i < D; ++i)
          for (py::ssize_t j = 0; j < D; ++j) *o++ = a(i, j);
        break;
      case mixtura::CovarianceType::diag:
        for (py::ssize_t i = 0; i < D; ++i) *o++ = a(i, i);
        break;
      case mixtura::CovarianceType::spherical: *o++ = a(0, 0); break;
    }
  }
  return out;
}

/// The model from scikit-learn-shaped arrays (weights_, means_, precisions_cholesky_), checked by the
/// model-file loader's own code (shapes against covariance_type, n_components and n_features, then
/// the values): these arrays are user-settable attributes and what a model file held.
mixtura::GmmModel model_from(const std::string& type, const DArray& weights, const DArray& means,
                             const DArray& factors) {
  const auto values = [](const DArray& a) { return std::vector<double>(a.data(), a.data() + a.size()); };
  const auto shape = [](const DArray& a) {
    std::vector<std::uint64_t> s;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s.push_back(static_cast<std::uint64_t>(a.shape(d)));
    return s;
  };
  return mixtura::detail::gmm_model_from_shaped(parse_covariance(type), values(weights), shape(weights), values(means),
                                                shape(means), values(factors), shape(factors), "GaussianMixture");
}

/// The fitted attributes of a Gaussian-mixture fit (what GaussianMixture.fit stores).
template <class T>
py::dict gmm_result(const mixtura::GaussianMixture<T>& gm) {
  const mixtura::GmmModel& m = gm.model();
  py::dict out;
  out["weights"] = vector_array(m.weights);
  out["means"] = matrix_array(m.means);
  out["precisions_cholesky"] = factors_of(m);
  out["covariances"] = matrices_of(m, false);
  out["precisions"] = matrices_of(m, true);
  out["lower_bound"] = gm.lower_bound();
  out["n_iter"] = gm.n_iter();
  out["converged"] = gm.converged();
  out["best_restart"] = gm.best_restart();
  out["traces"] = traces_of(gm.runs(), [](const mixtura::GmmIteration& it) {
    return std::make_pair(it.lower_bound, it.elbo_after_m);
  });
  py::list events;
  for (const auto& e : gm.events())
    events.append(py::dict(py::arg("kind") = mixtura::to_string(e.kind), py::arg("restart") = e.restart,
                           py::arg("iteration") = e.iteration, py::arg("component") = e.component,
                           py::arg("row") = e.row, py::arg("value") = e.value));
  out["events"] = events;
  return out;
}

template py::dict gmm_result(const mixtura::GaussianMixture<float>&);
template py::dict gmm_result(const mixtura::GaussianMixture<double>&);

namespace {

mixtura::GmmInit parse_gmm_init(const std::string& i) {
  if (i == "kmeans") return mixtura::GmmInit::kmeans;
  if (i == "k-means++") return mixtura::GmmInit::kmeans_plusplus;
  if (i == "random") return mixtura::GmmInit::random;
  if (i == "random_from_data") return mixtura::GmmInit::random_from_data;
  throw mixtura::InvalidArgument("GaussianMixture: init_params must be 'kmeans', 'k-means++', 'random' or 'random_from_data', got '" + i + "'");
}


/// A Gaussian mixture with the parameters of a fit, its starting parameters (scikit-learn's shapes
/// for D features) and the iteration callback (verbose, Ctrl-C).
template <class T>
mixtura::GaussianMixture<T> make_gmm(py::ssize_t D, int n_components, const std::string& covariance_type, double tol,
                                     double reg_covar, int max_iter, int n_init, const std::string& init_params,
                                     std::uint64_t seed, int n_threads, int verbose,
                                     const std::optional<DArray>& weights_init, const std::optional<DArray>& means_init,
                                     const std::optional<DArray>& precisions_init) {
  mixtura::GmmParams p;
  p.n_components = n_components;
  p.covariance_type = parse_covariance(covariance_type);
  p.tol = tol;
  p.reg_covar = reg_covar;
  p.max_iter = max_iter;
  p.n_init = n_init;
  p.init = parse_gmm_init(init_params);
  p.seed = seed;
  p.n_threads = n_threads;
  mixtura::GaussianMixture<T> gm(p);
  mixtura::GmmInitialParams in;
  if (weights_init) in.weights = Eigen::Map<const Eigen::VectorXd>(weights_init->data(), weights_init->size());
  if (means_init) {
    if (means_init->ndim() != 2) throw mixtura::InvalidArgument("GaussianMixture::fit: means_init must be 2-dimensional");
    in.means = Eigen::Map<const mixtura::RowMatrix<double>>(means_init->data(), means_init->shape(0), means_init->shape(1));
  }
  if (precisions_init) {
    const DArray& a = *precisions_init;
    switch (p.covariance_type) {
      case mixtura::CovarianceType::full:
        if (a.ndim() != 3 || a.shape(1) != D || a.shape(2) != D)
          throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_components, n_features, n_features) for 'full'");
        for (py::ssize_t k = 0; k < a.shape(0); ++k)
          in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data() + k * D * D, D, D));
        break;
      case mixtura::CovarianceType::tied:
        if (a.ndim() != 2) throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_features, n_features) for 'tied'");
        in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data(), a.shape(0), a.shape(1)));
        break;
      case mixtura::CovarianceType::diag:
        if (a.ndim() != 2) throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_components, n_features) for 'diag'");
        in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data(), a.shape(0), a.shape(1)));
        break;
      case mixtura::CovarianceType::spherical:
        if (a.ndim() != 1) throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_components,) for 'spherical'");
        in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data(), a.shape(0), 1));
        break;
    }
  }
  gm.set_initial_params(in);
  gm.set_callback([verbose](int restart, int iteration, const mixtura::GmmIteration& it) {
    py::gil_scoped_acquire acquire;
    if (verbose)
      py::print(py::str("Restart {}, iteration {}: lower bound {:.8g}, ELBO after M-step {:.8g}, {:.3f} ms")
                    .format(restart, iteration, it.lower_bound, it.elbo_after_m, it.seconds * 1e3));
    return PyErr_CheckSignals() == 0;
  });
  return gm;
}

template <class T>
py::dict gmm_fit(const Array<T>& X, const std::optional<Array<T>>& sample_weight, int n_components,
                 const std::string& covariance_type, double tol, double reg_covar, int max_iter, int n_init,
                 const std::string& init_params, std::uint64_t seed, int n_threads, int verbose,
                 const std::optional<DArray>& weights_init, const std::optional<DArray>& means_init,
                 const std::optional<DArray>& precisions_init, const std::string& device) {
  auto gm = make_gmm<T>(X.ndim() == 2 ? X.shape(1) : 0, n_components, covariance_type, tol, reg_covar, max_iter, n_init,
                        init_params, seed, n_threads, verbose, weights_init, means_init, precisions_init);
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  run_interruptibly([&] { on_device(device, n_threads, [&](const auto& be) { gm.fit_on(be, Xv, wv); }); });

  return gmm_result(gm);
}

/// A Gaussian mixture holding the model of scikit-learn-shaped arrays, for scoring.
template <class T>
mixtura::GaussianMixture<T> gmm_with_model(const std::string& type, const DArray& weights, const DArray& means,
                                           const DArray& factors, int n_threads) {
  mixtura::GmmParams p;
  p.n_threads = n_threads;
  mixtura::GaussianMixture<T> gm(p);
  gm.set_model(model_from(type, weights, means, factors));
  return gm;
}

/// `what` (score_samples, predict_proba, component_log_density, predict: the GaussianMixture methods) of
/// X, a host or device view, on backend `be`, with the GIL released.
template <class T, class Backend, class View>
py::array gmm_eval_on(const mixtura::GaussianMixture<T>& gm, const Backend& be, View Xv, const std::string& what) {
  if (what == "score_samples") {
    Eigen::VectorXd s;
    {
      py::gil_scoped_release release;
      s = gm.score_samples_on(be, Xv);
    }
    return vector_array(s);
  }
  if (what == "predict") {  // the argmax of the weighted log-densities (one label a row crosses from a device)
    std::vector<std::int32_t> labels;
    {
      py::gil_scoped_release release;
      labels = gm.predict_on(be, Xv);
    }
    return labels_array<std::int64_t>(labels);
  }
  if (what != "predict_proba" && what != "component_log_density")
    throw mixtura::InvalidArgument("gmm_eval: what must be 'score_samples', 'predict_proba', "
                                   "'component_log_density' or 'predict', got '" + what + "'");
  mixtura::RowMatrix<double> r;
  {
    py::gil_scoped_release release;
    r = what == "predict_proba" ? gm.predict_proba_on(be, Xv) : gm.component_log_density_on(be, Xv);
  }
  return matrix_array(r);
}

template <class T>
py::array gmm_eval(const Array<T>& X, const std::string& type, const DArray& weights, const DArray& means,
                   const DArray& factors, const std::string& what, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  return gmm_eval_on(gm, mixtura::CpuBackend{n_threads}, view(X, "X"), what);
}

py::tuple gmm_sample(const std::string& type, const DArray& weights, const DArray& means, const DArray& factors,
                     long long n_samples, std::uint64_t seed) {
  mixtura::GaussianMixture<double> gm;
  gm.set_model(model_from(type, weights, means, factors));
  auto s = gm.sample(n_samples, seed);
  DArray x({s.first.rows(), s.first.cols()});
  std::copy(s.first.data(), s.first.data() + s.first.size(), x.mutable_data());
  py::array_t<std::int32_t> y(static_cast<py::ssize_t>(s.second.size()));
  std::copy(s.second.begin(), s.second.end(), y.mutable_data());
  return py::make_tuple(x, y);
}

#if MIXTURA_HAS_CUDA
template <class T>
py::dict gmm_fit_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                        const std::optional<Array<T>>& sample_weight, int n_components,
                        const std::string& covariance_type, double tol, double reg_covar, int max_iter, int n_init,
                        const std::string& init_params, std::uint64_t seed, int n_threads, int verbose,
                        const std::optional<DArray>& weights_init, const std::optional<DArray>& means_init,
                        const std::optional<DArray>& precisions_init, std::uintptr_t sample_weight_ptr) {
  auto gm = make_gmm<T>(cols, n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, seed,
                        n_threads, verbose, weights_init, means_init, precisions_init);
  const auto Xv = device_view<T>(ptr, rows, cols, stride);
  const auto wv = weights_view(sample_weight);
  run_interruptibly([&] {
    const auto be = mixtura::make_cuda_backend(0, n_threads);
    if (sample_weight_ptr)  // weights in device memory too: read in place
      gm.fit_on(be, Xv, device_weights<T>(sample_weight_ptr, rows));
    else
      gm.fit_on(be, Xv, wv);
  });
  return gmm_result(gm);
}

template <class T>
py::array gmm_eval_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                          const std::string& type, const DArray& weights, const DArray& means, const DArray& factors,
                          const std::string& what, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  return gmm_eval_on(gm, mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride), what);
}

/// The weighted mean log-density of device X with sample weights in device memory (n values, checked
/// on the device).
template <class T>
double gmm_score_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                        const std::string& type, const DArray& weights, const DArray& means, const DArray& factors,
                        std::uintptr_t sample_weight_ptr, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  py::gil_scoped_release release;
  return gm.score_on(mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride),
                     device_weights<T>(sample_weight_ptr, rows));
}

#endif

template <class T>
void bind(py::module_& m) {
  m.def(typed_name<T>("gmm_fit").c_str(), &gmm_fit<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
        py::arg("n_components"), py::arg("covariance_type"), py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"),
        py::arg("n_init"), py::arg("init_params"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"),
        py::arg("weights_init"), py::arg("means_init"), py::arg("precisions_init"), py::arg("device") = "cpu");
  m.def(typed_name<T>("gmm_eval").c_str(), &gmm_eval<T>, py::arg("X").noconvert(), py::arg("covariance_type"),
        py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"), py::arg("what"), py::arg("n_threads"));
#if MIXTURA_HAS_CUDA
  m.def(typed_name<T>("gmm_fit_device").c_str(), &gmm_fit_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("sample_weight").noconvert(), py::arg("n_components"),
        py::arg("covariance_type"), py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"), py::arg("n_init"),
        py::arg("init_params"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"), py::arg("weights_init"),
        py::arg("means_init"), py::arg("precisions_init"), py::arg("sample_weight_ptr") = 0);
  m.def(typed_name<T>("gmm_eval_device").c_str(), &gmm_eval_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("what"), py::arg("n_threads"));
  m.def(typed_name<T>("gmm_score_device").c_str(), &gmm_score_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("sample_weight_ptr"), py::arg("n_threads"));
#endif
}

}  // namespace

void bind_gmm(py::module_& m) {
  bind<float>(m);
  bind<double>(m);
  m.def("gmm_n_parameters",
        [](const std::string& covariance_type, long long n_components, long long n_features) {
          mixtura::GmmModel shape;  // the count needs the type and the sizes only
          shape.type = parse_covariance(covariance_type);
          shape.n_components = n_components;
          shape.n_features = n_features;
          return shape.n_parameters();
        },
        py::arg("covariance_type"), py::arg("n_components"), py::arg("n_features"),
        "Free parameters of a mixture (for BIC and AIC), as scikit-learn counts them.");
  m.def("gmm_sample", &gmm_sample, py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("n_samples"), py::arg("seed"));
}

}  // namespace mixtura_py
