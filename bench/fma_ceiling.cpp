// The machine's FMA ceiling, measured, against the Lloyd iteration at D >= 32 (issue 20: "within 1.5x
// of the measured FMA ceiling"). Built with the build's flags (fma_ceiling; at the baseline level,
// which has no FMA, it says so and stops) and, with
// MIXTURA_BUILD_ISA_TIMING, once per instruction-set level (fma_ceiling_avx512, ...): the ceiling is
// that of the level's widest vector, and the fit runs the level's copy of the search.
//
//   fma_ceiling [--threads T] [--iters I] [--repeat R]
// Prints one JSON object: the vector width, vector FMAs per second on one thread and on T threads
// (independent chains of a*x + b, as many as the registers hold), and per shape the Lloyd iteration
// (median over iterations 2..I of R fits from the same centres) against the ideal N*K*D lane FMAs at
// the T-thread ceiling, and the time to read X once on T threads (the pass's floor from memory).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <immintrin.h>

#include "bench_util.hpp"
#include "mixtura/anomaly/scaling.hpp"  // detail::median, numpy's
#include "mixtura/core/timer.hpp"
#include "mixtura/kmeans.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kChains = 16;  // of 32 registers
constexpr const char* kVector = "zmm (AVX-512 FMA)";
inline Vec splat(float v) { return _mm512_set1_ps(v); }
inline Vec fma(Vec a, Vec x, Vec b) { return _mm512_fmadd_ps(a, x, b); }
#elif defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kChains = 12;  // of 16 registers, with a and b: none spilled to the stack
constexpr const char* kVector = "ymm (AVX2 FMA)";
inline Vec splat(float v) { return _mm256_set1_ps(v); }
inline Vec fma(Vec a, Vec x, Vec b) { return _mm256_fmadd_ps(a, x, b); }
#endif

#if defined(__FMA__)
// kChains >= latency (4 cycles) x pipes (2): the pipes never wait for a result.

inline float lane_sum(Vec v) {
  float f[kLanes];
  std::memcpy(f, &v, sizeof v);
  float s = 0;
  for (float x : f) s += x;
  return s;
}

/// `rounds` x kChains vector FMAs on this thread; returns a sum of the chains so that none is dropped.
float fma_chains(long long rounds) {
  Vec acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = splat(1.0f + 1e-3f * static_cast<float>(j));
  const Vec a = splat(0.9999999f), b = splat(1e-7f);
  for (long long r = 0; r < rounds; ++r) {
    for (int j = 0; j < kChains; ++j) acc[j] = fma(a, acc[j], b);
  }
  float s = 0;
  for (int j = 0; j < kChains; ++j) s += lane_sum(acc[j]);
  return s;
}

/// The shortest of `reps` timed calls of run() (after `warm` untimed ones); run returns a sum that is
/// kept, so that the work is not dropped.
template <class Run>
double best_seconds(int warm, int reps, Run&& run) {
  double best = 1e30;
  volatile float sink = 0;
  for (int rep = 0; rep < warm + reps; ++rep) {
    const mixtura::detail::Stopwatch clock;
    const float s = run();
    const double t = clock.seconds();
    sink = sink + s;
    if (rep >= warm) best = std::min(best, t);
  }
  return best;
}

/// Vector FMAs per second on `threads` threads at once: best of 5 runs of ~0.2 s each.
double fma_rate(int threads) {
  const long long rounds = 30'000'000;
  const double t = best_seconds(0, 5, [&] {
    float s = 0;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) reduction(+ : s)
#endif
    s += fma_chains(rounds);
    return s;
  });
  return static_cast<double>(threads) * static_cast<double>(rounds) * kChains / t;
}

/// Seconds to read n floats once on `threads` threads (each its share, summed in kChains vector
/// accumulators so that the adds never wait): best of 5, after one untimed read. The pass reads X once
/// an iteration, so at large N*D this is its floor whatever the arithmetic.
double read_seconds(const std::vector<float>& x, int threads) {
  const long long n = static_cast<long long>(x.size()) / (kLanes * kChains) * (kLanes * kChains);
  return best_seconds(1, 5, [&] {
    float s = 0;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : s)
#endif
    for (long long i = 0; i < n; i += kLanes * kChains) {
      Vec acc[kChains];
      for (int j = 0; j < kChains; ++j) acc[j] = splat(0.0f);
      for (int j = 0; j < kChains; ++j) {
        Vec v;
        std::memcpy(&v, x.data() + i + j * kLanes, sizeof v);
        acc[j] = fma(splat(1.0f), v, acc[j]);
      }
      for (int j = 0; j < kChains; ++j) s += lane_sum(acc[j]);
    }
    return s;
  });
}

struct Shape {
  long long n, d, k;
};

#endif  // __FMA__

}  // namespace

int main(int argc, char** argv) {
#if !defined(__FMA__)
  std::fprintf(stderr, "fma_ceiling: built without FMA (the baseline level); run fma_ceiling_avx2 or "
                       "fma_ceiling_avx512 (MIXTURA_BUILD_ISA_TIMING=ON), or build with -march=native\n");
  (void)argc;
  (void)argv;
  return 2;
#else
  try {
    int threads = mixtura::default_threads(), iters = 10, repeat = 3;
    mixtura_bench::parse_options(argc, argv, [&](const std::string& key, const std::string& v) {
      if (key == "--threads") threads = std::stoi(v);
      else if (key == "--iters") iters = std::stoi(v);
      else if (key == "--repeat") repeat = std::stoi(v);
      else return false;
      return true;
    });
    if (threads < 1 || iters < 2 || repeat < 1)
      throw std::invalid_argument("need --threads >= 1, --iters >= 2, --repeat >= 1; got " + std::to_string(threads) +
                                  ", " + std::to_string(iters) + ", " + std::to_string(repeat));
#if !defined(_OPENMP)
    if (threads != 1)
      throw std::invalid_argument("built without OpenMP: --threads must be 1, got " + std::to_string(threads));
#endif
    const double one = fma_rate(1), all = fma_rate(threads);
    std::printf("{\"vector\": \"%s\", \"lanes\": %d, \"threads\": %d, \"vector_fma_per_s_one_thread\": %.4g, "
                "\"vector_fma_per_s_all_threads\": %.4g, \"gflops_all_threads\": %.1f, \"shapes\": [",
                kVector, kLanes, threads, one, all, 2.0 * kLanes * all * 1e-9);
    const Shape shapes[] = {{200'000, 32, 64}, {100'000, 64, 1024}, {50'000, 128, 256}};
    bool first = true;
    for (const Shape& s : shapes) {
      std::mt19937_64 gen(1);
      std::normal_distribution<float> normal;
      std::vector<float> x(static_cast<std::size_t>(s.n * s.d));
      for (float& v : x) v = normal(gen);
      const std::vector<float> c(x.begin(), x.begin() + s.k * s.d);  // the first K rows
      mixtura::KMeansParams p;
      p.n_clusters = static_cast<int>(s.k);
      p.max_iter = iters;
      p.tol = 0;
      p.algorithm = mixtura::KMeansAlgorithm::lloyd;  // every distance, every iteration
      p.n_threads = threads;
      std::vector<double> per_iter;
      for (int r = 0; r < repeat; ++r) {
        mixtura::KMeans<float> km(p);
        km.fit(mixtura::MatrixView<float>(x.data(), s.n, s.d), {}, mixtura::MatrixView<float>(c.data(), s.k, s.d));
        for (std::size_t i = 1; i < km.trace().size(); ++i) per_iter.push_back(km.trace()[i].seconds);
      }
      const double measured = mixtura::detail::median(per_iter);
      const double ideal = static_cast<double>(s.n) * s.d * s.k / kLanes / all;  // distance FMAs only
      const double read = read_seconds(x, threads);
      std::printf("%s{\"n\": %lld, \"d\": %lld, \"k\": %lld, \"iteration_ms\": %.3f, \"ideal_ms\": %.3f, "
                  "\"ratio\": %.2f, \"read_x_ms\": %.3f, \"read_gb_per_s\": %.1f}",
                  first ? "" : ", ", s.n, s.d, s.k, 1e3 * measured, 1e3 * ideal, measured / ideal, 1e3 * read,
                  static_cast<double>(x.size()) * sizeof(float) / read * 1e-9);
      first = false;
      std::fflush(stdout);
    }
    std::printf("]}\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fma_ceiling: %s\n", e.what());
    return 2;
  }
  return 0;
#endif
}
