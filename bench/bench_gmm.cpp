// Google Benchmark suite for full-covariance Gaussian mixtures: the GMM shapes of shared/BENCHMARKS.md,
// float64, per EM iteration, and scoring (score_samples) of 10^7 rows through a fitted model, with the
// machine's DGEMM rate measured in the same run for "% of GEMM".
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "bench_util.hpp"
#include "mixtura/gmm.hpp"

namespace {

using mixtura::Index;
using mixtura::RowMatrix;

double g_dgemm_gflops = 0;

/// One benchmark iteration = a 4-iteration full-covariance fit (k-means++ start, tol = 0); the time
/// reported is the median EM iteration of the trace.
void BM_GmmFullEm(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1);
  const int k = static_cast<int>(state.range(2));
  std::mt19937 gen(1);
  std::normal_distribution<double> z;
  RowMatrix<double> x(n, d);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = z(gen);
  mixtura::GmmParams p;
  p.n_components = k;
  p.tol = 0;
  p.max_iter = 4;
  p.init = mixtura::GmmInit::kmeans_plusplus;
  double median = 0;
  for (auto _ : state) {
    mixtura::GaussianMixture<double> gm(p);
    gm.fit(x);
    std::vector<double> t;
    for (const auto& it : gm.trace()) t.push_back(it.seconds);
    std::sort(t.begin(), t.end());
    median = t[t.size() / 2];
    state.SetIterationTime(median);
  }
  // Log-densities (N K D^2 multiply-adds) and second moments (N K D^2 / 2): the GEMM-shaped work.
  const double gflop = (2.0 + 1.0) * n * k * d * d / 1e9;
  state.counters["ms_per_iter"] = median * 1e3;
  state.counters["GFLOPs"] = gflop / median;
  state.counters["pct_dgemm"] = 100.0 * gflop / median / g_dgemm_gflops;
}

/// n rows of a mixture of k Gaussian clusters (centres ~ N(0, 3^2 I), within-cluster scales 0.5-1.5
/// per feature), as sensor readings cluster around operating points.
RowMatrix<double> clustered_rows(Index n, Index d, int k) {
  std::mt19937 gen(2);
  std::normal_distribution<double> z;
  std::uniform_real_distribution<double> scale(0.5, 1.5);
  RowMatrix<double> centres(k, d), scales(k, d), x(n, d);
  for (Index i = 0; i < centres.size(); ++i) centres.data()[i] = 3 * z(gen);
  for (Index i = 0; i < scales.size(); ++i) scales.data()[i] = scale(gen);
  std::uniform_int_distribution<int> pick(0, k - 1);
  for (Index i = 0; i < n; ++i) {
    const int c = pick(gen);
    for (Index j = 0; j < d; ++j) x(i, j) = centres(c, j) + scales(c, j) * z(gen);
  }
  return x;
}

/// One benchmark iteration = score_samples of N rows (float64, all threads) under a full-covariance
/// model fitted by 5 EM iterations (k-means++ start, seed 0) on the first 100,000 of them.
void BM_GmmScore(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1);
  const int k = static_cast<int>(state.range(2));
  const RowMatrix<double> x = clustered_rows(n, d, k);
  mixtura::GmmParams p;
  p.n_components = k;
  p.tol = 0;
  p.max_iter = 5;
  p.init = mixtura::GmmInit::kmeans_plusplus;
  mixtura::GaussianMixture<double> gm(p);
  gm.fit(mixtura::MatrixView<double>(x.data(), std::min<Index>(n, 100000), d));
  std::vector<double> t;
  for (auto _ : state) {
    mixtura::detail::Stopwatch clock;
    const Eigen::VectorXd s = gm.score_samples(x);
    t.push_back(clock.seconds());
    benchmark::DoNotOptimize(s.data());
    state.SetIterationTime(t.back());
  }
  std::sort(t.begin(), t.end());
  const double median = t[t.size() / 2];
  // The products (x - c) [C_1 ... C_K], as executed: one GEMM of N x D by D x K D (the factors dense),
  // 2 N K D^2 FLOPs (half of them with the zeros of the triangular C_k).
  const double gflop = 2.0 * n * k * d * d / 1e9;
  state.counters["ms_per_call"] = median * 1e3;
  state.counters["Mrows_per_s"] = n / median / 1e6;
  state.counters["GFLOPs"] = gflop / median;
  state.counters["pct_dgemm"] = 100.0 * gflop / median / g_dgemm_gflops;
  state.counters["GBs_X"] = 8.0 * n * d / median / 1e9;
}

void BM_DgemmRate(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);
  state.counters["GFLOPs"] = g_dgemm_gflops;
}

}  // namespace

BENCHMARK(BM_DgemmRate)->UseManualTime()->Iterations(1);
BENCHMARK(BM_GmmFullEm)
    ->Args({10000, 3, 4})
    ->Args({100000, 8, 8})
    ->Args({100000, 16, 16})
    ->Args({200000, 32, 8})
    ->Args({1000000, 16, 16})
    ->ArgNames({"N", "D", "K"})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_GmmScore)
    ->Args({10000000, 16, 16})
    ->Args({10000000, 8, 8})
    ->ArgNames({"N", "D", "K"})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_dgemm_gflops = mixtura_bench::measure_gemm_gflops<double>();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
