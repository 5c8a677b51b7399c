// Google Benchmark suite for K-means: the shapes of shared/BENCHMARKS.md, float32, per Lloyd
// iteration, with the machine's GEMM rate measured in the same run for the "% of GEMM" column.
//
//   bench_kmeans [--benchmark_filter=...]   (threads: OMP_NUM_THREADS, default all cores)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "bench_util.hpp"
#include "mixtura/kmeans.hpp"

namespace {

using mixtura::Index;
using mixtura::RowMatrix;

double g_gemm_gflops = 0;  // measured once in main(), before the benchmarks

RowMatrix<float> normal_rows(Index n, Index d, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> z;
  RowMatrix<float> x(n, d);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = z(gen);
  return x;
}

/// One benchmark iteration = a fit of 6 Lloyd iterations from the first K rows (tol = 0); the time
/// reported is the median Lloyd iteration of the trace (manual time).
void BM_KMeansLloyd(benchmark::State& state) {
  const Index n = state.range(0), d = state.range(1), k = state.range(2);
  const RowMatrix<float> x = normal_rows(n, d, 1);
  const RowMatrix<float> init = x.topRows(k);
  mixtura::KMeansParams p;
  p.n_clusters = static_cast<int>(k);
  p.max_iter = 6;
  p.tol = 0;
  double median = 0;
  for (auto _ : state) {
    mixtura::KMeans<float> km(p);
    km.fit(x, {}, init);
    std::vector<double> t;
    for (const auto& it : km.trace()) t.push_back(it.seconds);
    std::sort(t.begin(), t.end());
    median = t[t.size() / 2];
    state.SetIterationTime(median);
  }
  const double gflop = 2.0 * n * k * d / 1e9;  // the distance GEMM; argmin and sums are O(N K + N D)
  state.counters["ms_per_iter"] = median * 1e3;
  state.counters["GFLOPs"] = gflop / median;
  state.counters["pct_gemm"] = 100.0 * gflop / median / g_gemm_gflops;
  state.counters["GB_read_per_s"] = n * d * sizeof(float) / median / 1e9;
}

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
/// Where the time of one assignment pass goes, on one thread (no OpenMP), from the first K rows as
/// centres. part 0: the row blocks transposed and nothing else (X read once, as the pass reads it);
/// 1: the nearest-centre search (transpose, distances, argmin); 2: the whole pass (the search, then
/// the fold into the statistics: labels, counts, sums and exact distortion in double). The
/// differences between parts are the costs of the steps; s_per_row is the time of the part per row.
void BM_KMeansPassParts(benchmark::State& state) {
  namespace md = mixtura::detail;
  const Index n = state.range(0), d = state.range(1), k = state.range(2);
  const int part = static_cast<int>(state.range(3));
  const RowMatrix<float> x = normal_rows(n, d, 1);
  const RowMatrix<float> centers = x.topRows(k);
  const RowMatrix<double> centers_d = centers.cast<double>();
  const mixtura::MatrixView<float> X(x.data(), n, d);
  const md::PreparedCenters<float> pc(centers);
  md::NearestScratch<float> scratch(md::kKMeansBlock, d);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n), -1);
  for (auto _ : state) {
    mixtura::KMeansStats stats(k, d);
    for (Index begin = 0; begin < n; begin += md::kKMeansBlock) {
      const Index end = std::min(n, begin + md::kKMeansBlock);
      if (part == 0) {
        md::transpose_rows(X.row(begin), X.stride, end - begin, d, pc.shift.data(), scratch.xt.data(), scratch.ld);
        benchmark::DoNotOptimize(scratch.xt.data());
        benchmark::ClobberMemory();
        continue;
      }
      const std::int32_t* arg = md::nearest_centers_block(X, pc, scratch, begin, end);
      benchmark::DoNotOptimize(arg);
      if (part == 2)
        md::dispatch_dim(d, [&](auto dim) {
          md::fold_assigned_rows<decltype(dim)::value>(X.row(begin), X.stride, static_cast<const float*>(nullptr),
                                                       arg, end - begin, centers_d.data(), d, labels.data() + begin,
                                                       stats, std::min(end - begin, n - end));
        });
    }
    benchmark::DoNotOptimize(stats.distortion);
  }
  // seconds per row (printed with an SI prefix: "7.9n" is 7.9 ns)
  state.counters["s_per_row"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
#endif

void BM_GemmRate(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);
  state.counters["GFLOPs"] = g_gemm_gflops;
}

}  // namespace

BENCHMARK(BM_GemmRate)->UseManualTime()->Iterations(1);
BENCHMARK(BM_KMeansLloyd)
    ->Args({10000, 3, 8})
    ->Args({1000000, 8, 16})
    ->Args({200000, 32, 64})
    ->Args({1000000, 16, 16})
    ->Args({1000000, 64, 256})
    ->ArgNames({"N", "D", "K"})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
BENCHMARK(BM_KMeansPassParts)
    ->ArgsProduct({{1000000}, {8}, {16}, {0, 1, 2}})
    ->ArgsProduct({{200000}, {32}, {64}, {0, 1, 2}})
    ->ArgNames({"N", "D", "K", "part"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
#endif

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  g_gemm_gflops = mixtura_bench::measure_gemm_gflops<float>();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
