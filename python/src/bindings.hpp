// What every binding of mixtura._core shares: arrays in and out, the views over them, the backend a
// call runs on, Ctrl-C, and the names of typed entry points. Arrays arrive C-contiguous in float32 or
// float64 (the Python layer converts anything else once) and are read in place; the GIL is released
// while C++ computes.
//
// Naming: every entry point whose arithmetic depends on the float type is registered once per type,
// as <name>_float32 and <name>_float64, for host arrays and device arrays alike (<name>_device_...);
// Python picks one with mixtura._core.typed(name, dtype).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/csr_matrix_view.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/params.hpp"
#if MIXTURA_HAS_CUDA
#include "mixtura/cuda.hpp"
#endif

namespace mixtura {
template <class T>
class KMeans;
template <class T>
class GaussianMixture;
}  // namespace mixtura

namespace mixtura_py {

namespace py = pybind11;

template <class T>
using Array = py::array_t<T, py::array::c_style>;
using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

/// The name of the entry point `name` for scalar type T: name_float32 or name_float64.
template <class T>
std::string typed_name(const char* name) {
  return std::string(name) + (std::is_same<T, float>::value ? "_float32" : "_float64");
}

// ---- arrays in -------------------------------------------------------------------------------

/// A 2-d host array as a view (no copy).
template <class T>
mixtura::MatrixView<T> view(const Array<T>& a, const char* name) {
  if (a.ndim() != 2) throw mixtura::InvalidArgument(std::string(name) + " must be 2-dimensional");
  return {a.data(), static_cast<mixtura::Index>(a.shape(0)), static_cast<mixtura::Index>(a.shape(1))};
}

/// Host sample weights as a view; none: unit weights.
template <class T>
mixtura::VectorView<T> weights_view(const std::optional<Array<T>>& w) {
  if (!w) return {};
  return {w->data(), static_cast<mixtura::Index>(w->size())};
}

using IndexArray = py::array_t<std::int32_t, py::array::c_style>;

/// A SciPy CSR matrix's arrays (data, indices, indptr of 32 or 64 bits, shape) as a view: the array
/// sizes are checked here, the structure and values by the C++ checks of each call.
template <class T>
inline mixtura::CsrMatrixView<T> csr_view(const Array<T>& values, const IndexArray& indices, const py::array& indptr,
                                   std::int64_t rows, std::int64_t cols, const char* who = "KMeans") {
  if (values.ndim() != 1 || indices.ndim() != 1 || values.size() != indices.size())
    throw mixtura::InvalidArgument(std::string(who) + ": a CSR matrix needs 1-d data and indices of one length, got " +
                                   std::to_string(values.size()) + " and " + std::to_string(indices.size()));
  if (indptr.ndim() != 1 || indptr.size() != rows + 1)
    throw mixtura::InvalidArgument(std::string(who) + ": CSR indptr must hold n_samples + 1 = " + std::to_string(rows + 1) +
                                   " entries, got " + std::to_string(indptr.size()));
  if (!(indptr.flags() & py::array::c_style))
    throw mixtura::InvalidArgument(std::string(who) + ": CSR indptr must be contiguous");
  mixtura::CsrMatrixView<T> v;
  if (py::isinstance<py::array_t<std::int32_t>>(indptr) && indptr.itemsize() == 4)
    v = {values.data(), indices.data(), static_cast<const std::int32_t*>(indptr.data()), rows, cols};
  else if (py::isinstance<py::array_t<std::int64_t>>(indptr) && indptr.itemsize() == 8)
    v = {values.data(), indices.data(), static_cast<const std::int64_t*>(indptr.data()), rows, cols};
  else
    throw mixtura::InvalidArgument(std::string(who) + ": CSR indptr must be int32 or int64, got " +
                                   py::str(indptr.dtype()).cast<std::string>());
  if (rows > 0 && v.row_begin(rows) != static_cast<mixtura::Index>(values.size()))
    throw mixtura::InvalidArgument(std::string(who) + ": CSR indptr ends at " + std::to_string(v.row_begin(rows)) + " but data holds " +
                                   std::to_string(values.size()) + " values");
  return v;
}

/// Calls f(view) on rows X from Python: a C-contiguous array of T (dense rows, a MatrixView) or the tuple
/// (data, indices, indptr, n_samples, n_features) of a SciPy CSR matrix (a CsrMatrixView); the arrays
/// stay alive while f runs.
template <class T, class F>
void with_rows(const py::object& X, const char* who, F&& f) {
  if (py::isinstance<py::tuple>(X)) {
    const auto t = X.cast<py::tuple>();
    if (t.size() != 5) throw mixtura::InvalidArgument(std::string(who) + ": sparse rows must be (data, indices, indptr, n_samples, "
                                     "n_features), got " + std::to_string(t.size()) + " items");
    const auto values = t[0].cast<Array<T>>();
    const auto indices = t[1].cast<IndexArray>();
    const auto indptr = t[2].cast<py::array>();
    f(csr_view(values, indices, indptr, t[3].cast<std::int64_t>(), t[4].cast<std::int64_t>(), who));
  } else {
    const auto a = X.cast<Array<T>>();
    f(view(a, "X"));
  }
}

#if MIXTURA_HAS_CUDA
/// rows x cols values of T at device address `ptr`, rows `stride` elements apart
/// (python/mixtura/_cuda_array.py parses the array).
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
#endif

// ---- arrays out ------------------------------------------------------------------------------

inline DArray vector_array(const Eigen::VectorXd& v) {
  DArray out(v.size());
  std::copy(v.data(), v.data() + v.size(), out.mutable_data());
  return out;
}

/// A row-major matrix as a new 2-d array of its type.
template <class T>
py::array_t<T> matrix_array(const mixtura::RowMatrix<T>& m) {
  py::array_t<T> out({m.rows(), m.cols()});
  std::copy(m.data(), m.data() + m.size(), out.mutable_data());
  return out;
}

/// Labels as a new 1-d array of Int.
template <class Int>
py::array_t<Int> labels_array(const std::vector<std::int32_t>& labels) {
  py::array_t<Int> out(static_cast<py::ssize_t>(labels.size()));
  std::copy(labels.begin(), labels.end(), out.mutable_data());
  return out;
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

// ---- running a call --------------------------------------------------------------------------

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

/// The backend of every pass on host arrays, named once: the header's CpuBackend, compiled into each
/// _core_<level> copy (so the level is the copy's; mixtura/_core.py picks the copy).
using HostBackend = mixtura::CpuBackend;
inline HostBackend host_backend(int n_threads) { return HostBackend{n_threads}; }

/// Calls f(backend) with the backend `device` names: "cpu", or "cuda" (device 0) in a build with the
/// CUDA backend. Python resolves "auto" and checks for a device first (mixtura/_device.py); this is
/// the last word.
template <class F>
void on_device(const std::string& device, int n_threads, F&& f) {
  if (device == "cpu") return f(host_backend(n_threads));
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

// ---- Gaussian-mixture models as scikit-learn's arrays (gmm.cpp; the detector's density too) ---

mixtura::CovarianceType parse_covariance(const std::string& t);

/// The fields every mixture fit's parameters share (GmmParams: fit and online EM; DetectorParams: the
/// density), from Python's values: the covariance type by name, the numbers as they are. Each builder
/// sets the rest.
template <class Params>
void set_mixture_params(Params& p, int n_components, const std::string& covariance_type, double reg_covar, double tol,
                        int n_threads) {
  p.n_components = n_components;
  p.covariance_type = parse_covariance(covariance_type);
  p.reg_covar = reg_covar;
  p.tol = tol;
  p.n_threads = n_threads;
}
/// Precision factors (scikit-learn's precisions_cholesky_) in scikit-learn's shape.
DArray factors_of(const mixtura::GmmModel& m);
/// Covariances (or precisions) in scikit-learn's shape.
DArray matrices_of(const mixtura::GmmModel& m, bool precision);
/// The model of scikit-learn-shaped arrays (weights_, means_, precisions_cholesky_), checked as a
/// model file's are (io/models.hpp).
mixtura::GmmModel model_from(const std::string& type, const DArray& weights, const DArray& means,
                             const DArray& factors);

// ---- fitted estimators as dicts of arrays (what the Python estimators store) ------------------

/// cluster_centers, labels, inertia, n_iter, converged, best_restart, traces, events (kmeans.cpp;
/// instantiated for float and double).
template <class T>
py::dict kmeans_result(const mixtura::KMeans<T>& km);
/// weights, means, precisions_cholesky, covariances, precisions, lower_bound, n_iter, converged,
/// best_restart, traces, events (gmm.cpp; instantiated for float and double).
template <class T>
py::dict gmm_result(const mixtura::GaussianMixture<T>& gm);

// ---- the module's parts -----------------------------------------------------------------------

void bind_kmeans(py::module_& m);    // kmeans.cpp
void bind_minibatch(py::module_& m);  // minibatch.cpp
void bind_gmm(py::module_& m);       // gmm.cpp
void bind_detector(py::module_& m);  // detector.cpp

}  // namespace mixtura_py

void bind_model_io(pybind11::module_& m);  // model_io.cpp
