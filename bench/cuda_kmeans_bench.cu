// Times the CUDA K-means iteration against the device's own ceilings, measured in the same run.
//
//   cuda_kmeans_bench [--quick] [--reps N]
//
// For each shape (float32): the pass on resident data (the fused assignment-and-statistics kernel,
// which reads X once, + the accumulation of its block partials; CUDA events, median of N), as GB/s of
// X and GFLOP/s of 2 N K D, against the device's read bandwidth (a streaming-read kernel, and a
// device-to-device copy) and its FP32 rate (a cuBLAS SGEMM of 8192^3); then the library call the Lloyd
// loop makes (kmeans_assign in the fit's data scope: the pass, labels kept on the device, the
// statistics back to the host) with the host update of the centres.
#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "context.cuh"
#include "kmeans_passes.cuh"
#include "mixtura/backend/cuda.hpp"
#include "mixtura/cuda/device.hpp"
#include "mixtura/cuda/kmeans_pass.hpp"

using namespace mixtura;
using namespace mixtura::cuda;

namespace {

#define CUBLAS_CHECK(call)                                                                  \
  do {                                                                                      \
    const cublasStatus_t st_ = (call);                                                      \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                     \
      std::fprintf(stderr, "%s failed: cuBLAS status %d\n", #call, static_cast<int>(st_)); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Median milliseconds of `reps` runs of enqueue() on `stream`, after two warm-ups.
template <class F>
double time_ms(cudaStream_t stream, int reps, F&& enqueue) {
  Event start(true), stop(true);
  for (int i = 0; i < 2; ++i) enqueue();
  MIXTURA_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    MIXTURA_CUDA_CHECK(cudaEventRecord(start.get(), stream));
    enqueue();
    MIXTURA_CUDA_CHECK(cudaEventRecord(stop.get(), stream));
    MIXTURA_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    float t = 0;
    MIXTURA_CUDA_CHECK(cudaEventElapsedTime(&t, start.get(), stop.get()));
    ms.push_back(t);
  }
  return median(ms);
}

__global__ void read_kernel(const float4* __restrict__ x, std::int64_t n, float* __restrict__ out) {
  float s = 0.f;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    s += (v.x + v.y) + (v.z + v.w);
  }
  if (s == 12345.678f) out[0] = s;  // keeps the loads; practically never stores
}

struct Ceilings {
  double read_gbs = 0, copy_gbs = 0, sgemm_gflops = 0;
};

Ceilings measure_ceilings(cudaStream_t stream, int reps) {
  Ceilings c;
  const std::size_t bytes = std::size_t{2} << 30;  // 2 GiB: far beyond the L2
  DeviceBuffer<unsigned char> a(bytes), b(bytes);
  DeviceBuffer<float> out(1);
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(a.data(), 0, bytes, stream));
  cudaDeviceProp prop{};
  int dev = 0;
  MIXTURA_CUDA_CHECK(cudaGetDevice(&dev));
  MIXTURA_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  const unsigned blocks = static_cast<unsigned>(prop.multiProcessorCount) * 8;
  const double read_ms = time_ms(stream, reps, [&] {
    read_kernel<<<blocks, 256, 0, stream>>>(reinterpret_cast<const float4*>(a.data()),
                                            static_cast<std::int64_t>(bytes / 16), out.data());
  });
  c.read_gbs = static_cast<double>(bytes) / (read_ms * 1e6);
  const double copy_ms = time_ms(stream, reps, [&] {
    MIXTURA_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, stream));
  });
  c.copy_gbs = 2.0 * static_cast<double>(bytes) / (copy_ms * 1e6);  // read + write

  const int n = 8192;
  DeviceBuffer<float> A(static_cast<std::size_t>(n) * n), B(static_cast<std::size_t>(n) * n),
      C(static_cast<std::size_t>(n) * n);
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(A.data(), 0, A.size() * sizeof(float), stream));
  MIXTURA_CUDA_CHECK(cudaMemsetAsync(B.data(), 0, B.size() * sizeof(float), stream));
  cublasHandle_t h = nullptr;
  CUBLAS_CHECK(cublasCreate(&h));
  CUBLAS_CHECK(cublasSetStream(h, stream));
  CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));  // plain FP32, no TF32 tensor cores
  const float one = 1.f, zero = 0.f;
  const double gemm_ms = time_ms(stream, std::max(3, reps / 4), [&] {
    CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, A.data(), n, B.data(), n, &zero, C.data(), n));
  });
  CUBLAS_CHECK(cublasDestroy(h));
  c.sgemm_gflops = 2.0 * n * static_cast<double>(n) * n / (gemm_ms * 1e6);
  return c;
}

/// n x d uniform floats in [0, 1), filled by all host threads (a counter hash per element).
std::vector<float> random_rows(std::int64_t n, int d) {
  std::vector<float> x(static_cast<std::size_t>(n) * d);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  const std::size_t size = x.size(), per = (size + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (std::size_t i = t * per; i < std::min(size, (t + 1) * per); ++i) {
        std::uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        x[i] = static_cast<float>((z ^ (z >> 31)) >> 40) * 0x1.0p-24f;
      }
    });
  for (auto& th : pool) th.join();
  return x;
}

struct Shape {
  std::int64_t n;
  int d, k;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--reps N]\n", argv[0]);
      return 2;
    }
  }
  if (device_count() == 0) {
    std::printf("cuda_kmeans_bench: no CUDA device; nothing to time\n");
    return 0;
  }
  const CudaBackend be = make_cuda_backend();
  Context& ctx = *be.ctx;
  DeviceGuard guard(ctx.device());
  const cudaStream_t st = ctx.stream();
  std::printf("device: %s\n", device_description(ctx.device()).c_str());
  const Ceilings ceil = measure_ceilings(st, reps);
  std::printf("ceilings: streaming read %.0f GB/s, device copy %.0f GB/s (read + write), SGEMM 8192^3 %.1f TFLOP/s\n",
              ceil.read_gbs, ceil.copy_gbs, ceil.sgemm_gflops / 1e3);

  const std::vector<Shape> shapes =
      quick ? std::vector<Shape>{{1000000, 16, 16}, {200000, 64, 256}} : std::vector<Shape>{{10000000, 16, 16}, {1000000, 64, 256}};
  std::printf("\n%-22s %9s %9s %7s %9s %7s %12s\n", "K-means float32", "pass ms", "GB/s", "%read", "GFLOP/s", "%fp32",
              "iter ms(lib)");
  for (const Shape& s : shapes) {
    const std::vector<float> x = random_rows(s.n, s.d);
    const HostMatrix<float> X{x.data(), s.n, s.d, s.d};
    const std::vector<float> centers(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(s.k) * s.d);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(s.n), -1);
    CudaDataScope scope(be);  // X stays resident for everything below

    // The library call of one Lloyd iteration, then the host update of the centres.
    std::vector<double> weight(s.k), sums(static_cast<std::size_t>(s.k) * s.d);
    std::vector<std::int64_t> count(s.k);
    std::vector<float> next(centers.size());
    double distortion = 0;
    std::int64_t changed = 0;
    const double lib_ms = time_ms(st, reps, [&] {
      kmeans_assign(be, X, RowWeights<float>{}, centers.data(), s.k, labels.data(), weight.data(), count.data(),
                    sums.data(), &distortion, &changed);
      for (int k = 0; k < s.k; ++k)
        for (int d = 0; d < s.d; ++d)
          next[static_cast<std::size_t>(k) * s.d + d] =
              weight[k] > 0 ? static_cast<float>(sums[static_cast<std::size_t>(k) * s.d + d] / weight[k]) : centers[k * s.d + d];
    });

    // The same pass on the device alone, without the statistics' trip to the host: what the kernels achieve.
    auto& ws = ctx.extension<cuda::detail::KMeansWorkspace<float>>();
    cuda::detail::upload_argmin_centers(ctx, ws, centers.data(), s.k, s.d);
    cuda::detail::upload_double_centers(ctx, ws, centers.data(), s.k, s.d);
    const cuda::detail::AssignPlan<float> plan(ctx, s.n, s.k, s.d);
    unsigned long long* dchanged = ws.counter.reserve(1);
    double pass_ms = 0;
    ctx.for_each_chunk(X, static_cast<const float*>(nullptr), [&](const DeviceChunk<float>& c) {
      std::int32_t* dlabels = ws.labels.reserve(static_cast<std::size_t>(s.n));
      const cuda::detail::AssignTotals acc = cuda::detail::start_assign_totals(ctx, ws, plan);
      pass_ms = time_ms(st, reps,
                        [&] { cuda::detail::enqueue_assign_chunk(ctx, ws, c, plan, dlabels, dchanged, acc); });
    });
    const double bytes = static_cast<double>(s.n) * s.d * sizeof(float);
    const double flops = 2.0 * static_cast<double>(s.n) * s.k * s.d;
    const double gbs = bytes / (pass_ms * 1e6), gflops = flops / (pass_ms * 1e6);
    char name[64];
    std::snprintf(name, sizeof name, "%lldx%d K=%d", static_cast<long long>(s.n), s.d, s.k);
    std::printf("%-22s %9.3f %9.0f %6.1f%% %9.0f %6.1f%% %12.3f\n", name, pass_ms, gbs, 100.0 * gbs / ceil.read_gbs,
                gflops, 100.0 * gflops / ceil.sgemm_gflops, lib_ms);
    std::printf("%-22s %lld rows a block, %d row lanes, statistics cells in %s memory\n", "",
                static_cast<long long>(plan.tiling.block_rows), plan.tiling.tr,
                plan.shared_cells ? "shared" : "global");
    std::fflush(stdout);
  }
  std::printf("\npass: the fused assignment-and-statistics kernel on resident X (one read) + the sum of partials.\n"
              "iter ms(lib): kmeans_assign as the Lloyd loop calls it (labels stay on the device) + the update.\n");
  return 0;
}
