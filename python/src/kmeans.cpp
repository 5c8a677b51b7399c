// mixtura._core's K-means: fit, predict, transform and score, on host arrays and on arrays in CUDA
// device memory, registered per float type (bindings.hpp); the statistics of chunks (compute, merge,
// update) as dicts of arrays (what mixtura.KMeansStatistics holds).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "mixtura/kmeans.hpp"
#include "mixtura/kmeans/statistics.hpp"

namespace mixtura_py {

namespace {
py::dict event_dict(const mixtura::KMeansEvent& e) {
  return py::dict(py::arg("kind") = mixtura::to_string(e.kind), py::arg("restart") = e.restart,
                  py::arg("iteration") = e.iteration, py::arg("cluster") = e.cluster, py::arg("row") = e.row);
}
}  // namespace

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
  for (const auto& e : km.events()) events.append(event_dict(e));
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
                               double tol, std::uint64_t seed, int n_threads, int verbose,
                               const std::string& algorithm = "auto") {
  mixtura::KMeansParams p;
  if (algorithm != "auto" && algorithm != "lloyd" && algorithm != "hamerly" && algorithm != "yinyang")
    throw mixtura::InvalidArgument("KMeans: algorithm must be 'auto', 'lloyd', 'hamerly' or 'yinyang', got '" +
                                   algorithm + "'");
  p.algorithm = algorithm == "hamerly"   ? mixtura::KMeansAlgorithm::hamerly
                : algorithm == "yinyang" ? mixtura::KMeansAlgorithm::yinyang
                : algorithm == "lloyd"   ? mixtura::KMeansAlgorithm::lloyd
                                         : mixtura::KMeansAlgorithm::automatic;
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
      py::print(py::str("Restart {}, iteration {}: J assign {:.6g}, J update {:.6g}, centre shift {:.3g}, {} rows "
                        "searched, {:.3f} ms")
                    .format(restart, iteration, it.distortion_assign, it.distortion_update, it.center_shift,
                            it.n_searched, it.seconds * 1e3));
    return PyErr_CheckSignals() == 0;
  });
  return km;
}

template <class T>
py::dict kmeans_fit(const Array<T>& X, const std::optional<Array<T>>& sample_weight,
                    const std::optional<Array<T>>& init_centers, int n_clusters, const std::string& init, int n_init,
                    int max_iter, double tol, std::uint64_t seed, int n_threads, int verbose,
                    const std::string& device, const std::string& algorithm) {
  auto km = make_kmeans<T>(init_centers.has_value(), n_clusters, init, n_init, max_iter, tol, seed, n_threads, verbose,
                           algorithm);
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
    mixtura::kmeans_predict(host_backend(n_threads), Xv, mixtura::VectorView<T>{}, c, out);
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
    d = mixtura::kmeans_transform(host_backend(n_threads), Xv, c);
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
  return -mixtura::kmeans_predict(host_backend(n_threads), Xv, wv, c, nullptr);
}

// ---- statistics of chunks ------------------------------------------------------------------------

/// KMeansStats as a dict of arrays: n_clusters, n_features, weight (K), count (K), sums (K, D),
/// distortion, n_changed, keep_farthest and the candidates farthest_distance, farthest_weight,
/// farthest_row, farthest_cluster (m) and farthest_values (m, D).
py::dict stats_dict(const mixtura::KMeansStats& s) {
  const auto K = static_cast<py::ssize_t>(s.n_clusters), D = static_cast<py::ssize_t>(s.n_features);
  const auto m = static_cast<py::ssize_t>(s.farthest.size());
  py::array_t<double> weight(K), sums({K, D}), fd(m), fw(m), fv({m, D});
  py::array_t<std::int64_t> count(K), frow(m);
  py::array_t<std::int32_t> fcl(m);
  std::copy(s.weight.begin(), s.weight.end(), weight.mutable_data());
  std::copy(s.count.begin(), s.count.end(), count.mutable_data());
  std::copy(s.sums.begin(), s.sums.end(), sums.mutable_data());
  for (py::ssize_t e = 0; e < m; ++e) {
    const mixtura::KMeansFarRow& f = s.farthest[static_cast<std::size_t>(e)];
    fd.mutable_data()[e] = f.distance;
    fw.mutable_data()[e] = f.weight;
    frow.mutable_data()[e] = f.row;
    fcl.mutable_data()[e] = f.cluster;
    std::copy(f.values.begin(), f.values.end(), fv.mutable_data() + e * D);
  }
  py::dict d;
  d["n_clusters"] = s.n_clusters;
  d["n_features"] = s.n_features;
  d["weight"] = weight;
  d["count"] = count;
  d["sums"] = sums;
  d["distortion"] = s.distortion;
  d["n_changed"] = s.n_changed;
  d["keep_farthest"] = s.keep_farthest;
  d["farthest_distance"] = fd;
  d["farthest_weight"] = fw;
  d["farthest_row"] = frow;
  d["farthest_cluster"] = fcl;
  d["farthest_values"] = fv;
  return d;
}

/// The array `key` of a statistics dict as `n` values of type V (ValueError naming it otherwise).
template <class V>
std::vector<V> stats_array(const py::dict& d, const char* key, py::ssize_t n) {
  if (!d.contains(key)) throw mixtura::InvalidArgument(std::string("KMeans statistics: no '") + key + "' entry");
  const auto a = py::array_t<V, py::array::c_style | py::array::forcecast>::ensure(d[key]);
  if (!a || a.size() != n)
    throw mixtura::InvalidArgument(std::string("KMeans statistics: '") + key + "' must hold " + std::to_string(n) +
                                   " numbers, got " + (a ? std::to_string(a.size()) : std::string("something else")));
  return std::vector<V>(a.data(), a.data() + n);
}

mixtura::KMeansStats stats_of(const py::dict& d) {
  const auto K = d["n_clusters"].cast<mixtura::Index>(), D = d["n_features"].cast<mixtura::Index>();
  if (K < 1 || D < 1)
    throw mixtura::InvalidArgument("KMeans statistics: n_clusters (" + std::to_string(K) + ") and n_features (" +
                                   std::to_string(D) + ") must be >= 1");
  mixtura::KMeansStats s(K, D, d["keep_farthest"].cast<mixtura::Index>());
  s.weight = stats_array<double>(d, "weight", K);
  s.count = stats_array<mixtura::Index>(d, "count", K);
  s.sums = stats_array<double>(d, "sums", K * D);
  s.distortion = d["distortion"].cast<double>();
  s.n_changed = d["n_changed"].cast<std::int64_t>();
  const auto m = static_cast<py::ssize_t>(py::len(d["farthest_row"]));
  const auto fd = stats_array<double>(d, "farthest_distance", m), fw = stats_array<double>(d, "farthest_weight", m);
  const auto fr = stats_array<mixtura::Index>(d, "farthest_row", m);
  const auto fc = stats_array<std::int32_t>(d, "farthest_cluster", m);
  const auto fv = stats_array<double>(d, "farthest_values", m * D);
  for (py::ssize_t e = 0; e < m; ++e) {
    mixtura::KMeansFarRow f;
    f.distance = fd[e];
    f.weight = fw[e];
    f.row = fr[e];
    f.cluster = fc[e];
    f.values.assign(fv.begin() + e * D, fv.begin() + (e + 1) * D);
    s.farthest.push_back(std::move(f));
  }
  return s;
}

/// kmeans_statistics of host rows Xv (a MatrixView or a CsrMatrixView) as a dict.
template <class T, class XView>
py::dict statistics_dict_of(const XView& Xv, const std::optional<Array<T>>& sample_weight, const Array<T>& centers,
                            int n_threads, long long keep_farthest) {
  const auto wv = weights_view(sample_weight);
  const mixtura::RowMatrix<T> c = view(centers, "centers").map();
  mixtura::KMeansStats s;
  {
    py::gil_scoped_release release;
    // kmeans_statistics' pass (with its keep_farthest) on the bindings' backend.
    s = mixtura::detail::host_statistics(host_backend(n_threads), Xv, wv, c, nullptr,
                                         static_cast<mixtura::Index>(keep_farthest));
  }
  return stats_dict(s);
}

template <class T>
py::dict kmeans_statistics(const Array<T>& X, const std::optional<Array<T>>& sample_weight, const Array<T>& centers,
                           int n_threads, long long keep_farthest) {
  return statistics_dict_of(view(X, "X"), sample_weight, centers, n_threads, keep_farthest);
}

py::dict kmeans_statistics_merge(const py::dict& a, const py::dict& b) {
  mixtura::KMeansStats s = stats_of(a);
  s.merge(stats_of(b));
  return stats_dict(s);
}

template <class T>
py::dict kmeans_update(const py::dict& stats, const Array<T>& centers, int restart, int iteration) {
  mixtura::RowMatrix<T> c = view(centers, "centers").map();
  std::vector<mixtura::KMeansEvent> events;
  const mixtura::KMeansIteration it = mixtura::kmeans_update(stats_of(stats), c, &events, restart, iteration);
  py::dict out;
  out["cluster_centers"] = matrix_array(c);
  out["distortion_assign"] = it.distortion_assign;
  out["distortion_update"] = it.distortion_update;
  out["center_shift"] = it.center_shift;
  out["n_changed"] = it.n_changed;
  py::list ev;
  for (const auto& e : events) ev.append(event_dict(e));
  out["events"] = ev;
  return out;
}

// ---- sparse (CSR) rows ------------------------------------------------------------------------------

template <class T>
py::dict kmeans_fit_csr(const Array<T>& values, const IndexArray& indices, const py::array& indptr, std::int64_t rows,
                        std::int64_t cols, const std::optional<Array<T>>& sample_weight,
                        const std::optional<Array<T>>& init_centers, int n_clusters, const std::string& init,
                        int n_init, int max_iter, double tol, std::uint64_t seed, int n_threads, int verbose,
                        const std::string& algorithm) {
  auto km = make_kmeans<T>(init_centers.has_value(), n_clusters, init, n_init, max_iter, tol, seed, n_threads, verbose,
                           algorithm);
  const auto Xv = csr_view(values, indices, indptr, rows, cols);
  const auto wv = weights_view(sample_weight);
  const auto Cv = init_centers ? view(*init_centers, "init") : mixtura::MatrixView<T>{};
  run_interruptibly([&] { km.fit_on(host_backend(n_threads), Xv, wv, Cv); });
  return kmeans_result(km);
}

/// A K-means model holding `centers` (checked), for prediction, transform and scoring of CSR rows.
template <class T>
mixtura::KMeans<T> kmeans_of_centers(const Array<T>& centers, int n_threads) {
  mixtura::KMeansParams p;
  p.n_threads = n_threads;
  mixtura::KMeans<T> km(p);
  km.set_centers(view(centers, "centers").map());
  return km;
}

template <class T>
py::array_t<std::int32_t> kmeans_predict_csr(const Array<T>& values, const IndexArray& indices, const py::array& indptr,
                                             std::int64_t rows, std::int64_t cols, const Array<T>& centers,
                                             int n_threads) {
  const auto km = kmeans_of_centers(centers, n_threads);
  const auto Xv = csr_view(values, indices, indptr, rows, cols);
  std::vector<std::int32_t> labels;
  {
    py::gil_scoped_release release;
    labels = km.predict_on(host_backend(n_threads), Xv);
  }
  return labels_array<std::int32_t>(labels);
}

template <class T>
py::array_t<T> kmeans_transform_csr(const Array<T>& values, const IndexArray& indices, const py::array& indptr,
                                    std::int64_t rows, std::int64_t cols, const Array<T>& centers, int n_threads) {
  const auto km = kmeans_of_centers(centers, n_threads);
  const auto Xv = csr_view(values, indices, indptr, rows, cols);
  mixtura::RowMatrix<T> d;
  {
    py::gil_scoped_release release;
    d = km.transform_on(host_backend(n_threads), Xv);
  }
  return matrix_array(d);
}

template <class T>
double kmeans_score_csr(const Array<T>& values, const IndexArray& indices, const py::array& indptr, std::int64_t rows,
                        std::int64_t cols, const std::optional<Array<T>>& sample_weight, const Array<T>& centers,
                        int n_threads) {
  const auto km = kmeans_of_centers(centers, n_threads);
  const auto Xv = csr_view(values, indices, indptr, rows, cols);
  const auto wv = weights_view(sample_weight);
  py::gil_scoped_release release;
  return km.score_on(host_backend(n_threads), Xv, wv);
}

template <class T>
py::dict kmeans_statistics_csr(const Array<T>& values, const IndexArray& indices, const py::array& indptr,
                               std::int64_t rows, std::int64_t cols, const std::optional<Array<T>>& sample_weight,
                               const Array<T>& centers, int n_threads, long long keep_farthest) {
  return statistics_dict_of(csr_view(values, indices, indptr, rows, cols), sample_weight, centers, n_threads,
                            keep_farthest);
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
void bind_kmeans_types(py::module_& m) {
  m.def(typed_name<T>("kmeans_fit").c_str(), &kmeans_fit<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(), py::arg("n_clusters"),
        py::arg("init"), py::arg("n_init"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_threads"),
        py::arg("verbose"), py::arg("device") = "cpu", py::arg("algorithm") = "auto");
  m.def(typed_name<T>("kmeans_predict").c_str(), &kmeans_predict<T>, py::arg("X").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_transform").c_str(), &kmeans_transform<T>, py::arg("X").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_score").c_str(), &kmeans_score<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_statistics").c_str(), &kmeans_statistics<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("centers").noconvert(), py::arg("n_threads"),
        py::arg("keep_farthest") = -1);
  m.def(typed_name<T>("kmeans_update").c_str(), &kmeans_update<T>, py::arg("stats"), py::arg("centers").noconvert(),
        py::arg("restart"), py::arg("iteration"));
  m.def(typed_name<T>("kmeans_fit_csr").c_str(), &kmeans_fit_csr<T>, py::arg("values").noconvert(),
        py::arg("indices").noconvert(), py::arg("indptr"), py::arg("rows"), py::arg("cols"),
        py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(), py::arg("n_clusters"),
        py::arg("init"), py::arg("n_init"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_threads"),
        py::arg("verbose"), py::arg("algorithm") = "auto");
  m.def(typed_name<T>("kmeans_predict_csr").c_str(), &kmeans_predict_csr<T>, py::arg("values").noconvert(),
        py::arg("indices").noconvert(), py::arg("indptr"), py::arg("rows"), py::arg("cols"),
        py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_transform_csr").c_str(), &kmeans_transform_csr<T>, py::arg("values").noconvert(),
        py::arg("indices").noconvert(), py::arg("indptr"), py::arg("rows"), py::arg("cols"),
        py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_score_csr").c_str(), &kmeans_score_csr<T>, py::arg("values").noconvert(),
        py::arg("indices").noconvert(), py::arg("indptr"), py::arg("rows"), py::arg("cols"),
        py::arg("sample_weight").noconvert(), py::arg("centers").noconvert(), py::arg("n_threads"));
  m.def(typed_name<T>("kmeans_statistics_csr").c_str(), &kmeans_statistics_csr<T>, py::arg("values").noconvert(),
        py::arg("indices").noconvert(), py::arg("indptr"), py::arg("rows"), py::arg("cols"),
        py::arg("sample_weight").noconvert(), py::arg("centers").noconvert(), py::arg("n_threads"),
        py::arg("keep_farthest") = -1);
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
  bind_kmeans_types<float>(m);
  bind_kmeans_types<double>(m);
  m.def("kmeans_statistics_merge", &kmeans_statistics_merge, py::arg("a"), py::arg("b"));
}

}  // namespace mixtura_py
