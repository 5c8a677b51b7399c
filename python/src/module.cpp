// mixtura._core: the C++ library behind the Python estimators, one module per instruction-set level
// (MIXTURA_PYTHON_MODULE). The bindings are split by concern: bindings.hpp (arrays in and out, the
// backend, Ctrl-C), kmeans.cpp, gmm.cpp, detector.cpp, model_io.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cctype>
#include <cstdint>
#include <exception>
#include <string>

#include "bindings.hpp"
#include "mixtura/core/build_info.hpp"
#include "mixtura/gmm/cpu_pass.hpp"
#include "mixtura/version.hpp"

namespace py = pybind11;

#ifndef MIXTURA_PYTHON_MODULE
#define MIXTURA_PYTHON_MODULE _core_baseline
#endif

namespace {

/// "Class::method" (a capitalised name, then a lower-case one) becomes "Class.method"; nothing else
/// changes ("std::uint64_t" and "mixtura::detail" keep their colons).
std::string python_method_names(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "::") == 0 && i + 2 < text.size() &&
        (std::islower(static_cast<unsigned char>(text[i + 2])) || text[i + 2] == '_')) {
      std::size_t j = i;  // the start of the word before the colons
      while (j > 0 && (std::isalnum(static_cast<unsigned char>(text[j - 1])) || text[j - 1] == '_')) --j;
      if (j < i && std::isupper(static_cast<unsigned char>(text[j]))) {
        out += '.';
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

}  // namespace

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
#else
  m.attr("HAS_CUDA") = false;
  m.def("cuda_device_count", [] { return 0; }, "Number of usable CUDA devices: 0, this build has no CUDA backend.");
#endif
  py::register_exception<mixtura::NotFittedError>(m, "CoreNotFittedError", PyExc_RuntimeError);
  // The core's messages name C++ methods ("KMeans::fit: ..."): Python users read "KMeans.fit: ...".
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const mixtura::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, python_method_names(e.what()).c_str());
    }
  });
  mixtura_py::bind_kmeans(m);
  mixtura_py::bind_minibatch(m);
  mixtura_py::bind_gmm(m);
  mixtura_py::bind_detector(m);
  bind_model_io(m);
}
