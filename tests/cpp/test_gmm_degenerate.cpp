// Degenerate data never kills a fit: collapsed components, constant channels, fewer rows than
// dimensions, quantised readings. Each rescue is recorded as an event; no NaN, no exception.
#include "gmm_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

template <class T>
void expect_sane(const GaussianMixture<T>& gm, const RowMatrix<T>& x) {
  EXPECT_TRUE(gm.means().allFinite());
  EXPECT_TRUE(gm.weights().allFinite());
  EXPECT_NEAR(gm.weights().sum(), 1.0, 1e-12);
  for (const auto& it : gm.trace()) {
    EXPECT_TRUE(std::isfinite(it.lower_bound));
    EXPECT_TRUE(std::isfinite(it.elbo_after_m));
  }
  EXPECT_TRUE(gm.score_samples(x).allFinite());
}
}  // namespace

template <class T>
class GmmDegenerate : public ::testing::Test {};
TYPED_TEST_SUITE(GmmDegenerate, Scalars);

// A sensor stuck at one value: its variance is 0; without reg_covar the covariance is singular.
TYPED_TEST(GmmDegenerate, ConstantChannelWithoutRegularisation) {
  using T = TypeParam;
  RowMatrix<T> x = gmm_blobs<T>(1000, 3, 2);
  x.col(1).setConstant(T(42));
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.reg_covar = 0;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    expect_sane(gm, x);
    bool floored = false;
    for (const auto& e : gm.events()) floored |= e.kind == GmmEvent::Kind::covariance_floored && e.value > 0;
    if (t != CovarianceType::spherical) {  // spherical averages the variance over features
      EXPECT_TRUE(floored) << to_string(t);
    }
  }
}

// Five distinct points repeated, eight components: components collapse onto points.
TYPED_TEST(GmmDegenerate, MoreComponentsThanDistinctPoints) {
  using T = TypeParam;
  RowMatrix<T> x(100, 2);
  for (Index i = 0; i < 100; ++i) x.row(i) << T(i % 5), T((i % 5) * (i % 5));
  for (CovarianceType t : kTypes)
    for (GmmInit init : {GmmInit::kmeans, GmmInit::kmeans_plusplus, GmmInit::random, GmmInit::random_from_data}) {
      GmmParams p;
      p.n_components = 8;
      p.covariance_type = t;
      p.reg_covar = 0;
      p.init = init;
      p.max_iter = 30;
      GaussianMixture<T> gm(p);
      ASSERT_NO_THROW(gm.fit(x)) << to_string(t) << " " << to_string(init);
      expect_sane(gm, x);
      // Starts on points and K-means labels give zero scatter somewhere: rescued, and recorded.
      // (Random responsibilities start every component broad; they may never need a rescue.)
      if (init != GmmInit::random) {
        EXPECT_FALSE(gm.events().empty()) << to_string(t) << " " << to_string(init);
      }
    }
}

// Components with fewer rows than dimensions: their scatter has rank < D.
TYPED_TEST(GmmDegenerate, FewerRowsThanDimensions) {
  using T = TypeParam;
  const RowMatrix<T> x = uniform<T>(30, 10, 4);
  GmmParams p;
  p.n_components = 5;
  p.reg_covar = 0;
  GaussianMixture<T> gm(p);
  ASSERT_NO_THROW(gm.fit(x));
  expect_sane(gm, x);
  EXPECT_FALSE(gm.events().empty());
}

// Quantised readings (integers 0..3): many exact duplicates, degenerate components on the grid.
TYPED_TEST(GmmDegenerate, QuantisedReadings) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(2000, 4, 8);
  x = (x.array() * T(4)).floor().matrix();
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 6;
    p.covariance_type = t;
    p.reg_covar = 0;
    p.max_iter = 50;
    GaussianMixture<T> gm(p);
    ASSERT_NO_THROW(gm.fit(x)) << to_string(t);
    expect_sane(gm, x);
  }
}

// k-means++ starts each component on one row with covariance reg_covar * I; with reg_covar = 0
// that covariance is zero and must be floored at initialisation (iteration -1).
TEST(GmmDegenerate, PointStartWithoutRegularisationIsFlooredAtInit) {
  const RowMatrix<double> x = gmm_blobs<double>(500, 2, 1);
  GmmParams p;
  p.n_components = 3;
  p.reg_covar = 0;
  p.init = GmmInit::kmeans_plusplus;
  GaussianMixture<double> gm(p);
  gm.fit(x);
  ASSERT_FALSE(gm.events().empty());
  EXPECT_EQ(gm.events().front().iteration, -1);
  EXPECT_EQ(gm.events().front().kind, GmmEvent::Kind::covariance_floored);
  expect_sane(gm, x);
}
