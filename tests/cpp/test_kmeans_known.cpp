// K-means against answers worked out by hand and against a brute-force reference implementation.
#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

template <class T>
class KMeansKnown : public ::testing::Test {};
TYPED_TEST_SUITE(KMeansKnown, Scalars);

// X = {0, 1, 10, 11}, centres from {0, 1}. By hand:
//   it 0: labels {0,1,1,1}: J = 0+0+81+100 = 181; centres {0, 22/3}: J = 0 + 40.11 + 7.11 + 13.44 = 60.667
//   it 1: labels {0,0,1,1}: J = 0+1+7.111+13.444 = 21.556; centres {0.5, 10.5}: J = 1
//   it 2: labels unchanged: J = 1 = 1, strict convergence after 3 iterations, inertia 1.
TYPED_TEST(KMeansKnown, OneDimensionalByHand) {
  using T = TypeParam;
  RowMatrix<T> x(4, 1);
  x << 0, 1, 10, 11;
  RowMatrix<T> init(2, 1);
  init << 0, 1;
  KMeansParams p;
  p.n_clusters = 2;
  p.tol = 0;
  KMeans<T> km(p);
  km.fit(x, {}, init);
  ASSERT_EQ(km.n_iter(), 3);
  EXPECT_TRUE(km.converged());
  const auto& tr = km.trace();
  const double eps = std::is_same<T, float>::value ? 1e-5 : 1e-12;
  EXPECT_NEAR(tr[0].distortion_assign, 181.0, 181 * eps);
  EXPECT_NEAR(tr[0].distortion_update, 182.0 / 3.0, 61 * eps);  // (1-22/3)^2+(10-22/3)^2+(11-22/3)^2 = 182/3
  EXPECT_NEAR(tr[1].distortion_assign, 1.0 + 64.0 / 9 + 121.0 / 9, 22 * eps);
  EXPECT_NEAR(tr[1].distortion_update, 1.0, eps);
  EXPECT_NEAR(tr[2].distortion_assign, 1.0, eps);
  EXPECT_EQ(tr[2].n_changed, 0);
  EXPECT_NEAR(km.inertia(), 1.0, eps);
  EXPECT_NEAR(km.cluster_centers()(0, 0), 0.5, eps);
  EXPECT_NEAR(km.cluster_centers()(1, 0), 10.5, eps);
  EXPECT_EQ(km.labels(), (std::vector<std::int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(km.predict(x), km.labels());
  EXPECT_NEAR(km.score(x), -1.0, eps);
}

// Same initial centres, same stopping rules: the library must reproduce the reference exactly in
// labels and iteration count, and to round-off in centres and inertia. Random (non-separated) data
// in double; well-separated blobs in float (where the GEMM form of the distance could flip a near tie).
TYPED_TEST(KMeansKnown, MatchesBruteForceReference) {
  using T = TypeParam;
  const bool is_float = std::is_same<T, float>::value;
  const Index n = 3000, d = 5, k = 7;
  RowMatrix<T> x = is_float ? blobs<T>(n, d, k, 11) : uniform<T>(n, d, 11);
  RowMatrix<T> init(k, d);
  for (Index c = 0; c < k; ++c) init.row(c) = x.row(c * 13 + 1);
  const RowMatrix<double> xd = x.template cast<double>();
  for (double tol : {0.0, 1e-4}) {
    KMeansParams p;
    p.n_clusters = static_cast<int>(k);
    p.tol = tol;
    p.max_iter = 100;
    KMeans<T> km(p);
    km.fit(x, {}, init);
    // scikit-learn's absolute tolerance: tol times the mean per-feature variance.
    const double tol_abs = tol * ((xd.rowwise() - xd.colwise().mean()).array().square().colwise().sum() / n).mean();
    ReferenceKMeans ref(xd, init.template cast<double>(), 100, tol_abs);
    EXPECT_EQ(km.n_iter(), ref.n_iter) << "tol " << tol;
    EXPECT_EQ(km.labels(), ref.labels) << "tol " << tol;
    const double eps = is_float ? 1e-5 : 1e-12;
    EXPECT_NEAR(km.inertia(), ref.inertia, eps * ref.inertia);
    const double scale = xd.cwiseAbs().maxCoeff();
    EXPECT_LE((km.cluster_centers().template cast<double>() - ref.centers).cwiseAbs().maxCoeff(), eps * scale);
  }
}

TYPED_TEST(KMeansKnown, SingleClusterIsTheWeightedMean) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(1001, 3, 5);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(1001);
  for (Index i = 0; i < 1001; ++i) w(i) = static_cast<T>(1 + i % 4);
  KMeansParams p;
  p.n_clusters = 1;
  KMeans<T> km(p);
  km.fit(x, w);
  const Eigen::RowVectorXd mean = (w.template cast<double>().asDiagonal() * x.template cast<double>()).colwise().sum() /
                                  w.template cast<double>().sum();
  const double eps = std::is_same<T, float>::value ? 1e-6 : 1e-14;
  EXPECT_LE((km.cluster_centers().template cast<double>().row(0) - mean).cwiseAbs().maxCoeff(), eps);
  EXPECT_EQ(km.n_iter(), 2);  // the second iteration finds the labels unchanged
}

TYPED_TEST(KMeansKnown, TransformIsTheEuclideanDistance) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(500, 4, 3);
  KMeansParams p;
  p.n_clusters = 6;
  KMeans<T> km(p);
  km.fit(x);
  const RowMatrix<T> dist = km.transform(x);
  ASSERT_EQ(dist.rows(), 500);
  ASSERT_EQ(dist.cols(), 6);
  for (Index i = 0; i < 500; ++i)
    for (Index c = 0; c < 6; ++c) {
      const double want = (x.row(i).template cast<double>() - km.cluster_centers().row(c).template cast<double>()).norm();
      EXPECT_NEAR(dist(i, c), want, 1e-6 * (1 + want));
    }
}
