// The dispatched CPU passes (mixtura::dispatched) against the header's CPU passes compiled into this
// program, side by side in one process, alternating, best of --repeat: K-means (lloyd, hamerly,
// yinyang), a Gaussian-mixture fit and scoring. Built once per level (MIXTURA_BUILD_ISA_TIMING):
// dispatched_timing_avx512 compares the dispatched passes with a native AVX-512 build of the same
// code, dispatched_timing_baseline with what a program compiled for the baseline level gets alone.
//
//   dispatched_timing [--threads T] [--repeat R]
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "bench_util.hpp"
#include "mixtura/backend/dispatched.hpp"
#include "mixtura/mixtura.hpp"

namespace {

using mixtura::Index;
using mixtura::RowMatrix;

/// n rows around k centres in d features (float), deterministic.
RowMatrix<float> blobs(Index n, Index d, Index k, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> where(-6.0, 6.0);
  RowMatrix<double> c(k, d);
  for (Index i = 0; i < k; ++i)
    for (Index j = 0; j < d; ++j) c(i, j) = where(gen);
  RowMatrix<float> x(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) x(i, j) = static_cast<float>(c(i % k, j) + noise(gen));
  return x;
}

template <class F>
double best_of(int repeat, F&& f) {
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    mixtura::detail::Stopwatch clock;
    f();
    best = std::min(best, clock.seconds());
  }
  return best;
}

/// Times f(CpuBackend) and f(DispatchedCpuBackend), alternating `repeat` times; prints both and the ratio.
template <class F>
void side_by_side(const char* what, int threads, int repeat, F&& f) {
  double header = 1e300, dispatched = 1e300;
  for (int r = 0; r < repeat; ++r) {
    header = std::min(header, best_of(1, [&] { f(mixtura::CpuBackend{threads}); }));
    dispatched = std::min(dispatched, best_of(1, [&] { f(mixtura::DispatchedCpuBackend{threads}); }));
  }
  std::printf("| %s | %.3f s | %.3f s | %.2f |\n", what, header, dispatched, dispatched / header);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, repeat = 3;
  mixtura_bench::parse_options(argc, argv, [&](const std::string& key, const std::string& v) {
    if (key == "--threads") threads = std::stoi(v);
    else if (key == "--repeat") repeat = std::stoi(v);
    else return false;
    return true;
  });
  std::printf("header passes compiled for %s; dispatched passes at %s\n\n", mixtura::compiled_isa(),
              mixtura::build_info(mixtura::DispatchedCpuBackend{}).isa.c_str());
  std::printf("| fit (float32, 20 iterations unless said) | header | dispatched | dispatched / header |\n");
  std::printf("|---|---|---|---|\n");
  const RowMatrix<float> a = blobs(200000, 32, 64, 1), b = blobs(100000, 64, 1024, 2), g = blobs(200000, 32, 8, 3);
  const mixtura::MatrixView<float> A(a), B(b), G(g);
  for (const auto alg : {mixtura::KMeansAlgorithm::lloyd, mixtura::KMeansAlgorithm::hamerly}) {
    const std::string what = std::string("KMeans 200,000 x 32, K=64, ") + mixtura::to_string(alg);
    side_by_side(what.c_str(), threads, repeat, [&](const auto& be) {
      mixtura::KMeansParams p;
      p.n_clusters = 64;
      p.max_iter = 20;
      p.tol = 0;
      p.algorithm = alg;
      mixtura::KMeans<float>(p).fit_on(be, A);
    });
  }
  side_by_side("KMeans 100,000 x 64, K=1024, yinyang, 10 iterations", threads, repeat, [&](const auto& be) {
    mixtura::KMeansParams p;
    p.n_clusters = 1024;
    p.max_iter = 10;
    p.tol = 0;
    p.algorithm = mixtura::KMeansAlgorithm::yinyang;
    mixtura::KMeans<float>(p).fit_on(be, B);
  });
  mixtura::GmmParams gp;
  gp.n_components = 8;
  gp.max_iter = 20;
  gp.tol = 0;
  mixtura::GaussianMixture<float> fitted(gp);
  fitted.fit(G);
  side_by_side("GaussianMixture 200,000 x 32, K=8, full", threads, repeat,
               [&](const auto& be) { mixtura::GaussianMixture<float>(gp).fit_on(be, G); });
  side_by_side("score_samples 200,000 x 32, K=8 full (one pass)", threads, repeat,
               [&](const auto& be) { (void)fitted.score_samples_on(be, G); });
  return 0;
}
