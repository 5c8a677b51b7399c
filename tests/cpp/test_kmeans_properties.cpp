// Properties every K-means fit must have, whatever the data: the trace never rises, J after the
// update equals the exact distortion, results do not depend on the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>
#include <limits>

#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

template <class T>
class KMeansProperties : public ::testing::Test {};
TYPED_TEST_SUITE(KMeansProperties, Scalars);

// Coordinate descent: each half-step minimises J over one block of variables, so neither can raise
// it. Allow the round-off of the float argmin (expanded distance) and of the sums.
TYPED_TEST(KMeansProperties, TraceNeverRises) {
  using T = TypeParam;
  const double slack = std::is_same<T, float>::value ? 1e-5 : 1e-12;
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    RowMatrix<T> x = uniform<T>(4000, 6, seed);
    KMeansParams p;
    p.n_clusters = 20;
    p.tol = 0;
    p.n_init = 2;
    p.seed = seed;
    KMeans<T> km(p);
    km.fit(x);
    ASSERT_EQ(km.runs().size(), 2u);
    for (const auto& run : km.runs()) {
      ASSERT_GE(run.trace.size(), 2u);
      double prev = std::numeric_limits<double>::infinity();
      for (const auto& it : run.trace) {
        EXPECT_LE(it.distortion_assign, prev * (1 + slack));
        EXPECT_LE(it.distortion_update, it.distortion_assign * (1 + slack));
        EXPECT_GE(it.distortion_update, 0.0);
        EXPECT_GE(it.seconds, 0.0);
        prev = it.distortion_update;
      }
      EXPECT_LE(run.inertia, prev * (1 + slack));
    }
  }
}

// k-means++'s passes and transform compute several exact distances at once (sq_dist_pairs:
// independent chains) where the feature count is a multiple of 8; each must have sq_dist's bits, in
// every group size, since the CUDA backend and the replays compute the same distances one at a time.
// Other feature counts go through sq_dist itself (its scalar tail is the vectoriser's to fuse or not).
TYPED_TEST(KMeansProperties, DistancesInPairsHaveTheSingleDistancesBits) {
  using T = TypeParam;
  EXPECT_FALSE(detail::pairs_fit(9));
  EXPECT_FALSE(detail::pairs_fit(70));
  std::mt19937_64 gen(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (const Index d : {8, 16, 24, 64, 72, 128}) {
    for (const Index count : {1, 2, 5, 7, 8, 9, 13, 17}) {
      std::vector<std::vector<T>> x(static_cast<std::size_t>(count)), c(static_cast<std::size_t>(count));
      std::vector<std::vector<double>> cd(static_cast<std::size_t>(count));
      for (Index p = 0; p < count; ++p) {
        for (Index j = 0; j < d; ++j) {
          x[p].push_back(static_cast<T>(1e3 * normal(gen)));
          c[p].push_back(static_cast<T>(1e3 + normal(gen)));
        }
        cd[p].assign(c[p].begin(), c[p].end());
      }
      std::vector<double> got(static_cast<std::size_t>(count), -1.0);
      Index calls = 0;
      detail::for_pair_groups(count, [&](auto M, Index first) {
        const T* xs[M];
        const double* cs[M];
        for (int m = 0; m < M; ++m) {
          xs[m] = x[first + m].data();
          cs[m] = cd[first + m].data();
        }
        detail::sq_dist_pairs<M>(xs, cs, d, got.data() + first);
        calls += M;
      });
      ASSERT_EQ(calls, count);
      for (Index p = 0; p < count; ++p) {
        const double want = detail::sq_dist(x[p].data(), c[p].data(), d);
        EXPECT_EQ(std::memcmp(&want, &got[p], sizeof want), 0) << "d " << d << " count " << count << " pair " << p
                                                                << ": " << want << " vs " << got[p];
      }
    }
  }
}

// The J recorded after the update comes from the statistics alone (no pass over the data); it must
// equal the distortion recomputed directly. Fit A stops after t iterations: its final labels are
// c_t (assigned by the centres mu_t). Fit B runs t + 1: its last iteration assigns the same c_t and
// moves the centres to mu_{t+1}, so B's last J_update must be J(c_t, mu_{t+1}) and its last J_assign
// must be A's inertia J(c_t, mu_t).
TYPED_TEST(KMeansProperties, UpdateDistortionEqualsDirectComputation) {
  using T = TypeParam;
  RowMatrix<T> x = blobs<T>(3000, 4, 5, 9, /*offset=*/100.0, /*spread=*/30.0);
  std::vector<double> w(3000);
  Eigen::Matrix<T, Eigen::Dynamic, 1> wt(3000);
  for (Index i = 0; i < 3000; ++i) wt(i) = static_cast<T>(w[i] = 0.5 + (i % 3));
  const double eps = std::is_same<T, float>::value ? 1e-5 : 1e-11;
  int checked = 0;
  for (int t = 1; t <= 4; ++t) {
    KMeansParams p;
    p.n_clusters = 8;
    p.tol = 0;
    p.seed = 4;
    p.max_iter = t;
    KMeans<T> a(p);
    a.fit(x, wt);
    p.max_iter = t + 1;
    KMeans<T> b(p);
    b.fit(x, wt);
    if (b.n_iter() < t + 1) break;  // converged: nothing left to check
    const auto& last = b.trace().back();
    EXPECT_NEAR(last.distortion_assign, a.inertia(), eps * a.inertia());
    const double direct = distortion(x, w, b.cluster_centers(), a.labels());
    EXPECT_NEAR(last.distortion_update, direct, eps * direct);
    EXPECT_NEAR(b.inertia(), distortion(x, w, b.cluster_centers(), b.labels()), eps * direct);
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TYPED_TEST(KMeansProperties, BitIdenticalForOneAndTwoThreads) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(20000, 7, 21);  // several blocks and reduction groups
  auto fit = [&](int threads, KMeansInit init) {
    KMeansParams p;
    p.n_clusters = 13;
    p.n_init = 2;
    p.seed = 77;
    p.init = init;
    p.n_threads = threads;
    KMeans<T> km(p);
    km.fit(x);
    return km;
  };
  for (KMeansInit init : {KMeansInit::kmeans_plusplus, KMeansInit::random}) {
    const auto a = fit(1, init), b = fit(2, init);
    ASSERT_EQ(a.n_iter(), b.n_iter());
    EXPECT_EQ(a.labels(), b.labels());
    EXPECT_EQ(std::memcmp(a.cluster_centers().data(), b.cluster_centers().data(),
                          sizeof(T) * a.cluster_centers().size()),
              0);
    EXPECT_EQ(a.inertia(), b.inertia());  // bitwise, not approximately
    for (std::size_t r = 0; r < a.runs().size(); ++r)
      for (std::size_t i = 0; i < a.runs()[r].trace.size(); ++i) {
        EXPECT_EQ(a.runs()[r].trace[i].distortion_assign, b.runs()[r].trace[i].distortion_assign);
        EXPECT_EQ(a.runs()[r].trace[i].distortion_update, b.runs()[r].trace[i].distortion_update);
      }
  }
}

TYPED_TEST(KMeansProperties, WeightedKMeansPlusPlusIsTheSameForOneAndTwoThreads) {
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(30000, 4, 3);  // several draw blocks
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 4 == 0 ? 0.0 : 0.3 * (i % 7));
  for (const std::uint64_t seed : {5u, 6u})
    EXPECT_EQ(kmeans_plusplus_rows(CpuBackend{1}, MatrixView<T>(x), VectorView<T>(w), 15, 0, CounterRng(seed)),
              kmeans_plusplus_rows(CpuBackend{2}, MatrixView<T>(x), VectorView<T>(w), 15, 0, CounterRng(seed)));
}

namespace {
/// The k-means++ draw written plainly: all rows sorted by (hash, index), their masses added in that
/// order from 0, the first row of positive mass past u * total, else the last row of positive mass.
std::vector<Index> plain_order(const std::vector<detail::RowHash>& hash) {
  std::vector<Index> order(hash.size());
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return hash[a] < hash[b]; });
  return order;
}
template <class T>
Index plain_draw(const std::vector<Index>& order, const T* w, const double* c, double u) {
  const Index n = static_cast<Index>(order.size());
  double total = 0.0;
  for (const Index i : order) total = detail::add_mass(w, c, i, total);
  if (!(total > 0.0)) return -2;
  const double target = u * total;
  double acc = 0.0;
  for (const Index i : order) {
    acc = detail::add_mass(w, c, i, acc);
    if (acc > target && detail::mass_of(w, c, i) > 0) return i;
  }
  for (Index p = n - 1; p >= 0; --p)
    if (detail::mass_of(w, c, order[p]) > 0) return order[p];
  return -1;
}
}  // namespace

TEST(KMeansDraws, DrawIsThePlainWalkInHashOrder) {
  // The draws add the masses into buckets of the hash order and walk only the bucket the target falls
  // in: the same rows as the plain walk through all rows in (hash, index) order, for any thread count.
  // Integer masses: every sum is exact, so no round-off can tell the two orders of addition apart.
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (const Index n : {Index{1}, Index{5}, Index{300}, Index{5000}, Index{70000}}) {
    for (int kind = 0; kind < 3; ++kind) {  // unit weights x distances, weights alone, weights x distances
      for (int rep = 0; rep < 3; ++rep) {
        std::vector<detail::RowHash> hash(static_cast<std::size_t>(n));
        std::vector<double> c(static_cast<std::size_t>(n)), w(static_cast<std::size_t>(n));
        for (Index i = 0; i < n; ++i) {
          hash[i] = {gen(), gen()};
          if (unit(gen) < 0.2 && i > 0) hash[i] = hash[gen() % i];                   // repeated rows
          if (unit(gen) < 0.1 && i > 0) hash[i].coarse = hash[gen() % i].coarse;     // equal to float precision
          if (rep == 2) hash[i].coarse &= 0x00ff0000ffffffffULL;                     // crowded buckets
          c[i] = unit(gen) < 0.3 || i >= n - 100 ? 0.0 : std::floor(unit(gen) * 1e3);  // zeros, and a zero tail
          w[i] = unit(gen) < 0.2 ? 0.0 : std::floor(unit(gen) * 5);
        }
        c[0] = w[0] = 1.0;  // some mass whatever the draws above
        const double* cp = kind == 1 ? nullptr : c.data();
        const double* wp = kind == 0 ? nullptr : w.data();
        std::vector<double> us = {0.0, 1e-300, 0.5, 1.0 - 0x1.0p-53, 1.0 - 0x1.0p-52};
        for (int j = 0; j < 20; ++j) us.push_back(unit(gen));
        std::vector<Index> one, two;
        ASSERT_TRUE(detail::draw_in_order(detail::DrawOrder(hash, 1), wp, cp, us, one));
        ASSERT_TRUE(detail::draw_in_order(detail::DrawOrder(hash, 2), wp, cp, us, two));
        EXPECT_EQ(one, two);
        const std::vector<Index> order = plain_order(hash);
        for (std::size_t j = 0; j < us.size(); ++j)
          ASSERT_EQ(one[j], plain_draw(order, wp, cp, us[j])) << "n " << n << ", kind " << kind << ", u " << us[j];
      }
    }
  }
  // No mass at all: no draw.
  const std::vector<detail::RowHash> hash(100, detail::RowHash{1, 2});
  std::vector<double> zeros(100, 0.0);
  std::vector<Index> out = {7};
  EXPECT_FALSE(detail::draw_in_order(detail::DrawOrder(hash, 1), static_cast<const double*>(nullptr), zeros.data(),
                                     {0.5}, out));
  EXPECT_TRUE(out.empty());
}

TEST(KMeansDraws, RowHashesDependOnTheValuesAlone) {
  // Dense and CSR rows, float and double, columns stored in any order, explicit zeros: the same hashes
  // for the same values; another value or another column, other hashes. A double that float cannot
  // hold keeps the coarse hash of its float rounding and has an exact hash of its own.
  const std::vector<double> a = {0.0, 1.5, 0.0, -2.25};
  const std::vector<float> af(a.begin(), a.end());
  const detail::RowHash h = detail::dense_row_hash(a.data(), 4);
  EXPECT_EQ(detail::dense_row_hash(af.data(), 4), h);
  std::vector<std::uint64_t> keys(4);
  for (int j = 0; j < 4; ++j) keys[j] = detail::column_key(j);
  EXPECT_EQ(detail::dense_row_hash(a.data(), keys.data(), 4), h);
  const std::vector<double> v = {-2.25, 0.0, 1.5};
  const std::vector<std::int32_t> col = {3, 0, 1};
  EXPECT_EQ(detail::sparse_row_hash(v.data(), col.data(), 3), h);
  const std::vector<double> negzero = {-0.0, 1.5, 0.0, -2.25};
  EXPECT_EQ(detail::dense_row_hash(negzero.data(), 4), h);
  const std::vector<double> other = {0.0, 1.5, -2.25, 0.0}, near = {0.0, 1.5, 0.0, std::nextafter(-2.25f, 0.0f)};
  EXPECT_NE(detail::dense_row_hash(other.data(), 4).coarse, h.coarse);
  EXPECT_NE(detail::dense_row_hash(near.data(), 4).coarse, h.coarse);
  const std::vector<double> finer = {0.0, 1.5, 0.0, std::nextafter(-2.25, 0.0)};
  EXPECT_EQ(detail::dense_row_hash(finer.data(), 4).coarse, h.coarse);
  EXPECT_NE(detail::dense_row_hash(finer.data(), 4).exact, h.exact);
}

TYPED_TEST(KMeansProperties, KMeansPlusPlusIgnoresRowOrderAndDrawsIntegerWeightsAsRepeatedRows) {
  // scikit-learn's sample-weight equivalence for the start: the rows shuffled, or each row repeated
  // as many times as its integer weight (none for weight 0), give k-means++ the same centres, in the
  // same order; and so a fit from there gives the same centres, up to round-off in the means.
  using T = TypeParam;
  const Index n = 3000, d = 5;
  const int K = 20;
  const RowMatrix<T> x = uniform<T>(n, d, 11);
  std::mt19937_64 gen(12);
  std::vector<int> wi(static_cast<std::size_t>(n));
  for (auto& v : wi) v = static_cast<int>(gen() % 5);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(n);
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(wi[i]);
  std::vector<Index> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), Index{0});
  std::shuffle(perm.begin(), perm.end(), gen);
  RowMatrix<T> xs(n, d);
  Eigen::Matrix<T, Eigen::Dynamic, 1> ws(n);
  for (Index i = 0; i < n; ++i) {
    xs.row(i) = x.row(perm[i]);
    ws[i] = w[perm[i]];
  }
  std::vector<Index> rep;
  for (Index i = 0; i < n; ++i)
    for (int k = 0; k < wi[i]; ++k) rep.push_back(i);
  std::shuffle(rep.begin(), rep.end(), gen);
  RowMatrix<T> xr(static_cast<Index>(rep.size()), d);
  for (std::size_t i = 0; i < rep.size(); ++i) xr.row(static_cast<Index>(i)) = x.row(rep[i]);
  for (const std::uint64_t seed : {0u, 1u, 2u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto centres = [&](const RowMatrix<T>& m, VectorView<T> wv) {
      const auto rows = kmeans_plusplus_rows(CpuBackend{2}, MatrixView<T>(m), wv, K, 0, CounterRng(seed));
      return fetch_rows(CpuBackend{}, MatrixView<T>(m), rows);
    };
    const RowMatrix<T> c = centres(x, VectorView<T>(w));
    EXPECT_EQ(centres(xs, VectorView<T>(ws)), c) << "shuffled rows";
    // The other precision: the same rows (the masses differ in the last bits only).
    using U = std::conditional_t<std::is_same<T, float>::value, double, float>;
    const RowMatrix<U> xu = x.template cast<U>();
    const Eigen::Matrix<U, Eigen::Dynamic, 1> wu = w.template cast<U>();
    EXPECT_EQ(kmeans_plusplus_rows(CpuBackend{2}, MatrixView<U>(xu), VectorView<U>(wu), K, 0, CounterRng(seed)),
              kmeans_plusplus_rows(CpuBackend{2}, MatrixView<T>(x), VectorView<T>(w), K, 0, CounterRng(seed)))
        << "float and double";
    EXPECT_EQ(centres(xr, VectorView<T>{}), c) << "repeated rows";
    KMeansParams p;
    p.n_clusters = K;
    p.seed = seed;
    KMeans<T> weighted(p), repeated(p);
    weighted.fit(MatrixView<T>(x), VectorView<T>(w));
    repeated.fit(MatrixView<T>(xr));
    EXPECT_EQ(weighted.n_iter(), repeated.n_iter());
    EXPECT_TRUE(weighted.cluster_centers().isApprox(repeated.cluster_centers(), std::is_same<T, float>::value ? 1e-5 : 1e-12));
    EXPECT_NEAR(weighted.inertia(), repeated.inertia(), 1e-9 * repeated.inertia());
  }
}

TYPED_TEST(KMeansProperties, SameSeedSameFitOtherSeedOtherStart) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(2000, 3, 8);
  auto fit = [&](std::uint64_t seed) {
    KMeansParams p;
    p.n_clusters = 10;
    p.seed = seed;
    p.max_iter = 1;
    KMeans<T> km(p);
    km.fit(x);
    return km;
  };
  EXPECT_EQ(fit(5).cluster_centers(), fit(5).cluster_centers());
  EXPECT_NE(fit(5).cluster_centers(), fit(6).cluster_centers());
}

// The kept restart is the one with the lowest inertia, and every restart keeps its trace.
TYPED_TEST(KMeansProperties, RestartsKeepTheBest) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(3000, 2, 12);
  KMeansParams p;
  p.n_clusters = 15;
  p.n_init = 5;
  p.init = KMeansInit::random;
  KMeans<T> km(p);
  km.fit(x);
  ASSERT_EQ(km.runs().size(), 5u);
  double best = std::numeric_limits<double>::infinity();
  for (const auto& r : km.runs()) {
    best = std::min(best, r.inertia);
    EXPECT_EQ(static_cast<int>(r.trace.size()), r.n_iter);
  }
  EXPECT_EQ(km.inertia(), best);
  EXPECT_EQ(km.runs()[km.best_restart()].inertia, best);
}

// Integer sample weights are the same as repeating rows.
TYPED_TEST(KMeansProperties, IntegerWeightsEqualRepeatedRows) {
  using T = TypeParam;
  RowMatrix<T> x = blobs<T>(300, 3, 4, 2);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(300);
  Index total = 0;
  for (Index i = 0; i < 300; ++i) total += static_cast<Index>(w(i) = static_cast<T>(i % 3));
  RowMatrix<T> rep(total, 3);
  for (Index i = 0, r = 0; i < 300; ++i)
    for (int c = 0; c < static_cast<int>(w(i)); ++c) rep.row(r++) = x.row(i);
  RowMatrix<T> init(4, 3);
  for (Index c = 0; c < 4; ++c) init.row(c) = x.row(3 * c + 1);
  KMeansParams p;
  p.n_clusters = 4;
  p.tol = 0;
  KMeans<T> a(p), b(p);
  a.fit(x, w, init);
  b.fit(rep, {}, init);
  const double eps = std::is_same<T, float>::value ? 1e-5 : 1e-12;
  EXPECT_NEAR(a.inertia(), b.inertia(), eps * b.inertia());
  EXPECT_LE((a.cluster_centers() - b.cluster_centers()).cwiseAbs().maxCoeff(), eps * 100);
}

// Sensor-like float32 data far from the origin (readings ~1e4, unit noise), 10^6 rows: the reported
// inertia must match a long-double recomputation, which the expanded formula alone would not give.
TEST(KMeansLarge, Float32MillionRowsWithLargeOffset) {
  const Index n = 1000000, d = 4;
  RowMatrix<float> x = blobs<float>(n, d, 3, 31, /*offset=*/1e4, /*spread=*/1.0);
  KMeansParams p;
  p.n_clusters = 3;
  p.max_iter = 20;
  KMeans<float> km(p);
  km.fit(x);
  const double direct = distortion(x, {}, km.cluster_centers(), km.labels());
  EXPECT_NEAR(km.inertia(), direct, 1e-6 * direct);
  // Unit-variance noise in 4 dimensions: about 4 per row once the blobs are found.
  EXPECT_NEAR(km.inertia() / n, 4.0, 0.1);
}

// Hamerly's and Yinyang's bounds skip rows (and groups of centres) that provably keep their centre:
// labels, centres, trace, events and n_iter are Lloyd's bit for bit, on structured and unstructured
// data, near ties and far from the origin, weighted or not, with one group of centres or several
// (K > kYinyangGroupSize), with clusters that empty and are re-seeded, for one and two threads.
TYPED_TEST(KMeansProperties, BoundsGiveLloydsBits) {
  using T = TypeParam;
  struct Case {
    RowMatrix<T> x;
    int k;
    bool weighted;
    bool skips = true;  ///< the bounds settle some rows (not where every tie is exact or distances overflow)
    int max_iter = 300;
  };
  std::vector<Case> cases;
  cases.push_back({blobs<T>(4000, 8, 40, 3), 16, false});       // fewer centres than blobs
  cases.push_back({uniform<T>(3000, 7, 21), 13, true});          // no structure: many near ties
  cases.push_back({blobs<T>(2000, 33, 60, 4, 1e4), 60, false});  // far from the origin, D > 32
  RowMatrix<T> dup(600, 2);                                      // 5 distinct points, 8 centres
  for (Index i = 0; i < dup.rows(); ++i) dup.row(i) << T(i % 5), T((i % 5) * (i % 3));
  cases.push_back({dup, 8, false});
  cases.push_back({blobs<T>(3000, 40, 150, 6, 1e3), 150, true});  // 5 groups, far from the origin
  cases.push_back({uniform<T>(2500, 33, 22), 100, false});        // 4 groups, near ties everywhere
  RowMatrix<T> few(900, 3);  // 30 distinct points, 70 centres: clusters empty and are re-seeded
  for (Index i = 0; i < few.rows(); ++i) few.row(i) << T(i % 30), T((i % 30) % 7), T((i % 30) / 7);
  cases.push_back({few, 70, true, false});
  if constexpr (sizeof(T) == 4) {  // squared distances overflow float: the search falls back to centre 0
    RowMatrix<T> huge = uniform<T>(300, 40, 23);
    huge *= T(1e20);
    cases.push_back({huge, 40, false, false, 8});  // (2 groups)
  }
  for (const Case& c : cases) {
    std::vector<T> w(static_cast<std::size_t>(c.x.rows()));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<T>(0.25 + (i % 5) * 0.5);
    const VectorView<T> wv = c.weighted ? VectorView<T>(w.data(), c.x.rows()) : VectorView<T>{};
    auto fit = [&](KMeansAlgorithm a, int threads) {
      KMeansParams p;
      p.n_clusters = c.k;
      p.n_init = 2;
      p.seed = 5;
      p.tol = 0;
      p.max_iter = c.max_iter;
      p.algorithm = a;
      p.n_threads = threads;
      KMeans<T> km(p);
      km.fit(c.x, wv);
      return km;
    };
    const auto lloyd = fit(KMeansAlgorithm::lloyd, 2);
    for (const auto& [algorithm, threads] :
         {std::pair{KMeansAlgorithm::hamerly, 1}, std::pair{KMeansAlgorithm::hamerly, 2},
          std::pair{KMeansAlgorithm::yinyang, 1}, std::pair{KMeansAlgorithm::yinyang, 2}}) {
      const auto ham = fit(algorithm, threads);
      ASSERT_EQ(ham.n_iter(), lloyd.n_iter()) << c.x.rows() << " rows, K " << c.k << " " << to_string(algorithm)
                                               << ", threads " << threads;
      EXPECT_EQ(ham.labels(), lloyd.labels());
      EXPECT_EQ(std::memcmp(ham.cluster_centers().data(), lloyd.cluster_centers().data(),
                            sizeof(T) * lloyd.cluster_centers().size()), 0);
      EXPECT_EQ(ham.inertia(), lloyd.inertia());
      ASSERT_EQ(ham.runs().size(), lloyd.runs().size());
      for (std::size_t r = 0; r < lloyd.runs().size(); ++r) {
        ASSERT_EQ(ham.runs()[r].trace.size(), lloyd.runs()[r].trace.size());
        for (std::size_t i = 0; i < lloyd.runs()[r].trace.size(); ++i) {
          EXPECT_EQ(ham.runs()[r].trace[i].distortion_assign, lloyd.runs()[r].trace[i].distortion_assign);
          EXPECT_EQ(ham.runs()[r].trace[i].distortion_update, lloyd.runs()[r].trace[i].distortion_update);
          EXPECT_EQ(ham.runs()[r].trace[i].n_changed, lloyd.runs()[r].trace[i].n_changed);
        }
      }
      ASSERT_EQ(ham.events().size(), lloyd.events().size());
      if (c.k == 70) {
        EXPECT_GT(lloyd.events().size(), 0u) << "no cluster was re-seeded";
      }
      if (!c.skips) continue;
      // the bounds did skip work (else this test would pass with a plain search)
      std::int64_t fewest = c.x.rows();
      for (const auto& rec : ham.runs().back().trace) fewest = std::min(fewest, rec.n_searched);
      EXPECT_LT(fewest, c.x.rows()) << "K " << c.k << " " << to_string(algorithm);
    }
  }
}

// Yinyang's groups: every centre in exactly one group, each group's centres in increasing index, and
// nearby centres together (two far-apart families of centres never share a group).
TYPED_TEST(KMeansProperties, YinyangGroupsPartitionTheCentres) {
  using T = TypeParam;
  RowMatrix<T> C(97, 4);
  for (Index k = 0; k < C.rows(); ++k) C.row(k) << T(k % 2 ? 1000 : 0) + T(k % 7), T(k % 5), T(k % 3), T(k % 11);
  const detail::CenterGroups g = detail::group_centers(C, 4);
  ASSERT_GE(g.n_groups, 2);
  ASSERT_EQ(g.start.front(), 0);
  ASSERT_EQ(g.start.back(), 97);
  std::vector<int> seen(97, 0);
  for (Index j = 0; j < g.n_groups; ++j) {
    ASSERT_LT(g.start[j], g.start[j + 1]) << "empty group " << j;
    for (Index p = g.start[j]; p < g.start[j + 1]; ++p) {
      const Index k = g.order[p];
      ++seen[k];
      EXPECT_EQ(g.group_of[k], j);
      if (p > g.start[j]) {
        EXPECT_LT(g.order[p - 1], k);
      }
      EXPECT_EQ(k % 2, g.order[g.start[j]] % 2) << "group " << j << " mixes the two families";
    }
  }
  EXPECT_EQ(seen, std::vector<int>(97, 1));
}

// algorithm automatic takes the bounds from K * D = kHamerlyMinWork on, and the trace says how many
// rows each iteration searched: all of them on the first and with lloyd, fewer later with the bounds.
TYPED_TEST(KMeansProperties, TraceCountsTheRowsSearched) {
  using T = TypeParam;
  RowMatrix<T> x(4000, 32);  // no clusters: labels keep changing for many iterations
  std::mt19937 gen(12);
  std::normal_distribution<double> z;
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(z(gen));
  for (const int k : {64, 16}) {
    for (const KMeansAlgorithm a : {KMeansAlgorithm::automatic, KMeansAlgorithm::lloyd, KMeansAlgorithm::hamerly,
                                    KMeansAlgorithm::yinyang}) {
      KMeansParams p;
      p.n_clusters = k;
      p.algorithm = a;
      p.max_iter = 20;
      p.tol = 0;
      KMeans<T> km(p);
      km.fit(x, VectorView<T>{}, MatrixView<T>(x.data(), k, 32));
      const auto& trace = km.trace();
      ASSERT_GE(trace.size(), 3u);
      const bool bounded = a == KMeansAlgorithm::hamerly || a == KMeansAlgorithm::yinyang ||
                           (a == KMeansAlgorithm::automatic && k * 32 >= kHamerlyMinWork);
      EXPECT_EQ(trace[0].n_searched, x.rows()) << k;
      std::int64_t fewest = x.rows(), most = 0;
      for (std::size_t i = 1; i < trace.size(); ++i) {
        fewest = std::min(fewest, trace[i].n_searched);
        most = std::max(most, trace[i].n_searched);
      }
      if (bounded) EXPECT_LT(fewest, 3 * x.rows() / 4) << k << " " << static_cast<int>(a);  // 40 % measured
      else EXPECT_EQ(fewest, x.rows()) << k << " " << static_cast<int>(a);
      EXPECT_LE(most, x.rows());
    }
  }
}

// The bounds do skip: with the centres unchanged, a second pass over well-separated blobs searches
// almost no row, and its statistics are the full pass's bit for bit.
TYPED_TEST(KMeansProperties, HamerlySecondPassSearchesAlmostNothing) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(20000, 16, 10, 8);
  KMeansParams p;
  p.n_clusters = 10;
  p.seed = 1;
  KMeans<T> km(p);
  km.fit(x);
  const RowMatrix<T>& C = km.cluster_centers();
  const CpuBackend be{2};
  std::vector<std::int32_t> labels(static_cast<std::size_t>(x.rows()), -1), plain(labels);
  detail::KMeansBounds<T> b;
  kmeans_assign_bounded(be, MatrixView<T>(x), VectorView<T>{}, C, labels.data(), b);
  EXPECT_EQ(b.n_searched, x.rows());
  const KMeansStats s = kmeans_assign_bounded(be, MatrixView<T>(x), VectorView<T>{}, C, labels.data(), b);
  EXPECT_LT(b.n_searched, x.rows() / 100);
  kmeans_assign(be, MatrixView<T>(x), VectorView<T>{}, C, plain.data());
  const KMeansStats full = kmeans_assign(be, MatrixView<T>(x), VectorView<T>{}, C, plain.data());
  EXPECT_EQ(labels, plain);
  EXPECT_EQ(s.distortion, full.distortion);
  EXPECT_EQ(s.sums, full.sums);
  EXPECT_EQ(s.count, full.count);
}

// The margin Hamerly's test leaves is a true bound on the search's rounding error: the expanded
// distance the kernel computes for each row's centre is within expanded_error of the exact value,
// also in float far from the origin, where the error is largest.
TYPED_TEST(KMeansProperties, ExpandedDistanceErrorIsWithinItsBound) {
  using T = TypeParam;
  for (const double offset : {0.0, 1e3, 1e5}) {
    const RowMatrix<T> x = blobs<T>(2000, 33, 7, 9, offset);
    const RowMatrix<T> C = blobs<T>(7, 33, 7, 10, offset);
    const detail::PreparedCenters<T> pc(C);
    detail::NearestScratch<T> ns(x.rows(), x.cols());
    detail::nearest_centers_block<T, true>(MatrixView<T>(x), pc, ns, 0, x.rows());
    double cmax = 0;
    for (Index k = 0; k < C.rows(); ++k) cmax = std::max(cmax, std::sqrt(detail::sq_dist(C.row(k).data(), pc.shift.data(), 33)));
    double worst = 0;  // the largest error as a share of its bound
    for (Index i = 0; i < x.rows(); ++i) {
      const Index a = ns.arg[static_cast<std::size_t>(i)];
      long double to_c = 0, to_s = 0;
      for (Index d = 0; d < 33; ++d) {
        to_c += std::pow(static_cast<long double>(x(i, d)) - static_cast<long double>(C(a, d)), 2);
        to_s += std::pow(static_cast<long double>(x(i, d)) - static_cast<long double>(pc.shift[d]), 2);
      }
      const double err = std::abs(static_cast<double>(static_cast<long double>(ns.best[static_cast<std::size_t>(i)]) - (to_c - to_s)));
      const double bound = detail::expanded_error<T>(33, std::sqrt(static_cast<double>(to_s)) + cmax);
      worst = std::max(worst, err / bound);
    }
    EXPECT_LE(worst, 1.0) << "offset " << offset;
    EXPECT_GT(worst, 0.0) << "offset " << offset;  // rounding did occur: the check is not vacuous
  }
}

// algorithm = automatic: Lloyd's search below K * D = kHamerlyMinWork, Yinyang's groups for dense rows
// from K = kYinyangMinK and D = kYinyangMinD on (where the vector path can search a group), else
// Hamerly's bounds; yinyang asked for where it cannot run is hamerly.
TEST(KMeansSearchChoice, AutomaticPicksBySizeAndShape) {
  using detail::bounded_search;
  const KMeansAlgorithm grouped = kCanGroupSearch ? KMeansAlgorithm::yinyang : KMeansAlgorithm::hamerly;
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 16, 32, true), KMeansAlgorithm::lloyd);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 64, 32, true), KMeansAlgorithm::hamerly);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 256, 64, true), KMeansAlgorithm::hamerly);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 512, 32, true), grouped);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 4096, 64, true), grouped);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 1024, 16, true), KMeansAlgorithm::hamerly);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::automatic, 1024, 64, false), KMeansAlgorithm::hamerly);  // sparse rows
  EXPECT_EQ(bounded_search(KMeansAlgorithm::yinyang, 4, 2, true), grouped);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::yinyang, 1024, 64, false), KMeansAlgorithm::hamerly);
  EXPECT_EQ(bounded_search(KMeansAlgorithm::lloyd, 4096, 64, true), KMeansAlgorithm::lloyd);
  EXPECT_STREQ(to_string(KMeansAlgorithm::yinyang), "yinyang");
  // groups of about 32 centres, at most D of them (the bounds take no more memory than the data)
  EXPECT_EQ(detail::yinyang_groups(1024, 64), 32);
  EXPECT_EQ(detail::yinyang_groups(1000, 64), 32);
  EXPECT_EQ(detail::yinyang_groups(4096, 64), 64);
  EXPECT_EQ(detail::yinyang_groups(4096, 8), 8);
  EXPECT_EQ(detail::yinyang_groups(10, 3), 1);
}
