// Gaussian mixtures against scikit-learn: from the same initial weights, means and precisions and
// with tol = 0, every iteration's lower bound must equal scikit-learn's lower_bounds_ to 1e-8
// relative in float64, for all four covariance types (fixtures: tests/fixtures/gmm/make_fixtures.py).
#include "gmm_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

GmmInitialParams initial_from(const std::map<std::string, RowMatrix<double>>& f, CovarianceType t, Index K, Index D) {
  GmmInitialParams in;
  in.weights = f.at("weights_init").row(0).transpose();
  in.means = f.at("means_init");
  const RowMatrix<double>& p = f.at("precisions_init");
  if (t == CovarianceType::full)
    for (Index k = 0; k < K; ++k) in.precisions.push_back(p.middleRows(k * D, D));
  else
    in.precisions.push_back(p);
  return in;
}

}  // namespace

class GmmOracle : public ::testing::TestWithParam<CovarianceType> {};

TEST_P(GmmOracle, LowerBoundsMatchScikitLearn) {
  const CovarianceType t = GetParam();
  const auto data = read_fixture(fixture_path("X.txt"));
  const auto f = read_fixture(fixture_path(std::string(to_string(t)) + ".txt"));
  const RowMatrix<double>& X = data.at("X");
  const Index K = 3, D = X.cols();
  GmmParams p;
  p.n_components = static_cast<int>(K);
  p.covariance_type = t;
  p.tol = 0;
  p.max_iter = 25;
  p.reg_covar = 1e-6;
  GaussianMixture<double> gm(p);
  gm.set_initial_params(initial_from(f, t, K, D));
  gm.fit(X);

  const RowMatrix<double>& want = f.at("lower_bounds");
  ASSERT_EQ(static_cast<Index>(gm.trace().size()), want.rows());
  for (Index i = 0; i < want.rows(); ++i)
    EXPECT_NEAR(gm.trace()[i].lower_bound, want(i, 0), 1e-8 * std::abs(want(i, 0))) << "iteration " << i;
  EXPECT_FALSE(gm.converged());  // tol = 0 never converges, in scikit-learn either
  EXPECT_LE((gm.weights() - f.at("weights").row(0).transpose()).cwiseAbs().maxCoeff(), 1e-8);
  EXPECT_LE((gm.means() - f.at("means")).cwiseAbs().maxCoeff(), 1e-7);
  // scikit-learn's precisions_cholesky_ after an M-step: upper-triangular L^-T, as ours.
  const RowMatrix<double>& pc = f.at("precisions_cholesky");
  for (Index k = 0; k < (t == CovarianceType::full ? K : 1); ++k) {
    switch (t) {
      case CovarianceType::full:
      case CovarianceType::tied:
        EXPECT_LE((gm.model().factor_of(k) - Eigen::MatrixXd(pc.middleRows(k * D, D))).cwiseAbs().maxCoeff(), 1e-6);
        break;
      case CovarianceType::diag:
      case CovarianceType::spherical:
        EXPECT_LE((Eigen::MatrixXd(gm.model().diag_factor) - Eigen::MatrixXd(pc)).cwiseAbs().maxCoeff(), 1e-6);
        break;
    }
  }
  const Eigen::VectorXd s = gm.score_samples(RowMatrix<double>(X.topRows(10)));
  for (Index i = 0; i < 10; ++i) EXPECT_NEAR(s[i], f.at("score_samples_head")(i, 0), 1e-8 * std::abs(s[i]));
}

// The same fits from float32 data: the statistics are accumulated in double, so the float fit
// follows scikit-learn's float64 fit to the precision of the rounded data.
TEST_P(GmmOracle, Float32FollowsWithinDataPrecision) {
  const CovarianceType t = GetParam();
  const auto data = read_fixture(fixture_path("X.txt"));
  const auto f = read_fixture(fixture_path(std::string(to_string(t)) + ".txt"));
  const RowMatrix<float> X = data.at("X").cast<float>();
  GmmParams p;
  p.n_components = 3;
  p.covariance_type = t;
  p.tol = 0;
  p.max_iter = 25;
  GaussianMixture<float> gm(p);
  gm.set_initial_params(initial_from(f, t, 3, 3));
  gm.fit(X);
  const RowMatrix<double>& want = f.at("lower_bounds");
  for (Index i = 0; i < want.rows(); ++i)
    EXPECT_NEAR(gm.trace()[i].lower_bound, want(i, 0), 1e-5 * std::abs(want(i, 0))) << "iteration " << i;
}

INSTANTIATE_TEST_SUITE_P(AllCovarianceTypes, GmmOracle,
                         ::testing::Values(CovarianceType::full, CovarianceType::tied, CovarianceType::diag,
                                           CovarianceType::spherical),
                         [](const auto& info) { return std::string(to_string(info.param)); });
