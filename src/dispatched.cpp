// libmixtura_dispatched: chooses one level's passes (src/dispatched_passes.cpp) for this process, at
// the first call, from the CPU's levels and MIXTURA_ISA; compiled for the baseline level.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "mixtura/backend/dispatched.hpp"

#define MIXTURA_API extern "C" __attribute__((visibility("default")))

// One entry per level compiled in (MIXTURA_DISPATCH_X86_64: baseline, avx2, avx512; else baseline).
extern "C" const mixtura::detail::DispatchedTable* mixtura_dispatched_passes_baseline();
#if MIXTURA_DISPATCH_X86_64
extern "C" const mixtura::detail::DispatchedTable* mixtura_dispatched_passes_avx2();
extern "C" const mixtura::detail::DispatchedTable* mixtura_dispatched_passes_avx512();
#endif

namespace {

using Entry = const mixtura::detail::DispatchedTable* (*)();
struct Level {
  const char* name;
  Entry entry;
};

const std::vector<Level>& compiled() {
  static const std::vector<Level> levels{
      {"baseline", &mixtura_dispatched_passes_baseline},
#if MIXTURA_DISPATCH_X86_64
      {"avx2", &mixtura_dispatched_passes_avx2},
      {"avx512", &mixtura_dispatched_passes_avx512},
#endif
  };
  return levels;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The highest compiled level the CPU supports, at most `cap` ("" = no cap); the messages say which of
// these failed and with what (as the Python package's import does, python/mixtura/_core.py).
const mixtura::detail::DispatchedTable* choose(const std::string& cap) {
  const std::vector<std::string>& names = mixtura::isa_levels();
  if (!cap.empty() && !contains(names, cap))
    throw mixtura::InvalidArgument(mixtura::detail::format(
        "mixtura::DispatchedCpuBackend: MIXTURA_ISA='%s' is not a level; expected one of %s (or unset for the "
        "highest this CPU supports)", cap.c_str(), joined(names).c_str()));
  const std::vector<std::string> cpu = mixtura::cpu_isa_levels();
  if (cpu.empty())
    throw mixtura::InvalidArgument(
        "mixtura::DispatchedCpuBackend: this CPU lacks the baseline level (x86-64-v2: SSE4.2, POPCNT) that "
        "libmixtura_dispatched needs");
  const Level* best = nullptr;
  for (const Level& l : compiled()) {
    if (!contains(cpu, l.name)) continue;
    best = &l;
    if (!cap.empty() && cap == l.name) break;
  }
  if (!best)
    throw mixtura::InvalidArgument(mixtura::detail::format(
        "mixtura::DispatchedCpuBackend: no compiled level runs on this CPU (compiled: %s; CPU: %s)",
        mixtura_dispatched_levels(), joined(cpu).c_str()));
  return best->entry();
}

}  // namespace

MIXTURA_API const mixtura::detail::DispatchedTable* mixtura_dispatched_table() {
  // A throw leaves it unset: the next call chooses (and says why) again.
  static const mixtura::detail::DispatchedTable* const table = [] {
    const char* cap = std::getenv("MIXTURA_ISA");
    return choose(cap ? cap : "");
  }();
  return table;
}

MIXTURA_API const mixtura::detail::DispatchedTable* mixtura_dispatched_table_at(const char* level) {
  const std::string name = level ? level : "";
  for (const Level& l : compiled())
    if (name == l.name) {
      const std::vector<std::string> cpu = mixtura::cpu_isa_levels();
      if (!contains(cpu, name))
        throw mixtura::InvalidArgument(mixtura::detail::format(
            "mixtura::dispatched_backend: this CPU cannot run level '%s' (its levels: %s)", name.c_str(),
            joined(cpu).c_str()));
      return l.entry();
    }
  throw mixtura::InvalidArgument(mixtura::detail::format(
      "mixtura::dispatched_backend: level '%s' is not compiled into libmixtura_dispatched (compiled: %s)",
      name.c_str(), mixtura_dispatched_levels()));
}

MIXTURA_API const char* mixtura_dispatched_levels() {
#if MIXTURA_DISPATCH_X86_64
  return "baseline avx2 avx512";
#else
  return "baseline";
#endif
}
