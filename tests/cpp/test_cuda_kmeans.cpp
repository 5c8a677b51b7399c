// K-means on the CUDA backend, with the CPU backend as the oracle.
//
// Two kinds of tests. Those named Device* need a GPU and skip without one: the GPU fit against the
// CPU fit from the same initial centres, k-means++ rows, bit-identical reruns, streaming against
// residency, labels kept on the device during a fit, the device's statistics against their host
// replay, predict/transform/score. The others run everywhere: they check the host-side logic that
// decides what the device does (chunk plans, statistics tiling, which labels are held) and replay the
// fused kernel's order of additions on the host with the very functions the kernel calls
// (mixtura/cuda/kmeans_reduce.hpp, kmeans_replay.hpp), up to whole fits with labels held away from
// the host array.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cuda_test_util.hpp"
#include "kmeans_replay.hpp"
#include "mixtura/cuda.hpp"
#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"
#include "mixtura/cuda/resident_labels.hpp"
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

/// |a - b| <= rel * max(|a|, |b|, floor) for every statistic of the two passes, counts exactly.
::testing::AssertionResult near_stats(const KMeansStats& a, const KMeansStats& b, double rel) {
  if (a.count != b.count) return ::testing::AssertionFailure() << "counts differ";
  for (std::size_t k = 0; k < a.weight.size(); ++k) {
    if (!near_rel(a.weight[k], b.weight[k], rel))
      return near_rel(a.weight[k], b.weight[k], rel) << " (weight " << k << ")";
    const std::size_t D = a.sums.size() / a.weight.size();
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t j = k * D + d;
      // A sum is compared on the scale of its cluster's weight (a coordinate near 0 sums to near 0).
      if (!near_rel(a.sums[j], b.sums[j], rel, std::fabs(b.weight[k])))
        return near_rel(a.sums[j], b.sums[j], rel, std::fabs(b.weight[k])) << " (sum " << k << ", " << d << ")";
    }
  }
  return near_rel(a.distortion, b.distortion, rel);
}

/// The largest relative difference of the sums, weights and distortion (sums on their weight's scale).
double max_rel_diff(const KMeansStats& a, const KMeansStats& b) {
  double m = std::fabs(a.distortion - b.distortion) / std::fabs(b.distortion);
  const std::size_t D = a.sums.size() / a.weight.size();
  for (std::size_t k = 0; k < a.weight.size(); ++k) {
    if (b.weight[k] > 0) m = std::max(m, std::fabs(a.weight[k] - b.weight[k]) / b.weight[k]);
    for (std::size_t d = 0; d < D; ++d)
      if (b.weight[k] > 0) m = std::max(m, std::fabs(a.sums[k * D + d] - b.sums[k * D + d]) / b.weight[k]);
  }
  return m;
}

/// Shapes for each statistics tiling of the fused kernel: many row lanes of one cluster group (the
/// first benchmark's 16 x 16), one copy shared by cluster groups (the second's 64 x 256), two copies
/// of four groups with features past 32 lanes, tiny rows (blocks of one tile, so several groups a
/// chunk), one feature. The host replay and the device test run the same cases.
struct FusedCase {
  Index n, d, k;
};
inline std::vector<FusedCase> fused_cases() {
  const Index seg = cuda::kSegmentRows;
  return {FusedCase{3 * seg + 1000, 16, 16}, FusedCase{2 * seg + 77, 64, 256}, FusedCase{3 * seg + 1000, 33, 70},
          FusedCase{3 * seg + seg / 2 + 5, 64, 2}, FusedCase{seg + 3, 1, 3}};
}

/// Weights cycling through 0.5, 0.75, ..., 2.
template <class T>
std::vector<T> cycling_weights(Index n) {
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(0.5 + (i % 7) * 0.25);
  return w;
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

TEST(CudaFusedTiling, OwnersCoverTheThreadsAndBlocksTheSegments) {
  for (Index K : {1, 2, 3, 16, 40, 70, 256, 1000})
    for (Index D : {1, 2, 3, 16, 17, 64, 150, 1024})
      for (std::size_t elem : {sizeof(float), sizeof(double)}) {
        SCOPED_TRACE(::testing::Message() << "K = " << K << ", D = " << D << ", " << elem << " bytes");
        const auto t = cuda::fused_tiling(K, D, elem);
        EXPECT_EQ(t.td * t.tr * t.groups, cuda::kReduceThreads);
        EXPECT_TRUE(t.td >= 1 && t.td <= 32 && (t.td & (t.td - 1)) == 0);
        EXPECT_GE(Index{t.td}, std::min<Index>(D, 32)) << "feature lanes idle while features wait";
        EXPECT_TRUE((t.tr & (t.tr - 1)) == 0 && cuda::kAssignTileRows % t.tr == 0) << "row lanes must divide a tile";
        if (t.tr > 1) {
          EXPECT_LE(t.shared_bytes(), cuda::kLaneCellsBytes);
        }
        if (t.groups > 1 && t.tr * 2 <= cuda::kAssignTileRows) {  // twice the row lanes would not fit
          EXPECT_GT(2 * t.shared_bytes(), cuda::kLaneCellsBytes);
        }
        EXPECT_EQ(t.cells(), K * (D + 2));
        EXPECT_EQ(t.width(), K * (D + 2) + 1);
        EXPECT_EQ(t.count_at(K - 1) + 1, t.distortion_at());
        // Blocks never straddle a segment (so never a streamed chunk), and are big enough that their
        // partials add at most 1/16 to the bytes of X, unless already a segment long.
        EXPECT_TRUE(t.block_rows >= cuda::kAssignTileRows && cuda::kSegmentRows % t.block_rows == 0);
        if (t.block_rows < cuda::kSegmentRows) {
          EXPECT_GE(static_cast<double>(t.block_rows) * D * elem, 16.0 * t.width() * sizeof(double));
        }
        if (t.block_rows > cuda::kAssignTileRows) {  // and no bigger than that
          EXPECT_LT(static_cast<double>(t.block_rows / 2) * D * elem, 16.0 * t.width() * sizeof(double));
        }
      }
  // The benchmark's shapes (float32). 1e7 x 16, K = 16: 16 row lanes of one cluster group, 36 KiB of
  // cells, a block of 1024 rows (64 KiB of X for a 2.3 KiB partial).
  const auto small = cuda::fused_tiling(16, 16, sizeof(float));
  EXPECT_EQ(small.tr, 16);
  EXPECT_EQ(small.groups, 1);
  EXPECT_EQ(small.shared_bytes(), std::size_t{16 * 16 * 18 * 8});
  EXPECT_EQ(small.block_rows, 1024);
  // 1e6 x 64, K = 256: one copy of 132 KiB (shared memory where the device allows it), 8 cluster
  // groups of 32 feature lanes, a block of a whole segment (2 MiB of X for a 132 KiB partial).
  const auto large = cuda::fused_tiling(256, 64, sizeof(float));
  EXPECT_EQ(large.tr, 1);
  EXPECT_EQ(large.groups, 8);
  EXPECT_EQ(large.td, 32);
  EXPECT_EQ(large.shared_bytes(), std::size_t{256 * 66 * 8});
  EXPECT_EQ(large.block_rows, cuda::kSegmentRows);
}

TEST(CudaFusedTiling, ChunkGroupsContinueAcrossChunks) {
  using cuda::ChunkGroups;
  const Index G = cuda::kGroupBlocks;
  // Resident: every group of 3.5 groups' worth of blocks, the last one short but complete.
  const ChunkGroups all(0, 3 * G + G / 2, 3 * G + G / 2);
  EXPECT_EQ(all.first_group, 0);
  EXPECT_EQ(all.n_groups, 4);
  EXPECT_FALSE(all.starts_inside);
  EXPECT_TRUE(all.last_complete);
  Index b = 0, e = 0;
  all.blocks_of(3, &b, &e);
  EXPECT_EQ(b, 3 * G);
  EXPECT_EQ(e, 3 * G + G / 2);
  // A chunk inside one group: continues its carry and leaves it open.
  const ChunkGroups inside(G + 8, 8, 10 * G);
  EXPECT_EQ(inside.first_group, 1);
  EXPECT_EQ(inside.n_groups, 1);
  EXPECT_TRUE(inside.from_carry(0));
  EXPECT_FALSE(inside.last_complete);
  inside.blocks_of(0, &b, &e);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(e, 8);
  // A chunk across a group boundary: closes the first group, opens the next.
  const ChunkGroups across(G - 8, 16, 10 * G);
  EXPECT_EQ(across.n_groups, 2);
  EXPECT_TRUE(across.from_carry(0));
  EXPECT_FALSE(across.from_carry(1));
  EXPECT_FALSE(across.last_complete);
  across.blocks_of(0, &b, &e);
  EXPECT_EQ(e - b, 8);
  across.blocks_of(1, &b, &e);
  EXPECT_EQ(b, 8);
  EXPECT_EQ(e, 16);
  // The data's last chunk completes its last group.
  EXPECT_TRUE(ChunkGroups(2 * G + 3, 5, 2 * G + 8).last_complete);
}

TEST(CudaHeldLabels, HeldForTheFitsScopeUntilBroughtBack) {
  cuda::ScopeStack scopes;
  cuda::HeldLabels<HostLabelsBuffer> held;
  std::vector<std::int32_t> a(100, -1), b(100, -1);
  EXPECT_EQ(scopes.outer(), 0u);
  const std::uint64_t fit = scopes.enter();
  const std::uint64_t pass = scopes.enter();  // a pass inside the fit sees the fit as its outer scope
  EXPECT_EQ(scopes.outer(), fit);
  EXPECT_NE(pass, fit);
  EXPECT_EQ(held.find(a.data(), 100, scopes), nullptr);
  held.hold(a.data(), 100, scopes.outer(), scopes).v.assign(100, 7);
  scopes.leave();
  ASSERT_NE(held.find(a.data(), 100, scopes), nullptr);  // later passes of the fit find it
  EXPECT_EQ(held.find(a.data(), 100, scopes)->v[3], 7);
  EXPECT_EQ(held.find(a.data(), 99, scopes), nullptr);    // another shape is another array
  EXPECT_EQ(held.find(b.data(), 100, scopes), nullptr);
  held.hold(b.data(), 100, fit, scopes);                  // a second array is held beside the first
  EXPECT_EQ(held.held(), 2u);
  EXPECT_NE(held.find(a.data(), 100, scopes), nullptr);
  held.release(a.data());                                 // brought back: the host array is the labels
  EXPECT_EQ(held.find(a.data(), 100, scopes), nullptr);
  EXPECT_NE(held.find(b.data(), 100, scopes), nullptr);
  scopes.leave();  // the fit ends: what it held is dropped, brought back or not
  EXPECT_EQ(held.find(b.data(), 100, scopes), nullptr);
  // A new fit with an array at the same address must not find the old copy.
  const std::uint64_t next = scopes.enter();
  EXPECT_NE(next, fit);
  EXPECT_EQ(held.find(b.data(), 100, scopes), nullptr);
  held.hold(b.data(), 100, next, scopes);
  EXPECT_EQ(held.held(), 1u) << "the copy of the ended fit is reused";
  scopes.leave();
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
  std::vector<T> shift(static_cast<std::size_t>(c.cols())), ct(static_cast<std::size_t>(c.size())),
      norms(static_cast<std::size_t>(c.rows()));
  cuda::argmin_centers(c.data(), c.rows(), c.cols(), shift.data(), ct.data(), norms.data());
  for (Index i = 0; i < x.rows(); ++i) {
    std::int32_t best = 0;
    T best_v = std::numeric_limits<T>::infinity();
    for (Index k = 0; k < c.rows(); ++k) {
      const T v = cuda::argmin_distance(x.row(i).data(), shift.data(), ct.data(), norms.data(), c.rows(), c.cols(), k);
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
  const Index seg = cuda::kSegmentRows;
  for (const FusedCase& cs : fused_cases()) {
    SCOPED_TRACE(::testing::Message() << cs.n << " x " << cs.d << ", K = " << cs.k);
    const RowMatrix<T> x = blobs<T>(cs.n, cs.d, cs.k, 11);
    const RowMatrix<T> c = first_rows(x, cs.k, 3);
    const auto tl = cuda::fused_tiling(cs.k, cs.d, sizeof(T));
    const std::vector<T> w = cycling_weights<T>(cs.n);
    for (const bool weighted : {false, true}) {
      const T* wp = weighted ? w.data() : nullptr;
      const VectorView<T> wv = weighted ? VectorView<T>(w.data(), cs.n) : VectorView<T>{};
      std::vector<std::int32_t> labels(static_cast<std::size_t>(cs.n), -1);
      const KMeansStats cpu = kmeans_assign(CpuBackend{}, MatrixView<T>(x), wv, c, labels.data());
      const auto whole = replay_fused_stats(x, wp, labels, c, cs.n);
      const KMeansStats gpu = stats_of_totals(whole, cs.k, cs.d, sizeof(T));
      // Both sum the same products in double, in another order: a few ulps of the largest term.
      EXPECT_TRUE(near_stats(gpu, cpu, 1e-12)) << (weighted ? "weighted" : "unit weights");
      EXPECT_EQ(gpu.count, cpu.count);
      // Streaming in chunks of one, two or three segments: blocks, groups and carries give the same bits.
      for (const Index chunk : {seg, 2 * seg, 3 * seg})
        EXPECT_TRUE(same_bits(whole, replay_fused_stats(x, wp, labels, c, chunk))) << "chunks of " << chunk << " rows";
      if (cs.d == 64 && cs.k == 2) {
        ASSERT_EQ(tl.block_rows, cuda::kAssignTileRows);  // groups of one segment: several a chunk
        ASSERT_GT(cs.n / tl.block_rows / cuda::kGroupBlocks, 2);
      }
    }
  }
}

TYPED_TEST(CudaKMeansHost, ReplayAgreementWithTheCpuIsMeasured) {
  using T = TypeParam;
  // The benchmark's first shape, scaled down: uniform data (labels spread, no structure), K = 16.
  const Index n = 4 * cuda::kSegmentRows, D = 16, K = 16;
  const RowMatrix<T> x = uniform<T>(n, D, 5);
  const RowMatrix<T> c = first_rows(x, K, 7);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n), -1);
  const KMeansStats cpu = kmeans_assign(CpuBackend{}, MatrixView<T>(x), VectorView<T>{}, c, labels.data());
  const KMeansStats gpu = stats_of_totals(replay_fused_stats(x, static_cast<const T*>(nullptr), labels, c, n), K, D,
                                          sizeof(T));
  const double diff = max_rel_diff(gpu, cpu);
  std::printf("[ measured ] replayed fused statistics vs the CPU (%s, %lld x %lld, K = %lld): %.2e relative\n",
              std::is_same<T, float>::value ? "float" : "double", static_cast<long long>(n),
              static_cast<long long>(D), static_cast<long long>(K), diff);
  EXPECT_LT(diff, 1e-13);
}

TYPED_TEST(CudaKMeansHost, ReplayOfOneClusterAndOneFeature) {
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(100, 1, 2);
  const RowMatrix<T> c = first_rows(x, 1, 1);
  std::vector<std::int32_t> labels(100, 0);
  const auto t = replay_fused_stats(x, static_cast<const T*>(nullptr), labels, c, 100);
  double sum = 0, j = 0;
  for (Index i = 0; i < 100; ++i) {
    sum += static_cast<double>(x(i, 0));
    const double d = static_cast<double>(x(i, 0)) - static_cast<double>(c(0, 0));
    j += d * d;
  }
  ASSERT_EQ(t.size(), 4u);  // sum, weight, count, distortion
  EXPECT_TRUE(near_rel(t[0], sum, 1e-14));
  EXPECT_EQ(t[1], 100.0);  // weight
  EXPECT_EQ(t[2], 100.0);  // count
  EXPECT_TRUE(near_rel(t[3], j, 1e-14));
}

/// The distortion of the two-pass prediction the fused kernel replaced: labels first, then
/// row_reduce_kernel over the labels (one block per segment, thread t adding w_r ||x_r - c||^2 for
/// rows t, t + 256, ... in order, nvcc's default contraction making the weighted add one fused
/// multiply-add; the threads by tree_sum; the segments in order).
template <class T>
double two_pass_distortion(const RowMatrix<T>& x, const T* w, const RowMatrix<T>& c,
                           const std::vector<std::int32_t>& labels) {
  const Index n = x.rows(), D = x.cols();
  double total = 0.0;
  for (Index r0 = 0; r0 < n; r0 += cuda::kSegmentRows) {
    const Index r1 = std::min(n, r0 + cuda::kSegmentRows);
    std::vector<double> s(cuda::kReduceThreads, 0.0);
    for (int t = 0; t < cuda::kReduceThreads; ++t)
      for (Index r = r0 + t; r < r1; r += cuda::kReduceThreads) {
        const double d = cuda::sq_dist8(x.row(r).data(), c.row(labels[r]).data(), D);
        s[t] = w ? std::fma(static_cast<double>(w[r]), d, s[t]) : s[t] + d;
      }
    total += cuda::tree_sum(s.data(), cuda::kReduceThreads);
  }
  return total;
}

TYPED_TEST(CudaKMeansHost, ReplayedPredictionIsTheTwoPassBitsInOneRead) {
  using T = TypeParam;
  // The prediction kernel reads X once (labels of two tiles, then one row per thread for the
  // distortion): its replay must give the labels and the very distortion bits of the two passes it
  // replaced (same rows per thread in the same order), and the CPU's labels and distortion to 1e-12.
  // Shapes: the fused cases (rows past whole segments, steps cut short, K = 2 .. 256, D = 1 .. 64)
  // and a few rows less than one tile.
  std::vector<FusedCase> cases = fused_cases();
  cases.push_back(FusedCase{100, 3, 4});
  for (const FusedCase& cs : cases) {
    SCOPED_TRACE(::testing::Message() << cs.n << " x " << cs.d << ", K = " << cs.k);
    const RowMatrix<T> x = blobs<T>(cs.n, cs.d, cs.k, 19);
    const RowMatrix<T> c = first_rows(x, cs.k, 3);
    const std::vector<T> w = cycling_weights<T>(cs.n);
    for (const bool weighted : {false, true}) {
      const T* wp = weighted ? w.data() : nullptr;
      std::vector<std::int32_t> labels;
      const double j = replay_predict(x, wp, c, labels);
      const double before = two_pass_distortion(x, wp, c, labels);
      EXPECT_EQ(std::memcmp(&j, &before, sizeof(double)), 0)
          << j << " vs " << before << (weighted ? " (weighted)" : "");
      std::vector<std::int32_t> cpu(static_cast<std::size_t>(cs.n), -1);
      const double jc = kmeans_predict(CpuBackend{}, MatrixView<T>(x),
                                       weighted ? VectorView<T>(w.data(), cs.n) : VectorView<T>{}, c, cpu.data());
      EXPECT_EQ(labels, cpu);
      EXPECT_TRUE(near_rel(j, jc, 1e-12));
    }
  }
  // Ties go to the lower index: rows at 0 between centres -1 and +1 (distance 1 to both).
  RowMatrix<T> x = RowMatrix<T>::Zero(300, 1), c(2, 1);
  c << T(1), T(-1);
  std::vector<std::int32_t> labels;
  EXPECT_EQ(replay_predict(x, static_cast<const T*>(nullptr), c, labels), 300.0);
  EXPECT_EQ(labels, std::vector<std::int32_t>(300, 0));
}

/// The replay rounds float distances as the device does, with fused multiply-adds; a CPU build
/// without FMA (the x86-64-v2 baseline) rounds them otherwise, so float near-ties may go the other
/// way there: a few labels (at most 1 in 1000) and the distortions to float precision.
template <class T>
void expect_replay_fit_matches_cpu(const KMeans<T>& replay, const KMeans<T>& cpu) {
#if defined(__FMA__) || defined(__aarch64__)
  constexpr bool same_rounding = true;
#else
  constexpr bool same_rounding = !std::is_same<T, float>::value;
#endif
  const double rel = same_rounding ? 1e-12 : 1e-6;
  ASSERT_EQ(replay.n_iter(), cpu.n_iter());
  if (same_rounding) {
    EXPECT_EQ(replay.labels(), cpu.labels());
  } else {
    std::size_t differ = 0;
    for (std::size_t i = 0; i < cpu.labels().size(); ++i) differ += replay.labels()[i] != cpu.labels()[i];
    EXPECT_LE(differ * 1000, cpu.labels().size()) << differ << " labels differ";
  }
  EXPECT_TRUE(near_rel(replay.inertia(), cpu.inertia(), rel));
  for (std::size_t i = 0; i < cpu.trace().size(); ++i) {
    if (same_rounding) {
      EXPECT_EQ(replay.trace()[i].n_changed, cpu.trace()[i].n_changed) << "iteration " << i;
    }
    EXPECT_TRUE(near_rel(replay.trace()[i].distortion_assign, cpu.trace()[i].distortion_assign, rel)) << i;
    EXPECT_TRUE(near_rel(replay.trace()[i].distortion_update, cpu.trace()[i].distortion_update, rel)) << i;
  }
  ASSERT_EQ(replay.events().size(), cpu.events().size());
  for (std::size_t i = 0; i < cpu.events().size(); ++i) {
    EXPECT_EQ(replay.events()[i].cluster, cpu.events()[i].cluster);
    EXPECT_EQ(replay.events()[i].row, cpu.events()[i].row);
  }
}

TYPED_TEST(CudaKMeansHost, FitWithLabelsHeldOffTheHostMatchesTheCpu) {
  using T = TypeParam;
  // The fit loop on the replayed pass, labels held away from the host array between passes (the host
  // array reads wrong labels until they are brought back): empty clusters re-seeded from the far
  // rows (the loop reads and edits labels), weights, and restarts that reuse the labels' memory.
  const RowMatrix<T> x = blobs<T>(9000, 4, 5, 21);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.25 + (i % 3));
  RowMatrix<T> init = first_rows(x, 6, 1);
  init.row(5).setConstant(T(1e4));  // far from everything: empty at the first assignment, re-seeded
  KMeansParams p;
  p.n_clusters = 6;
  KMeans<T> a(p), b(p);
  const KMeansReplayBackend be;
  a.fit_on(be, x, w, init);
  b.fit(x, w, init);
  ASSERT_FALSE(b.events().empty()) << "the test needs a re-seeded cluster";
  expect_replay_fit_matches_cpu(a, b);
  // Back for the re-seeding; at the end kmeans_predict writes the host array itself.
  EXPECT_GE(be.state->n_to_host, 1);
  EXPECT_EQ(be.state->held.held(), 0u);
  EXPECT_EQ(be.state->scopes.depth(), 0u);

  KMeansParams q;
  q.n_clusters = 5;
  q.n_init = 4;
  q.seed = 9;
  q.tol = 0;  // runs to strict convergence: the last labels come from the last assignment
  KMeans<T> c(q), d(q);
  const int before = be.state->n_to_host;
  c.fit_on(be, x);
  d.fit(x);
  expect_replay_fit_matches_cpu(c, d);
  EXPECT_EQ(c.best_restart(), d.best_restart());
  EXPECT_GT(be.state->n_to_host, before) << "strict convergence keeps the last assignment's labels: brought back";
}

/// Same restarts, traces, events, labels and centres, bit for bit.
template <class T>
void expect_identical_fit(const KMeans<T>& a, const KMeans<T>& b) {
  ASSERT_EQ(a.runs().size(), b.runs().size());
  EXPECT_EQ(a.best_restart(), b.best_restart());
  for (std::size_t r = 0; r < b.runs().size(); ++r) {
    const auto& ta = a.runs()[r].trace;
    const auto& tb = b.runs()[r].trace;
    ASSERT_EQ(ta.size(), tb.size()) << "restart " << r;
    EXPECT_EQ(a.runs()[r].inertia, b.runs()[r].inertia) << "restart " << r;
    for (std::size_t i = 0; i < tb.size(); ++i) {
      EXPECT_EQ(ta[i].distortion_assign, tb[i].distortion_assign) << "restart " << r << ", iteration " << i;
      EXPECT_EQ(ta[i].distortion_update, tb[i].distortion_update) << "restart " << r << ", iteration " << i;
      EXPECT_EQ(ta[i].center_shift, tb[i].center_shift) << "restart " << r << ", iteration " << i;
      EXPECT_EQ(ta[i].n_changed, tb[i].n_changed) << "restart " << r << ", iteration " << i;
    }
  }
  EXPECT_EQ(a.labels(), b.labels());
  ASSERT_EQ(a.cluster_centers().size(), b.cluster_centers().size());
  EXPECT_EQ(std::memcmp(a.cluster_centers().data(), b.cluster_centers().data(),
                        static_cast<std::size_t>(b.cluster_centers().size()) * sizeof(T)),
            0);
  ASSERT_EQ(a.events().size(), b.events().size());
  for (std::size_t i = 0; i < b.events().size(); ++i) {
    EXPECT_EQ(a.events()[i].kind, b.events()[i].kind);
    EXPECT_EQ(a.events()[i].cluster, b.events()[i].cluster);
    EXPECT_EQ(a.events()[i].row, b.events()[i].row);
  }
}

/// x copied into rows `stride` values apart (the padding NaN: a pass that read it would show).
template <class T>
std::vector<T> strided_copy(const RowMatrix<T>& x, Index stride) {
  std::vector<T> v(static_cast<std::size_t>(x.rows() * stride), std::numeric_limits<T>::quiet_NaN());
  for (Index i = 0; i < x.rows(); ++i) std::copy_n(x.row(i).data(), x.cols(), v.data() + i * stride);
  return v;
}

TYPED_TEST(CudaKMeansHost, FitOnDataTheHostCannotReadIsTheHostArrayFit) {
  using T = TypeParam;
  // The whole fit loop on a DeviceMatrixView whose address the host cannot read (PROT_NONE): only the
  // backend's passes, fetch_rows and first_non_finite reach the values, by translating the address.
  // Any host read left in the loop (input check, initial rows, k-means++ candidates, re-seeded rows,
  // the scale of tol) faults. Results must be the host-array fit's, bit for bit, on the same passes.
  const RowMatrix<T> x = blobs<T>(9000, 4, 5, 21);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.25 + (i % 3));
  const std::vector<T> padded = strided_copy(x, 7);
  const MatrixView<T> host(x), host_strided(padded.data(), x.rows(), x.cols(), 7);
  const KMeansReplayBackend be;
  const HostUnreadableCopy<T> dev(be, host), dev_strided(be, host_strided);

  RowMatrix<T> init = first_rows(x, 6, 1);
  init.row(5).setConstant(T(1e4));  // far from everything: empty at the first assignment, re-seeded
  KMeansParams given;
  given.n_clusters = 6;  // tol > 0 (the default): the scale of tol is a pass over X
  KMeansParams plusplus;
  plusplus.n_clusters = 5;
  plusplus.n_init = 3;
  plusplus.seed = 9;
  KMeansParams random = plusplus;
  random.init = KMeansInit::random;
  random.n_init = 2;
  random.n_clusters = 7;

  struct Case {
    const char* name;
    KMeansParams p;
    bool weighted, with_init, strided;
  };
  for (const Case& c : {Case{"given, re-seeded", given, true, true, false},
                        Case{"k-means++, restarts", plusplus, false, false, false},
                        Case{"k-means++, weighted, strided rows", plusplus, true, false, true},
                        Case{"random, restarts", random, true, false, false}}) {
    SCOPED_TRACE(c.name);
    const VectorView<T> wv = c.weighted ? VectorView<T>(w) : VectorView<T>{};
    const MatrixView<T> iv = c.with_init ? MatrixView<T>(init) : MatrixView<T>{};
    // The oracle is the host-array fit on the same replayed passes (FitWithLabelsHeldOffTheHost...
    // compares those with the CPU's).
    KMeans<T> on_device(c.p), on_host(c.p);
    const int reads = be.state->n_device_reads;
    on_device.fit_on(be, c.strided ? dev_strided.view() : dev.view(), wv, iv);
    on_host.fit_on(be, c.strided ? host_strided : host, wv, iv);
    expect_identical_fit(on_device, on_host);
    EXPECT_GT(be.state->n_device_reads, reads) << "the loop asked the backend for X's values";
    if (c.with_init) {
      EXPECT_FALSE(on_device.events().empty()) << "the case needs a re-seeded cluster";
    }
    EXPECT_EQ(be.state->held.held(), 0u);

    EXPECT_EQ(on_device.predict_on(be, dev.view()), on_host.predict_on(be, host));
    EXPECT_EQ(on_device.score_on(be, dev.view(), wv), on_host.score_on(be, host, wv));
    EXPECT_TRUE(on_device.transform_on(be, dev.view()) == on_host.transform_on(be, host));
  }
}

TYPED_TEST(CudaKMeansHost, FitOnWeightsTheHostCannotReadIsTheHostArrayFit) {
  using T = TypeParam;
  // X and the sample weights both behind PROT_NONE. The passes read the weights in place, their check
  // is a device pass (first_bad_weight), and the loop's reads of every weight (the draws, random init,
  // the choice of re-seeded rows among rows of positive weight) go through fetch_rows: any other host
  // read of the weights faults. Results must be the host-array fit's bits, and those of device X with
  // host weights.
  const RowMatrix<T> x = blobs<T>(9000, 4, 5, 21);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.25 + (i % 3));
  const MatrixView<T> host(x);
  const KMeansReplayBackend be;
  const HostUnreadableCopy<T> dev(be, host), dev_w(be, MatrixView<T>(w.data(), w.size(), 1));

  RowMatrix<T> init = first_rows(x, 6, 1);
  init.row(5).setConstant(T(1e4));  // empty at the first assignment: re-seeded among rows of positive weight
  KMeansParams given;
  given.n_clusters = 6;
  KMeansParams plusplus;
  plusplus.n_clusters = 5;
  plusplus.n_init = 3;
  plusplus.seed = 4;
  KMeansParams random = plusplus;
  random.init = KMeansInit::random;
  struct Case {
    const char* name;
    KMeansParams p;
    bool with_init;
  };
  for (const Case& c : {Case{"given, re-seeded", given, true}, Case{"k-means++, restarts", plusplus, false},
                        Case{"random, restarts", random, false}}) {
    SCOPED_TRACE(c.name);
    const MatrixView<T> iv = c.with_init ? MatrixView<T>(init) : MatrixView<T>{};
    KMeans<T> on_device(c.p), on_host(c.p), host_weights(c.p);
    const int reads = be.state->n_device_reads;
    on_device.fit_on(be, dev.view(), dev_w.vector(), iv);
    on_host.fit_on(be, host, VectorView<T>(w), iv);
    host_weights.fit_on(be, dev.view(), VectorView<T>(w), iv);
    expect_identical_fit(on_device, on_host);
    expect_identical_fit(host_weights, on_host);
    EXPECT_GT(be.state->n_device_reads, reads + 1) << "the weights were checked by the backend";
    if (c.with_init) {
      EXPECT_FALSE(on_device.events().empty()) << "the case needs a re-seeded cluster";
    }
    EXPECT_EQ(on_device.score_on(be, dev.view(), dev_w.vector()), on_host.score_on(be, host, VectorView<T>(w)));
  }
}

TYPED_TEST(CudaKMeansHost, KMeansPlusPlusDrawsFromDeviceDistancesAreTheCpuRows) {
  using T = TypeParam;
  // k-means++ on the replayed CUDA backend: the distances to the closest centre stay on the "device"
  // for the whole call (their host array holds NaN meanwhile: a draw or pass that read it would pick
  // other rows), and each round of draws copies them (and device weights) back for the host's walk in
  // the rows' order. The rows must be the CPU's, bit for bit, weighted or not, with X and the weights on
  // the host or the "device"; the host receives n distances (and n device weights) a round.
  const Index n = 20 * 4096 + 123;
  const RowMatrix<T> x = blobs<T>(n, 5, 12, 31);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(n);
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(i % 6 == 0 ? 0.0 : 0.25 + (i % 5));
  const KMeansReplayBackend be;
  const HostUnreadableCopy<T> dev(be, MatrixView<T>(x)), dev_w(be, MatrixView<T>(w.data(), n, 1));
  const int K = 12;
  for (const std::uint64_t seed : {0u, 1u, 99u}) {
    for (const bool weighted : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "seed " << seed << (weighted ? ", weighted" : ""));
      const VectorView<T> wv = weighted ? VectorView<T>(w) : VectorView<T>{};
      const auto cpu = kmeans_plusplus_rows(CpuBackend{}, MatrixView<T>(x), wv, K, 0, CounterRng(seed));
      for (const bool on_device : {false, true}) {
        const int draws = be.state->n_draws;
        const std::int64_t values = be.state->n_draw_values;
        std::vector<Index> rows;
        if (!on_device)
          rows = kmeans_plusplus_rows(be, MatrixView<T>(x), wv, K, 0, CounterRng(seed));
        else if (weighted)
          rows = kmeans_plusplus_rows(be, dev.view(), dev_w.vector(), K, 0, CounterRng(seed));
        else
          rows = kmeans_plusplus_rows(be, dev.view(), DeviceVectorView<T>{}, K, 0, CounterRng(seed));
        EXPECT_EQ(rows, cpu) << (on_device ? "device X" : "host X");
        const int made = be.state->n_draws - draws;
        // One draw a step from the device's distances, and the first by device weights.
        EXPECT_EQ(made, K - 1 + (weighted && on_device ? 1 : 0));
        const std::int64_t per_round = n * (weighted && on_device ? 2 : 1);
        EXPECT_EQ(be.state->n_draw_values - values, made * per_round - (weighted && on_device ? n : 0))
            << "the first draw copies the weights alone";
      }
    }
  }
  // Fewer distinct rows than centres: every mass vanishes and the draws fall back to the weights.
  RowMatrix<T> dup(3000, 2);
  for (Index i = 0; i < dup.rows(); ++i) dup.row(i) = x.row(i % 3).head(2);
  const Eigen::Matrix<T, Eigen::Dynamic, 1> wd = w.head(3000);
  for (const std::uint64_t seed : {3u, 4u})
    EXPECT_EQ(kmeans_plusplus_rows(be, MatrixView<T>(dup), VectorView<T>(wd), 5, 0, CounterRng(seed)),
              kmeans_plusplus_rows(CpuBackend{}, MatrixView<T>(dup), VectorView<T>(wd), 5, 0, CounterRng(seed)));
}

TYPED_TEST(CudaKMeansHost, BadWeightsOnTheDeviceGiveTheCpuErrors) {
  using T = TypeParam;
  // The weight checks of device weights: the CPU's messages, word for word (first bad index, which
  // check failed, its value; the sum when all are zero), for fit and score.
  const KMeansReplayBackend be;
  KMeansParams p;
  p.n_clusters = 2;
  const RowMatrix<T> x = uniform<T>(50, 3, 4);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(50);
  const HostUnreadableCopy<T> dev(be, MatrixView<T>(x)), dev_w(be, MatrixView<T>(w.data(), 50, 1));
  KMeans<T> km(p), ref(p), fitted(p);
  fitted.fit(x);
  expect_bad_weights_give_the_cpu_errors(w, [&] { ref.fit(x, w); }, [&] { km.fit_on(be, dev.view(), dev_w.vector()); });
  expect_bad_weights_give_the_cpu_errors(w, [&] { fitted.score(x, w); },
                                         [&] { fitted.score_on(be, dev.view(), dev_w.vector()); });
  const Eigen::Matrix<T, Eigen::Dynamic, 1> short_w = w.head(49);
  const std::string size = invalid_argument_message([&] { ref.fit(x, short_w); });
  ASSERT_NE(size.find("sample_weight has 49 entries but X has 50 rows"), std::string::npos) << size;
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(be, dev.view(), DeviceVectorView<T>(dev_w.vector().data, 49)); }),
            size);
  EXPECT_FALSE(km.is_fitted());
  km.fit_on(be, dev.view(), dev_w.vector());  // good weights: fits
  EXPECT_TRUE(km.is_fitted());
}

TYPED_TEST(CudaKMeansHost, BadDataOnTheDeviceGivesTheCpuErrors) {
  using T = TypeParam;
  const KMeansReplayBackend be;
  KMeansParams p;
  p.n_clusters = 2;
  RowMatrix<T> x = uniform<T>(50, 3, 4);
  x(37, 2) = -std::numeric_limits<T>::infinity();
  x(41, 0) = std::numeric_limits<T>::quiet_NaN();
  const HostUnreadableCopy<T> dev(be, MatrixView<T>(x));
  KMeans<T> km(p), ref(p);
  // The very message of the CPU's check: function, condition, first offending row/column and value.
  const std::string cpu = invalid_argument_message([&] { ref.fit(x); });
  ASSERT_NE(cpu.find("row 37, column 2"), std::string::npos) << cpu;
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(be, dev.view()); }), cpu);
  EXPECT_FALSE(km.is_fitted());
  x(37, 2) = 0;
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(be, dev.view()); }),
            invalid_argument_message([&] { ref.fit(x); }));
  EXPECT_INVALID(km.fit_on(be, dev.view()), "KMeans::fit", "non-finite value (nan)", "row 41, column 0");
  EXPECT_INVALID(km.fit_on(be, DeviceMatrixView<T>()), "KMeans::fit", "empty");
  EXPECT_INVALID(km.fit_on(be, DeviceMatrixView<T>(dev.view().data, 50, 3, 2)), "row stride (2) < n_features (3)");
  x(41, 0) = 1;
  km.fit_on(be, dev.view());
  ref.fit(x);
  x(3, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_EQ(invalid_argument_message([&] { km.predict_on(be, dev.view()); }),
            invalid_argument_message([&] { ref.predict(x); }));
}

TEST(CudaBackendHost, MakeBackendNamesTheProblem) {
  EXPECT_INVALID(make_cuda_backend(-1), "make_cuda_backend", "device index must be >= 0, got -1");
  EXPECT_INVALID(make_cuda_backend(0, -2), "make_cuda_backend", "n_threads must be in [0, 1024], got -2");
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

TYPED_TEST(CudaKMeansDevice, LabelsStayOnTheDeviceInAScopeUntilBroughtBack) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const Index n = 2 * cuda::kSegmentRows + 77;
  const RowMatrix<T> x = blobs<T>(n, 10, 4, 30);
  const RowMatrix<T> c = first_rows(x, 4, 5);
  const auto gpu = make_cuda_backend();
  std::vector<std::int32_t> cpu(static_cast<std::size_t>(n), -1);
  kmeans_assign(CpuBackend{}, MatrixView<T>(x), VectorView<T>{}, c, cpu.data());
  const auto dc = kmeans_distances_to_assigned(CpuBackend{}, MatrixView<T>(x), c, cpu.data());
  std::vector<std::int32_t> lg(static_cast<std::size_t>(n), -1);
  {
    CudaDataScope fit(gpu);
    EXPECT_EQ(kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>{}, c, lg.data()).n_changed, n);
    EXPECT_EQ(std::count(lg.begin(), lg.end(), -1), n) << "inside a scope the labels stay on the device";
    // A pass that reads labels takes the device's copy, not the stale host array.
    const auto dg = kmeans_distances_to_assigned(gpu, MatrixView<T>(x), c, lg.data());
    for (Index i = 0; i < n; ++i) ASSERT_TRUE(near_rel(dg[i], dc[i], 1e-14, 1e-300)) << i;
    // The next pass starts from the labels held: nothing changes.
    EXPECT_EQ(kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>{}, c, lg.data()).n_changed, 0);
    kmeans_labels_to_host(gpu, lg.data(), n);
    EXPECT_EQ(lg, cpu);
    kmeans_labels_to_host(gpu, lg.data(), n);  // nothing held any more: a no-op
    EXPECT_EQ(lg, cpu);
    // Brought back and let go: the host array is the labels again, an edit counts as a change.
    lg[5] = (lg[5] + 1) % 4;
    EXPECT_EQ(kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>{}, c, lg.data()).n_changed, 1);
    // kmeans_predict writes the host array and lets the held copy go.
    std::fill(lg.begin(), lg.end(), -1);
    kmeans_predict(gpu, MatrixView<T>(x), VectorView<T>{}, c, lg.data());
    EXPECT_EQ(lg, cpu);
    lg[7] = (lg[7] + 1) % 4;
    EXPECT_EQ(kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>{}, c, lg.data()).n_changed, 1);
  }  // held again, not brought back: dropped with the scope
  EXPECT_EQ(lg[7], (cpu[7] + 1) % 4);
  {
    CudaDataScope next(gpu);  // the same host array in a new fit: its contents count, not the old copy
    std::fill(lg.begin(), lg.end(), -1);
    EXPECT_EQ(kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>{}, c, lg.data()).n_changed, n);
  }
  // Outside a scope the labels come back with the pass.
  std::vector<std::int32_t> alone(static_cast<std::size_t>(n), -1);
  kmeans_assign(gpu, MatrixView<T>(x), VectorView<T>{}, c, alone.data());
  EXPECT_EQ(alone, cpu);
}

TYPED_TEST(CudaKMeansDevice, StatisticsAreTheBitsOfTheirHostReplay) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // The fused kernel and its replay run the same per-thread functions with the same fused
  // multiply-adds: from the same labels they must give the same bits, resident or streamed, with the
  // cells in shared memory or (one copy too large for the device) in global memory.
  const Index seg = cuda::kSegmentRows;
  for (const FusedCase& cs : fused_cases()) {
    SCOPED_TRACE(::testing::Message() << cs.n << " x " << cs.d << ", K = " << cs.k);
    const RowMatrix<T> x = blobs<T>(cs.n, cs.d, cs.k, 11);
    const RowMatrix<T> c = first_rows(x, cs.k, 3);
    const std::vector<T> w = cycling_weights<T>(cs.n);
    const std::size_t row_bytes = static_cast<std::size_t>(cs.d + 1) * sizeof(T);
    // Resident, then streamed in chunks of one segment.
    for (const std::size_t cap : {std::size_t{0}, static_cast<std::size_t>(seg) * 2 * row_bytes}) {
      std::vector<std::int32_t> labels(static_cast<std::size_t>(cs.n), -1);
      const KMeansStats dev = kmeans_assign(make_cuda_backend(0, 0, cap), MatrixView<T>(x),
                                            VectorView<T>(w.data(), cs.n), c, labels.data());
      EXPECT_EQ(labels, replay_labels(MatrixView<T>(x), c)) << "cap " << cap;
      const KMeansStats rep = stats_of_totals(replay_fused_stats(x, w.data(), labels, c, cs.n), cs.k, cs.d, sizeof(T));
      EXPECT_EQ(dev.count, rep.count);
      EXPECT_TRUE(same_bits(dev.weight, rep.weight)) << "cap " << cap;
      EXPECT_TRUE(same_bits(dev.sums, rep.sums)) << "cap " << cap;
      EXPECT_EQ(dev.distortion, rep.distortion) << "cap " << cap;
    }
  }
}

TYPED_TEST(CudaKMeansDevice, PredictionIsTheBitsOfItsHostReplay) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // The prediction kernel and its replay run the same per-thread function (predict_row_fold) in the
  // same order: the same labels and distortion bits, resident or streamed in chunks of one segment,
  // with or without weights and labels.
  const Index seg = cuda::kSegmentRows;
  for (const FusedCase& cs : fused_cases()) {
    SCOPED_TRACE(::testing::Message() << cs.n << " x " << cs.d << ", K = " << cs.k);
    const RowMatrix<T> x = blobs<T>(cs.n, cs.d, cs.k, 19);
    const RowMatrix<T> c = first_rows(x, cs.k, 3);
    const std::vector<T> w = cycling_weights<T>(cs.n);
    const std::size_t row_bytes = static_cast<std::size_t>(cs.d + 1) * sizeof(T);
    for (const bool weighted : {false, true}) {
      std::vector<std::int32_t> expected;
      const double rep = replay_predict(x, weighted ? w.data() : nullptr, c, expected);
      const VectorView<T> wv = weighted ? VectorView<T>(w.data(), cs.n) : VectorView<T>{};
      for (const std::size_t cap : {std::size_t{0}, static_cast<std::size_t>(seg) * 2 * row_bytes}) {
        const auto gpu = make_cuda_backend(0, 0, cap);
        std::vector<std::int32_t> labels(static_cast<std::size_t>(cs.n), -1);
        const double dev = kmeans_predict(gpu, MatrixView<T>(x), wv, c, labels.data());
        EXPECT_EQ(labels, expected) << "cap " << cap;
        EXPECT_EQ(std::memcmp(&dev, &rep, sizeof(double)), 0) << dev << " vs " << rep << ", cap " << cap;
        const double score_only = kmeans_predict(gpu, MatrixView<T>(x), wv, c, nullptr);  // writes no labels
        EXPECT_EQ(std::memcmp(&score_only, &rep, sizeof(double)), 0) << "cap " << cap;
      }
    }
  }
}

TYPED_TEST(CudaKMeansDevice, RestartsMatchTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // Restarts reuse the labels' memory: each must start from its own -1s, not a copy held before.
  const RowMatrix<T> x = blobs<T>(20000, 5, 7, 12);
  KMeansParams p;
  p.n_clusters = 7;
  p.n_init = 4;
  p.seed = 2;
  KMeans<T> a(p), b(p);
  a.fit_on(make_cuda_backend(), x);
  b.fit(x);
  EXPECT_EQ(a.best_restart(), b.best_restart());
  ASSERT_EQ(a.runs().size(), b.runs().size());
  for (std::size_t r = 0; r < a.runs().size(); ++r) {
    ASSERT_EQ(a.runs()[r].trace.size(), b.runs()[r].trace.size()) << "restart " << r;
    for (std::size_t i = 0; i < a.runs()[r].trace.size(); ++i)
      EXPECT_EQ(a.runs()[r].trace[i].n_changed, b.runs()[r].trace[i].n_changed) << "restart " << r << ", " << i;
  }
  expect_same_fit(a, b);
}

TYPED_TEST(CudaKMeansDevice, FitOnDeviceDataIsTheHostArrayFitBitForBit) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // Device data goes through the same kernels as the resident upload of the host array (dense rows,
  // the same order of additions), so every result has the same bits: restarts, k-means++ and random
  // rows, re-seeding, the scale of tol, strided rows (compacted on the device), and a backend whose
  // budget would stream the host array (streaming gives the resident bits).
  const RowMatrix<T> x = blobs<T>(40000, 6, 8, 13);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 7 == 0 ? 0.0 : 0.5 + (i % 4));
  const DeviceCopy<T> dense(x, x.cols()), strided(x, x.cols() + 3);
  const auto gpu = make_cuda_backend();
  const auto small = make_cuda_backend(0, 0, std::size_t{256} << 10);
  RowMatrix<T> init = first_rows(x, 9, 1);
  init.row(8).setConstant(T(1e4));  // empty at the first assignment: re-seeded
  KMeansParams given;
  given.n_clusters = 9;
  KMeansParams plusplus;
  plusplus.n_clusters = 8;
  plusplus.n_init = 3;
  KMeansParams random = plusplus;
  random.init = KMeansInit::random;
  for (const auto* be : {&gpu, &small}) {
    for (const bool use_strided : {false, true}) {
      SCOPED_TRACE(::testing::Message() << (be == &small ? "small budget, " : "") << (use_strided ? "strided" : "dense"));
      const DeviceMatrixView<T> dv = use_strided ? strided.view() : dense.view();
      KMeans<T> a(given), b(given);
      a.fit_on(*be, dv, w, init);
      b.fit_on(gpu, x, w, init);
      expect_identical_fit(a, b);
      ASSERT_FALSE(b.events().empty()) << "the case needs a re-seeded cluster";
      for (const KMeansParams& p : {plusplus, random}) {
        KMeans<T> c(p), d(p);
        c.fit_on(*be, dv, w);
        d.fit_on(gpu, x, w);
        expect_identical_fit(c, d);
      }
      EXPECT_EQ(a.predict_on(*be, dv), b.predict_on(gpu, x));
      EXPECT_EQ(a.score_on(*be, dv, w), b.score_on(gpu, x, w));
      EXPECT_TRUE(a.transform_on(*be, dv) == b.transform_on(gpu, x));
    }
  }
}

TYPED_TEST(CudaKMeansDevice, BadDeviceDataGivesTheCpuErrors) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(5000, 3, 4);
  DeviceCopy<T> dev(x, 5);
  const auto gpu = make_cuda_backend();
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p), ref(p);
  x(4100, 2) = -std::numeric_limits<T>::infinity();
  x(4321, 0) = std::numeric_limits<T>::quiet_NaN();
  dev.set(4100, 2, x(4100, 2));
  dev.set(4321, 0, x(4321, 0));
  const std::string cpu = invalid_argument_message([&] { ref.fit(x); });
  ASSERT_NE(cpu.find("(-inf) at row 4100, column 2"), std::string::npos) << cpu;
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(gpu, dev.view()); }), cpu);
  x(4100, 2) = 0;
  dev.set(4100, 2, 0);
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(gpu, dev.view()); }),
            invalid_argument_message([&] { ref.fit(x); }));
  EXPECT_FALSE(km.is_fitted());
  // Host memory passed as device data is refused, not read.
  x(4321, 0) = 0;
  EXPECT_INVALID(km.fit_on(gpu, DeviceMatrixView<T>(x.data(), x.rows(), x.cols())), "is not device memory");
}

TYPED_TEST(CudaKMeansDevice, FitOnDeviceWeightsIsTheHostWeightsFitBitForBit) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // Device weights are read in place by the same kernels that read the uploaded host weights: the same
  // bits, for given centres with a re-seeded cluster, k-means++ and random init, resident X and a
  // budget that would stream the host array; score too.
  const RowMatrix<T> x = blobs<T>(40000, 6, 8, 13);
  RowMatrix<T> w(x.rows(), 1);
  for (Index i = 0; i < x.rows(); ++i) w(i, 0) = static_cast<T>(i % 7 == 0 ? 0.0 : 0.5 + (i % 4));
  const Eigen::Matrix<T, Eigen::Dynamic, 1> wv = w.col(0);
  const DeviceCopy<T> dx(x, x.cols()), dw(w, 1);
  const DeviceVectorView<T> dev_w(dw.view().data, x.rows());
  const auto gpu = make_cuda_backend();
  const auto small = make_cuda_backend(0, 0, std::size_t{256} << 10);
  RowMatrix<T> init = first_rows(x, 9, 1);
  init.row(8).setConstant(T(1e4));
  KMeansParams given;
  given.n_clusters = 9;
  KMeansParams plusplus;
  plusplus.n_clusters = 8;
  plusplus.n_init = 3;
  KMeansParams random = plusplus;
  random.init = KMeansInit::random;
  for (const auto* be : {&gpu, &small}) {
    KMeans<T> a(given), b(given);
    a.fit_on(*be, dx.view(), dev_w, init);
    b.fit_on(gpu, x, wv, init);
    expect_identical_fit(a, b);
    ASSERT_FALSE(b.events().empty()) << "the case needs a re-seeded cluster";
    for (const KMeansParams& p : {plusplus, random}) {
      KMeans<T> c(p), d(p);
      c.fit_on(*be, dx.view(), dev_w);
      d.fit_on(gpu, x, wv);
      expect_identical_fit(c, d);
    }
    EXPECT_EQ(a.score_on(*be, dx.view(), dev_w), b.score_on(gpu, x, wv));
  }
}

TYPED_TEST(CudaKMeansDevice, BadDeviceWeightsGiveTheCpuErrors) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(20000, 3, 4);
  RowMatrix<T> w = RowMatrix<T>::Ones(x.rows(), 1);
  const DeviceCopy<T> dx(x, 3);
  DeviceCopy<T> dw(w, 1);
  const DeviceVectorView<T> dev_w(dw.view().data, x.rows());
  const auto gpu = make_cuda_backend();
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p), ref(p);
  // Two bad weights in different segments: the lower index is reported, as on the CPU.
  w(17000, 0) = std::numeric_limits<T>::quiet_NaN();
  w(9000, 0) = T(-2);
  dw.set(17000, 0, w(17000, 0));
  dw.set(9000, 0, w(9000, 0));
  Eigen::Matrix<T, Eigen::Dynamic, 1> wv = w.col(0);
  const std::string cpu = invalid_argument_message([&] { ref.fit(x, wv); });
  ASSERT_NE(cpu.find("sample_weight[9000] = -2 is negative"), std::string::npos) << cpu;
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(gpu, dx.view(), dev_w); }), cpu);
  // All zero: the CPU's "sums to 0".
  const RowMatrix<T> zeros = RowMatrix<T>::Zero(x.rows(), 1);
  const DeviceCopy<T> dz(zeros, 1);
  wv.setZero();
  EXPECT_EQ(invalid_argument_message([&] { km.fit_on(gpu, dx.view(), DeviceVectorView<T>(dz.view().data, x.rows())); }),
            invalid_argument_message([&] { ref.fit(x, wv); }));
  EXPECT_FALSE(km.is_fitted());
  // Host memory passed as device weights is refused, not read.
  const Eigen::Matrix<T, Eigen::Dynamic, 1> ones = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(x.rows());
  EXPECT_INVALID(km.fit_on(gpu, dx.view(), DeviceVectorView<T>(ones.data(), x.rows())), "sample_weight",
                 "is not device memory");
}

TYPED_TEST(CudaKMeansDevice, KMeansPlusPlusFromDeviceDistancesDrawsTheCpuRows) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // The draws walk the distances the device computed, copied back, in the CPU's order: the CPU's rows
  // whenever the distances agree (the same eight-sum order), weighted too, with the weights on the host
  // or the device, X resident or under a small budget (the rows' hashes by the device pass for device X).
  const Index n = 9 * 4096 + 77;
  const RowMatrix<T> x = blobs<T>(n, 6, 12, 4);
  RowMatrix<T> w(n, 1);
  for (Index i = 0; i < n; ++i) w(i, 0) = static_cast<T>(i % 6 == 0 ? 0.0 : 0.25 + (i % 5));
  const Eigen::Matrix<T, Eigen::Dynamic, 1> wv = w.col(0);
  const DeviceCopy<T> dx(x, x.cols()), dw(w, 1);
  const DeviceVectorView<T> dev_w(dw.view().data, n);
  for (const auto& be : {make_cuda_backend(), make_cuda_backend(0, 0, std::size_t{256} << 10)}) {
    for (const std::uint64_t seed : {0u, 1u, 99u}) {
      const auto cpu = kmeans_plusplus_rows(CpuBackend{}, MatrixView<T>(x), VectorView<T>(wv), 12, 0, CounterRng(seed));
      EXPECT_EQ(kmeans_plusplus_rows(be, MatrixView<T>(x), VectorView<T>(wv), 12, 0, CounterRng(seed)), cpu);
      EXPECT_EQ(kmeans_plusplus_rows(be, dx.view(), dev_w, 12, 0, CounterRng(seed)), cpu) << "device weights";
    }
  }
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
