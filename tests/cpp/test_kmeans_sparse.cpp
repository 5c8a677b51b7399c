// K-means on sparse (CSR) rows against the same rows dense and against brute force in long double:
// labels by exact distance, statistics bit for bit as the dense fold, input checks with the values.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

#define EXPECT_CONTAINS(text, part)                                 \
  do {                                                              \
    const std::string t_ = (text);                                  \
    EXPECT_NE(t_.find(part), std::string::npos) << t_;              \
  } while (0)

namespace kmeans_sparse_test {

/// A CSR matrix owned by the test, and its dense twin.
template <class T>
struct Csr {
  std::vector<T> values;
  std::vector<std::int32_t> indices;
  std::vector<std::int64_t> indptr{0};
  RowMatrix<T> dense;
  CsrMatrixView<T> view() const {
    return {values.data(), indices.data(), indptr.data(), dense.rows(), dense.cols()};
  }
};

/// From a dense matrix: its nonzeros, columns in decreasing order within a row (unsorted is allowed).
template <class T>
Csr<T> to_csr(const RowMatrix<T>& x) {
  Csr<T> c;
  c.dense = x;
  for (Index i = 0; i < x.rows(); ++i) {
    for (Index j = x.cols() - 1; j >= 0; --j)
      if (x(i, j) != T(0)) {
        c.values.push_back(x(i, j));
        c.indices.push_back(static_cast<std::int32_t>(j));
      }
    c.indptr.push_back(static_cast<std::int64_t>(c.values.size()));
  }
  return c;
}

/// k blobs of n rows in d features, each blob living on its own columns plus a few shared ones, a
/// fraction `density` of entries stored, values offset + spread * N(0, 1) (some rows all zero).
template <class T>
RowMatrix<T> sparse_blobs(Index n, Index d, Index k, double density, std::uint32_t seed, double offset = 0,
                          double spread = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> g(0, 1);
  RowMatrix<T> x = RowMatrix<T>::Zero(n, d);
  for (Index i = 0; i < n; ++i) {
    const Index b = i % k;
    if (i % 97 == 5) continue;  // an empty row now and then
    for (Index j = 0; j < d; ++j) {
      const bool own = j % k == b;
      if (u(rng) < (own ? 4 * density : density)) x(i, j) = static_cast<T>(offset + (own ? 3.0 : 0.0) + spread * g(rng));
    }
  }
  return x;
}

/// The nearest centre by the exact distance in long double (ties to the lowest index).
template <class T>
std::vector<std::int32_t> brute_labels(const RowMatrix<T>& x, const RowMatrix<T>& c, std::vector<long double>* d2 = nullptr) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(x.rows()));
  if (d2) d2->assign(static_cast<std::size_t>(x.rows() * c.rows()), 0);
  for (Index i = 0; i < x.rows(); ++i) {
    long double best = 0;
    for (Index k = 0; k < c.rows(); ++k) {
      long double s = 0;
      for (Index j = 0; j < x.cols(); ++j) {
        const long double t = static_cast<long double>(x(i, j)) - static_cast<long double>(c(k, j));
        s += t * t;
      }
      if (d2) (*d2)[static_cast<std::size_t>(i * c.rows() + k)] = s;
      if (k == 0 || s < best) {
        best = s;
        out[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(k);
      }
    }
  }
  return out;
}

template <class T>
RowMatrix<T> first_rows_as_centres(const RowMatrix<T>& x, Index k, Index step) {
  RowMatrix<T> c(k, x.cols());
  for (Index j = 0; j < k; ++j) c.row(j) = x.row(j * step + 1);
  return c;
}

}  // namespace kmeans_sparse_test

using namespace kmeans_sparse_test;

template <class T>
class KMeansSparse : public ::testing::Test {};
TYPED_TEST_SUITE(KMeansSparse, Scalars);

// From the same initial centres a sparse fit and a dense fit of the same rows give the same labels,
// iterations and centres bit for bit (the statistics fold the same values in the same order; the
// zeros a dense row adds change nothing); the distortions agree to their rounding.
TYPED_TEST(KMeansSparse, FitEqualsTheDenseFitFromTheSameStart) {
  using T = TypeParam;
  for (std::uint32_t seed : {1u, 2u}) {
    const Csr<T> x = to_csr<T>(sparse_blobs<T>(3000, 120, 6, 0.04, seed));
    KMeansParams p;
    p.n_clusters = 6;
    p.max_iter = 50;
    const RowMatrix<T> init = first_rows_as_centres(x.dense, 6, 1);
    KMeans<T> dense(p), sparse(p);
    dense.fit(x.dense, {}, init);
    sparse.fit(x.view(), {}, init);
    ASSERT_EQ(sparse.labels(), dense.labels()) << "seed " << seed;
    EXPECT_EQ(sparse.n_iter(), dense.n_iter());
    EXPECT_TRUE(sparse.cluster_centers() == dense.cluster_centers()) << "centres differ, seed " << seed;
    EXPECT_NEAR(sparse.inertia(), dense.inertia(), 1e-12 * dense.inertia());
    ASSERT_EQ(sparse.trace().size(), dense.trace().size());
    for (std::size_t t = 0; t < dense.trace().size(); ++t) {
      EXPECT_NEAR(sparse.trace()[t].distortion_assign, dense.trace()[t].distortion_assign,
                  1e-12 * dense.trace()[t].distortion_assign);
      EXPECT_EQ(sparse.trace()[t].n_changed, dense.trace()[t].n_changed);
      EXPECT_EQ(sparse.trace()[t].n_searched, 3000);
    }
  }
}

// The same with sample weights, and with k-means++ from the same seed (its draws read exact distances
// on both paths), and across thread counts (bit for bit).
TYPED_TEST(KMeansSparse, WeightsPlusPlusAndThreadsAgreeWithDense) {
  using T = TypeParam;
  const Csr<T> x = to_csr<T>(sparse_blobs<T>(2500, 90, 5, 0.05, 7));
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(2500);
  for (Index i = 0; i < 2500; ++i) w(i) = static_cast<T>(0.25 * (1 + i % 5));
  KMeansParams p;
  p.n_clusters = 5;
  p.seed = 11;
  p.n_init = 2;
  KMeans<T> dense(p), sparse(p);
  dense.fit(x.dense, w);
  sparse.fit(x.view(), w);
  EXPECT_EQ(sparse.labels(), dense.labels());
  EXPECT_TRUE(sparse.cluster_centers() == dense.cluster_centers());
  EXPECT_NEAR(sparse.inertia(), dense.inertia(), 1e-12 * dense.inertia());
  for (int threads : {1, 2}) {
    KMeansParams q = p;
    q.n_threads = threads;
    KMeans<T> again(q);
    again.fit(x.view(), w);
    EXPECT_EQ(again.labels(), sparse.labels());
    EXPECT_TRUE(again.cluster_centers() == sparse.cluster_centers());
    EXPECT_EQ(again.inertia(), sparse.inertia());
  }
}

// Rows far from the origin (values near 1e4 on every stored column): the search's unshifted expanded
// distance loses the digits that separate the centres, in float and in double; the labels must still
// be the nearest by exact distance, and transform and score exact.
TYPED_TEST(KMeansSparse, LabelsAreTheExactNearestFarFromTheOrigin) {
  using T = TypeParam;
  for (const double offset : {0.0, 1e4}) {
    const Csr<T> x = to_csr<T>(sparse_blobs<T>(800, 40, 4, 0.3, 3, offset, offset > 0 ? 1e-3 : 1.0));
    RowMatrix<T> c = first_rows_as_centres(x.dense, 7, 13);
    KMeans<T> km;
    km.set_centers(c);
    std::vector<long double> d2;
    const auto expect = brute_labels(x.dense, c, &d2);
    EXPECT_EQ(km.predict(x.view()), expect) << "offset " << offset;
    const RowMatrix<T> dist = km.transform(x.view());
    long double total = 0;
    for (Index i = 0; i < x.dense.rows(); ++i) {
      total += d2[static_cast<std::size_t>(i * 7 + expect[static_cast<std::size_t>(i)])];
      for (Index k = 0; k < 7; ++k) {
        const double want = static_cast<double>(d2[static_cast<std::size_t>(i * 7 + k)]);
        const double got = static_cast<double>(dist(i, k)) * static_cast<double>(dist(i, k));
        // The documented bound: the zeros' term ||c||^2 - sum c_j^2 is exact to about (D + nnz) u ||c||^2
        // (absolute); float output adds one rounding of the distance.
        const double rel = std::is_same<T, float>::value ? 3e-7 : 1e-14;
        const double tol = rel * want + 8.0 * (40 + 40) * std::ldexp(1.0, -53) * c.row(k).template cast<double>().squaredNorm();
        ASSERT_NEAR(got, want, tol) << "row " << i << " centre " << k << " offset " << offset;
      }
    }
    EXPECT_NEAR(-km.score(x.view()), static_cast<double>(total), 1e-9 * static_cast<double>(total) + 1e-6);
  }
}

// An empty cluster is re-seeded from the farthest row (fetched dense from the CSR arrays), as in the
// dense fit; explicit zeros and all-zero rows are rows like any other.
TYPED_TEST(KMeansSparse, EmptyClusterReseedAndExplicitZeros) {
  using T = TypeParam;
  Csr<T> x = to_csr<T>(sparse_blobs<T>(600, 30, 3, 0.1, 5));
  // an explicit zero stored in row 2 (column 0 is then stored twice only if it was stored: pick one free)
  Index free_col = -1;
  for (Index j = 0; j < 30 && free_col < 0; ++j)
    if (x.dense(2, j) == T(0)) free_col = j;
  ASSERT_GE(free_col, 0);
  x.values.insert(x.values.begin() + x.indptr[3], T(0));
  x.indices.insert(x.indices.begin() + x.indptr[3], static_cast<std::int32_t>(free_col));
  for (std::size_t i = 3; i < x.indptr.size(); ++i) ++x.indptr[i];
  RowMatrix<T> init = first_rows_as_centres(x.dense, 4, 1);
  init.row(3).setConstant(T(1e3));  // far from every row: empty after the first assignment
  KMeansParams p;
  p.n_clusters = 4;
  KMeans<T> dense(p), sparse(p);
  dense.fit(x.dense, {}, init);
  sparse.fit(x.view(), {}, init);
  ASSERT_FALSE(sparse.events().empty());
  EXPECT_EQ(sparse.events().front().row, dense.events().front().row);
  EXPECT_EQ(sparse.labels(), dense.labels());
  EXPECT_TRUE(sparse.cluster_centers() == dense.cluster_centers());
}

// Malformed CSR arrays are refused before any pass, naming the row, the column and the value.
TYPED_TEST(KMeansSparse, MalformedInputIsRefusedWithItsValues) {
  using T = TypeParam;
  const Csr<T> good = to_csr<T>(sparse_blobs<T>(50, 8, 2, 0.3, 9));
  KMeansParams p;
  p.n_clusters = 2;
  auto message = [&](Csr<T> x) {
    return invalid_argument_message([&] {
      KMeans<T> km(p);
      km.fit(x.view());
    });
  };
  {
    Csr<T> x = good;
    x.indices[3] = 8;
    EXPECT_CONTAINS(message(x), "CSR column index 8 in row");
    EXPECT_CONTAINS(message(x), "outside [0, n_features = 8)");
  }
  {
    Csr<T> x = good;
    const Index row = 1, b = x.indptr[1];
    ASSERT_GE(x.indptr[2] - b, 2);
    x.indices[static_cast<std::size_t>(b + 1)] = x.indices[static_cast<std::size_t>(b)];
    EXPECT_CONTAINS(message(x), "CSR row " + std::to_string(row) + " stores column");
    EXPECT_CONTAINS(message(x), "sum_duplicates");
  }
  {
    Csr<T> x = good;
    x.values[5] = std::numeric_limits<T>::quiet_NaN();
    EXPECT_CONTAINS(message(x), "non-finite value (nan) at row");
  }
  {
    Csr<T> x = good;
    x.indptr[4] = x.indptr[3] - 1;
    EXPECT_CONTAINS(message(x), "CSR indptr decreases at row");
  }
  {
    Csr<T> x = good;
    x.indptr[0] = 1;
    EXPECT_CONTAINS(message(x), "CSR indptr[0] is 1, expected 0");
  }
  // predict checks the features against the fit
  KMeans<T> km(p);
  km.fit(good.view());
  Csr<T> wide = good;
  wide.dense.conservativeResize(Eigen::NoChange, 9);
  EXPECT_CONTAINS(invalid_argument_message([&] { km.predict(wide.view()); }),
                  "X has 9 features, but the model was fitted with 8");
}

// 32-bit indptr (SciPy's default) reads the same rows as 64-bit.
TYPED_TEST(KMeansSparse, ThirtyTwoBitIndptr) {
  using T = TypeParam;
  const Csr<T> x = to_csr<T>(sparse_blobs<T>(700, 25, 3, 0.2, 4));
  const std::vector<std::int32_t> ptr32(x.indptr.begin(), x.indptr.end());
  const CsrMatrixView<T> v32(x.values.data(), x.indices.data(), ptr32.data(), 700, 25);
  KMeansParams p;
  p.n_clusters = 3;
  p.seed = 2;
  KMeans<T> a(p), b(p);
  a.fit(x.view());
  b.fit(v32);
  EXPECT_EQ(a.labels(), b.labels());
  EXPECT_TRUE(a.cluster_centers() == b.cluster_centers());
}

// A chunk's statistics (the streams API) from sparse rows are the dense chunk's: counts, weights and
// sums bit for bit, the same re-seeding candidates (row, cluster, values), the distortion to rounding;
// merged chunk by chunk too.
TYPED_TEST(KMeansSparse, ChunkStatisticsEqualTheDenseChunks) {
  using T = TypeParam;
  const Csr<T> x = to_csr<T>(sparse_blobs<T>(1500, 60, 4, 0.06, 21));
  const RowMatrix<T> c = first_rows_as_centres(x.dense, 4, 3);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(1500);
  for (Index i = 0; i < 1500; ++i) w(i) = static_cast<T>(i % 7 == 0 ? 0 : 1 + i % 3);
  KMeansStats dense, sparse;
  for (Index b = 0; b < 1500; b += 600) {
    const Index e = std::min<Index>(1500, b + 600);
    const VectorView<T> wv(w.data() + b, e - b);
    KMeansStats d = kmeans_statistics(MatrixView<T>(x.dense.row(b).data(), e - b, 60), wv, c);
    // the chunk's rows as a CSR view of their own: indptr from row b, rebased
    std::vector<std::int64_t> ptr(x.indptr.begin() + b, x.indptr.begin() + e + 1);
    for (auto& q : ptr) q -= x.indptr[static_cast<std::size_t>(b)];
    const CsrMatrixView<T> chunk(x.values.data() + x.indptr[static_cast<std::size_t>(b)],
                                 x.indices.data() + x.indptr[static_cast<std::size_t>(b)], ptr.data(), e - b, 60);
    KMeansStats s = kmeans_statistics(chunk, wv, c);
    if (b == 0) {
      dense = std::move(d);
      sparse = std::move(s);
    } else {
      dense.merge(d);
      sparse.merge(s);
    }
  }
  EXPECT_EQ(sparse.count, dense.count);
  EXPECT_EQ(sparse.weight, dense.weight);
  EXPECT_EQ(sparse.sums, dense.sums);
  EXPECT_NEAR(sparse.distortion, dense.distortion, 1e-12 * dense.distortion);
  ASSERT_EQ(sparse.farthest.size(), dense.farthest.size());
  ASSERT_EQ(sparse.farthest.size(), 3u);
  for (std::size_t e = 0; e < dense.farthest.size(); ++e) {
    EXPECT_EQ(sparse.farthest[e].row, dense.farthest[e].row);
    EXPECT_EQ(sparse.farthest[e].cluster, dense.farthest[e].cluster);
    EXPECT_EQ(sparse.farthest[e].values, dense.farthest[e].values);
    EXPECT_NEAR(sparse.farthest[e].distance, dense.farthest[e].distance, 1e-12 * dense.farthest[e].distance);
  }
}

// MiniBatchKMeans on CSR rows: batches gathered as CSR and stepped by the sparse passes give the
// dense fit's centres, counts and steps (same seed, same draws), for fit, partial_fit and with the
// reassignment of starved centres (which copies a sparse row into a centre).
TYPED_TEST(KMeansSparse, MiniBatchEqualsTheDenseMiniBatch) {
  using T = TypeParam;
  const Csr<T> x = to_csr<T>(sparse_blobs<T>(4000, 80, 6, 0.05, 13));
  MiniBatchKMeansParams p;
  p.n_clusters = 8;
  p.batch_size = 256;
  p.max_iter = 5;
  p.seed = 3;
  p.reassignment_ratio = 0.2;  // high: centres are reassigned now and then
  MiniBatchKMeans<T> dense(p), sparse(p);
  dense.fit(x.dense);
  sparse.fit(x.view());
  EXPECT_EQ(sparse.n_steps(), dense.n_steps());
  EXPECT_TRUE(sparse.cluster_centers() == dense.cluster_centers());
  EXPECT_EQ(sparse.counts(), dense.counts());
  EXPECT_EQ(sparse.labels(), dense.labels());
  ASSERT_FALSE(dense.events().empty());  // the reassignment ran (and copied sparse rows into centres)
  EXPECT_EQ(sparse.events().size(), dense.events().size());
  EXPECT_NEAR(sparse.inertia(), dense.inertia(), 1e-12 * dense.inertia());
  EXPECT_EQ(sparse.predict(x.view()), dense.predict(x.dense));
  EXPECT_NEAR(sparse.score(x.view()), dense.score(x.dense), 1e-12 * std::abs(dense.score(x.dense)));
  // partial_fit, chunk by chunk: each chunk a CSR view of its own rows
  MiniBatchKMeans<T> pd(p), ps(p);
  for (Index b = 0; b < 4000; b += 500) {
    std::vector<std::int64_t> ptr(x.indptr.begin() + b, x.indptr.begin() + b + 501);
    for (auto& q : ptr) q -= x.indptr[static_cast<std::size_t>(b)];
    const CsrMatrixView<T> chunk(x.values.data() + x.indptr[static_cast<std::size_t>(b)],
                                 x.indices.data() + x.indptr[static_cast<std::size_t>(b)], ptr.data(), 500, 80);
    pd.partial_fit(MatrixView<T>(x.dense.row(b).data(), 500, 80));
    ps.partial_fit(chunk);
  }
  EXPECT_TRUE(ps.cluster_centers() == pd.cluster_centers());
  EXPECT_EQ(ps.counts(), pd.counts());
}

// Past 64 blocks of rows each reduction group folds several blocks (fold_rows' plan): the sums still
// have the dense pass's bits (per block, then per group), with weights and candidates, on 1 and 2 threads.
TYPED_TEST(KMeansSparse, SeveralBlocksPerGroupFoldAsTheDensePass) {
  using T = TypeParam;
  const Index n = 70000;  // 274 blocks of 256 rows in 64 groups
  const Csr<T> x = to_csr<T>(sparse_blobs<T>(n, 24, 5, 0.08, 17));
  const RowMatrix<T> c = first_rows_as_centres(x.dense, 5, 2);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(n);
  for (Index i = 0; i < n; ++i) w(i) = static_cast<T>(0.5 + 0.25 * static_cast<double>(i % 4));
  const VectorView<T> wv(w.data(), n);
  const KMeansStats dense = kmeans_statistics(MatrixView<T>(x.dense), wv, c);
  for (int threads : {1, 2}) {
    const KMeansStats sparse = kmeans_statistics(x.view(), wv, c, nullptr, threads);
    EXPECT_EQ(sparse.count, dense.count);
    EXPECT_EQ(sparse.weight, dense.weight);
    EXPECT_EQ(sparse.sums, dense.sums);
    ASSERT_EQ(sparse.farthest.size(), dense.farthest.size());
    for (std::size_t e = 0; e < dense.farthest.size(); ++e) EXPECT_EQ(sparse.farthest[e].row, dense.farthest[e].row);
    EXPECT_NEAR(sparse.distortion, dense.distortion, 1e-12 * dense.distortion);
  }
}

// Hamerly's bounds on sparse rows (algorithm = hamerly; automatic takes them from K * D = 2048): labels,
// centres, trace and n_iter are Lloyd's bit for bit, and once the centres settle most rows are not
// searched; also far from the origin, where the bounds' margins must cover the search's rounding.
TYPED_TEST(KMeansSparse, HamerlyBoundsGiveLloydsBits) {
  using T = TypeParam;
  for (const double offset : {0.0, 1e3}) {  // 1e3: every entry stored, the expanded form's error >> the gaps
    const Csr<T> x = to_csr<T>(sparse_blobs<T>(6000, offset > 0 ? 40 : 150, 12, offset > 0 ? 1.0 : 0.04, 19, offset,
                                                offset > 0 ? 3.0 : 1.0));
    KMeansParams p;
    p.n_clusters = 12;
    p.max_iter = 60;
    p.tol = 0;
    p.seed = 5;
    p.algorithm = KMeansAlgorithm::lloyd;
    KMeans<T> lloyd(p);
    lloyd.fit(x.view());
    for (const KMeansAlgorithm a : {KMeansAlgorithm::hamerly, KMeansAlgorithm::automatic}) {
      p.algorithm = a;
      KMeans<T> bounded(p);
      bounded.fit(x.view());
      EXPECT_EQ(bounded.labels(), lloyd.labels()) << "offset " << offset;
      EXPECT_TRUE(bounded.cluster_centers() == lloyd.cluster_centers()) << "offset " << offset;
      EXPECT_EQ(bounded.n_iter(), lloyd.n_iter());
      ASSERT_EQ(bounded.trace().size(), lloyd.trace().size());
      for (std::size_t t = 0; t < lloyd.trace().size(); ++t) {
        EXPECT_EQ(bounded.trace()[t].distortion_assign, lloyd.trace()[t].distortion_assign);
        EXPECT_EQ(bounded.trace()[t].distortion_update, lloyd.trace()[t].distortion_update);
      }
      EXPECT_EQ(bounded.trace().front().n_searched, 6000);
      if (a == KMeansAlgorithm::hamerly && offset == 0) {  // (automatic: Lloyd's search at K * D < 2048)
        EXPECT_LT(bounded.trace().back().n_searched, 6000 / 4) << "the bounds settled too few rows";
      }
    }
  }
}
