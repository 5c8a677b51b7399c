// Every bad input gets mixtura::InvalidArgument (or NotFittedError) naming the function, the
// condition and the value, and never a crash.
#include <cmath>

#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

// The CPU backend meets the whole contract (backend/contract.hpp) for host views, in both scalar types.
static_assert(detail::satisfies_gmm_contract<CpuBackend, float, MatrixView<float>, VectorView<float>>(), "");
static_assert(detail::satisfies_gmm_contract<CpuBackend, double, MatrixView<double>, VectorView<double>>(), "");
static_assert(detail::satisfies_gmm_scoring_contract<CpuBackend, float, MatrixView<float>>(), "");

template <class T>
class KMeansErrors : public ::testing::Test {};
TYPED_TEST_SUITE(KMeansErrors, Scalars);


TYPED_TEST(KMeansErrors, BadData) {
  using T = TypeParam;
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p);
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  EXPECT_INVALID(km.fit(MatrixView<T>()), "KMeans::fit", "empty");
  EXPECT_INVALID(km.fit(MatrixView<T>(x.data(), 10, 0)), "KMeans::fit", "n_features = 0");
  EXPECT_INVALID(km.fit(MatrixView<T>(x.data(), 10, 2, 1)), "KMeans::fit", "stride (1)");
  x(7, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_INVALID(km.fit(x), "KMeans::fit", "non-finite", "row 7, column 1");
  x(7, 1) = std::numeric_limits<T>::infinity();
  EXPECT_INVALID(km.fit(x), "KMeans::fit", "inf", "row 7");
  EXPECT_FALSE(km.is_fitted());
}

TYPED_TEST(KMeansErrors, BadParameters) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  auto fit_with = [&](auto set) {
    KMeansParams p;
    p.n_clusters = 2;
    set(p);
    KMeans<T> km(p);
    km.fit(x);
  };
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.n_clusters = 0; }), "KMeans::fit", "n_clusters must be >= 1, got 0");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.n_clusters = -3; }), "got -3");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.n_clusters = 11; }), "n_samples (10) < n_clusters (11)");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.max_iter = 0; }), "max_iter must be >= 1, got 0");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.n_init = 0; }), "n_init must be >= 1, got 0");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.tol = -1; }), "tol must be finite and >= 0, got -1");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.tol = NAN; }), "tol must be finite");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.n_threads = -1; }), "n_threads must be in [0, 1024], got -1");
  // 50,000 threads made libgomp exit the process, 100,000 crashed it: refused before any pass.
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.n_threads = 100000; }), "KMeans::fit",
                 "n_threads must be in [0, 1024], got 100000");
  // A fitted model asked for too many threads by set_params: the passes refuse it too.
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p);
  km.fit(x);
  p.n_threads = 5000;
  km.set_params(p);
  EXPECT_INVALID(km.predict(x), "parallel pass: n_threads must be in [0, 1024], got 5000");
  EXPECT_INVALID(fit_with([](KMeansParams& p) { p.init = KMeansInit::given; }), "no initial centres");
}

TYPED_TEST(KMeansErrors, BadWeights) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(10);
  Eigen::Matrix<T, Eigen::Dynamic, 1> short_w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(9);
  EXPECT_INVALID(km.fit(x, short_w), "sample_weight has 9 entries but X has 10 rows");
  w(3) = -1;
  EXPECT_INVALID(km.fit(x, w), "sample_weight[3] = -1 is negative");
  w(3) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_INVALID(km.fit(x, w), "sample_weight[3] = nan is not finite");
  w.setZero();
  EXPECT_INVALID(km.fit(x, w), "sample_weight sums to 0");
  w.setZero();
  w(4) = 1;
  p.init = KMeansInit::random;
  km.set_params(p);
  EXPECT_INVALID(km.fit(x, w), "needs n_clusters (2) rows of positive weight, found 1");
}

TYPED_TEST(KMeansErrors, BadInitialCenters) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p);
  RowMatrix<T> wrong(3, 2);
  wrong.setZero();
  EXPECT_INVALID(km.fit(x, {}, wrong), "initial centres have shape (3, 2), expected (n_clusters, n_features) = (2, 2)");
  RowMatrix<T> wrong_d = RowMatrix<T>::Zero(2, 3);
  EXPECT_INVALID(km.fit(x, {}, wrong_d), "shape (2, 3)");
  RowMatrix<T> nan_c = RowMatrix<T>::Zero(2, 2);
  nan_c(1, 0) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_INVALID(km.fit(x, {}, nan_c), "initial centres", "row 1, column 0");
  p.n_init = 3;
  km.set_params(p);
  EXPECT_INVALID(km.fit(x, {}, RowMatrix<T>::Zero(2, 2).eval()), "n_init must be 1 with given initial centres, got 3");
}

TYPED_TEST(KMeansErrors, UseBeforeFitAndWrongFeatureCount) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  KMeansParams p;
  p.n_clusters = 2;
  KMeans<T> km(p);
  EXPECT_THROW(km.predict(x), NotFittedError);
  EXPECT_THROW(km.transform(x), NotFittedError);
  EXPECT_THROW(km.score(x), NotFittedError);
  EXPECT_THROW(km.cluster_centers(), NotFittedError);
  EXPECT_THROW(km.inertia(), NotFittedError);
  km.fit(x);
  RowMatrix<T> x3 = uniform<T>(5, 3, 1);
  EXPECT_INVALID(km.predict(x3), "KMeans::predict", "X has 3 features, but the model was fitted with 2");
  EXPECT_INVALID(km.transform(x3), "KMeans::transform", "3 features");
  EXPECT_INVALID(km.score(x3), "KMeans::score", "3 features");
  RowMatrix<T> bad = uniform<T>(5, 2, 1);
  bad(2, 0) = std::numeric_limits<T>::infinity();
  EXPECT_INVALID(km.predict(bad), "KMeans::predict", "row 2, column 0");
}
