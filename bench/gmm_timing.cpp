// Times mixtura's full-covariance EM on a raw float64 row-major file from given initial parameters,
// for bench/compare_sklearn.py (scikit-learn gets the same data and the same initial parameters).
//
//   gmm_timing --data X.bin --n N --d D --k K --means M.bin --weights W.bin --precisions P.bin
//              --max-iter M [--threads T]
// Prints one JSON object: wall time of the fit, per-iteration times, n_iter and the lower bounds.
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "mixtura/gmm.hpp"

int main(int argc, char** argv) {
  try {
    std::string data, means, weights, precisions;
    long long n = 0, d = 0, k = 0;
    int max_iter = 10, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string key = argv[i], v = argv[i + 1];
      if (key == "--data") data = v;
      else if (key == "--means") means = v;
      else if (key == "--weights") weights = v;
      else if (key == "--precisions") precisions = v;
      else if (key == "--n") n = std::stoll(v);
      else if (key == "--d") d = std::stoll(v);
      else if (key == "--k") k = std::stoll(v);
      else if (key == "--max-iter") max_iter = std::stoi(v);
      else if (key == "--threads") threads = std::stoi(v);
      else throw std::invalid_argument("unknown option " + key);
    }
    if (data.empty() || means.empty() || weights.empty() || precisions.empty() || n <= 0 || d <= 0 || k <= 0)
      throw std::invalid_argument("need --data --means --weights --precisions --n --d --k");
    const auto x = mixtura_bench::read_raw<double>(data, n * d);
    mixtura::GmmInitialParams init;
    const auto w = mixtura_bench::read_raw<double>(weights, k), m = mixtura_bench::read_raw<double>(means, k * d), p = mixtura_bench::read_raw<double>(precisions, k * d * d);
    init.weights = Eigen::Map<const Eigen::VectorXd>(w.data(), k);
    init.means = Eigen::Map<const mixtura::RowMatrix<double>>(m.data(), k, d);
    for (long long c = 0; c < k; ++c)
      init.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(p.data() + c * d * d, d, d));
    mixtura::GmmParams params;
    params.n_components = static_cast<int>(k);
    params.tol = 0;
    params.max_iter = max_iter;
    params.n_threads = threads;
    mixtura::GaussianMixture<double> gm(params);
    gm.set_initial_params(init);
    mixtura::detail::Stopwatch clock;
    gm.fit(mixtura::MatrixView<double>(x.data(), n, d));
    const double total = clock.seconds();
    std::printf("{\"fit_seconds\": %.6f, \"n_iter\": %d, \"iter_seconds\": [", total, gm.n_iter());
    for (std::size_t i = 0; i < gm.trace().size(); ++i) std::printf("%s%.6f", i ? ", " : "", gm.trace()[i].seconds);
    std::printf("], \"lower_bounds\": [");
    for (std::size_t i = 0; i < gm.trace().size(); ++i) std::printf("%s%.17g", i ? ", " : "", gm.trace()[i].lower_bound);
    std::printf("]}\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gmm_timing: %s\n", e.what());
    return 2;
  }
  return 0;
}
