// Times mixtura's K-means on raw row-major data files, for side-by-side comparisons driven by
// bench/compare_sklearn.py (same data and initial centres given to both libraries).
//
//   kmeans_timing --data X.bin --centers C.bin --n N --d D --k K --dtype f32|f64
//                 --max-iter M [--threads T] [--repeat R]
// Prints one JSON object per repetition: wall time of the whole fit, the per-iteration times of the
// trace, n_iter and inertia.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "mixtura/kmeans.hpp"

namespace {

struct Args {
  std::string data, centers, dtype = "f32", algorithm = "auto";
  double tol = 0;
  long long n = 0, d = 0, k = 0;
  int max_iter = 20, threads = 0, repeat = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  mixtura_bench::parse_options(argc, argv, [&](const std::string& key, const std::string& v) {
    if (key == "--data") a.data = v;
    else if (key == "--centers") a.centers = v;
    else if (key == "--dtype") a.dtype = v;
    else if (key == "--n") a.n = std::stoll(v);
    else if (key == "--d") a.d = std::stoll(v);
    else if (key == "--k") a.k = std::stoll(v);
    else if (key == "--max-iter") a.max_iter = std::stoi(v);
    else if (key == "--threads") a.threads = std::stoi(v);
    else if (key == "--repeat") a.repeat = std::stoi(v);
    else if (key == "--algorithm") a.algorithm = v;
    else if (key == "--tol") a.tol = std::stod(v);
    else return false;
    return true;
  });
  if (a.data.empty() || a.centers.empty() || a.n <= 0 || a.d <= 0 || a.k <= 0)
    throw std::invalid_argument("need --data, --centers, --n, --d, --k");
  return a;
}

template <class T>
void run(const Args& a) {
  const auto x = mixtura_bench::read_raw<T>(a.data, a.n * a.d);
  const auto c = mixtura_bench::read_raw<T>(a.centers, a.k * a.d);
  mixtura::KMeansParams p;
  p.n_clusters = static_cast<int>(a.k);
  p.max_iter = a.max_iter;
  p.tol = a.tol;
  p.n_threads = a.threads;
  const mixtura::KMeansAlgorithm algos[] = {mixtura::KMeansAlgorithm::automatic, mixtura::KMeansAlgorithm::lloyd,
                                            mixtura::KMeansAlgorithm::hamerly, mixtura::KMeansAlgorithm::yinyang};
  bool known = false;
  for (const auto algo : algos)
    if (a.algorithm == mixtura::to_string(algo)) {
      p.algorithm = algo;
      known = true;
    }
  if (!known) throw std::invalid_argument("--algorithm: auto, lloyd, hamerly or yinyang, got " + a.algorithm);
  for (int r = 0; r < a.repeat; ++r) {
    mixtura::KMeans<T> km(p);
    mixtura::detail::Stopwatch clock;
    km.fit(mixtura::MatrixView<T>(x.data(), a.n, a.d), {}, mixtura::MatrixView<T>(c.data(), a.k, a.d));
    const double total = clock.seconds();
    std::printf("{\"fit_seconds\": %.6f, \"n_iter\": %d, \"inertia\": %.17g, \"n_searched\": [", total,
                km.n_iter(), km.inertia());
    for (std::size_t i = 0; i < km.trace().size(); ++i)
      std::printf("%s%lld", i ? ", " : "", static_cast<long long>(km.trace()[i].n_searched));
    std::printf("], \"iter_seconds\": [");
    for (std::size_t i = 0; i < km.trace().size(); ++i)
      std::printf("%s%.6f", i ? ", " : "", km.trace()[i].seconds);
    std::printf("]}\n");
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.dtype == "f32") run<float>(a);
    else if (a.dtype == "f64") run<double>(a);
    else throw std::invalid_argument("--dtype must be f32 or f64, got " + a.dtype);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kmeans_timing: %s\n", e.what());
    return 2;
  }
  return 0;
}
