// mixtura._core: the C++ library behind the Python estimators. Arrays arrive C-contiguous in
// float32 or float64 (the Python layer converts anything else once) and are read in place; the GIL
// is released while C++ computes; Ctrl-C stops a fit between iterations.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mixtura/anomaly.hpp"
#include "mixtura/core/build_info.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io/models.hpp"
#include "mixtura/kmeans.hpp"
#if MIXTURA_HAS_CUDA
#include "mixtura/cuda.hpp"
#endif

namespace py = pybind11;

void bind_model_io(py::module_& m);  // model_io.cpp

namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style>;

template <class T>
mixtura::MatrixView<T> view(const Array<T>& a, const char* name) {
  if (a.ndim() != 2) throw mixtura::InvalidArgument(std::string(name) + " must be 2-dimensional");
  return {a.data(), static_cast<mixtura::Index>(a.shape(0)), static_cast<mixtura::Index>(a.shape(1))};
}

template <class T>
mixtura::VectorView<T> weights_view(const std::optional<Array<T>>& w) {
  if (!w) return {};
  return {w->data(), static_cast<mixtura::Index>(w->size())};
}

mixtura::KMeansInit parse_init(const std::string& init) {
  if (init == "k-means++") return mixtura::KMeansInit::kmeans_plusplus;
  if (init == "random") return mixtura::KMeansInit::random;
  throw mixtura::InvalidArgument("KMeans: init must be 'k-means++', 'random' or an array of centres, got '" + init + "'");
}

/// Runs f with the GIL released; a Ctrl-C seen by the iteration callback becomes KeyboardInterrupt.
template <class F>
void run_interruptibly(F&& f) {
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    try {
      f();
    } catch (const mixtura::Interrupted&) {
      interrupted = true;
    }
  }
  if (interrupted) {
    if (PyErr_Occurred()) throw py::error_already_set();
    throw py::value_error("fit interrupted");
  }
}

/// Calls f(backend) with the backend `device` names: "cpu", or "cuda" (device 0) in a build with the
/// CUDA backend. The Python layer resolves "auto" and checks for a device first; this is the last word.
template <class F>
void on_device(const std::string& device, int n_threads, F&& f) {
  if (device == "cpu") return f(mixtura::CpuBackend{n_threads});
#if MIXTURA_HAS_CUDA
  if (device == "cuda") return f(mixtura::make_cuda_backend(0, n_threads));
  throw mixtura::InvalidArgument("device must be 'cpu' or 'cuda', got '" + device + "'");
#else
  if (device == "cuda")
    throw mixtura::InvalidArgument("device='cuda': this build of mixtura has no CUDA backend (reinstall with "
                                   "pip install . -C cmake.define.MIXTURA_WITH_CUDA=ON on a machine with nvcc)");
  throw mixtura::InvalidArgument("device must be 'cpu', got '" + device + "'");
#endif
}

/// One (n_iter, 2) float64 array per restart: the two values `columns` picks from each iteration.
template <class Run, class Columns>
py::list traces_of(const std::vector<Run>& runs, Columns&& columns) {
  py::list traces;
  for (const auto& run : runs) {
    py::array_t<double> t({static_cast<py::ssize_t>(run.trace.size()), py::ssize_t{2}});
    auto a = t.mutable_unchecked<2>();
    for (std::size_t i = 0; i < run.trace.size(); ++i) {
      const auto v = columns(run.trace[i]);
      a(i, 0) = v.first;
      a(i, 1) = v.second;
    }
    traces.append(t);
  }
  return traces;
}

/// The fitted attributes of a K-means fit (what KMeans.fit stores).
template <class T>
py::dict kmeans_result(const mixtura::KMeans<T>& km) {
  py::dict out;
  const auto& c = km.cluster_centers();
  Array<T> centers({c.rows(), c.cols()});
  std::copy(c.data(), c.data() + c.size(), centers.mutable_data());
  out["cluster_centers"] = centers;
  py::array_t<std::int32_t> labels(static_cast<py::ssize_t>(km.labels().size()));
  std::copy(km.labels().begin(), km.labels().end(), labels.mutable_data());
  out["labels"] = labels;
  out["inertia"] = km.inertia();
  out["n_iter"] = km.n_iter();
  out["converged"] = km.converged();
  out["best_restart"] = km.best_restart();
  out["traces"] = traces_of(km.runs(), [](const mixtura::KMeansIteration& it) {
    return std::make_pair(it.distortion_assign, it.distortion_update);
  });
  py::list events;
  for (const auto& e : km.events())
    events.append(py::dict(py::arg("kind") = mixtura::to_string(e.kind), py::arg("restart") = e.restart,
                           py::arg("iteration") = e.iteration, py::arg("cluster") = e.cluster, py::arg("row") = e.row));
  out["events"] = events;
  return out;
}

/// A K-means estimator with the parameters of a fit and the iteration callback (verbose, Ctrl-C).
template <class T>
mixtura::KMeans<T> make_kmeans(bool given, int n_clusters, const std::string& init, int n_init, int max_iter,
                               double tol, std::uint64_t seed, int n_threads, int verbose) {
  mixtura::KMeansParams p;
  p.n_clusters = n_clusters;
  p.init = given ? mixtura::KMeansInit::given : parse_init(init);
  p.n_init = n_init;
  p.max_iter = max_iter;
  p.tol = tol;
  p.seed = seed;
  p.n_threads = n_threads;
  mixtura::KMeans<T> km(p);
  km.set_callback([verbose](int restart, int iteration, const mixtura::KMeansIteration& it) {
    py::gil_scoped_acquire acquire;
    if (verbose)
      py::print(py::str("Restart {}, iteration {}: J assign {:.6g}, J update {:.6g}, centre shift {:.3g}, {:.3f} ms")
                    .format(restart, iteration, it.distortion_assign, it.distortion_update, it.center_shift,
                            it.seconds * 1e3));
    return PyErr_CheckSignals() == 0;
  });
  return km;
}

template <class T>
py::dict kmeans_fit(const Array<T>& X, const std::optional<Array<T>>& sample_weight,
                    const std::optional<Array<T>>& init_centers, int n_clusters, const std::string& init, int n_init,
                    int max_iter, double tol, std::uint64_t seed, int n_threads, int verbose,
                    const std::string& device) {
  auto km = make_kmeans<T>(init_centers.has_value(), n_clusters, init, n_init, max_iter, tol, seed, n_threads, verbose);
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  const auto Cv = init_centers ? view(*init_centers, "init") : mixtura::MatrixView<T>{};
  run_interruptibly([&] { on_device(device, n_threads, [&](const auto& be) { km.fit_on(be, Xv, wv, Cv); }); });

  return kmeans_result(km);
}

#if MIXTURA_HAS_CUDA
// ---- K-means on data already in CUDA device memory (python/mixtura/_cuda_array.py parses it) ------

/// rows x cols values of T at device address `ptr`, rows `stride` elements apart.
template <class T>
mixtura::DeviceMatrixView<T> device_view(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols,
                                         std::int64_t stride) {
  return {reinterpret_cast<const T*>(ptr), rows, cols, stride};
}

/// `rows` sample weights of T at device address `ptr` (0: none; then the host array, if any, is used).
template <class T>
mixtura::DeviceVectorView<T> device_weights(std::uintptr_t ptr, std::int64_t rows) {
  return {reinterpret_cast<const T*>(ptr), ptr ? rows : 0};
}

template <class T>
py::dict kmeans_fit_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                           const std::optional<Array<T>>& sample_weight, const std::optional<Array<T>>& init_centers,
                           int n_clusters, const std::string& init, int n_init, int max_iter, double tol,
                           std::uint64_t seed, int n_threads, int verbose, std::uintptr_t sample_weight_ptr) {
  auto km = make_kmeans<T>(init_centers.has_value(), n_clusters, init, n_init, max_iter, tol, seed, n_threads, verbose);
  const auto Xv = device_view<T>(ptr, rows, cols, stride);
  const auto wv = weights_view(sample_weight);
  const auto Cv = init_centers ? view(*init_centers, "init") : mixtura::MatrixView<T>{};
  run_interruptibly([&] {
    const auto be = mixtura::make_cuda_backend(0, n_threads);
    if (sample_weight_ptr)  // weights in device memory too: read in place
      km.fit_on(be, Xv, device_weights<T>(sample_weight_ptr, rows), Cv);
    else
      km.fit_on(be, Xv, wv, Cv);
  });
  return kmeans_result(km);
}

/// A K-means model holding `centers`, for the passes on device data (they check X against it).
template <class T>
mixtura::KMeans<T> kmeans_with_centers(const Array<T>& centers) {
  mixtura::KMeans<T> km;
  km.set_centers(view(centers, "centers").map());
  return km;
}

template <class T>
py::array_t<std::int32_t> kmeans_predict_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols,
                                                std::int64_t stride, const Array<T>& centers, int n_threads) {
  const auto km = kmeans_with_centers(centers);
  std::vector<std::int32_t> labels;
  {
    py::gil_scoped_release release;
    labels = km.predict_on(mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride));
  }
  py::array_t<std::int32_t> out(static_cast<py::ssize_t>(labels.size()));
  std::copy(labels.begin(), labels.end(), out.mutable_data());
  return out;
}

template <class T>
Array<T> kmeans_transform_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                 const Array<T>& centers, int n_threads) {
  const auto km = kmeans_with_centers(centers);
  mixtura::RowMatrix<T> d;
  {
    py::gil_scoped_release release;
    d = km.transform_on(mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride));
  }
  Array<T> out({d.rows(), d.cols()});
  std::copy(d.data(), d.data() + d.size(), out.mutable_data());
  return out;
}

template <class T>
double kmeans_distortion_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                const std::optional<Array<T>>& sample_weight, const Array<T>& centers,
                                int n_threads, std::uintptr_t sample_weight_ptr) {
  const auto km = kmeans_with_centers(centers);
  const auto wv = weights_view(sample_weight);
  py::gil_scoped_release release;
  const auto be = mixtura::make_cuda_backend(0, n_threads);
  const auto Xv = device_view<T>(ptr, rows, cols, stride);
  if (sample_weight_ptr) return -km.score_on(be, Xv, device_weights<T>(sample_weight_ptr, rows));
  return -km.score_on(be, Xv, wv);
}

template <class T>
void bind_kmeans_device(py::module_& m) {
  const std::string suffix = std::is_same<T, float>::value ? "_float32" : "_float64";
  m.def(("kmeans_fit_device" + suffix).c_str(), &kmeans_fit_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(),
        py::arg("n_clusters"), py::arg("init"), py::arg("n_init"), py::arg("max_iter"), py::arg("tol"),
        py::arg("seed"), py::arg("n_threads"), py::arg("verbose"), py::arg("sample_weight_ptr") = 0);
  m.def(("kmeans_predict_device" + suffix).c_str(), &kmeans_predict_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(("kmeans_transform_device" + suffix).c_str(), &kmeans_transform_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(("kmeans_distortion_device" + suffix).c_str(), &kmeans_distortion_device<T>, py::arg("ptr"),
        py::arg("rows"), py::arg("cols"), py::arg("stride"), py::arg("sample_weight").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"), py::arg("sample_weight_ptr") = 0);
}
#endif

template <class T>
py::array_t<std::int32_t> kmeans_predict(const Array<T>& X, const Array<T>& centers, int n_threads) {
  const auto Xv = view(X, "X");
  const mixtura::RowMatrix<T> c = view(centers, "centers").map();
  py::array_t<std::int32_t> labels(static_cast<py::ssize_t>(Xv.rows));
  std::int32_t* out = labels.mutable_data();
  {
    py::gil_scoped_release release;
    mixtura::kmeans_predict(mixtura::CpuBackend{n_threads}, Xv, mixtura::VectorView<T>{}, c, out);
  }
  return labels;
}

template <class T>
Array<T> kmeans_transform(const Array<T>& X, const Array<T>& centers, int n_threads) {
  const auto Xv = view(X, "X");
  const mixtura::RowMatrix<T> c = view(centers, "centers").map();
  mixtura::RowMatrix<T> d;
  {
    py::gil_scoped_release release;
    d = mixtura::kmeans_transform(mixtura::CpuBackend{n_threads}, Xv, c);
  }
  Array<T> out({d.rows(), d.cols()});
  std::copy(d.data(), d.data() + d.size(), out.mutable_data());
  return out;
}

template <class T>
double kmeans_distortion(const Array<T>& X, const std::optional<Array<T>>& sample_weight, const Array<T>& centers,
                         int n_threads) {
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  const mixtura::RowMatrix<T> c = view(centers, "centers").map();
  py::gil_scoped_release release;
  return mixtura::kmeans_predict(mixtura::CpuBackend{n_threads}, Xv, wv, c, nullptr);
}

template <class T>
void bind_kmeans(py::module_& m) {
  m.def("kmeans_fit", &kmeans_fit<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
        py::arg("init_centers").noconvert(), py::arg("n_clusters"), py::arg("init"), py::arg("n_init"),
        py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"),
        py::arg("device") = "cpu");
  m.def("kmeans_predict", &kmeans_predict<T>, py::arg("X").noconvert(), py::arg("centers").noconvert(),
        py::arg("n_threads"));
  m.def("kmeans_transform", &kmeans_transform<T>, py::arg("X").noconvert(), py::arg("centers").noconvert(),
        py::arg("n_threads"));
  m.def("kmeans_distortion", &kmeans_distortion<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"));
}


// ---- Gaussian mixtures ---------------------------------------------------------------------

mixtura::CovarianceType parse_covariance(const std::string& t) {
  if (t == "full") return mixtura::CovarianceType::full;
  if (t == "tied") return mixtura::CovarianceType::tied;
  if (t == "diag") return mixtura::CovarianceType::diag;
  if (t == "spherical") return mixtura::CovarianceType::spherical;
  throw mixtura::InvalidArgument("GaussianMixture: covariance_type must be 'full', 'tied', 'diag' or 'spherical', got '" + t + "'");
}

mixtura::GmmInit parse_gmm_init(const std::string& i) {
  if (i == "kmeans") return mixtura::GmmInit::kmeans;
  if (i == "k-means++") return mixtura::GmmInit::kmeans_plusplus;
  if (i == "random") return mixtura::GmmInit::random;
  if (i == "random_from_data") return mixtura::GmmInit::random_from_data;
  throw mixtura::InvalidArgument("GaussianMixture: init_params must be 'kmeans', 'k-means++', 'random' or 'random_from_data', got '" + i + "'");
}

using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

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
  DArray weights(m.n_components);
  std::copy(m.weights.data(), m.weights.data() + m.n_components, weights.mutable_data());
  DArray means({m.n_components, m.n_features});
  std::copy(m.means.data(), m.means.data() + m.means.size(), means.mutable_data());
  out["weights"] = weights;
  out["means"] = means;
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

/// what: 0 = log p(x), 1 = posterior probabilities, 2 = per-component log-densities, 3 = labels; of X (a host or
/// device view) on backend `be`, with the GIL released.
template <class T, class Backend, class View>
py::array gmm_eval_on(const mixtura::GaussianMixture<T>& gm, const Backend& be, View Xv, int what) {
  if (what == 0) {
    Eigen::VectorXd s;
    {
      py::gil_scoped_release release;
      s = gm.score_samples_on(be, Xv);
    }
    DArray out(s.size());
    std::copy(s.data(), s.data() + s.size(), out.mutable_data());
    return out;
  }
  if (what == 3) {  // labels: the argmax of the weighted log-densities (one label a row crosses from a device)
    std::vector<std::int32_t> labels;
    {
      py::gil_scoped_release release;
      labels = gm.predict_on(be, Xv);
    }
    py::array_t<std::int64_t> out(static_cast<py::ssize_t>(labels.size()));
    std::copy(labels.begin(), labels.end(), out.mutable_data());
    return out;
  }
  mixtura::RowMatrix<double> r;
  {
    py::gil_scoped_release release;
    r = what == 1 ? gm.predict_proba_on(be, Xv) : gm.component_log_density_on(be, Xv);
  }
  DArray out({r.rows(), r.cols()});
  std::copy(r.data(), r.data() + r.size(), out.mutable_data());
  return out;
}

template <class T>
py::array gmm_eval(const Array<T>& X, const std::string& type, const DArray& weights, const DArray& means,
                   const DArray& factors, int what, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  return gmm_eval_on(gm, mixtura::CpuBackend{n_threads}, view(X, "X"), what);
}

#if MIXTURA_HAS_CUDA
// ---- Gaussian mixtures on data already in CUDA device memory (python/mixtura/_cuda_array.py parses it)

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
                          int what, int n_threads) {
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

template <class T>
void bind_gmm_device(py::module_& m) {
  const std::string suffix = std::is_same<T, float>::value ? "_float32" : "_float64";
  m.def(("gmm_fit_device" + suffix).c_str(), &gmm_fit_device<T>, py::arg("ptr"), py::arg("rows"), py::arg("cols"),
        py::arg("stride"), py::arg("sample_weight").noconvert(), py::arg("n_components"), py::arg("covariance_type"),
        py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"), py::arg("n_init"), py::arg("init_params"),
        py::arg("seed"), py::arg("n_threads"), py::arg("verbose"), py::arg("weights_init"), py::arg("means_init"),
        py::arg("precisions_init"), py::arg("sample_weight_ptr") = 0);
  m.def(("gmm_eval_device" + suffix).c_str(), &gmm_eval_device<T>, py::arg("ptr"), py::arg("rows"), py::arg("cols"),
        py::arg("stride"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("what"), py::arg("n_threads"));
  m.def(("gmm_score_device" + suffix).c_str(), &gmm_score_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("sample_weight_ptr"), py::arg("n_threads"));
}
#endif

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

template <class T>
void bind_gmm(py::module_& m) {
  m.def("gmm_fit", &gmm_fit<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(), py::arg("n_components"),
        py::arg("covariance_type"), py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"), py::arg("n_init"),
        py::arg("init_params"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"), py::arg("weights_init"),
        py::arg("means_init"), py::arg("precisions_init"), py::arg("device") = "cpu");
  m.def("gmm_eval", &gmm_eval<T>, py::arg("X").noconvert(), py::arg("covariance_type"), py::arg("weights"),
        py::arg("means"), py::arg("precisions_cholesky"), py::arg("what"), py::arg("n_threads"));
}

// ---- Density-based anomaly detection ------------------------------------------------------

mixtura::DetectorParams detector_params(const std::string& method, int n_components, int max_components,
                                        const std::string& covariance_type, double reg_covar,
                                        const std::string& scaling, double contamination, const std::string& threshold,
                                        double false_alarm_rate, double calibration_fraction, int n_init, int max_iter,
                                        double tol, std::uint64_t seed, int n_threads) {
  const char* where = "DensityAnomalyDetector";
  mixtura::DetectorParams p;
  if (method == "gmm") p.method = mixtura::AnomalyMethod::gmm;
  else if (method == "kmeans") p.method = mixtura::AnomalyMethod::kmeans;
  else throw mixtura::InvalidArgument(std::string(where) + ": method must be 'gmm' or 'kmeans', got '" + method + "'");
  if (scaling == "standard") p.scaling = mixtura::FeatureScaling::standard;
  else if (scaling == "robust") p.scaling = mixtura::FeatureScaling::robust;
  else if (scaling == "none") p.scaling = mixtura::FeatureScaling::none;
  else throw mixtura::InvalidArgument(std::string(where) + ": scaling must be 'standard', 'robust' or None, got '" + scaling + "'");
  if (threshold == "calibrate") p.threshold = mixtura::ThresholdMethod::calibrate;
  else if (threshold == "model-tail") p.threshold = mixtura::ThresholdMethod::model_tail;
  else throw mixtura::InvalidArgument(std::string(where) + ": threshold must be 'calibrate' or 'model-tail', got '" + threshold + "'");
  p.n_components = n_components;
  p.max_components = max_components;
  p.covariance_type = parse_covariance(covariance_type);
  p.reg_covar = reg_covar;
  p.contamination = contamination;
  p.false_alarm_rate = false_alarm_rate;
  p.calibration_fraction = calibration_fraction;
  p.n_init = n_init;
  p.max_iter = max_iter;
  p.tol = tol;
  p.seed = seed;
  p.n_threads = n_threads;
  return p;
}

DArray vector_array(const Eigen::VectorXd& v) {
  DArray out(v.size());
  std::copy(v.data(), v.data() + v.size(), out.mutable_data());
  return out;
}

template <class T>
py::dict detector_fit(const Array<T>& X, const std::string& method, int n_components, int max_components,
                      const std::string& covariance_type, double reg_covar, const std::string& scaling,
                      double contamination, const std::string& threshold, double false_alarm_rate,
                      double calibration_fraction, int n_init, int max_iter, double tol, std::uint64_t seed,
                      int n_threads, const std::string& device) {
  mixtura::DensityAnomalyDetector<T> det(detector_params(method, n_components, max_components, covariance_type,
                                                         reg_covar, scaling, contamination, threshold, false_alarm_rate,
                                                         calibration_fraction, n_init, max_iter, tol, seed, n_threads));
  const auto Xv = view(X, "X");
  {
    py::gil_scoped_release release;
    on_device(device, n_threads, [&](const auto& be) { det.fit_on(be, Xv); });
  }
  py::dict out;
  out["center"] = vector_array(det.scaling().center);
  out["scale"] = vector_array(det.scaling().scale);
  out["offset"] = det.offset();
  out["n_components"] = det.n_components();
  py::list selection;
  for (const auto& c : det.selection()) selection.append(py::make_tuple(c.n_components, c.bic));
  out["selection"] = selection;
  // The density in scaled units (kmeans: spherical components at the centres).
  const mixtura::GmmModel& m = det.model();
  out["weights"] = vector_array(m.weights);
  DArray means({m.n_components, m.n_features});
  std::copy(m.means.data(), m.means.data() + m.means.size(), means.mutable_data());
  out["means"] = means;
  out["precisions_cholesky"] = factors_of(m);
  out["covariance_type"] = mixtura::to_string(m.type);
  out["model"] = method == "gmm" ? gmm_result(det.mixture()) : kmeans_result(det.kmeans());
  return out;
}

/// what: 0 = score_samples (on `device`); 1 = explain (contributions, component; on the CPU).
template <class T>
py::object detector_eval(const Array<T>& X, const std::string& method, const DArray& center, const DArray& scale,
                         const std::string& covariance_type, const DArray& weights, const DArray& means,
                         const DArray& factors, double offset, int what, int n_threads, const std::string& device) {
  mixtura::DetectorParams p = detector_params(method, 1, 1, covariance_type, 0, "standard", 0, "calibrate", 0.5, 0.5,
                                              1, 1, 0, 0, n_threads);
  mixtura::DensityAnomalyDetector<T> det(p);
  mixtura::ScalingFit sc{Eigen::Map<const Eigen::VectorXd>(center.data(), center.size()),
                         Eigen::Map<const Eigen::VectorXd>(scale.data(), scale.size())};
  det.set_fitted(std::move(sc), model_from(covariance_type, weights, means, factors), offset);
  const auto Xv = view(X, "X");
  if (what == 0) {
    Eigen::VectorXd s;
    {
      py::gil_scoped_release release;
      on_device(device, n_threads, [&](const auto& be) { s = det.score_samples_on(be, Xv); });
    }
    return vector_array(s);
  }
  mixtura::AnomalyExplanation e;
  {
    py::gil_scoped_release release;
    e = det.explain(Xv);
  }
  DArray contributions({e.contributions.rows(), e.contributions.cols()});
  std::copy(e.contributions.data(), e.contributions.data() + e.contributions.size(), contributions.mutable_data());
  py::array_t<std::int32_t> component(static_cast<py::ssize_t>(e.component.size()));
  std::copy(e.component.begin(), e.component.end(), component.mutable_data());
  return py::make_tuple(contributions, component);
}

template <class T>
void bind_detector(py::module_& m) {
  m.def("detector_fit", &detector_fit<T>, py::arg("X").noconvert(), py::arg("method"), py::arg("n_components"),
        py::arg("max_components"), py::arg("covariance_type"), py::arg("reg_covar"), py::arg("scaling"),
        py::arg("contamination"), py::arg("threshold"), py::arg("false_alarm_rate"), py::arg("calibration_fraction"),
        py::arg("n_init"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_threads"),
        py::arg("device"));
  m.def("detector_eval", &detector_eval<T>, py::arg("X").noconvert(), py::arg("method"), py::arg("center"),
        py::arg("scale"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("offset"), py::arg("what"), py::arg("n_threads"), py::arg("device"));
}

}  // namespace

#ifndef MIXTURA_PYTHON_MODULE
#define MIXTURA_PYTHON_MODULE _core_baseline
#endif

PYBIND11_MODULE(MIXTURA_PYTHON_MODULE, m) {
  m.doc() = "mixtura's C++ core (use the estimators in the mixtura package)";
  m.attr("__version__") = mixtura::version();
  m.def("build_info", [] {
    const mixtura::BuildInfo b = mixtura::build_info();
    py::dict d;
    d["version"] = b.version;
    d["isa"] = b.isa;
    d["cpu_levels"] = b.cpu_levels;
    d["compiler"] = b.compiler;
    d["openmp"] = b.openmp;
    d["max_threads"] = b.max_threads;
    d["cuda"] = b.cuda;
    return d;
  }, "This copy of the core: the level it was compiled for, the CPU's levels, compiler, OpenMP, CUDA.");
  // Rows are scored in blocks of this many: a row's log-density depends only on its values and on
  // its index modulo SCORE_BLOCK (mixtura.StreamScorer aligns chunks on it).
  m.attr("SCORE_BLOCK") = static_cast<int>(mixtura::detail::kGmmBlock);
#if MIXTURA_HAS_CUDA
  m.attr("HAS_CUDA") = true;
  m.def("cuda_device_count", [] { return mixtura::cuda::device_count(); },
        "Number of usable CUDA devices (0 without a device or driver).");
  m.def("cuda_stream_synchronize", [](std::uintptr_t stream) { mixtura::cuda::synchronize_stream(stream); },
        py::arg("stream"), "Waits for a CUDA stream (a handle, or 1 / 2 for the legacy / per-thread default stream).");
  bind_kmeans_device<float>(m);
  bind_kmeans_device<double>(m);
  bind_gmm_device<float>(m);
  bind_gmm_device<double>(m);
#else
  m.attr("HAS_CUDA") = false;
  m.def("cuda_device_count", [] { return 0; }, "Number of usable CUDA devices: 0, this build has no CUDA backend.");
#endif
  py::register_exception<mixtura::NotFittedError>(m, "CoreNotFittedError", PyExc_RuntimeError);
  bind_kmeans<float>(m);
  bind_kmeans<double>(m);
  bind_gmm<float>(m);
  bind_gmm<double>(m);
  bind_model_io(m);
  bind_detector<float>(m);
  bind_detector<double>(m);
  m.def("gmm_sample", &gmm_sample, py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("n_samples"), py::arg("seed"));
}
