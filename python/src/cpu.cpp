// mixtura._cpu: what this CPU supports, compiled for the compiler's default target so that it runs
// on any CPU and can say which copy of the core (mixtura._core_<level>) to load.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "mixtura/core/build_info.hpp"

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "The instruction-set levels of this CPU (see mixtura.build_info)";
  m.def("cpu_levels", &mixtura::cpu_isa_levels, "The levels this CPU supports, lowest first.");
  m.attr("LEVELS") = mixtura::isa_levels();
}
