// Edge cases: empty clusters, duplicates, k = n, k = 1, tiny inputs, zero weights, interruption.
#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

template <class T>
class KMeansEdge : public ::testing::Test {};
TYPED_TEST_SUITE(KMeansEdge, Scalars);

// A centre far from all data gets no row: it must be re-seeded at the farthest row (an event), the
// fit must go on without NaN, and end with every cluster used.
TYPED_TEST(KMeansEdge, EmptyClusterIsReseededAndRecorded) {
  using T = TypeParam;
  RowMatrix<T> x = blobs<T>(600, 2, 3, 4);
  RowMatrix<T> init(3, 2);
  init.row(0) = x.row(0);
  init.row(1) = x.row(1);
  init.row(2) << T(1e6), T(1e6);
  KMeansParams p;
  p.n_clusters = 3;
  KMeans<T> km(p);
  km.fit(x, {}, init);
  ASSERT_FALSE(km.events().empty());
  const auto& e = km.events().front();
  EXPECT_EQ(e.kind, KMeansEvent::Kind::empty_cluster_reseeded);
  EXPECT_EQ(e.cluster, 2);
  EXPECT_EQ(e.iteration, 0);
  ASSERT_GE(e.row, 0);
  EXPECT_TRUE(km.cluster_centers().allFinite());
  std::vector<int> used(3, 0);
  for (auto l : km.labels()) used[l] = 1;
  EXPECT_EQ(used, (std::vector<int>{1, 1, 1}));
  // The trace still never rises across the re-seeding.
  for (std::size_t i = 0; i < km.trace().size(); ++i)
    EXPECT_LE(km.trace()[i].distortion_update, km.trace()[i].distortion_assign * (1 + 1e-6));
}

TYPED_TEST(KMeansEdge, AllRowsIdentical) {
  using T = TypeParam;
  RowMatrix<T> x = RowMatrix<T>::Constant(50, 3, T(2.5));
  for (KMeansInit init : {KMeansInit::kmeans_plusplus, KMeansInit::random}) {
    KMeansParams p;
    p.n_clusters = 4;
    p.init = init;
    KMeans<T> km(p);
    km.fit(x);
    EXPECT_TRUE(km.cluster_centers().allFinite());
    EXPECT_EQ(km.inertia(), 0.0);
    EXPECT_TRUE(km.converged());
    EXPECT_TRUE((km.cluster_centers().array() == T(2.5)).all());
  }
}

// k = n on distinct rows: k-means++ picks every row once (a chosen row has no mass left), inertia 0.
TYPED_TEST(KMeansEdge, AsManyClustersAsRows) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(17, 2, 3);
  KMeansParams p;
  p.n_clusters = 17;
  KMeans<T> km(p);
  km.fit(x);
  EXPECT_EQ(km.inertia(), 0.0);
  std::vector<int> seen(17, 0);
  for (auto l : km.labels()) seen[l]++;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 17);
}

// Duplicated rows with k above the number of distinct rows: no crash, no NaN, inertia 0.
TYPED_TEST(KMeansEdge, DuplicatesWithMoreClustersThanDistinctRows) {
  using T = TypeParam;
  RowMatrix<T> x(12, 2);
  for (Index i = 0; i < 12; ++i) x.row(i) << T(i % 3), T(2 * (i % 3));
  KMeansParams p;
  p.n_clusters = 5;
  KMeans<T> km(p);
  km.fit(x);
  EXPECT_TRUE(km.cluster_centers().allFinite());
  EXPECT_EQ(km.inertia(), 0.0);
}

// A centre given twice ties exactly with its copy on every row, and the first index wins: the copy
// sits in a later vector lane or in the scalar tail of the K centres (K = 3, 9, 17, 33 against 4, 8
// and 16 lanes), so the distances of both must be computed alike on every instruction-set level.
TYPED_TEST(KMeansEdge, DuplicatedCentreTiesGoToTheFirst) {
  using T = TypeParam;
  for (const Index d : {3, 16, 37})
    for (const Index k : {3, 9, 17, 33}) {
      const RowMatrix<T> x = blobs<T>(600, d, 4, 5, 100.0);
      RowMatrix<T> c = x.topRows(k);
      c.row(k - 1) = c.row(0);
      KMeans<T> km;
      km.set_centers(c);
      const auto labels = km.predict(x);
      const std::string at = "d " + std::to_string(d) + " k " + std::to_string(k);
      EXPECT_EQ(std::count(labels.begin(), labels.end(), static_cast<std::int32_t>(k - 1)), 0) << at;
      const RowMatrix<T> dist = km.transform(x);
      for (Index i = 0; i < x.rows(); ++i) ASSERT_EQ(dist(i, k - 1), dist(i, 0)) << at << " row " << i;
    }
}

TYPED_TEST(KMeansEdge, SingleRowSingleCluster) {
  using T = TypeParam;
  RowMatrix<T> x(1, 3);
  x << 1, 2, 3;
  KMeansParams p;
  p.n_clusters = 1;
  KMeans<T> km(p);
  km.fit(x);
  EXPECT_EQ(km.cluster_centers(), x);
  EXPECT_EQ(km.inertia(), 0.0);
  EXPECT_EQ(km.predict(x), std::vector<std::int32_t>{0});
}

// Rows of zero weight count for nothing: dropping them gives the same centres. (tol = 0: the
// tolerance is scaled by the unweighted feature variance, as in scikit-learn, which they do change.)
TYPED_TEST(KMeansEdge, ZeroWeightRowsAreIgnored) {
  using T = TypeParam;
  RowMatrix<T> x = blobs<T>(400, 2, 2, 6);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(400);
  RowMatrix<T> kept(200, 2);
  for (Index i = 0; i < 400; ++i) {
    if (i % 2) w(i) = 0;
    else kept.row(i / 2) = x.row(i);
  }
  RowMatrix<T> init(2, 2);
  init.row(0) = x.row(0);
  init.row(1) = x.row(2);
  KMeansParams p;
  p.n_clusters = 2;
  p.tol = 0;
  KMeans<T> a(p), b(p);
  a.fit(x, w, init);
  b.fit(kept, {}, init);
  EXPECT_LE((a.cluster_centers() - b.cluster_centers()).cwiseAbs().maxCoeff(), 1e-4);
  EXPECT_NEAR(a.inertia(), b.inertia(), 1e-5 * b.inertia());
}

TYPED_TEST(KMeansEdge, CallbackCanStopTheFitAndTheModelIsUnchanged) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(500, 2, 1);
  KMeansParams p;
  p.n_clusters = 3;
  KMeans<T> km(p);
  km.fit(x);
  const RowMatrix<T> before = km.cluster_centers();
  int calls = 0;
  km.set_callback([&](int, int, const KMeansIteration&) { return ++calls < 2; });
  p.n_clusters = 5;
  km.set_params(p);
  EXPECT_THROW(km.fit(x), Interrupted);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(km.cluster_centers(), before);  // strong guarantee: the old model is intact
}

// Strided input (a column block of a wider matrix) is used in place and gives the same fit.
TYPED_TEST(KMeansEdge, StridedViewEqualsContiguousCopy) {
  using T = TypeParam;
  RowMatrix<T> wide = uniform<T>(700, 5, 2);
  RowMatrix<T> narrow = wide.leftCols(3);
  KMeansParams p;
  p.n_clusters = 4;
  KMeans<T> a(p), b(p);
  a.fit(MatrixView<T>(wide.data(), 700, 3, 5));
  b.fit(narrow);
  EXPECT_EQ(a.cluster_centers(), b.cluster_centers());
  EXPECT_EQ(a.labels(), b.labels());
}

// Far from the origin the expanded distance ||x||^2 - 2 x.c + ||c||^2 cancels: a 1e5 offset leaves a
// float nothing of unit-scale differences, 1e9 a double. Measured from the centres' mean, the
// search gives every row its nearest centre (checked exactly in double) and the fit is the same as
// on the data moved to the origin (the move is exact: offset and rows are close).
TYPED_TEST(KMeansEdge, FarFromTheOriginRowsGoToTheirNearestCentre) {
  using T = TypeParam;
  const double offset = std::is_same<T, float>::value ? 1e5 : 1e9;
  const Index n = 1500, d = 4, k = 3;
  std::mt19937 gen(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix<double> c(k, d);
  for (Index i = 0; i < k; ++i)
    for (Index j = 0; j < d; ++j) c(i, j) = 5 * normal(gen);
  RowMatrix<T> far(n, d), near(n, d), c_far(k, d), c_near(k, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) {
      far(i, j) = static_cast<T>(offset + c(i % k, j) + normal(gen));
      near(i, j) = static_cast<T>(static_cast<double>(far(i, j)) - offset);
    }
  for (Index i = 0; i < k; ++i)
    for (Index j = 0; j < d; ++j) {
      c_far(i, j) = static_cast<T>(offset + c(i, j));
      c_near(i, j) = static_cast<T>(static_cast<double>(c_far(i, j)) - offset);
    }

  KMeans<T> given;
  given.set_centers(c_far);
  const std::vector<std::int32_t> labels = given.predict(far);
  for (Index i = 0; i < n; ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (Index j = 0; j < k; ++j) best = std::min(best, detail::sq_dist(far.row(i).data(), c_far.row(j).data(), d));
    ASSERT_EQ(detail::sq_dist(far.row(i).data(), c_far.row(labels[i]).data(), d), best) << "row " << i;
  }

  KMeansParams p;
  p.n_clusters = k;
  p.n_init = 1;
  KMeans<T> fit_far(p), fit_near(p);
  fit_far.fit(MatrixView<T>(far), VectorView<T>{}, MatrixView<T>(c_far));
  fit_near.fit(MatrixView<T>(near), VectorView<T>{}, MatrixView<T>(c_near));
  // Far from the origin a float centre is rounded to 1/128: a row or two that nearly ties may differ.
  const bool single = std::is_same<T, float>::value;
  Index differ = 0;
  for (Index i = 0; i < n; ++i) differ += fit_far.labels()[i] != fit_near.labels()[i];
  EXPECT_LE(differ, single ? 2 : 0);
  EXPECT_NEAR(fit_far.inertia(), fit_near.inertia(), (single ? 1e-4 : 1e-9) * fit_near.inertia());
}
