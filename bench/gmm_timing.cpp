// Times mixtura's full-covariance Gaussian mixture on a raw float64 row-major file, for
// bench/compare_sklearn.py (scikit-learn gets the same data and the same parameters).
//
//   gmm_timing --data X.bin --n N --d D --k K --means M.bin --weights W.bin --precisions P.bin
//              --max-iter M [--threads T]
//     EM from the given initial parameters; prints one JSON object: wall time of the fit,
//     per-iteration times, n_iter and the lower bounds.
//   gmm_timing --mode score --data X.bin --n N --d D --k K --means M.bin --weights W.bin
//              --factors C.bin [--scores-out S.bin] [--threads T] [--repeat R]
//     score_samples of X under the given model (factors: K row-major D x D matrices C_k with
//     precision C_k C_k^T, scikit-learn's precisions_cholesky_); prints one JSON object per
//     repetition with the wall time of the call, and writes the scores (float64) to S.bin.
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "mixtura/gmm.hpp"

namespace {

using mixtura::RowMatrix;

struct Args {
  std::string mode = "fit", data, means, weights, precisions, factors, scores_out;
  long long n = 0, d = 0, k = 0;
  int max_iter = 10, threads = 0, repeat = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  mixtura_bench::parse_options(argc, argv, [&](const std::string& key, const std::string& v) {
    if (key == "--mode") a.mode = v;
    else if (key == "--data") a.data = v;
    else if (key == "--means") a.means = v;
    else if (key == "--weights") a.weights = v;
    else if (key == "--precisions") a.precisions = v;
    else if (key == "--factors") a.factors = v;
    else if (key == "--scores-out") a.scores_out = v;
    else if (key == "--n") a.n = std::stoll(v);
    else if (key == "--d") a.d = std::stoll(v);
    else if (key == "--k") a.k = std::stoll(v);
    else if (key == "--max-iter") a.max_iter = std::stoi(v);
    else if (key == "--threads") a.threads = std::stoi(v);
    else if (key == "--repeat") a.repeat = std::stoi(v);
    else return false;
    return true;
  });
  if (a.mode != "fit" && a.mode != "score") throw std::invalid_argument("--mode must be fit or score, got " + a.mode);
  const std::string& matrices = a.mode == "fit" ? a.precisions : a.factors;
  if (a.data.empty() || a.means.empty() || a.weights.empty() || matrices.empty() || a.n <= 0 || a.d <= 0 || a.k <= 0)
    throw std::invalid_argument(a.mode == "fit" ? "need --data --means --weights --precisions --n --d --k"
                                                : "need --data --means --weights --factors --n --d --k");
  return a;
}

/// K row-major D x D matrices from a raw file.
std::vector<Eigen::MatrixXd> read_matrices(const std::string& path, long long k, long long d) {
  const auto v = mixtura_bench::read_raw<double>(path, k * d * d);
  std::vector<Eigen::MatrixXd> out;
  for (long long c = 0; c < k; ++c) out.push_back(Eigen::Map<const RowMatrix<double>>(v.data() + c * d * d, d, d));
  return out;
}

mixtura::GmmParams params_of(const Args& a) {
  mixtura::GmmParams params;
  params.n_components = static_cast<int>(a.k);
  params.tol = 0;
  params.max_iter = a.max_iter;
  params.n_threads = a.threads;
  return params;
}

void fit(const Args& a, const std::vector<double>& x, const Eigen::VectorXd& w, const RowMatrix<double>& m) {
  mixtura::GmmInitialParams init;
  init.weights = w;
  init.means = m;
  init.precisions = read_matrices(a.precisions, a.k, a.d);
  mixtura::GaussianMixture<double> gm(params_of(a));
  gm.set_initial_params(init);
  mixtura::detail::Stopwatch clock;
  gm.fit(mixtura::MatrixView<double>(x.data(), a.n, a.d));
  const double total = clock.seconds();
  std::printf("{\"fit_seconds\": %.6f, \"n_iter\": %d, \"iter_seconds\": [", total, gm.n_iter());
  for (std::size_t i = 0; i < gm.trace().size(); ++i) std::printf("%s%.6f", i ? ", " : "", gm.trace()[i].seconds);
  std::printf("], \"lower_bounds\": [");
  for (std::size_t i = 0; i < gm.trace().size(); ++i) std::printf("%s%.17g", i ? ", " : "", gm.trace()[i].lower_bound);
  std::printf("]}\n");
}

void score(const Args& a, const std::vector<double>& x, const Eigen::VectorXd& w, const RowMatrix<double>& m) {
  mixtura::GmmModel model(mixtura::CovarianceType::full, a.k, a.d);
  model.weights = w;
  model.means = m;
  model.factor = read_matrices(a.factors, a.k, a.d);
  mixtura::GaussianMixture<double> gm(params_of(a));
  gm.set_model(std::move(model));
  const mixtura::MatrixView<double> view(x.data(), a.n, a.d);
  Eigen::VectorXd s;
  for (int r = 0; r < a.repeat; ++r) {
    mixtura::detail::Stopwatch clock;
    s = gm.score_samples(view);
    std::printf("{\"score_seconds\": %.6f}\n", clock.seconds());
    std::fflush(stdout);
  }
  if (!a.scores_out.empty()) {
    std::ofstream out(a.scores_out, std::ios::binary);
    out.write(reinterpret_cast<const char*>(s.data()), static_cast<std::streamsize>(sizeof(double) * s.size()));
    if (!out) throw std::runtime_error("cannot write " + a.scores_out);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    const auto x = mixtura_bench::read_raw<double>(a.data, a.n * a.d);
    const auto w = mixtura_bench::read_raw<double>(a.weights, a.k), m = mixtura_bench::read_raw<double>(a.means, a.k * a.d);
    const Eigen::VectorXd weights = Eigen::Map<const Eigen::VectorXd>(w.data(), a.k);
    const RowMatrix<double> means = Eigen::Map<const RowMatrix<double>>(m.data(), a.k, a.d);
    if (a.mode == "fit") fit(a, x, weights, means);
    else score(a, x, weights, means);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gmm_timing: %s\n", e.what());
    return 2;
  }
  return 0;
}
