// mixtura._core: the C++ library behind the Python estimators. Arrays arrive C-contiguous in
// float32 or float64 (the Python layer converts anything else once) and are read in place; the GIL
// is released while C++ computes; Ctrl-C stops a fit between iterations.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mixtura/kmeans.hpp"

namespace py = pybind11;

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

template <class T>
py::dict kmeans_fit(const Array<T>& X, const std::optional<Array<T>>& sample_weight,
                    const std::optional<Array<T>>& init_centers, int n_clusters, const std::string& init, int n_init,
                    int max_iter, double tol, std::uint64_t seed, int n_threads, int verbose) {
  mixtura::KMeansParams p;
  p.n_clusters = n_clusters;
  p.init = init_centers ? mixtura::KMeansInit::given : parse_init(init);
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
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  run_interruptibly([&] {
    if (init_centers) km.fit(Xv, wv, view(*init_centers, "init"));
    else km.fit(Xv, wv);
  });

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
  py::list traces;
  for (const auto& run : km.runs()) {
    py::array_t<double> t({static_cast<py::ssize_t>(run.trace.size()), py::ssize_t{2}});
    auto m = t.mutable_unchecked<2>();
    for (std::size_t i = 0; i < run.trace.size(); ++i) {
      m(i, 0) = run.trace[i].distortion_assign;
      m(i, 1) = run.trace[i].distortion_update;
    }
    traces.append(t);
  }
  out["traces"] = traces;
  py::list events;
  for (const auto& e : km.events())
    events.append(py::dict(py::arg("kind") = mixtura::to_string(e.kind), py::arg("restart") = e.restart,
                           py::arg("iteration") = e.iteration, py::arg("cluster") = e.cluster, py::arg("row") = e.row));
  out["events"] = events;
  return out;
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
        py::arg("max_iter"), py::arg("tol"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"));
  m.def("kmeans_predict", &kmeans_predict<T>, py::arg("X").noconvert(), py::arg("centers").noconvert(),
        py::arg("n_threads"));
  m.def("kmeans_transform", &kmeans_transform<T>, py::arg("X").noconvert(), py::arg("centers").noconvert(),
        py::arg("n_threads"));
  m.def("kmeans_distortion", &kmeans_distortion<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
        py::arg("centers").noconvert(), py::arg("n_threads"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mixtura's C++ core (use the estimators in the mixtura package)";
  m.attr("__version__") = mixtura::version();
  py::register_exception<mixtura::NotFittedError>(m, "CoreNotFittedError", PyExc_RuntimeError);
  bind_kmeans<float>(m);
  bind_kmeans<double>(m);
}
