#pragma once
// Shared by the benchmark programs: command lines, raw data files and the machine's GEMM rate.
#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixtura/core.hpp"

namespace mixtura_bench {

/// Calls set(key, value) for every "--key value" pair of the command line; set returns false for a
/// key it does not know.
template <class Set>
void parse_options(int argc, char** argv, Set&& set) {
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + key);
    if (!set(key, std::string(argv[++i]))) throw std::invalid_argument("unknown option " + key);
  }
}

/// `count` values of type T from a raw little-endian file (as numpy's tofile writes them).
template <class T>
std::vector<T> read_raw(const std::string& path, long long count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<T> v(static_cast<std::size_t>(count));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(sizeof(T) * v.size()));
  if (in.gcount() != static_cast<std::streamsize>(sizeof(T) * v.size()))
    throw std::runtime_error(path + " is shorter than " + std::to_string(count) + " values");
  return v;
}

/// GEMM rate of Eigen's kernel on all of mixtura's threads, in GFLOP/s: C = A B with 1024^3,
/// row blocks split over the threads, best of 3.
template <class T>
double measure_gemm_gflops() {
  using mixtura::Index;
  const Index n = 1024;
  const mixtura::RowMatrix<T> a = mixtura::RowMatrix<T>::Random(n, n), b = mixtura::RowMatrix<T>::Random(n, n);
  mixtura::RowMatrix<T> c(n, n);
  const int threads = mixtura::default_threads();
  const Index rows = (n + threads - 1) / threads;
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    mixtura::detail::Stopwatch clock;
    mixtura::detail::parallel_for(threads, threads, [&](Index t) {
      const Index r0 = t * rows, r1 = std::min(n, r0 + rows);
      if (r0 < r1) c.middleRows(r0, r1 - r0).noalias() = a.middleRows(r0, r1 - r0) * b;
    });
    best = std::min(best, clock.seconds());
  }
  volatile T sink = c(0, 0);
  (void)sink;
  return 2.0 * n * n * n / best / 1e9;
}

}  // namespace mixtura_bench
