// K-means on streams: chunk statistics merged and updated give the batch fit; mini-batch K-means is
// deterministic and does what scikit-learn's does, step by step.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "kmeans_replay.hpp"
#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

using Chunks = std::vector<std::pair<Index, Index>>;  // [begin, end) row ranges, in order

/// The reduction groups of the assignment pass over n rows (core/parallel.hpp).
Chunks reduction_groups(Index n) {
  const detail::BlockPlan plan(n, detail::kKMeansBlock);
  Chunks c;
  for (Index g = 0; g < plan.n_groups; ++g)
    c.emplace_back(plan.block_begin(plan.group_first(g)), plan.block_begin(plan.group_first(g + 1)));
  c.back().second = n;
  return c;
}

/// Chunks of uneven sizes, not aligned with the pass's blocks.
Chunks ragged_chunks(Index n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<Index> size(1, 3000);
  Chunks c;
  for (Index b = 0; b < n;) {
    const Index e = std::min(n, b + size(gen));
    c.emplace_back(b, e);
    b = e;
  }
  return c;
}

template <class T>
VectorView<T> weights_of(const std::vector<T>& w, Index begin, Index end) {
  return w.empty() ? VectorView<T>{} : VectorView<T>(w.data() + begin, end - begin);
}

/// The statistics of X under C, chunk by chunk, merged in order (labels: per row, updated).
template <class T>
KMeansStats chunked_statistics(const RowMatrix<T>& x, const std::vector<T>& w, const RowMatrix<T>& c,
                               const Chunks& chunks, std::vector<std::int32_t>& labels, int n_threads) {
  KMeansStats total;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const auto [b, e] = chunks[i];
    KMeansStats s = kmeans_statistics(MatrixView<T>(x.row(b).data(), e - b, x.cols()), weights_of(w, b, e), c,
                                      labels.data() + b, n_threads);
    if (i == 0) total = std::move(s);
    else total.merge(s);
  }
  return total;
}

/// KMeans::fit's loop written with the public API: statistics per chunk, merged, then kmeans_update.
template <class T>
struct ChunkedFit {
  RowMatrix<T> centers;
  std::vector<std::int32_t> labels;
  std::vector<KMeansIteration> trace;
  std::vector<KMeansEvent> events;

  ChunkedFit(const RowMatrix<T>& x, const std::vector<T>& w, RowMatrix<T> init, const Chunks& chunks, int max_iter,
             double tol_abs, int n_threads)
      : centers(std::move(init)), labels(static_cast<std::size_t>(x.rows()), -1) {
    for (int it = 0; it < max_iter; ++it) {
      const KMeansStats s = chunked_statistics(x, w, centers, chunks, labels, n_threads);
      const std::size_t first = events.size();
      trace.push_back(kmeans_update(s, centers, &events, 0, it));
      for (std::size_t e = first; e < events.size(); ++e)  // the re-seeding rows move to their cluster
        if (events[e].kind == KMeansEvent::Kind::empty_cluster_reseeded) labels[events[e].row] = events[e].cluster;
      if (it > 0 && trace.back().n_changed == 0 && events.size() == first) {
        if (trace.back().center_shift == 0) return;  // labels and centres are final
        break;
      }
      if (trace.back().center_shift <= tol_abs) break;
    }
    // As KMeans::fit, the labels the final centres give (one more pass; its statistics are unused).
    chunked_statistics(x, w, centers, chunks, labels, n_threads);
  }
};

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

template <class T>
bool same_bits(const RowMatrix<T>& a, const RowMatrix<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}

/// Blobs with one initial centre far from every row: it is empty at the first iteration and must be
/// re-seeded from the farthest row (the empty-cluster policy goes through the statistics too).
template <class T>
RowMatrix<T> init_with_a_stray(const RowMatrix<T>& x, Index k) {
  RowMatrix<T> c(k, x.cols());
  for (Index i = 0; i < k; ++i) c.row(i) = x.row(i * 37 + 5);
  c.row(k - 1).setConstant(static_cast<T>(1e4));
  return c;
}

}  // namespace

template <class T>
class KMeansStream : public ::testing::Test {};
TYPED_TEST_SUITE(KMeansStream, Scalars);

// A group is folded block after block into its own statistics, and the fold merges the groups in
// order: statistics of chunks that are exactly the groups, merged in the same order, make the same
// additions in the same order, so the whole fit (centres, trace, events, labels) has the same bits.
// 51,237 rows: 201 blocks in 64 groups of 3 or 4 blocks each.
TYPED_TEST(KMeansStream, FitFromGroupStatisticsHasTheBatchBits) {
  using T = TypeParam;
  const Index n = 51237, K = 7;
  const RowMatrix<T> x = blobs<T>(n, 5, K - 1, 3, /*offset=*/1e3, /*spread=*/2.0);
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(0.25 * (1 + i % 5));
  const RowMatrix<T> init = init_with_a_stray(x, K);
  for (const bool weighted : {false, true}) {
    const std::vector<T> wu = weighted ? w : std::vector<T>{};
    KMeansParams p;
    p.n_clusters = K;
    p.max_iter = 30;
    p.tol = 0;
    p.n_threads = 2;
    KMeans<T> km(p);
    km.fit(x, weights_of(wu, 0, n), init);
    const Chunks groups = reduction_groups(n);
    ASSERT_EQ(groups.size(), 64u);
    ASSERT_GT(groups[0].second - groups[0].first, detail::kKMeansBlock);  // several blocks per group
    const ChunkedFit<T> cf(x, wu, init, groups, p.max_iter, 0.0, /*n_threads=*/1);
    EXPECT_TRUE(same_bits(cf.centers, km.cluster_centers()));
    EXPECT_EQ(cf.labels, km.labels());
    ASSERT_EQ(cf.trace.size(), km.trace().size());
    for (std::size_t i = 0; i < cf.trace.size(); ++i) {
      EXPECT_TRUE(same_bits(cf.trace[i].distortion_assign, km.trace()[i].distortion_assign)) << i;
      EXPECT_TRUE(same_bits(cf.trace[i].distortion_update, km.trace()[i].distortion_update)) << i;
      EXPECT_TRUE(same_bits(cf.trace[i].center_shift, km.trace()[i].center_shift)) << i;
      EXPECT_EQ(cf.trace[i].n_changed, km.trace()[i].n_changed) << i;
    }
    ASSERT_EQ(cf.events.size(), km.events().size());
    ASSERT_GE(cf.events.size(), 1u);  // the stray centre was re-seeded
    for (std::size_t e = 0; e < cf.events.size(); ++e) {
      EXPECT_EQ(cf.events[e].kind, km.events()[e].kind);
      EXPECT_EQ(cf.events[e].iteration, km.events()[e].iteration);
      EXPECT_EQ(cf.events[e].cluster, km.events()[e].cluster);
      EXPECT_EQ(cf.events[e].row, km.events()[e].row);
    }
  }
}

// Any chunking adds the same terms in another order: the statistics agree to rounding (1e-12
// relative), the counts and the re-seeding candidates (selections, not sums) exactly.
TYPED_TEST(KMeansStream, StatisticsOfAnyChunkingAgreeToRounding) {
  using T = TypeParam;
  const Index n = 20011, K = 9;
  const RowMatrix<T> x = blobs<T>(n, 3, K, 8, /*offset=*/1e5, /*spread=*/1.0);
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(i % 7 == 0 ? 0.0 : 1.0 + 0.5 * (i % 3));
  RowMatrix<T> c = init_with_a_stray(x, K);
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    std::vector<std::int32_t> la(static_cast<std::size_t>(n), -1), lb = la;
    const KMeansStats whole = chunked_statistics(x, w, c, {{0, n}}, la, 2);
    const KMeansStats parts = chunked_statistics(x, w, c, ragged_chunks(n, seed), lb, 1);
    EXPECT_EQ(la, lb);
    EXPECT_EQ(whole.count, parts.count);
    EXPECT_EQ(whole.n_changed, parts.n_changed);
    EXPECT_NEAR(whole.distortion, parts.distortion, 1e-12 * whole.distortion);
    for (Index k = 0; k < K; ++k) EXPECT_NEAR(whole.weight[k], parts.weight[k], 1e-12 * whole.weight[k]);
    for (std::size_t j = 0; j < whole.sums.size(); ++j)
      EXPECT_NEAR(whole.sums[j], parts.sums[j], 1e-12 * std::abs(whole.sums[j]));
    ASSERT_EQ(whole.farthest.size(), static_cast<std::size_t>(K - 1));
    ASSERT_EQ(parts.farthest.size(), whole.farthest.size());
    for (std::size_t e = 0; e < whole.farthest.size(); ++e) {
      EXPECT_EQ(whole.farthest[e].row, parts.farthest[e].row);
      EXPECT_TRUE(same_bits(whole.farthest[e].distance, parts.farthest[e].distance));
      EXPECT_GT(whole.farthest[e].weight, 0.0);  // rows of zero weight never re-seed
    }
    RowMatrix<T> ca = c, cb = c;
    kmeans_update(whole, ca);
    kmeans_update(parts, cb);
    const double tol = std::is_same<T, float>::value ? 2e-7 : 1e-12;
    for (Index k = 0; k < K; ++k)
      for (Index d = 0; d < x.cols(); ++d)
        EXPECT_NEAR(ca(k, d), cb(k, d), tol * std::abs(static_cast<double>(ca(k, d))));
    c = ca;  // the next seed starts from the next iteration's centres
  }
}

// A whole fit from ragged chunks follows the batch fit (well-separated blobs: no label sits on a tie).
TYPED_TEST(KMeansStream, FitFromAnyChunkingFollowsTheBatchFit) {
  using T = TypeParam;
  const Index n = 9000, K = 6;
  const RowMatrix<T> x = blobs<T>(n, 4, K - 1, 21);
  const RowMatrix<T> init = init_with_a_stray(x, K);
  KMeansParams p;
  p.n_clusters = K;
  p.max_iter = 50;
  p.tol = 0;
  KMeans<T> km(p);
  km.fit(x, VectorView<T>{}, init);
  const ChunkedFit<T> cf(x, {}, init, ragged_chunks(n, 4), p.max_iter, 0.0, 2);
  EXPECT_EQ(cf.labels, km.labels());
  EXPECT_EQ(cf.trace.size(), km.trace().size());
  const double tol = std::is_same<T, float>::value ? 1e-6 : 1e-12;
  for (Index k = 0; k < K; ++k)
    for (Index d = 0; d < x.cols(); ++d)
      EXPECT_NEAR(cf.centers(k, d), km.cluster_centers()(k, d), tol * (1 + std::abs(static_cast<double>(km.cluster_centers()(k, d)))));
  EXPECT_NEAR(cf.trace.back().distortion_update, km.trace().back().distortion_update,
              1e-12 * km.trace().back().distortion_update + (std::is_same<T, float>::value ? 1e-3 : 0.0));
}

// Merging is associative. With small integer data every sum is exact, so both groupings give the same
// bits; the candidates' rows are renumbered after the left operand's rows whichever way.
TYPED_TEST(KMeansStream, MergeIsAssociative) {
  using T = TypeParam;
  const Index n = 3000, K = 5;
  RowMatrix<T> x(n, 3);
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> v(-50, 50);
  for (Index i = 0; i < n; ++i)
    for (Index d = 0; d < 3; ++d) x(i, d) = static_cast<T>(v(gen));
  RowMatrix<T> c(K, 3);
  for (Index k = 0; k < K; ++k) c.row(k) = x.row(k * 11);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n), -1);
  auto stats = [&](Index b, Index e) {
    return kmeans_statistics(MatrixView<T>(x.row(b).data(), e - b, 3), VectorView<T>{}, c, labels.data() + b);
  };
  const KMeansStats a = stats(0, 1000), b = stats(1000, 1700), d = stats(1700, n);
  KMeansStats left = a;  // (a + b) + d
  left.merge(b);
  left.merge(d);
  KMeansStats bd = b;  // a + (b + d)
  bd.merge(d);
  KMeansStats right = a;
  right.merge(bd);
  const KMeansStats whole = stats(0, n);
  for (const KMeansStats* s : std::initializer_list<const KMeansStats*>{&right, &whole}) {
    EXPECT_EQ(left.count, s->count);
    EXPECT_EQ(left.weight, s->weight);
    EXPECT_EQ(left.sums, s->sums);
    EXPECT_TRUE(same_bits(left.distortion, s->distortion));
    ASSERT_EQ(left.farthest.size(), s->farthest.size());
    for (std::size_t e = 0; e < left.farthest.size(); ++e) {
      EXPECT_EQ(left.farthest[e].row, s->farthest[e].row);
      EXPECT_EQ(left.farthest[e].values, s->farthest[e].values);
    }
  }
  EXPECT_EQ(left.rows(), n);
  // The candidates are the farthest rows of all n, whichever chunk holds them.
  std::vector<std::pair<double, Index>> all;
  for (Index i = 0; i < n; ++i) all.emplace_back(detail::sq_dist(x.row(i).data(), c.row(labels[i]).data(), 3), i);
  std::stable_sort(all.begin(), all.end(), [](const auto& p, const auto& q) { return p.first > q.first; });
  for (std::size_t e = 0; e < left.farthest.size(); ++e) EXPECT_EQ(left.farthest[e].row, all[e].second) << e;

  KMeansStats other(K + 1, 3);
  EXPECT_INVALID(left.merge(other), "KMeansStats::merge", "shapes differ");
  RowMatrix<T> wrong(K + 1, 3);
  wrong.setZero();
  EXPECT_INVALID(kmeans_update(left, wrong), "kmeans_update", "(5, 3)", "(6, 3)");
  EXPECT_INVALID(kmeans_statistics(MatrixView<T>(x.data(), n, 2), VectorView<T>{}, c), "kmeans_statistics", "features");
  std::vector<T> bad(static_cast<std::size_t>(n), T(1));
  bad[17] = T(-1);
  EXPECT_INVALID(kmeans_statistics(MatrixView<T>(x), VectorView<T>(bad.data(), n), c), "kmeans_statistics",
                 "sample_weight[17]");

  // keep_farthest = 0: the same sums, no candidates (a loop asks again when a cluster is empty).
  const KMeansStats lean = kmeans_statistics(MatrixView<T>(x), VectorView<T>{}, c, nullptr, 0, 0);
  EXPECT_EQ(lean.count, whole.count);
  EXPECT_EQ(lean.weight, whole.weight);
  EXPECT_EQ(lean.sums, whole.sums);
  EXPECT_TRUE(same_bits(lean.distortion, whole.distortion));
  EXPECT_TRUE(lean.farthest.empty());
  EXPECT_EQ(lean.keep_farthest, 0);
  EXPECT_INVALID(kmeans_statistics(MatrixView<T>(x), VectorView<T>{}, c, nullptr, 0, K), "kmeans_statistics",
                 "keep_farthest", "got 5");
}

// On a device backend the statistics come from its own assignment pass (here the CUDA pass replayed
// on the host, kmeans_replay.hpp) and the candidates from its distances: the same rows, the same
// counts, the sums to the pass's rounding.
TYPED_TEST(KMeansStream, StatisticsOnADeviceBackendMatchTheCpu) {
  using T = TypeParam;
  const Index n = 7001, K = 6;
  const RowMatrix<T> x = blobs<T>(n, 4, K - 1, 17, /*offset=*/10.0);
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 1.5);
  const RowMatrix<T> c = init_with_a_stray(x, K);
  std::vector<std::int32_t> lc(static_cast<std::size_t>(n), -1), ld = lc;
  const KMeansStats cpu = kmeans_statistics_on(CpuBackend{2}, MatrixView<T>(x), c, VectorView<T>(w.data(), n), lc.data());
  const KMeansStats dev = kmeans_statistics_on(KMeansReplayBackend{}, MatrixView<T>(x), c, VectorView<T>(w.data(), n), ld.data());
  EXPECT_EQ(lc, ld);
  EXPECT_EQ(cpu.count, dev.count);
  const double rel = std::is_same<T, float>::value ? 1e-6 : 1e-12;
  EXPECT_NEAR(cpu.distortion, dev.distortion, rel * cpu.distortion);
  for (std::size_t j = 0; j < cpu.sums.size(); ++j) EXPECT_NEAR(cpu.sums[j], dev.sums[j], rel * (1 + std::abs(cpu.sums[j])));
  ASSERT_EQ(dev.farthest.size(), static_cast<std::size_t>(K - 1));
  ASSERT_EQ(cpu.farthest.size(), dev.farthest.size());
  for (std::size_t e = 0; e < cpu.farthest.size(); ++e) {
    EXPECT_EQ(cpu.farthest[e].row, dev.farthest[e].row);
    EXPECT_TRUE(same_bits(cpu.farthest[e].distance, dev.farthest[e].distance));
    EXPECT_EQ(cpu.farthest[e].values, dev.farthest[e].values);
  }
}

// ---- MiniBatchKMeans -------------------------------------------------------------------------

namespace {
template <class T>
MiniBatchKMeans<T> minibatch(int K, int n_threads, std::uint64_t seed = 7) {
  MiniBatchKMeansParams p;
  p.n_clusters = K;
  p.batch_size = 300;
  p.n_threads = n_threads;
  p.seed = seed;
  p.n_init = 2;
  return MiniBatchKMeans<T>(p);
}
}  // namespace

// Batches come from the counter-based generator and each batch's pass is bit-identical for any
// thread count, so the whole fit is.
TYPED_TEST(KMeansStream, MiniBatchIsTheSameForAnyThreadCount) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(20000, 6, 10, 4, /*offset=*/50.0);
  std::vector<T> w(20000);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<T>(1 + i % 4);
  MiniBatchKMeans<T> one = minibatch<T>(10, 1), two = minibatch<T>(10, 2), three = minibatch<T>(10, 3);
  one.fit(x, VectorView<T>(w.data(), 20000));
  two.fit(x, VectorView<T>(w.data(), 20000));
  three.fit(x, VectorView<T>(w.data(), 20000));
  for (const MiniBatchKMeans<T>* m : {&two, &three}) {
    EXPECT_TRUE(same_bits(one.cluster_centers(), m->cluster_centers()));
    EXPECT_EQ(one.labels(), m->labels());
    EXPECT_EQ(one.counts(), m->counts());
    EXPECT_TRUE(same_bits(one.inertia(), m->inertia()));
    ASSERT_EQ(one.trace().size(), m->trace().size());
    for (std::size_t i = 0; i < one.trace().size(); ++i)
      EXPECT_TRUE(same_bits(one.trace()[i].distortion_assign, m->trace()[i].distortion_assign));
  }
  // partial_fit on the same chunks, too.
  MiniBatchKMeans<T> p1 = minibatch<T>(10, 1), p2 = minibatch<T>(10, 2);
  for (Index b = 0; b < 20000; b += 2500) {
    p1.partial_fit(MatrixView<T>(x.row(b).data(), 2500, 6));
    p2.partial_fit(MatrixView<T>(x.row(b).data(), 2500, 6));
  }
  EXPECT_TRUE(same_bits(p1.cluster_centers(), p2.cluster_centers()));
  EXPECT_EQ(p1.n_steps(), 8);
  // Another seed draws other batches.
  MiniBatchKMeans<T> other = minibatch<T>(10, 2, 8);
  other.fit(x, VectorView<T>(w.data(), 20000));
  EXPECT_FALSE(same_bits(one.cluster_centers(), other.cluster_centers()));
}

// One step is Sculley's update: centre k moves to (count_k mu_k + sum of its batch rows' w x) /
// (count_k + W_k) and its count grows by W_k; J of the batch after the step, recorded from the
// statistics, equals the distortion computed directly.
TYPED_TEST(KMeansStream, MiniBatchStepIsTheLearningRateUpdate) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(600, 3, 4, 12);
  std::vector<T> w(600);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<T>(0.5 + i % 3);
  RowMatrix<T> init(4, 3);
  for (Index k = 0; k < 4; ++k) init.row(k) = x.row(k);
  MiniBatchKMeansParams p;
  p.n_clusters = 4;
  p.reassignment_ratio = 0;  // no random moves: the step is the update alone
  MiniBatchKMeans<T> mb(p);
  const Index half = 300;
  mb.partial_fit(MatrixView<T>(x.data(), half, 3), VectorView<T>(w.data(), half), init);
  const RowMatrix<T> c1 = mb.cluster_centers();
  const std::vector<double> n1 = mb.counts();
  mb.partial_fit(MatrixView<T>(x.row(half).data(), half, 3), VectorView<T>(w.data() + half, half));
  // The oracle, in long double from the first step's centres and counts.
  std::vector<long double> cnt(n1.begin(), n1.end());
  std::vector<std::vector<long double>> sum(4, std::vector<long double>(3, 0));
  std::vector<long double> wk(4, 0);
  std::vector<std::int32_t> lab(half);
  for (Index i = 0; i < half; ++i) {
    const Index r = half + i;
    Index best = 0;
    for (Index k = 1; k < 4; ++k)
      if (detail::sq_dist(x.row(r).data(), c1.row(k).data(), 3) < detail::sq_dist(x.row(r).data(), c1.row(best).data(), 3))
        best = k;
    lab[i] = static_cast<std::int32_t>(best);
    wk[best] += w[r];
    for (Index d = 0; d < 3; ++d) sum[best][d] += static_cast<long double>(w[r]) * x(r, d);
  }
  const double tol = std::is_same<T, float>::value ? 1e-6 : 1e-13;
  RowMatrix<T> c2(4, 3);
  for (Index k = 0; k < 4; ++k) {
    EXPECT_NEAR(mb.counts()[k], static_cast<double>(cnt[k] + wk[k]), 1e-12 * mb.counts()[k]);
    for (Index d = 0; d < 3; ++d) {
      const long double want = wk[k] > 0 ? (cnt[k] * c1(k, d) + sum[k][d]) / (cnt[k] + wk[k]) : c1(k, d);
      EXPECT_NEAR(mb.cluster_centers()(k, d), static_cast<double>(want), tol * (1 + std::abs(static_cast<double>(want))));
    }
  }
  std::vector<double> wd(w.begin() + half, w.end());
  const RowMatrix<T> xb = x.bottomRows(half);
  const MiniBatchStep& last = mb.trace().back();
  EXPECT_NEAR(last.distortion_assign, distortion(xb, wd, c1, lab), 1e-10 * last.distortion_assign);
  EXPECT_NEAR(last.distortion_update, distortion(xb, wd, mb.cluster_centers(), lab), 1e-9 * last.distortion_assign);
  EXPECT_LE(last.distortion_update, last.distortion_assign);  // each centre moves towards its batch mean
  EXPECT_EQ(mb.n_steps(), 2);
}

// On blobs a mini-batch fit lands near Lloyd's optimum, and its starved centres get moved.
TYPED_TEST(KMeansStream, MiniBatchFindsTheBlobs) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(30000, 4, 8, 30);
  MiniBatchKMeans<T> mb = minibatch<T>(8, 0, 3);
  mb.fit(x);
  KMeansParams kp;
  kp.n_clusters = 8;
  kp.n_init = 3;
  KMeans<T> km(kp);
  km.fit(x);
  EXPECT_LE(mb.inertia(), 1.05 * km.inertia());
  EXPECT_EQ(mb.labels().size(), 30000u);
  EXPECT_GE(mb.n_steps(), 2);
  EXPECT_EQ(mb.trace().size(), static_cast<std::size_t>(mb.n_steps()));
  EXPECT_EQ(mb.n_iter(), static_cast<int>((mb.n_steps() * 300 + 29999) / 30000));
  EXPECT_EQ(mb.predict(x), mb.labels());
  EXPECT_NEAR(-mb.score(x), mb.inertia(), 1e-12 * mb.inertia());
  // A stray initial centre absorbs nothing: its count stays 0 and it is moved to a row at once.
  RowMatrix<T> init = init_with_a_stray(x, 8);
  MiniBatchKMeansParams p = mb.params();
  p.n_init = 1;
  MiniBatchKMeans<T> given(p);
  given.fit(x, VectorView<T>{}, init);
  ASSERT_FALSE(given.events().empty());
  EXPECT_EQ(given.events()[0].step, 0);
  EXPECT_EQ(given.events()[0].cluster, 7);
  EXPECT_GT(given.counts()[7], 0.0);
}

// batch_size >= n_samples: each step takes every row with its weight, so integer weights fit as
// repeated rows would, shuffled or not (scikit-learn's sample-weight equivalence): the same starts
// (k-means++ and the validation of n_init), steps, reassignments (to values drawn by weight, never
// the same value twice) and centres, up to the order of the sums.
TYPED_TEST(KMeansStream, MiniBatchOnWholeDataFitsIntegerWeightsAsRepeatedRows) {
  using T = TypeParam;
  const Index n = 150, D = 5;
  const RowMatrix<T> x = blobs<T>(n, D, 4, 21);
  std::mt19937 gen(5);
  std::vector<T> w(n);
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(gen() % 5);  // zeros included
  std::vector<Index> perm(n);
  std::iota(perm.begin(), perm.end(), Index{0});
  std::shuffle(perm.begin(), perm.end(), gen);
  RowMatrix<T> xw(n, D);
  std::vector<T> ww(n);
  std::vector<Index> rep_rows;
  for (Index i = 0; i < n; ++i) {
    xw.row(i) = x.row(perm[i]);
    ww[i] = w[perm[i]];
    for (int c = 0; c < static_cast<int>(w[i]); ++c) rep_rows.push_back(i);
  }
  RowMatrix<T> xr(static_cast<Index>(rep_rows.size()), D);
  for (std::size_t j = 0; j < rep_rows.size(); ++j) xr.row(static_cast<Index>(j)) = x.row(rep_rows[j]);
  const double tol = std::is_same<T, float>::value ? 1e-5 : 1e-12;
  for (const bool stray : {false, true}) {
    MiniBatchKMeansParams p;
    p.n_clusters = 6;
    p.batch_size = 1000;
    p.max_iter = 20;
    p.n_init = 3;
    p.reassignment_ratio = 0.5;  // centres reassigned in several steps
    p.seed = 11;
    MiniBatchKMeans<T> weighted(p), repeated(p);
    if (stray) {  // a centre far from every row: moved at the first step
      RowMatrix<T> init(6, D);
      for (Index k = 0; k < 6; ++k) init.row(k) = x.row(k * 20);
      init.row(5).setConstant(static_cast<T>(1e4));
      weighted.fit(xw, VectorView<T>(ww.data(), n), init);
      repeated.fit(xr, VectorView<T>{}, init);
    } else {
      weighted.fit(xw, VectorView<T>(ww.data(), n));
      repeated.fit(xr);
    }
    SCOPED_TRACE(stray ? "given centres with a stray" : "k-means++");
    ASSERT_EQ(weighted.n_steps(), repeated.n_steps());
    EXPECT_EQ(weighted.n_iter(), repeated.n_iter());
    ASSERT_EQ(weighted.events().size(), repeated.events().size());
    EXPECT_FALSE(weighted.events().empty());
    for (std::size_t e = 0; e < weighted.events().size(); ++e) {
      EXPECT_EQ(weighted.events()[e].step, repeated.events()[e].step);
      EXPECT_EQ(weighted.events()[e].cluster, repeated.events()[e].cluster);
      EXPECT_EQ(xw.row(weighted.events()[e].row), x.row(rep_rows[static_cast<std::size_t>(repeated.events()[e].row)]));
    }
    const double scale = x.cwiseAbs().maxCoeff();
    for (Index k = 0; k < 6; ++k) {
      EXPECT_NEAR(weighted.counts()[k], repeated.counts()[k], tol * repeated.counts()[k]) << k;
      for (Index d = 0; d < D; ++d)
        EXPECT_NEAR(weighted.cluster_centers()(k, d), repeated.cluster_centers()(k, d), tol * scale) << k << "," << d;
    }
    EXPECT_NEAR(weighted.inertia(), repeated.inertia(), tol * repeated.inertia());
    // The labels of the rows themselves.
    for (Index i = 0; i < n; ++i)
      if (ww[i] > 0) {
        const auto j = std::find(rep_rows.begin(), rep_rows.end(), perm[i]) - rep_rows.begin();
        EXPECT_EQ(weighted.labels()[i], repeated.labels()[j]) << i;
      }
  }
}

TYPED_TEST(KMeansStream, MiniBatchErrors) {
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(50, 2, 1);
  auto fit_with = [&](auto set) {
    MiniBatchKMeansParams p;
    p.n_clusters = 3;
    set(p);
    MiniBatchKMeans<T> mb(p);
    mb.fit(x);
  };
  EXPECT_INVALID(fit_with([](auto& p) { p.batch_size = 0; }), "MiniBatchKMeans::fit", "batch_size", "0");
  EXPECT_INVALID(fit_with([](auto& p) { p.max_iter = 0; }), "MiniBatchKMeans::fit", "max_iter");
  EXPECT_INVALID(fit_with([](auto& p) { p.reassignment_ratio = -1; }), "MiniBatchKMeans::fit", "reassignment_ratio");
  EXPECT_INVALID(fit_with([](auto& p) { p.init_size = -2; }), "MiniBatchKMeans::fit", "init_size", "-2");
  EXPECT_INVALID(fit_with([](auto& p) { p.n_clusters = 51; }), "MiniBatchKMeans::fit", "n_samples (50) < n_clusters (51)");
  MiniBatchKMeansParams p;
  p.n_clusters = 3;
  MiniBatchKMeans<T> mb(p);
  EXPECT_THROW(mb.predict(x), NotFittedError);
  EXPECT_THROW(mb.cluster_centers(), NotFittedError);
  mb.partial_fit(x);
  EXPECT_INVALID(mb.partial_fit(MatrixView<T>(x.data(), 25, 1)), "MiniBatchKMeans::partial_fit", "1 features");
  const RowMatrix<T> before = mb.cluster_centers();
  std::vector<T> w(50, T(1));
  w[3] = std::numeric_limits<T>::quiet_NaN();
  EXPECT_INVALID(mb.partial_fit(x, VectorView<T>(w.data(), 50)), "MiniBatchKMeans::partial_fit", "sample_weight[3]");
  EXPECT_TRUE(same_bits(before, mb.cluster_centers()));  // the strong guarantee
  EXPECT_EQ(mb.n_steps(), 1);
}
