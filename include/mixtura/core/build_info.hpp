#pragma once
/// What this build of mixtura is: the x86-64 level its code was compiled for, the levels the CPU
/// running it supports, the compiler, OpenMP and CUDA. Header-only code is compiled with the user's
/// own flags, so `isa` is that translation unit's level; the Python package picks one of several
/// compiled copies at import (mixtura.build_info() there says which).

#include <cstdlib>
#include <string>
#include <vector>

#include "mixtura/core/parallel.hpp"
#include "mixtura/version.hpp"

namespace mixtura {

/// The levels, lowest first: "baseline" (x86-64-v2 on x86-64: SSE4.2, POPCNT; any other CPU: the
/// compiler's default), "avx2" (x86-64-v3: AVX2, FMA, BMI2) and "avx512" (x86-64-v4: AVX-512 F, BW,
/// CD, DQ, VL).
inline const std::vector<std::string>& isa_levels() {
  static const std::vector<std::string> levels{"baseline", "avx2", "avx512"};
  return levels;
}

/// The level the calling translation unit was compiled for (from the compiler's predefined macros).
inline const char* compiled_isa() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512CD__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__)
  return "avx2";
#else
  return "baseline";
#endif
}

/// The levels this CPU (and its operating system, which must save the AVX registers) supports, lowest
/// first. Always holds "baseline" on other architectures; on x86-64 it is empty for a CPU older than
/// x86-64-v2 (before 2009).
inline std::vector<std::string> cpu_isa_levels() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  std::vector<std::string> out;
  // __builtin_cpu_supports checks the OS state (XGETBV) for the AVX and AVX-512 features.
  const bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt") &&
                  __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
  const bool v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  if (v2) out.push_back("baseline");
  if (v3) out.push_back("avx2");
  if (v4) out.push_back("avx512");
  return out;
#else
  return {"baseline"};
#endif
}

/// The compiler that built the calling translation unit, e.g. "GCC 12.2.0".
inline std::string compiler_name() {
#if defined(__clang__)
  return "Clang " __clang_version__;
#elif defined(__GNUC__)
  return "GCC " __VERSION__;
#elif defined(_MSC_VER)
  return "MSVC " + std::to_string(_MSC_VER);
#else
  return "unknown";
#endif
}

struct BuildInfo {
  std::string version;                  ///< mixtura's version
  std::string isa;                      ///< level the code runs at (see isa_levels())
  std::vector<std::string> isa_compiled;  ///< levels to choose from: the calling unit's own, or the
                                          ///< dispatched library's (build_info(DispatchedCpuBackend))
  std::string isa_cap;                  ///< MIXTURA_ISA as set ("" unset): it caps the dispatched level;
                                        ///< header-only code runs at the level it was compiled for
  std::vector<std::string> cpu_levels;  ///< levels this CPU supports (cpu_isa_levels())
  std::string compiler;                 ///< compiler and version
  bool openmp = false;                  ///< data passes run in parallel
  int max_threads = 1;                  ///< threads a pass uses by default (n_threads = 0)
  bool cuda = false;                    ///< the CUDA backend is linked in (MIXTURA_HAS_CUDA)
};

/// This build, as seen from the calling translation unit.
inline BuildInfo build_info() {
  BuildInfo b;
  b.version = version();
  b.isa = compiled_isa();
  b.isa_compiled = {b.isa};
  const char* cap = std::getenv("MIXTURA_ISA");
  b.isa_cap = cap ? cap : "";
  b.cpu_levels = cpu_isa_levels();
  b.compiler = compiler_name();
  b.openmp = built_with_openmp();
  b.max_threads = default_threads();
#if defined(MIXTURA_HAS_CUDA) && MIXTURA_HAS_CUDA
  b.cuda = true;
#endif
  return b;
}

}  // namespace mixtura
