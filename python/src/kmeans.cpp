// mixtura._core's K-means: fit, predict, transform and score, on host arrays and on arrays in CUDA
// device memory, registered per float type (bindings.hpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "mixtura/kmeans.hpp"

namespace mixtura_py {

/// The fitted attributes of a K-means fit (what KMeans.fit stores).
template <class T>
py::dict kmeans_result(const mixtura::KMeans<T>& km) {
  py::dict out;
  const auto& c = km.cluster_centers();
  out["cluster_centers"] = matrix_array(c);
  out["labels"] = labels_array<std::int32_t>(km.labels());
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

template py::dict kmeans_result(const mixtura::KMeans<float>&);
template py::dict kmeans_result(const mixtura::KMeans<double>&);

namespace {

mixtura::KMeansInit parse_init(const std::string& init) {
  if (init == "k-means++") return mixtura::KMeansInit::kmeans_plusplus;
  if (init == "random") return mixtura::KMeansInit::random;
  throw mixtura::InvalidArgument("KMeans: init must be 'k-means++', 'random' or an array of centres, got '" + init + "'");
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
py::array_t<T> kmeans_transform(const Array<T>& X, const Array<T>& centers, int n_threads) {
  const auto Xv = view(X, "X");
  const mixtura::RowMatrix<T> c = view(centers, "centers").map();
  mixtura::RowMatrix<T> d;
  {
    py::gil_scoped_release release;
    d = mixtura::kmeans_transform(mixtura::CpuBackend{n_threads}, Xv, c);
  }
  return matrix_array(d);
}

template <class T>
double kmeans_score(const Array<T>& X, const std::optional<Array<T>>& sample_weight, const Array<T>& centers,
                    int n_threads) {
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  const mixtura::RowMatrix<T> c = view(centers, "centers").map();
  py::gil_scoped_release release;
  // KMeans::score's value without its input checks (Python made them): one pass over X.
  return -mixtura::kmeans_predict(mixtura::CpuBackend{n_threads}, Xv, wv, c, nullptr);
}

#if MIXTURA_HAS_CUDA
/// A K-means model holding `centers`, for the passes on device data (they check X against it).
template <class T>
mixtura::KMeans<T> kmeans_with_centers(const Array<T>& centers) {
  mixtura::KMeans<T> km;
  km.set_centers(view(centers, "centers").map());
  return km;
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

template <class T>
py::array_t<std::int32_t> kmeans_predict_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols,
                                                std::int64_t stride, const Array<T>& centers, int n_threads) {
  const auto km = kmeans_with_centers(centers);
  std::vector<std::int32_t> labels;
  {
    py::gil_scoped_release release;
    labels = km.predict_on(mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride));
  }
  return labels_array<std::int32_t>(labels);
}

template <class T>
py::array_t<T> kmeans_transform_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                 const Array<T>& centers, int n_threads) {
  const auto km = kmeans_with_centers(centers);
  mixtura::RowMatrix<T> d;
  {
    py::gil_scoped_release release;
    d = km.transform_on(mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride));
  }
  return matrix_array(d);
}

template <class T>
double kmeans_score_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                           const std::optional<Array<T>>& sample_weight, const Array<T>& centers, int n_threads,
                           std::uintptr_t sample_weight_ptr) {
  const auto km = kmeans_with_centers(centers);
  const auto wv = weights_view(sample_weight);
  py::gil_scoped_release release;
  const auto be = mixtura::make_cuda_backend(0, n_threads);
  const auto Xv = device_view<T>(ptr, rows, cols, stride);
  if (sample_weight_ptr) return km.score_on(be, Xv, device_weights<T>(sample_weight_ptr, rows));
  return km.score_on(be, Xv, wv);
}

#endif

template <class T>
void bind(py::module_& m) {
  m.def(typed_name<T>("kmeans_fit").c_str(), &kmeans_fit<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(), py::arg("n_clusters"),
        py::arg("init"), py::arg("n_init"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_threads"),
        py::arg("verbose"), py::arg("device") = "cpu");
  m.def(typed_name<T>("kmeans_predict").c_str(), &kmeans_predict<T>, py::arg("X").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_transform").c_str(), &kmeans_transform<T>, py::arg("X").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_score").c_str(), &kmeans_score<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("centers").noconvert(), py::arg("n_threads"));
#if MIXTURA_HAS_CUDA
  m.def(typed_name<T>("kmeans_fit_device").c_str(), &kmeans_fit_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(),
        py::arg("n_clusters"), py::arg("init"), py::arg("n_init"), py::arg("max_iter"), py::arg("tol"),
        py::arg("seed"), py::arg("n_threads"), py::arg("verbose"), py::arg("sample_weight_ptr") = 0);
  m.def(typed_name<T>("kmeans_predict_device").c_str(), &kmeans_predict_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_transform_device").c_str(), &kmeans_transform_device<T>, py::arg("ptr"),
        py::arg("rows"), py::arg("cols"), py::arg("stride"), py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_score_device").c_str(), &kmeans_score_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("sample_weight").noconvert(), py::arg("centers").noconvert(),
        py::arg("n_threads"), py::arg("sample_weight_ptr") = 0);
#endif
}

}  // namespace

void bind_kmeans(py::module_& m) {
  bind<float>(m);
  bind<double>(m);
}

}  // namespace mixtura_py
