// K-means on the CUDA backend, with the CPU backend as the oracle.
//
// Two kinds of tests. Those named Device* need a GPU and skip without one: the GPU fit against the
// CPU fit from the same initial centres, k-means++ rows, bit-identical reruns, streaming against
// residency, predict/transform/score. The others run everywhere: they check the host-side logic that
// decides what the device does (chunk plans, statistics tiling) and replay the kernels' reduction
// order on the host with the very functions the kernels call (mixtura/cuda/kmeans_reduce.hpp).
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda_test_util.hpp"
#include "mixtura/cuda.hpp"
#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"
#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

/// Relative tolerance of GPU-vs-CPU comparisons: the reductions add in another order.
template <class T>
double tolerance() {
  return std::is_same<T, float>::value ? 1e-5 : 1e-10;
}

/// |a - b| <= rel * max(|a|, |b|, floor).
::testing::AssertionResult near_rel(double a, double b, double rel, double floor = 0.0) {
  const double scale = std::max({std::fabs(a), std::fabs(b), floor});
  if (std::fabs(a - b) <= rel * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " vs " << b << " (relative tolerance " << rel << ")";
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
RowMatrix<T> first_rows(const RowMatrix<T>& x, Index k, Index step) {
  RowMatrix<T> c(k, x.cols());
  for (Index i = 0; i < k; ++i) c.row(i) = x.row(i * step);
  return c;
}

/// The statistics of an assignment exactly as the device adds them up: per segment, one block per
/// (cluster tile, feature tile) whose 256 threads run stats_lane_fold, lanes added by stats_lane_sum,
/// the distortion by tree_sum; partials added to the totals in segment order, chunk after chunk.
template <class T>
std::vector<double> replay_device_stats(const RowMatrix<T>& X, const T* w, const std::vector<std::int32_t>& labels,
                                        const RowMatrix<T>& C, Index chunk_rows) {
  using namespace mixtura::cuda;
  const Index n = X.rows(), D = X.cols(), K = C.rows();
  const StatsTiling tl = stats_tiling(K, D);
  StatsLayout lay;
  lay.K = K;
  lay.D = D;
  lay.n_pieces = static_cast<Index>(tl.n_ktiles) * tl.n_ftiles;
  const RowMatrix<double> cd = C.template cast<double>();
  std::vector<double> totals(static_cast<std::size_t>(lay.size()), 0.0);
  for (Index first = 0; first < n; first += chunk_rows) {
    const Index rows = std::min(chunk_rows, n - first);
    const Index segs = segment_count(rows);
    std::vector<double> part(static_cast<std::size_t>(segs * lay.size()), -1.0);
    for (Index seg = 0; seg < segs; ++seg) {
      const Index r0 = first + seg * kSegmentRows, seg_rows = std::min(kSegmentRows, first + rows - r0);
      double* out = part.data() + seg * lay.size();
      for (int kt = 0; kt < tl.n_ktiles; ++kt)
        for (int ft = 0; ft < tl.n_ftiles; ++ft) {
          const int k0 = kt * tl.kc, kc = static_cast<int>(std::min<Index>(tl.kc, K - k0));
          const int d0 = ft * tl.dc, dc = static_cast<int>(std::min<Index>(tl.dc, D - d0));
          std::vector<double> cells(static_cast<std::size_t>(tl.tr * kc * (dc + 2)), 0.0);
          std::vector<double> red(kReduceThreads);
          for (int tid = 0; tid < kReduceThreads; ++tid) {
            const int rl = tid / tl.td, fl = tid % tl.td;
            red[tid] = stats_lane_fold(X.data() + r0 * D, w ? w + r0 : nullptr, labels.data() + r0, seg_rows, D,
                                       cd.data(), k0, kc, d0, dc, rl, tl.tr, fl, tl.td, fl == 0 && ft == 0,
                                       cells.data());
          }
          for (int k = 0; k < kc; ++k)
            for (int f = 0; f < dc + 2; ++f) {
              const double v = stats_lane_sum(cells.data(), tl.tr, kc, dc, k, f);
              if (f < dc)
                out[lay.sum_at(k0 + k, d0 + f)] = v;
              else if (ft == 0)
                out[f == dc ? lay.weight_at(k0 + k) : lay.count_at(k0 + k)] = v;
            }
          out[lay.distortion_at(static_cast<Index>(kt) * tl.n_ftiles + ft)] = tree_sum(red.data(), kReduceThreads);
        }
    }
    for (Index c = 0; c < lay.size(); ++c) {
      double acc = totals[c];
      for (Index s = 0; s < segs; ++s) acc += part[s * lay.size() + c];
      totals[c] = acc;
    }
  }
  return totals;
}

}  // namespace

// ---- host-side logic (runs everywhere) ------------------------------------------------------------

TEST(CudaPlan, ResidentWhenTheDataFits) {
  const auto p = cuda::plan_chunks(1000, 64, 64000);
  EXPECT_TRUE(p.resident);
  EXPECT_EQ(p.n_chunks, 1);
  EXPECT_EQ(p.chunk_rows, 1000);
  EXPECT_EQ(cuda::plan_chunks(0, 64, 1).n_chunks, 0);
}

TEST(CudaPlan, StreamsWholeSegmentsWithinHalfTheBudget) {
  // 1e6 rows of 64 bytes under 8 MiB: slots of at most 4 MiB, whole segments, covering every row.
  const std::int64_t rows = 1000000;
  const std::size_t row_bytes = 64, budget = std::size_t{8} << 20;
  const auto p = cuda::plan_chunks(rows, row_bytes, budget);
  EXPECT_FALSE(p.resident);
  EXPECT_EQ(p.chunk_rows % cuda::kSegmentRows, 0);
  EXPECT_LE(p.slot_bytes, budget / 2);
  EXPECT_EQ(p.slot_bytes, static_cast<std::size_t>(p.chunk_rows) * row_bytes);
  EXPECT_GE(p.n_chunks * p.chunk_rows, rows);
  EXPECT_LT((p.n_chunks - 1) * p.chunk_rows, rows);
  EXPECT_EQ(p.chunk_rows, (budget / 2 / row_bytes) / cuda::kSegmentRows * cuda::kSegmentRows);
}

TEST(CudaPlan, NeverLessThanOneSegmentAndSlotsCapped) {
  const auto tiny = cuda::plan_chunks(100000, 1024, 1000);  // budget below one row: one segment a chunk
  EXPECT_FALSE(tiny.resident);
  EXPECT_EQ(tiny.chunk_rows, cuda::kSegmentRows);
  const auto just_short = cuda::plan_chunks(20000, 8, 20000 * 8 - 1, std::size_t{1} << 40);
  EXPECT_FALSE(just_short.resident);
  EXPECT_EQ(just_short.chunk_rows, cuda::kSegmentRows);  // half the budget holds one whole segment
  EXPECT_EQ(just_short.n_chunks, 3);
  // The default slot cap bounds pinned memory even under a huge budget.
  EXPECT_TRUE(cuda::plan_chunks(std::int64_t{1} << 32, 256, std::size_t{1} << 40).resident);
  const auto q = cuda::plan_chunks(std::int64_t{1} << 34, 256, std::size_t{1} << 40);
  EXPECT_FALSE(q.resident);
  EXPECT_LE(q.slot_bytes, cuda::kDefaultSlotBytes);
  EXPECT_EQ(q.slot_bytes, cuda::kDefaultSlotBytes);  // 256 MiB of 256-byte rows is whole segments
}

TEST(CudaPlan, ResidencyBudget) {
  EXPECT_EQ(cuda::residency_budget(12345, 1 << 30, 1 << 30), 12345u);  // a cap wins
  const std::size_t gib = std::size_t{1} << 30;
  EXPECT_EQ(cuda::residency_budget(0, 100 * gib, 140 * gib), 100 * gib - 14 * gib - (gib / 2));
  EXPECT_EQ(cuda::residency_budget(0, gib / 4, 140 * gib), 0u);
}

TEST(CudaStatsTiling, CoversClustersAndFeaturesWithinSharedMemory) {
  for (Index K : {1, 2, 16, 40, 256, 1000})
    for (Index D : {1, 2, 3, 16, 17, 64, 150, 1024}) {
      const auto t = cuda::stats_tiling(K, D);
      EXPECT_EQ(t.td * t.tr, cuda::kReduceThreads);
      EXPECT_TRUE(t.td >= 1 && t.td <= 32 && (t.td & (t.td - 1)) == 0);
      EXPECT_GE(Index{t.td}, std::min<Index>(D, 32)) << "feature lanes idle while features wait";
      EXPECT_LE(t.shared_bytes, std::size_t{46} * 1024);
      EXPECT_GE(Index{t.kc} * t.n_ktiles, K);
      EXPECT_LT(Index{t.kc} * (t.n_ktiles - 1), K);
      EXPECT_GE(Index{t.dc} * t.n_ftiles, D);
      EXPECT_LT(Index{t.dc} * (t.n_ftiles - 1), D);
    }
  const auto small = cuda::stats_tiling(16, 16);  // the benchmark's 1e7 x 16, K = 16: one block a segment
  EXPECT_EQ(small.n_ktiles * small.n_ftiles, 1);
}

template <class T>
class CudaKMeansHost : public ::testing::Test {};
TYPED_TEST_SUITE(CudaKMeansHost, Scalars);

TYPED_TEST(CudaKMeansHost, ExactDistanceHasTheCpuOrder) {
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(3, 37, 5);
  for (Index d : {1, 7, 8, 9, 16, 37}) {
    // Same eight partial sums in the same order: equal up to the compilers' contraction choices.
    EXPECT_DOUBLE_EQ(cuda::sq_dist8(x.row(0).data(), x.row(1).data(), d),
                     detail::sq_dist(x.row(0).data(), x.row(1).data(), d));
  }
}

TYPED_TEST(CudaKMeansHost, ArgminDistanceGivesTheCpuLabels) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(2000, 5, 6, 3);
  const RowMatrix<T> c = first_rows(x, 6, 1);
  std::vector<std::int32_t> cpu(static_cast<std::size_t>(x.rows()), -1);
  kmeans_predict(CpuBackend{}, MatrixView<T>(x), VectorView<T>{}, c, cpu.data());
  std::vector<T> ct(static_cast<std::size_t>(c.size())), norms(static_cast<std::size_t>(c.rows()));
  for (Index k = 0; k < c.rows(); ++k) {
    T s = 0;
    for (Index d = 0; d < c.cols(); ++d) {
      ct[d * c.rows() + k] = T(-2) * c(k, d);
      s += c(k, d) * c(k, d);
    }
    norms[k] = s;
  }
  for (Index i = 0; i < x.rows(); ++i) {
    std::int32_t best = 0;
    T best_v = std::numeric_limits<T>::infinity();
    for (Index k = 0; k < c.rows(); ++k) {
      const T v = cuda::argmin_distance(x.row(i).data(), ct.data(), norms.data(), c.rows(), c.cols(), k);
      if (v < best_v) {
        best_v = v;
        best = static_cast<std::int32_t>(k);
      }
    }
    ASSERT_EQ(best, cpu[i]) << "row " << i;
  }
}

TYPED_TEST(CudaKMeansHost, ReplayedStatisticsMatchTheCpuAndIgnoreChunking) {
  using T = TypeParam;
  // Several segments and a short last one; K and D large enough for several cluster and feature tiles.
  const Index n = 3 * cuda::kSegmentRows + 1000, D = 150, K = 40;
  const RowMatrix<T> x = blobs<T>(n, D, K, 11);
  const RowMatrix<T> c = first_rows(x, K, 3);
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(0.5 + (i % 7) * 0.25);
  for (const bool weighted : {false, true}) {
    const T* wp = weighted ? w.data() : nullptr;
    const VectorView<T> wv = weighted ? VectorView<T>(w.data(), n) : VectorView<T>{};
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n), -1);
    const KMeansStats cpu = kmeans_assign(CpuBackend{}, MatrixView<T>(x), wv, c, labels.data());
    const auto whole = replay_device_stats(x, wp, labels, c, n);
    cuda::StatsLayout lay;
    lay.K = K;
    lay.D = D;
    const auto tl = cuda::stats_tiling(K, D);
    lay.n_pieces = static_cast<Index>(tl.n_ktiles) * tl.n_ftiles;
    ASSERT_GT(tl.n_ktiles, 1);
    ASSERT_GT(tl.n_ftiles, 1);
    double distortion = 0;
    for (Index p = 0; p < lay.n_pieces; ++p) distortion += whole[lay.distortion_at(p)];
    EXPECT_TRUE(near_rel(distortion, cpu.distortion, 1e-12));
    for (Index k = 0; k < K; ++k) {
      EXPECT_EQ(whole[lay.count_at(k)], static_cast<double>(cpu.count[k]));
      EXPECT_TRUE(near_rel(whole[lay.weight_at(k)], cpu.weight[k], 1e-13));
      for (Index d = 0; d < D; ++d)
        ASSERT_TRUE(near_rel(whole[lay.sum_at(k, d)], cpu.sums[k * D + d], 1e-12, std::fabs(cpu.weight[k])))
            << "cluster " << k << ", feature " << d;
    }
    // Streaming in chunks of one or two segments adds the same partials in the same order.
    EXPECT_TRUE(same_bits(whole, replay_device_stats(x, wp, labels, c, cuda::kSegmentRows)));
    EXPECT_TRUE(same_bits(whole, replay_device_stats(x, wp, labels, c, 2 * cuda::kSegmentRows)));
  }
}

TYPED_TEST(CudaKMeansHost, ReplayOfOneClusterAndOneFeature) {
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(100, 1, 2);
  const RowMatrix<T> c = first_rows(x, 1, 1);
  std::vector<std::int32_t> labels(100, 0);
  const auto t = replay_device_stats(x, static_cast<const T*>(nullptr), labels, c, 100);
  double sum = 0, j = 0;
  for (Index i = 0; i < 100; ++i) {
    sum += static_cast<double>(x(i, 0));
    const double d = static_cast<double>(x(i, 0)) - static_cast<double>(c(0, 0));
    j += d * d;
  }
  EXPECT_TRUE(near_rel(t[0], sum, 1e-14));
  EXPECT_EQ(t[1], 100.0);  // weight
  EXPECT_EQ(t[2], 100.0);  // count
  EXPECT_TRUE(near_rel(t[3], j, 1e-14));
}

TEST(CudaBackendHost, MakeBackendNamesTheProblem) {
  EXPECT_INVALID(make_cuda_backend(-1), "make_cuda_backend", "device index must be >= 0, got -1");
  EXPECT_INVALID(make_cuda_backend(0, -2), "make_cuda_backend", "n_threads must be >= 0, got -2");
  if (mixtura_test::has_cuda_device()) {
    EXPECT_INVALID(make_cuda_backend(cuda::device_count()), "make_cuda_backend", "out of range");
    return;
  }
  try {
    make_cuda_backend();
    ADD_FAILURE() << "make_cuda_backend() did not throw on a machine without a CUDA device";
  } catch (const CudaError& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

TYPED_TEST(CudaKMeansHost, BadInputGivesTheCpuErrorsBeforeTouchingTheDevice) {
  using T = TypeParam;
  // Validation is the generic loop's, before any pass: a backend without a context suffices.
  const CudaBackend none;
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p);
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  EXPECT_INVALID(km.fit_on(none, MatrixView<T>()), "KMeans::fit", "empty");
  EXPECT_INVALID(km.fit_on(none, MatrixView<T>(x.data(), 10, 2, 1)), "KMeans::fit", "stride (1)");
  Eigen::Matrix<T, Eigen::Dynamic, 1> short_w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(9);
  EXPECT_INVALID(km.fit_on(none, x, short_w), "sample_weight has 9 entries but X has 10 rows");
  x(7, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_INVALID(km.fit_on(none, x), "KMeans::fit", "non-finite", "row 7, column 1");
  x(7, 1) = 0;
  // Good input reaches the device: a backend not made by make_cuda_backend is refused clearly.
  EXPECT_INVALID(km.fit_on(none, x), "no context", "make_cuda_backend");
  EXPECT_FALSE(km.is_fitted());
}

// ---- on the device (skip without one) --------------------------------------------------------------

template <class T>
class CudaKMeansDevice : public ::testing::Test {};
TYPED_TEST_SUITE(CudaKMeansDevice, Scalars);

template <class T>
void expect_same_fit(const KMeans<T>& gpu, const KMeans<T>& cpu) {
  const double tol = tolerance<T>();
  ASSERT_EQ(gpu.n_iter(), cpu.n_iter());
  EXPECT_EQ(gpu.labels(), cpu.labels());
  EXPECT_TRUE(near_rel(gpu.inertia(), cpu.inertia(), tol));
  const auto& a = gpu.trace();
  const auto& b = cpu.trace();
  const double scale = b.front().distortion_assign;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(near_rel(a[i].distortion_assign, b[i].distortion_assign, tol)) << "iteration " << i;
    EXPECT_TRUE(near_rel(a[i].distortion_update, b[i].distortion_update, tol)) << "iteration " << i;
    // The shift is a difference of centres: compared on the scale of the distortion.
    EXPECT_TRUE(near_rel(a[i].center_shift, b[i].center_shift, tol, scale / static_cast<double>(gpu.labels().size())))
        << "iteration " << i;
    EXPECT_EQ(a[i].n_changed, b[i].n_changed) << "iteration " << i;
  }
  const auto& cg = gpu.cluster_centers();
  const auto& cc = cpu.cluster_centers();
  for (Index k = 0; k < cc.rows(); ++k)
    for (Index d = 0; d < cc.cols(); ++d)
      EXPECT_TRUE(near_rel(static_cast<double>(cg(k, d)), static_cast<double>(cc(k, d)), 10 * tol, 1.0));
}

TYPED_TEST(CudaKMeansDevice, FitFromGivenCentresMatchesTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const auto gpu = make_cuda_backend();
  // Shapes across the kernels' tiles: D below, at and above a depth step; K below and above 64.
  for (const auto& shape : std::vector<std::array<Index, 3>>{{5000, 2, 3}, {20000, 16, 16}, {12000, 33, 70}}) {
    const Index n = shape[0], d = shape[1], k = shape[2];
    const RowMatrix<T> x = blobs<T>(n, d, k, 7, 3.0);
    const RowMatrix<T> init = first_rows(x, k, 1);
    KMeansParams p;
    p.n_clusters = static_cast<int>(k);
    p.max_iter = 50;
    KMeans<T> a(p), b(p);
    a.fit_on(gpu, x, {}, init);
    b.fit(x, {}, init);
    SCOPED_TRACE(::testing::Message() << n << " x " << d << ", K = " << k);
    expect_same_fit(a, b);
  }
}

TYPED_TEST(CudaKMeansDevice, WeightedFitAndEmptyClustersMatchTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(9000, 4, 5, 21);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.25 + (i % 3));
  RowMatrix<T> init = first_rows(x, 6, 1);
  init.row(5).setConstant(T(1e4));  // far from everything: empty at the first assignment, re-seeded
  KMeansParams p;
  p.n_clusters = 6;
  KMeans<T> a(p), b(p);
  a.fit_on(make_cuda_backend(), x, w, init);
  b.fit(x, w, init);
  expect_same_fit(a, b);
  ASSERT_EQ(a.events().size(), b.events().size());
  ASSERT_FALSE(b.events().empty());
  for (std::size_t i = 0; i < a.events().size(); ++i) {
    EXPECT_EQ(a.events()[i].cluster, b.events()[i].cluster);
    EXPECT_EQ(a.events()[i].row, b.events()[i].row);
  }
}

TYPED_TEST(CudaKMeansDevice, KMeansPlusPlusDrawsTheCpuRows) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(30000, 6, 12, 4);
  for (std::uint64_t seed : {0u, 1u, 99u}) {
    const auto cpu = kmeans_plusplus_rows(CpuBackend{}, MatrixView<T>(x), VectorView<T>{}, 12, 0, CounterRng(seed));
    const auto gpu =
        kmeans_plusplus_rows(make_cuda_backend(), MatrixView<T>(x), VectorView<T>{}, 12, 0, CounterRng(seed));
    EXPECT_EQ(gpu, cpu) << "seed " << seed;
  }
  // And the whole default fit (k-means++, tol from the feature variance) agrees.
  KMeansParams p;
  p.n_clusters = 12;
  p.seed = 5;
  KMeans<T> a(p), b(p);
  a.fit_on(make_cuda_backend(), x);
  b.fit(x);
  expect_same_fit(a, b);
}

TYPED_TEST(CudaKMeansDevice, TwoRunsGiveTheSameBits) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(100000, 12, 20, 8);
  KMeansParams p;
  p.n_clusters = 20;
  p.max_iter = 20;
  p.tol = 0;
  KMeans<T> a(p), b(p), c(p);
  const auto gpu = make_cuda_backend();
  a.fit_on(gpu, x);
  b.fit_on(gpu, x);                  // the same context, its workspaces reused
  c.fit_on(make_cuda_backend(), x);  // a fresh context
  for (const KMeans<T>* other : {&b, &c}) {
    ASSERT_EQ(a.trace().size(), other->trace().size());
    for (std::size_t i = 0; i < a.trace().size(); ++i) {
      EXPECT_EQ(a.trace()[i].distortion_assign, other->trace()[i].distortion_assign);
      EXPECT_EQ(a.trace()[i].distortion_update, other->trace()[i].distortion_update);
      EXPECT_EQ(a.trace()[i].center_shift, other->trace()[i].center_shift);
    }
    EXPECT_EQ(a.inertia(), other->inertia());
    EXPECT_EQ(a.labels(), other->labels());
    EXPECT_TRUE(a.cluster_centers() == other->cluster_centers());
  }
}

TYPED_TEST(CudaKMeansDevice, StreamingGivesTheResidentBits) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // 50000 x 8 does not fit 600 kB: streamed in chunks of whole segments through the staging slots.
  const RowMatrix<T> x = blobs<T>(50000, 8, 6, 13);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(1 + i % 4);
  KMeansParams p;
  p.n_clusters = 6;
  p.seed = 3;
  KMeans<T> resident(p), streamed(p);
  resident.fit_on(make_cuda_backend(), x, w);
  streamed.fit_on(make_cuda_backend(0, 0, 600 * 1000), x, w);
  ASSERT_EQ(resident.trace().size(), streamed.trace().size());
  for (std::size_t i = 0; i < resident.trace().size(); ++i) {
    EXPECT_EQ(resident.trace()[i].distortion_assign, streamed.trace()[i].distortion_assign);
    EXPECT_EQ(resident.trace()[i].distortion_update, streamed.trace()[i].distortion_update);
  }
  EXPECT_EQ(resident.labels(), streamed.labels());
  EXPECT_TRUE(resident.cluster_centers() == streamed.cluster_centers());
  // A strided view (the left half of a wider matrix), uploaded whole and streamed.
  RowMatrix<T> wide = RowMatrix<T>::Zero(x.rows(), 2 * x.cols());
  wide.leftCols(x.cols()) = x;
  const MatrixView<T> left(wide.data(), x.rows(), x.cols(), wide.cols());
  for (const std::size_t cap : {std::size_t{0}, std::size_t{600 * 1000}}) {
    KMeans<T> strided(p);
    strided.fit_on(make_cuda_backend(0, 0, cap), left, w);
    EXPECT_EQ(strided.labels(), resident.labels()) << "cap " << cap;
    EXPECT_EQ(strided.inertia(), resident.inertia()) << "cap " << cap;
  }
}

TYPED_TEST(CudaKMeansDevice, PredictTransformScoreMatchTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(20000, 7, 9, 17);
  const RowMatrix<T> q = blobs<T>(3000, 7, 9, 18);
  KMeansParams p;
  p.n_clusters = 9;
  KMeans<T> km(p);
  km.fit(x);
  const auto gpu = make_cuda_backend();
  EXPECT_EQ(km.predict_on(gpu, q), km.predict(q));
  EXPECT_TRUE(near_rel(km.score_on(gpu, q), km.score(q), tolerance<T>()));
  const RowMatrix<T> tg = km.transform_on(gpu, q), tc = km.transform(q);
  ASSERT_EQ(tg.rows(), tc.rows());
  ASSERT_EQ(tg.cols(), tc.cols());
  for (Index i = 0; i < tg.rows(); ++i)
    for (Index k = 0; k < tg.cols(); ++k)
      ASSERT_TRUE(near_rel(static_cast<double>(tg(i, k)), static_cast<double>(tc(i, k)), 1e-6, 1e-6)) << i << ", " << k;
}

TYPED_TEST(CudaKMeansDevice, PassesMatchTheCpuPasses) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const Index n = 2 * cuda::kSegmentRows + 77;
  const RowMatrix<T> x = blobs<T>(n, 10, 4, 30);
  const RowMatrix<T> c = first_rows(x, 4, 5);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(n);
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(0.5 * (1 + i % 3));
  const auto gpu = make_cuda_backend();
  const double tol = tolerance<T>();
  EXPECT_TRUE(near_rel(mean_feature_variance(gpu, MatrixView<T>(x)), mean_feature_variance(CpuBackend{}, MatrixView<T>(x)), 1e-12));

  std::vector<std::int32_t> lg(static_cast<std::size_t>(n), -1), lc(static_cast<std::size_t>(n), -1);
  const KMeansStats sg = kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>(w), c, lg.data());
  const KMeansStats sc = kmeans_assign(CpuBackend{}, MatrixView<T>(x), VectorView<T>(w), c, lc.data());
  EXPECT_EQ(lg, lc);
  EXPECT_EQ(sg.n_changed, sc.n_changed);
  EXPECT_EQ(sg.count, sc.count);
  EXPECT_TRUE(near_rel(sg.distortion, sc.distortion, 1e-12));
  for (std::size_t j = 0; j < sg.sums.size(); ++j) EXPECT_TRUE(near_rel(sg.sums[j], sc.sums[j], 1e-12, 1.0));
  for (std::size_t k = 0; k < sg.weight.size(); ++k) EXPECT_TRUE(near_rel(sg.weight[k], sc.weight[k], 1e-13));
  // A second pass from the labels just written: nothing changes.
  EXPECT_EQ(kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>(w), c, lg.data()).n_changed, 0);

  const auto dg = kmeans_distances_to_assigned(gpu, MatrixView<T>(x), c, lc.data());
  const auto dc = kmeans_distances_to_assigned(CpuBackend{}, MatrixView<T>(x), c, lc.data());
  for (Index i = 0; i < n; ++i) ASSERT_TRUE(near_rel(dg[i], dc[i], 1e-14, 1e-300)) << i;

  std::vector<double> cg(static_cast<std::size_t>(n)), cc(static_cast<std::size_t>(n));
  const double pg = kmeans_update_closest(gpu, MatrixView<T>(x), VectorView<T>(w), x.row(3).data(), cg.data(), true);
  const double pc = kmeans_update_closest(CpuBackend{}, MatrixView<T>(x), VectorView<T>(w), x.row(3).data(), cc.data(), true);
  EXPECT_TRUE(near_rel(pg, pc, 1e-12));
  const double pg2 = kmeans_update_closest(gpu, MatrixView<T>(x), VectorView<T>(w), x.row(9).data(), cg.data(), false);
  const double pc2 = kmeans_update_closest(CpuBackend{}, MatrixView<T>(x), VectorView<T>(w), x.row(9).data(), cc.data(), false);
  EXPECT_TRUE(near_rel(pg2, pc2, 1e-12));
  for (Index i = 0; i < n; ++i) ASSERT_TRUE(near_rel(cg[i], cc[i], 1e-14, 1e-300)) << i;
  const std::vector<Index> cand = {1, 2, 100, n - 1};
  const auto vg = kmeans_candidate_potentials(gpu, MatrixView<T>(x), VectorView<T>(w), cc.data(), cand);
  const auto vc = kmeans_candidate_potentials(CpuBackend{}, MatrixView<T>(x), VectorView<T>(w), cc.data(), cand);
  ASSERT_EQ(vg.size(), vc.size());
  for (std::size_t j = 0; j < vg.size(); ++j) EXPECT_TRUE(near_rel(vg[j], vc[j], 1e-12));
  EXPECT_TRUE(near_rel(kmeans_predict(gpu, MatrixView<T>(x), VectorView<T>(w), c, nullptr),
                       kmeans_predict(CpuBackend{}, MatrixView<T>(x), VectorView<T>(w), c, nullptr), tol));
}

TEST(CudaBackendDevice, BackendWithoutContextOrWrongDeviceIsRefused) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend();
  be.device = be.device + 1;
  const RowMatrix<float> x = uniform<float>(100, 3, 1);
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<float> km(p);
  EXPECT_INVALID(km.fit_on(be, x), "differs from its context's device");
}
