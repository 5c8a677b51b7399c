// Full-covariance EM on the CUDA backend, float32: time per iteration (the E-step pass on the device,
// the M-step on the host), its FLOP rate, and the share of the FP32 peak measured in the same run
// (cuBLAS SGEMM 8192^3, plain FP32, no TF32).
//
//   cuda_gmm_bench [--quick] [--iters N]
//
// Shapes: 1,000,000 x 16, K = 16 and 1,000,000 x 32, K = 64 (--quick: 100,000 rows). Each shape: the
// data resident on the device, one warm-up iteration, then N iterations (default 7) of
//   stats = gmm_e_step(gpu, X, w, model, K); model = m_step(stats); elbo_from_stats(stats, model)
// each bracketed by CUDA events on the legacy stream (the pass synchronises its own stream before it
// returns, so the events enclose the whole iteration, host M-step included); the median is reported.
// FLOPs counted: 3 N K D^2 per iteration, as bench/RESULTS.md counts them for the CPU (log-densities
// 2 N K D^2 through the precision factors, second moments N K D^2 for the symmetric halves); the
// kernels execute more (padding to multiples of 4, whole diagonal blocks), which is not counted.
// Prints a table and one line per shape "CUDA_GMM_BENCH {json}" for bench/device_check.sh.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixtura/cuda.hpp"

namespace {

using mixtura::Index;
using mixtura::RowMatrix;

void check(cudaError_t s, const char* what) {
  if (s != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(s));
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(s));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Milliseconds of f() between two events recorded on the legacy default stream.
template <class F>
double event_ms(F&& f) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventRecord(a, 0), "cudaEventRecord");
  f();
  check(cudaEventRecord(b, 0), "cudaEventRecord");
  check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms;
}

/// FP32 rate of cuBLAS SGEMM on n x n x n (default math mode: plain FP32), median of 5, in GFLOP/s.
double sgemm_gflops(int n) {
  const std::size_t count = static_cast<std::size_t>(n) * n;
  std::vector<float> host(count);
  std::uint32_t s = 12345;
  for (float& v : host) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) * (1.0f / 16777216.0f) - 0.5f;
  }
  float *a, *b, *c;
  check(cudaMalloc(&a, count * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&b, count * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&c, count * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(a, host.data(), count * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaMemcpy(b, host.data(), count * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  cublasHandle_t h;
  check(cublasCreate(&h), "cublasCreate");
  check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  const float one = 1, zero = 0;
  auto run = [&] { check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, b, n, &zero, c, n), "cublasSgemm"); };
  run();  // warm-up
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  std::vector<double> ms;
  for (int r = 0; r < 5; ++r) ms.push_back(event_ms(run));
  cublasDestroy(h);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 2.0 * n * static_cast<double>(n) * n / (median(ms) * 1e-3) / 1e9;
}

struct Result {
  double iter_ms, estep_ms, mstep_ms, gflops;
};

Result bench_shape(const mixtura::CudaBackend& gpu, Index n, Index d, int k, int iters) {
  // Rows around K well-separated centres, unit spread.
  std::mt19937 gen(7);
  std::normal_distribution<float> z;
  RowMatrix<float> centers(k, d);
  for (Index i = 0; i < centers.size(); ++i) centers.data()[i] = 4.0f * z(gen);
  RowMatrix<float> x(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) x(i, j) = centers(i % k, j) + z(gen);
  const mixtura::MatrixView<float> X(x);
  const mixtura::VectorView<float> w;

  mixtura::GmmModel model(mixtura::CovarianceType::full, k, d);  // unit covariances (identity factors)
  model.weights.setConstant(1.0 / k);
  for (Index c = 0; c < k; ++c)
    for (Index j = 0; j < d; ++j) model.means(c, j) = x(c, j);
  mixtura::detail::MStepContext ctx;
  ctx.reg_covar = 1e-6;
  ctx.data_variance = mixtura::detail::feature_variances(X, 0);
  auto row_of = [&](Index i) { return Eigen::VectorXd(x.row(i).transpose().cast<double>()); };

  const auto scope = mixtura::data_scope(gpu);  // X stays on the device across the iterations
  double estep = 0, mstep = 0, elbo = 0;
  auto iteration = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    const mixtura::GmmStats stats = mixtura::gmm_e_step(gpu, X, w, model, static_cast<std::size_t>(k));
    const auto t1 = std::chrono::steady_clock::now();
    mixtura::GmmModel next = mixtura::detail::m_step(stats, ctx, stats.worst.rows, row_of);
    elbo = mixtura::detail::elbo_from_stats(stats, next);
    model = std::move(next);
    const auto t2 = std::chrono::steady_clock::now();
    estep = std::chrono::duration<double, std::milli>(t1 - t0).count();
    mstep = std::chrono::duration<double, std::milli>(t2 - t1).count();
  };
  iteration();  // warm-up: uploads X, sizes the workspaces
  std::vector<double> it_ms, e_ms, m_ms;
  for (int r = 0; r < iters; ++r) {
    it_ms.push_back(event_ms(iteration));
    e_ms.push_back(estep);
    m_ms.push_back(mstep);
  }
  Result out;
  out.iter_ms = median(it_ms);
  out.estep_ms = median(e_ms);
  out.mstep_ms = median(m_ms);
  out.gflops = 3.0 * static_cast<double>(n) * k * static_cast<double>(d) * d / (out.iter_ms * 1e-3) / 1e9;
  std::fprintf(stderr, "  (last ELBO %.6f)\n", elbo);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool quick = false;
    int iters = 7;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--quick") quick = true;
      else if (a == "--iters" && i + 1 < argc) iters = std::max(1, std::stoi(argv[++i]));
      else throw std::invalid_argument("unknown option " + a + " (use --quick, --iters N)");
    }
    if (mixtura::cuda::device_count() == 0) {
      std::printf("cuda_gmm_bench: no CUDA device; nothing to measure\n");
      return 0;
    }
    const auto gpu = mixtura::make_cuda_backend();
    std::printf("device: %s\n", mixtura::cuda::device_description(0).c_str());
    const double peak = sgemm_gflops(8192);
    std::printf("cuBLAS SGEMM 8192^3 (FP32): %.0f GFLOP/s\n\n", peak);
    std::printf("| N x D, K (float32, full) | ms / EM iteration | E-step ms | M-step ms (host) | GFLOP/s (3NKD^2) | %% of SGEMM |\n");
    std::printf("|---|---|---|---|---|---|\n");
    struct Shape {
      Index n, d;
      int k;
    };
    const Index n = quick ? 100000 : 1000000;
    for (const Shape s : {Shape{n, 16, 16}, Shape{n, 32, 64}}) {
      const Result r = bench_shape(gpu, s.n, s.d, s.k, iters);
      std::printf("| %lld x %lld, K=%d | %.2f | %.2f | %.2f | %.0f | %.1f |\n", static_cast<long long>(s.n),
                  static_cast<long long>(s.d), s.k, r.iter_ms, r.estep_ms, r.mstep_ms, r.gflops, 100 * r.gflops / peak);
      std::printf("CUDA_GMM_BENCH {\"n\": %lld, \"d\": %lld, \"k\": %d, \"iter_ms\": %.4f, \"estep_ms\": %.4f, "
                  "\"mstep_ms\": %.4f, \"gflops\": %.1f, \"sgemm_gflops\": %.1f}\n",
                  static_cast<long long>(s.n), static_cast<long long>(s.d), s.k, r.iter_ms, r.estep_ms, r.mstep_ms,
                  r.gflops, peak);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_gmm_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}
