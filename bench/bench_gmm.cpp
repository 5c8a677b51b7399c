// Google Benchmark suite for full-covariance EM: the GMM shapes of shared/BENCHMARKS.md, float64,
// per EM iteration, with the machine's DGEMM rate measured in the same run for "% of GEMM".
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

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_dgemm_gflops = mixtura_bench::measure_gemm_gflops<double>();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
