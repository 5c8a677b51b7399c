// Bad input to GaussianMixture: InvalidArgument naming the function, the condition and the value.
#include "gmm_util.hpp"

using namespace mixtura;
using namespace mixtura_test;


template <class T>
class GmmErrors : public ::testing::Test {};
TYPED_TEST_SUITE(GmmErrors, Scalars);

TYPED_TEST(GmmErrors, BadParametersAndData) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(10, 2, 1);
  auto fit_with = [&](auto set) {
    GmmParams p;
    p.n_components = 2;
    set(p);
    GaussianMixture<T> gm(p);
    gm.fit(x);
  };
  EXPECT_INVALID(fit_with([](GmmParams& p) { p.n_components = 0; }), "GaussianMixture::fit", "n_components must be >= 1, got 0");
  EXPECT_INVALID(fit_with([](GmmParams& p) { p.n_components = 11; }), "n_components (11) > n_samples (10)");
  EXPECT_INVALID(fit_with([](GmmParams& p) { p.reg_covar = -1e-3; }), "reg_covar must be finite and >= 0, got -0.001");
  EXPECT_INVALID(fit_with([](GmmParams& p) { p.tol = -1; }), "tol must be finite and >= 0, got -1");
  EXPECT_INVALID(fit_with([](GmmParams& p) { p.max_iter = -1; }), "max_iter must be >= 0, got -1");
  EXPECT_INVALID(fit_with([](GmmParams& p) { p.n_init = 0; }), "n_init must be >= 1, got 0");
  GaussianMixture<T> gm;
  EXPECT_INVALID(gm.fit(MatrixView<T>()), "GaussianMixture::fit", "empty");
  x(3, 1) = std::numeric_limits<T>::infinity();  // (NaN is a missing value: test_gmm_gaps.cpp)
  EXPECT_INVALID(gm.fit(x), "GaussianMixture::fit", "row 3, column 1");
  x(3, 1) = 0;
  Eigen::Matrix<T, Eigen::Dynamic, 1> w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(10);
  w(2) = -1;
  EXPECT_INVALID(gm.fit(x, w), "sample_weight[2] = -1 is negative");
  EXPECT_FALSE(gm.is_fitted());
}

TYPED_TEST(GmmErrors, BadInitialParameters) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(20, 2, 1);
  GmmParams p;
  p.n_components = 2;
  GaussianMixture<T> gm(p);
  GmmInitialParams in;
  in.weights = Eigen::VectorXd(3);
  in.weights << 0.2, 0.3, 0.5;
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "weights_init has 3 entries, expected n_components = 2");
  in.weights = Eigen::VectorXd(2);
  in.weights << 0.2, 0.3;
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "weights_init sums to 0.5, expected 1");
  in.weights = Eigen::VectorXd(2);
  in.weights << 1.5, -0.5;
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "weights_init[1] = -0.5 must be finite and >= 0");
  in = {};
  in.means = RowMatrix<double>::Zero(2, 3);
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "means_init has shape (2, 3), expected (n_components, n_features) = (2, 2)");
  in = {};
  Eigen::MatrixXd not_pd(2, 2);
  not_pd << 1, 2, 2, 1;  // eigenvalues 3 and -1
  in.precisions = {Eigen::MatrixXd::Identity(2, 2), not_pd};
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "precisions_init[1]: 'full precision' should be symmetric, positive-definite (it is not positive-definite)");
  Eigen::MatrixXd asym(2, 2);
  asym << 1, 0.5, 0, 1;
  in.precisions = {Eigen::MatrixXd::Identity(2, 2), asym};
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "precisions_init[1]: 'full precision' should be symmetric, positive-definite (it is not symmetric)");
  in.precisions = {Eigen::MatrixXd::Identity(2, 2)};
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "precisions_init has 1 matrices, expected 2 for covariance_type full");
  p.covariance_type = CovarianceType::diag;
  gm.set_params(p);
  in.precisions = {Eigen::MatrixXd::Constant(2, 2, -1.0)};
  gm.set_initial_params(in);
  EXPECT_INVALID(gm.fit(x), "precisions_init: 'diag precision' should be positive (and finite)");
}

TYPED_TEST(GmmErrors, UseBeforeFitAndWrongFeatureCount) {
  using T = TypeParam;
  RowMatrix<T> x = uniform<T>(20, 2, 1);
  GaussianMixture<T> gm;
  EXPECT_THROW(gm.score_samples(x), NotFittedError);
  EXPECT_THROW(gm.predict(x), NotFittedError);
  EXPECT_THROW(gm.means(), NotFittedError);
  EXPECT_THROW(gm.sample(3), NotFittedError);
  EXPECT_THROW(gm.bic(x), NotFittedError);
  gm.fit(x);
  RowMatrix<T> x3 = uniform<T>(4, 3, 1);
  EXPECT_INVALID(gm.score_samples(x3), "GaussianMixture::score_samples", "X has 3 features, but the model was fitted with 2");
  EXPECT_INVALID(gm.predict_proba(x3), "GaussianMixture::predict_proba", "3 features");
  EXPECT_INVALID(gm.sample(0), "n_samples must be >= 1, got 0");
}

// Data whose squares overflow double (issue 21, finding 4: NaN means, inf inertia before) are refused
// by the fits and the scoring alike, naming the cell.
TEST(GmmErrors, ValuesBeyondTheDataLimitAreRefusedNotTurnedIntoNaN) {
  for (const double big : {1e155, 1e308}) {
    RowMatrix<double> y = RowMatrix<double>::Ones(40, 2);
    y(17, 1) = big;
    GmmParams p;
    p.n_components = 2;
    GaussianMixture<double> gm(p);
    EXPECT_INVALID(gm.fit(y), "GaussianMixture::fit", "at row 17, column 1", "rescale the data");
    KMeansParams kp;
    kp.n_clusters = 2;
    KMeans<double> km(kp);
    EXPECT_INVALID(km.fit(y), "at row 17, column 1", "rescale the data");
    RowMatrix<double> fine = uniform<double>(40, 2, 3);
    gm.fit(fine);
    EXPECT_INVALID(gm.score_samples(y), "GaussianMixture::score_samples", "at row 17, column 1");
    DensityAnomalyDetector<double> det;
    EXPECT_INVALID(det.fit(y), "at row 17, column 1", "rescale the data");
  }
}
