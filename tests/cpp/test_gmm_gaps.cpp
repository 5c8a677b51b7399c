// Gaussian mixtures on rows with gaps (NaN = a missing value): the marginal scores against a model built
// by hand on the observed features, EM's monotone lower bound and ELBO staircase, independence of the
// thread count and of the rows scored together, and the errors. (The plain-NumPy EM oracle is in
// tests/python/test_gaps.py.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmm_util.hpp"
#include "mixtura/mixtura.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

template <class T>
class GmmGaps : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(GmmGaps, Scalars);

/// Correlated blobs with about `fraction` of the values removed at random, a stretch of rows whose
/// feature 1 is missing (a channel dropout) and no row left empty.
template <class T>
RowMatrix<T> gappy(Index n, Index d, std::uint32_t seed, double fraction) {
  RowMatrix<T> x = gmm_blobs<T>(n, d, seed);
  for (Index i = 0; i < n; ++i)
    for (Index j = 1; j < d; ++j) x(i, j) = static_cast<T>(static_cast<double>(x(i, j)) + 0.6 * static_cast<double>(x(i, j - 1)));
  std::mt19937 gen(seed + 1);
  std::uniform_real_distribution<double> u(0, 1);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < d; ++j)
      if (u(gen) < fraction) x(i, j) = nan;
    if (i >= n / 3 && i < n / 3 + 150) x(i, 1) = nan;
    bool empty = true;
    for (Index j = 0; j < d; ++j) empty = empty && std::isnan(x(i, j));
    if (empty) x(i, i % d) = 0;
  }
  return x;
}

/// log p(x_o) by hand: the mixture of the components' marginals on the observed features, each built as
/// a full-covariance model of its own from the covariance's observed block (gmm_util's brute force).
double marginal_by_hand(const GmmModel& m, const Eigen::VectorXd& x) {
  std::vector<Index> o;
  for (Index j = 0; j < m.n_features; ++j)
    if (!std::isnan(x[j])) o.push_back(j);
  const Index dobs = static_cast<Index>(o.size());
  GmmModel marginal(CovarianceType::full, m.n_components, dobs);
  marginal.weights = m.weights;
  Eigen::VectorXd xo(dobs);
  for (Index k = 0; k < m.n_components; ++k) {
    const Eigen::MatrixXd cov = m.covariance(k);
    Eigen::MatrixXd block(dobs, dobs);
    for (Index a = 0; a < dobs; ++a) {
      marginal.means(k, a) = m.means(k, o[a]);
      xo[a] = x[o[a]];
      for (Index b = 0; b < dobs; ++b) block(a, b) = cov(o[a], o[b]);
    }
    EXPECT_TRUE(detail::precision_factor_from_covariance(block, marginal.factor[static_cast<std::size_t>(k)]));
  }
  return brute_log_density(marginal, xo);
}

TYPED_TEST(GmmGaps, ScoresAreTheMarginalDensityOfTheObservedFeatures) {
  using T = TypeParam;
  const RowMatrix<T> x = gappy<T>(1500, 5, 3, 0.2);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const Eigen::VectorXd s = gm.score_samples(x);
    const RowMatrix<double> lp = gm.component_log_density(x);
    const RowMatrix<double> proba = gm.predict_proba(x);
    const std::vector<std::int32_t> labels = gm.predict(x);
    for (Index i = 0; i < x.rows(); i += 7) {
      const Eigen::VectorXd xi = x.row(i).transpose().template cast<double>();
      EXPECT_NEAR(s[i], marginal_by_hand(gm.model(), xi), 1e-9 * (1 + std::abs(s[i]))) << to_string(t) << " row " << i;
      Index best;
      (lp.row(i).array() + gm.weights().transpose().array().log()).maxCoeff(&best);
      EXPECT_EQ(labels[static_cast<std::size_t>(i)], best);
      EXPECT_NEAR(proba.row(i).sum(), 1.0, 1e-12);
      EXPECT_TRUE(lp.row(i).allFinite());
    }
  }
}

TYPED_TEST(GmmGaps, LowerBoundNeverDecreasesAndTheStaircaseHolds) {
  using T = TypeParam;
  const RowMatrix<T> x = gappy<T>(2000, 4, 5, 0.25);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(0.5 + (i % 4));
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.reg_covar = 0;  // the staircase is exact without the regularisation (README, "The ELBO staircase")
    p.max_iter = 40;
    p.tol = 0;
    GaussianMixture<T> gm(p);
    gm.fit(x, VectorView<T>(w));
    const auto& tr = gm.trace();
    ASSERT_EQ(tr.size(), 40u);
    for (std::size_t it = 0; it + 1 < tr.size(); ++it) {
      const double slack = 1e-10 * (1 + std::abs(tr[it].lower_bound));
      EXPECT_GE(tr[it].elbo_after_m, tr[it].lower_bound - slack) << to_string(t) << " iteration " << it;
      EXPECT_GE(tr[it + 1].lower_bound, tr[it].elbo_after_m - slack) << to_string(t) << " iteration " << it;
    }
    EXPECT_TRUE(gm.means().allFinite());
  }
}

TYPED_TEST(GmmGaps, CompleteRowsScoreAsWithoutGapsAndRowsScoreAlone) {
  using T = TypeParam;
  const RowMatrix<T> x = gappy<T>(900, 4, 7, 0.1);
  RowMatrix<T> complete = x;
  std::vector<Index> complete_rows;
  for (Index i = 0; i < x.rows(); ++i) {
    bool gap = false;
    for (Index j = 0; j < x.cols(); ++j) gap = gap || std::isnan(x(i, j));
    if (!gap) complete_rows.push_back(i);
    else complete.row(i).setZero();
  }
  ASSERT_GT(complete_rows.size(), 300u);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 2;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const Eigen::VectorXd with_gaps = gm.score_samples(x), without = gm.score_samples(complete);
    for (const Index i : complete_rows) ASSERT_EQ(with_gaps[i], without[i]) << to_string(t) << " row " << i;
    // A row with gaps scores the same bits alone as among the others (a complete row: at the same index
    // modulo the scoring block, gmm_weighted_log_prob).
    for (Index i = 0; i < x.rows(); i += 13) {
      const RowMatrix<T> one = x.row(i);
      const bool gap = std::find(complete_rows.begin(), complete_rows.end(), i) == complete_rows.end();
      if (gap || i % detail::kGmmBlock == 0) {
        ASSERT_EQ(gm.score_samples(one)[0], with_gaps[i]) << to_string(t) << " row " << i;
      }
    }
  }
}

TYPED_TEST(GmmGaps, FitIsTheSameForEveryThreadCountAndStatisticsMatchIt) {
  using T = TypeParam;
  const RowMatrix<T> x = gappy<T>(5000, 6, 11, 0.15);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.max_iter = 15;
    p.n_threads = 1;
    GaussianMixture<T> one(p);
    one.fit(x);
    p.n_threads = 2;
    GaussianMixture<T> two(p);
    two.fit(x);
    ASSERT_EQ(one.n_iter(), two.n_iter());
    EXPECT_EQ(one.lower_bound(), two.lower_bound()) << to_string(t);
    EXPECT_TRUE(one.means() == two.means()) << to_string(t);
    // statistics() of two chunks, merged and updated: one more EM step, L as the fitted model's score.
    const RowMatrix<T> head = x.topRows(2600), tail = x.bottomRows(2400);
    GmmStats s = one.statistics(head);
    s.merge(one.statistics(tail, {}, 2600));
    const double mean_score = one.score(x);
    EXPECT_NEAR(s.log_likelihood / s.weight, mean_score, 1e-10 * std::abs(mean_score)) << to_string(t);
    for (const auto& v : s.worst.values) EXPECT_TRUE(v.allFinite());
    GaussianMixture<T> stepped = one;
    stepped.update(s);
    EXPECT_GE(stepped.trace().back().elbo_after_m, stepped.trace().back().lower_bound - 1e-9);
    EXPECT_TRUE(stepped.means().allFinite());
  }
}

TYPED_TEST(GmmGaps, ErrorsNameTheRowOrTheFeature) {
  using T = TypeParam;
  RowMatrix<T> x = gappy<T>(300, 3, 13, 0.1);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  GmmParams p;
  p.n_components = 2;
  GaussianMixture<T> gm(p);
  RowMatrix<T> empty_row = x;
  empty_row.row(123).setConstant(nan);
  EXPECT_INVALID(gm.fit(empty_row), "GaussianMixture::fit", "row 123 has no observed value");
  RowMatrix<T> empty_feature = x.array().isNaN().select(T(0), x);  // no row left empty by the missing column
  empty_feature.col(2).setConstant(nan);
  EXPECT_INVALID(gm.fit(empty_feature), "GaussianMixture::fit", "feature 2 has no observed value");
  RowMatrix<T> inf = x;
  inf(77, 1) = std::numeric_limits<T>::infinity();
  EXPECT_INVALID(gm.fit(inf), "GaussianMixture::fit", "non-finite value (inf) at row 77, column 1");
  EXPECT_FALSE(gm.is_fitted());
  gm.fit(x);
  EXPECT_INVALID(gm.score_samples(empty_row), "GaussianMixture::score_samples", "row 123 has no observed value");
  EXPECT_INVALID(gm.predict_proba(empty_row), "GaussianMixture::predict_proba", "row 123");
  EXPECT_INVALID(gm.statistics(empty_row), "GaussianMixture::statistics", "row 123");
  EXPECT_INVALID(gm.partial_fit(empty_row), "GaussianMixture::partial_fit", "row 123");
  // K-means keeps refusing NaN, and says where missing values are taken.
  KMeans<T> km;
  EXPECT_INVALID(km.fit(x), "KMeans::fit", "non-finite value (nan)", "GaussianMixture");
}

}  // namespace
