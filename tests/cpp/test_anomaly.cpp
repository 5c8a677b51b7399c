// DensityAnomalyDetector: scores are log-densities in the original units, thresholds hit their
// false-alarm rates, explanations point at the feature that is off, bad input is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <Eigen/LU>

#include "gmm_util.hpp"
#include "mixtura/io.hpp"
#include "test_util.hpp"

namespace {

using mixtura::AnomalyMethod;
using mixtura::DensityAnomalyDetector;
using mixtura::DetectorParams;
using mixtura::Index;
using mixtura::MatrixView;
using mixtura::RowMatrix;
using mixtura::ThresholdMethod;
using mixtura_test::Scalars;

template <class T>
MatrixView<T> view(const RowMatrix<T>& a) {
  return {a.data(), a.rows(), a.cols()};
}

/// n rows of a correlated Gaussian in 3 features with very different units: x1 ~ 1000 x0 + noise,
/// x2 in thousandths; deterministic in seed.
template <class T>
RowMatrix<T> sensors(Index n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> z;
  RowMatrix<T> x(n, 3);
  for (Index i = 0; i < n; ++i) {
    const double a = z(gen), b = z(gen), c = z(gen);
    x(i, 0) = static_cast<T>(20 + a);
    x(i, 1) = static_cast<T>(5000 + 1000 * (0.9 * a + 0.44 * b));
    x(i, 2) = static_cast<T>(0.001 * c);
  }
  return x;
}

/// A detector of `method` fitted on X, with the parameters `edit` sets.
template <class T, class Edit>
DensityAnomalyDetector<T> fitted(const RowMatrix<T>& X, AnomalyMethod method, Edit edit) {
  DetectorParams p;
  p.method = method;
  edit(p);
  DensityAnomalyDetector<T> det(p);
  det.fit(view(X));
  return det;
}

template <class T>
class AnomalyTyped : public ::testing::Test {};
TYPED_TEST_SUITE(AnomalyTyped, Scalars);

// The score is the log-density of x: log N(z | model) - sum_j log scale_j, checked against a
// brute-force density of the fitted model (its parameters are in scaled units).
TYPED_TEST(AnomalyTyped, ScoreIsLogDensityInOriginalUnits) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(600, 3, 1, 50.0);
  for (AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
    const auto det = fitted(X, method, [](DetectorParams& p) { p.n_components = 3; });
    const Eigen::VectorXd s = det.score_samples(view(X));
    const auto& sc = det.scaling();
    const mixtura::GmmModel& m = det.model();
    for (Index i = 0; i < X.rows(); i += 37) {
      const Eigen::VectorXd z =
          (X.row(i).transpose().template cast<double>() - sc.center).cwiseQuotient(sc.scale);
      double expect;
      if (method == AnomalyMethod::gmm) {
        expect = mixtura_test::brute_log_density(m, z);
      } else {  // the best single component, weight included
        expect = -std::numeric_limits<double>::infinity();
        for (Index k = 0; k < m.n_components; ++k) {
          const double v = (z - m.means.row(k).transpose()).squaredNorm() / m.covariance(k)(0, 0);
          expect = std::max(expect, std::log(m.weights[k]) - 0.5 * (3 * std::log(2 * M_PI * m.covariance(k)(0, 0)) + v));
        }
      }
      expect -= sc.scale.array().log().sum();
      const double tol = std::is_same<T, float>::value ? 1e-4 : 1e-9;
      EXPECT_NEAR(s[i], expect, tol) << "row " << i;
    }
  }
}

// Changing the units of a feature (x -> a x + b) shifts every score by -log a and changes neither
// the flags nor the explanations: the detector needs no tuning for units.
TYPED_TEST(AnomalyTyped, UnitsDoNotMatter) {
  using T = TypeParam;
  const auto X = sensors<T>(2000, 2);
  RowMatrix<T> Y = X;
  Y.col(0) = (X.col(0).template cast<double>().array() * 1e3 - 7).template cast<T>();
  DetectorParams p;
  p.seed = 3;
  DensityAnomalyDetector<T> a(p), b(p);
  a.fit(view(X));
  b.fit(view(Y));
  const double tol = std::is_same<T, float>::value ? 2e-3 : 1e-7;
  EXPECT_EQ(a.n_components(), b.n_components());
  const Eigen::VectorXd sa = a.score_samples(view(X)), sb = b.score_samples(view(Y));
  EXPECT_NEAR(b.offset() - a.offset(), -std::log(1e3), tol);
  for (Index i = 0; i < X.rows(); ++i) ASSERT_NEAR(sb[i] - sa[i], -std::log(1e3), tol) << i;
  const auto ea = a.explain(view(X)), eb = b.explain(view(Y));
  EXPECT_EQ(ea.component, eb.component);
  EXPECT_LT((ea.contributions - eb.contributions).cwiseAbs().maxCoeff(), 50 * tol);
}

// Explanations: z_j = (P (z - mu))_j / sqrt(P_jj) under the responsible component, checked
// against the covariance inverted by brute force; a reading pushed off in one sensor, while the
// sensor it correlates with stays put, is blamed on that sensor.
TYPED_TEST(AnomalyTyped, ExplainPointsAtTheOffFeature) {
  using T = TypeParam;
  const auto X = sensors<T>(3000, 4);
  DetectorParams p;
  p.n_components = 1;
  DensityAnomalyDetector<T> det(p);
  det.fit(view(X));
  RowMatrix<T> odd = X.topRows(3);
  odd(0, 1) += static_cast<T>(4000);  // sensor 1 far from what sensor 0 implies
  odd(1, 0) += static_cast<T>(4);     // sensor 0 off (and so off its correlation with sensor 1)
  odd(2, 2) += static_cast<T>(0.006);
  const auto e = det.explain(view(odd));
  const auto& sc = det.scaling();
  const Eigen::MatrixXd P = det.model().covariance(0).inverse();
  for (Index i = 0; i < 3; ++i) {
    const Eigen::VectorXd z = (odd.row(i).transpose().template cast<double>() - sc.center).cwiseQuotient(sc.scale) -
                              det.model().means.row(0).transpose();
    const Eigen::VectorXd expect = (P * z).cwiseQuotient(P.diagonal().cwiseSqrt());
    for (Index j = 0; j < 3; ++j) EXPECT_NEAR(e.contributions(i, j), expect[j], 1e-3 * (1 + std::abs(expect[j])));
    Index worst;
    e.contributions.row(i).cwiseAbs().maxCoeff(&worst);
    EXPECT_EQ(worst, i == 0 ? 1 : i == 1 ? 0 : 2) << "row " << i;
    EXPECT_EQ(e.component[static_cast<std::size_t>(i)], 0);
  }
  EXPECT_EQ(det.predict(view(odd)), (std::vector<std::int32_t>{-1, -1, -1}));
}

// On Gaussian data the false-alarm rate on fresh normal rows is the one asked for, with a
// calibrated threshold and with the model's own tail.
TYPED_TEST(AnomalyTyped, ThresholdsHitTheFalseAlarmRate) {
  using T = TypeParam;
  const auto train = sensors<T>(20000, 5), fresh = sensors<T>(40000, 6);
  for (ThresholdMethod t : {ThresholdMethod::calibrate, ThresholdMethod::model_tail}) {
    DetectorParams p;
    p.n_components = 1;
    p.threshold = t;
    p.false_alarm_rate = 0.05;
    DensityAnomalyDetector<T> det(p);
    det.fit(view(train));
    const auto flags = det.predict(view(fresh));
    const double rate = std::count(flags.begin(), flags.end(), -1) / static_cast<double>(flags.size());
    // Calibration on 4000 held-out rows: the quantile's own spread is ~0.0035.
    EXPECT_NEAR(rate, 0.05, 0.012) << mixtura::to_string(t);
  }
}

// One component in 2 features: the model's tail is the chi-square tail, whose 1 - a quantile is
// -2 ln a in two dimensions, so the offset is log N at Mahalanobis^2 = -2 ln a.
TYPED_TEST(AnomalyTyped, ModelTailIsTheChiSquareTail) {
  using T = TypeParam;
  const auto X = sensors<T>(5000, 7);
  RowMatrix<T> X2 = X.leftCols(2);
  DetectorParams p;
  p.n_components = 1;
  p.threshold = ThresholdMethod::model_tail;
  p.false_alarm_rate = 0.01;
  DensityAnomalyDetector<T> det(p);
  det.fit(view(X2));
  const auto& m = det.model();
  const double log_det = std::log(m.covariance(0).determinant());
  const double expect = -std::log(2 * M_PI) - 0.5 * log_det + std::log(0.01) - det.scaling().scale.array().log().sum();
  EXPECT_NEAR(det.offset(), expect, 0.05);
}

TYPED_TEST(AnomalyTyped, ContaminationFlagsThatShareOfTheTrainingRows) {
  using T = TypeParam;
  const auto X = sensors<T>(1000, 8);
  DetectorParams p;
  p.contamination = 0.1;
  DensityAnomalyDetector<T> det(p);
  det.fit(view(X));
  const auto flags = det.predict(view(X));
  EXPECT_NEAR(std::count(flags.begin(), flags.end(), -1), 100, 1);
}

/// n normal rows N(0, I) in 2 features followed by m rows of a tight far cluster at (8, 8): training
/// rows that are not clean, where the cluster is a repeated fault.
template <class T>
RowMatrix<T> contaminated(Index n, Index m, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> z;
  RowMatrix<T> x(n + m, 2);
  for (Index i = 0; i < n + m; ++i)
    for (Index j = 0; j < 2; ++j) x(i, j) = static_cast<T>(i < n ? z(gen) : 8 + 0.1 * z(gen));
  return x;
}

// A minority of faulty training rows buys itself a component in a plain fit (BIC), so the fault
// scores as normal; the trimmed fit sets those rows aside and flags it. trim = share: that share of
// the fitting rows goes (floor); "auto" with contamination: contamination's share; "auto" alone: the
// fence, with components of weight <= 2 % not vouching for their rows.
TYPED_TEST(AnomalyTyped, TrimmedFitLeavesNoComponentToAFault) {
  using T = TypeParam;
  const RowMatrix<T> fault = (RowMatrix<T>(1, 2) << T(8), T(8)).finished();
  struct Case {
    Index n_fault;
    double trim, contamination;
  };
  for (const Case& c : {Case{30, 0.05, 0}, Case{15, mixtura::kTrimAuto, 0}, Case{30, mixtura::kTrimAuto, 0.05}}) {
    // Variables, not structured bindings: lambdas capture these in C++17 (clang 14 refuses bindings).
    const Index n_fault = c.n_fault;
    const double trim = c.trim, contamination = c.contamination;
    const auto X = contaminated<T>(1000, n_fault, 21);
    const auto plain = fitted(X, AnomalyMethod::gmm, [&](DetectorParams& p) {
      p.max_components = 4;
      p.contamination = contamination;
    });
    EXPECT_EQ(plain.n_trimmed(), 0);
    EXPECT_EQ(plain.predict(view(fault))[0], 1) << "the plain fit gives the fault a component";
    const auto trimmed = fitted(X, AnomalyMethod::gmm, [&](DetectorParams& p) {
      p.max_components = 4;
      p.contamination = contamination;
      p.trim = trim;
    });
    EXPECT_EQ(trimmed.predict(view(fault))[0], -1) << "trim " << trim << " contamination " << contamination;
    for (Index k = 0; k < trimmed.n_components(); ++k)
      EXPECT_LT(trimmed.model().means.row(k).norm(), 3) << "no component near the fault";
    const Index fit_rows = contamination > 0 ? X.rows() : X.rows() - std::llround(0.2 * X.rows());
    const double share = trim > 0 ? trim : contamination;
    if (share > 0) EXPECT_EQ(trimmed.n_trimmed(), static_cast<Index>(std::floor(share * fit_rows)));
    else EXPECT_GE(trimmed.n_trimmed(), n_fault * 7 / 10);  // the fault's rows among the fitting rows
  }
}

// trim = 0 is the plain fit, bit for bit; the trimmed fit is deterministic and survives a model file.
TYPED_TEST(AnomalyTyped, TrimmedFitRoundTrips) {
  using T = TypeParam;
  const auto X = contaminated<T>(600, 20, 5);
  const auto a = fitted(X, AnomalyMethod::gmm, [](DetectorParams& p) { p.max_components = 3; });
  const auto b = fitted(X, AnomalyMethod::gmm, [](DetectorParams& p) { p.max_components = 3; p.trim = 0; });
  EXPECT_EQ(a.score_samples(view(X)), b.score_samples(view(X)));
  for (AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
    const auto t = fitted(X, method, [](DetectorParams& p) { p.max_components = 3; p.trim = 0.1; });
    const auto again = fitted(X, method, [](DetectorParams& p) { p.max_components = 3; p.trim = 0.1; });
    EXPECT_EQ(t.n_trimmed(), 49);  // floor(0.1 * 496 fitting rows)
    EXPECT_EQ(t.score_samples(view(X)), again.score_samples(view(X)));
    const auto bytes = mixtura::to_bytes(mixtura::to_model_file(t));
    const auto back = mixtura::detector_from_sections<T>(mixtura::from_bytes(bytes.data(), bytes.size()));
    EXPECT_EQ(back.n_trimmed(), 49);
    EXPECT_EQ(back.score_samples(view(X)), t.score_samples(view(X)));
  }
}

// BIC finds the three blobs for both methods, and records what it tried.
TYPED_TEST(AnomalyTyped, BicChoosesTheCount) {
  using T = TypeParam;
  const auto X = mixtura_test::blobs<T>(1500, 4, 3, 9);
  for (AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
    const auto det = fitted(X, method, [](DetectorParams& p) { p.max_components = 6; });
    EXPECT_EQ(det.n_components(), 3) << mixtura::to_string(method);
    ASSERT_EQ(det.selection().size(), 6u);
    for (const auto& c : det.selection()) EXPECT_GE(c.bic, det.selection()[2].bic);
  }
}

// The BIC search stops before a count with as many free parameters as rows: 200 fitting rows in
// 10 features hold 1, 2 and 3 full-covariance components (65, 131, 197 parameters), not 4 (263).
TYPED_TEST(AnomalyTyped, BicSearchStopsWhereParametersOutnumberRows) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(250, 10, 16);  // 200 rows fitted, 50 held out
  const auto det = fitted(X, AnomalyMethod::gmm, [](DetectorParams&) {});
  ASSERT_EQ(det.selection().size(), 3u);
  EXPECT_EQ(det.selection()[2].n_components, 3);
}

// A channel that never moved keeps unit scale; a reading where it moves is the least normal.
TYPED_TEST(AnomalyTyped, ConstantChannel) {
  using T = TypeParam;
  RowMatrix<T> X = sensors<T>(500, 10);
  X.col(2).setConstant(static_cast<T>(3.5));
  DensityAnomalyDetector<T> det;
  det.fit(view(X));
  EXPECT_EQ(det.scaling().scale[2], 1.0);
  RowMatrix<T> test = X.topRows(2);
  test(1, 2) = static_cast<T>(4.5);
  const Eigen::VectorXd s = det.score_samples(view(test));
  EXPECT_TRUE(s.allFinite());
  EXPECT_LT(s[1], s[0] - 10);
}

TYPED_TEST(AnomalyTyped, SameForAnyThreadCount) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(5000, 4, 11);
  DetectorParams p;
  p.max_components = 4;
  p.n_threads = 1;
  DensityAnomalyDetector<T> one(p);
  p.n_threads = 2;
  DensityAnomalyDetector<T> two(p);
  one.fit(view(X));
  two.fit(view(X));
  EXPECT_EQ(one.offset(), two.offset());
  EXPECT_EQ(one.score_samples(view(X)), two.score_samples(view(X)));
  EXPECT_EQ(one.explain(view(X)).contributions, two.explain(view(X)).contributions);
}

// A row's score depends on its values and its index modulo the scoring block only, not on the rows
// scored with it: a slice that starts on a block boundary scores exactly as within the whole (what
// lets a stream be scored chunk by chunk).
TYPED_TEST(AnomalyTyped, ScoresDoNotDependOnTheOtherRows) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(1000, 5, 15);
  for (AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
    const auto det = fitted(X, method, [](DetectorParams&) {});
    const Eigen::VectorXd whole = det.score_samples(view(X));
    for (Index begin : {Index{0}, Index{256}, Index{512}})
      for (Index rows : {Index{1}, Index{37}, Index{256}, Index{300}}) {
        const RowMatrix<T> part = X.middleRows(begin, rows);
        EXPECT_EQ(det.score_samples(view(part)), whole.segment(begin, rows)) << begin << " " << rows;
      }
  }
}

// A detector rebuilt from its parts (how a saved one is loaded) scores bit for bit the same.
TYPED_TEST(AnomalyTyped, SetFittedReproducesTheScores) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(800, 3, 12);
  for (AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
    DetectorParams p;
    p.method = method;
    DensityAnomalyDetector<T> det(p), copy(p);
    det.fit(view(X));
    copy.set_fitted(det.scaling(), det.model(), det.offset());
    EXPECT_EQ(det.score_samples(view(X)), copy.score_samples(view(X)));
    EXPECT_EQ(det.predict(view(X)), copy.predict(view(X)));
    // A subnormal scale would turn finite rows into infinite scaled values: refused, as at load.
    mixtura::ScalingFit tiny = det.scaling();
    tiny.scale[1] = 1e-310;
    try {
      copy.set_fitted(tiny, det.model(), det.offset());
      ADD_FAILURE() << "a subnormal scale was accepted";
    } catch (const mixtura::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("set_fitted: scale[1] = 1e-310, expected in [1e-150, 1e+150]"),
                std::string::npos) << e.what();
    }
    EXPECT_EQ(det.score_samples(view(X)), copy.score_samples(view(X)));  // the model it had is kept
  }
}

// Saved and loaded through a model file (bytes), the detector scores and explains bit for bit the
// same, and keeps its BIC table and the fitted estimator behind it.
TYPED_TEST(AnomalyTyped, ModelFileRoundTrip) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(900, 3, 14);
  for (AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
    const auto det = fitted(X, method, [](DetectorParams& p) { p.max_components = 4; });
    const auto bytes = mixtura::to_bytes(mixtura::to_model_file(det));
    const auto mf = mixtura::from_bytes(bytes.data(), bytes.size());
    const auto back = mixtura::detector_from_sections<T>(mf);
    EXPECT_EQ(back.params().method, method);
    EXPECT_EQ(det.score_samples(view(X)), back.score_samples(view(X)));
    EXPECT_EQ(det.explain(view(X)).contributions, back.explain(view(X)).contributions);
    EXPECT_EQ(det.offset(), back.offset());
    ASSERT_EQ(back.selection().size(), 4u);
    EXPECT_EQ(back.selection()[2].bic, det.selection()[2].bic);
    if (method == AnomalyMethod::gmm) EXPECT_EQ(back.mixture().trace().size(), det.mixture().trace().size());
    else EXPECT_EQ(back.kmeans().cluster_centers(), det.kmeans().cluster_centers());
  }
}

// partial_fit's step, rebuilt from its parts: the unflagged rows, scaled with the fit's scaling, go to the
// mixture's online EM (the detector's reg_covar and half_life); every score joins the recent scores, a
// flagged one as the offset; the threshold keeps its distance to the median of the recent scores.
TYPED_TEST(AnomalyTyped, PartialFitStepsOnTheUnflaggedRows) {
  using T = TypeParam;
  const auto X = mixtura_test::gmm_blobs<T>(1500, 3, 21);
  DetectorParams p;
  p.max_components = 3;
  p.reg_covar = 2e-3;
  p.half_life = 150.5;  // a window of ceil(150.5) = 151 < 200 rows: at least 200
  DensityAnomalyDetector<T> det(p);
  det.partial_fit(view(X));  // the first call fits
  EXPECT_EQ(det.n_steps(), 1);
  EXPECT_TRUE(det.stream_recent_scores().empty());
  DensityAnomalyDetector<T> batch(p);
  batch.fit(view(X));
  EXPECT_EQ(det.score_samples(view(X)), batch.score_samples(view(X)));

  std::vector<double> recent;
  for (int step = 0; step < 3; ++step) {
    RowMatrix<T> chunk = mixtura_test::gmm_blobs<T>(90, 3, 30 + step, 0.3 * step);
    for (Index i = 0; i < 90; i += 9) chunk(i, 1) = static_cast<T>(40 + i);  // faults: flagged, never learnt
    const Eigen::VectorXd scores = det.score_samples(view(chunk));
    const double offset = det.offset(), median = det.score_median();
    RowMatrix<T> kept(0, 3);
    for (Index i = 0; i < 90; ++i) {
      if (scores[i] < offset) continue;
      kept.conservativeResize(kept.rows() + 1, 3);
      for (Index j = 0; j < 3; ++j)
        kept(kept.rows() - 1, j) = static_cast<T>((static_cast<double>(chunk(i, j)) - det.scaling().center[j]) /
                                                  det.scaling().scale[j]);
    }
    ASSERT_GT(kept.rows(), 40);
    ASSERT_LE(kept.rows(), 80);  // the faults are flagged
    mixtura::GaussianMixture<T> reference = det.mixture();
    mixtura::GmmParams gp = reference.params();
    gp.reg_covar = 2e-3;
    gp.half_life = 150.5;
    reference.set_params(gp);
    reference.partial_fit(view(kept));

    det.partial_fit(view(chunk));
    EXPECT_EQ(det.n_steps(), 2 + step);
    EXPECT_EQ(det.model().means, reference.model().means);
    EXPECT_EQ(det.model().factor, reference.model().factor);
    EXPECT_EQ(det.model().weights, reference.model().weights);
    for (Index i = 0; i < 90; ++i) recent.push_back(std::max(scores[i], offset));
    if (recent.size() > 200) recent.erase(recent.begin(), recent.end() - 200);
    EXPECT_EQ(det.stream_recent_scores(), recent);
    std::vector<double> sorted = recent;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t m = sorted.size() / 2;
    const double expected = sorted.size() % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
    EXPECT_EQ(det.score_median(), expected);
    EXPECT_EQ(det.offset(), expected - (median - offset));
  }
}

// After an abrupt change of level the detector, fed the stream chunk by chunk, follows it: the share
// of the new level's rows it flags comes back near the 1 % target, while the detector that does not
// adapt flags most of them.
TYPED_TEST(AnomalyTyped, PartialFitFollowsAChangeOfLevel) {
  using T = TypeParam;
  DetectorParams p;
  p.n_components = 3;
  p.half_life = 1000;
  DensityAnomalyDetector<T> still(p), follows(p);
  const auto train = mixtura_test::gmm_blobs<T>(3000, 3, 40);
  still.fit(view(train));
  follows.fit(view(train));
  const auto flagged = [](const DensityAnomalyDetector<T>& d, const RowMatrix<T>& x) {
    const auto f = d.predict(view(x));
    return static_cast<double>(std::count(f.begin(), f.end(), -1)) / static_cast<double>(f.size());
  };
  const auto before = mixtura_test::gmm_blobs<T>(4000, 3, 41);
  EXPECT_LT(flagged(follows, before), 0.03);
  for (std::uint32_t c = 0; c < 16; ++c) follows.partial_fit(view(mixtura_test::gmm_blobs<T>(500, 3, 50 + c, 2.0)));
  const auto after = mixtura_test::gmm_blobs<T>(4000, 3, 99, 2.0);
  EXPECT_GT(flagged(still, after), 0.2);
  EXPECT_LT(flagged(follows, after), 0.03);
  EXPECT_EQ(follows.n_steps(), 16);  // after fit: 0
}

// The streaming state travels in the model file: steps after a save and load are the steps without.
TYPED_TEST(AnomalyTyped, PartialFitResumesFromAModelFile) {
  using T = TypeParam;
  DetectorParams p;
  p.max_components = 2;
  p.half_life = 300;
  DensityAnomalyDetector<T> det(p);
  det.fit(view(mixtura_test::gmm_blobs<T>(600, 4, 60)));
  const auto chunk = [](std::uint32_t c) { return mixtura_test::gmm_blobs<T>(120, 4, 61 + c, 0.1 * c); };
  det.partial_fit(view(chunk(0)));
  det.partial_fit(view(chunk(1)));
  const auto bytes = mixtura::to_bytes(mixtura::to_model_file(det));
  auto back = mixtura::detector_from_sections<T>(mixtura::from_bytes(bytes.data(), bytes.size()));
  EXPECT_EQ(back.n_steps(), 2);
  EXPECT_EQ(back.stream_recent_scores(), det.stream_recent_scores());
  EXPECT_EQ(back.mixture().stream_state().n_steps, det.mixture().stream_state().n_steps);
  back.set_params(p);  // a loader sets the method only: the rest are the caller's
  for (std::uint32_t c = 2; c < 5; ++c) {
    det.partial_fit(view(chunk(c)));
    back.partial_fit(view(chunk(c)));
  }
  EXPECT_EQ(back.offset(), det.offset());
  EXPECT_EQ(back.score_median(), det.score_median());
  EXPECT_EQ(back.stream_recent_scores(), det.stream_recent_scores());
  EXPECT_EQ(back.model().means, det.model().means);
  EXPECT_EQ(back.model().factor, det.model().factor);
  // A detector that was never stepped writes no streaming sections and loads with none.
  DensityAnomalyDetector<T> plain(p);
  plain.fit(view(chunk(0)));
  const auto pbytes = mixtura::to_bytes(mixtura::to_model_file(plain));
  const auto pmf = mixtura::from_bytes(pbytes.data(), pbytes.size());
  EXPECT_FALSE(pmf.has("stream_n_steps_"));
  EXPECT_EQ(mixtura::detector_from_sections<T>(pmf).n_steps(), 0);
}

TYPED_TEST(AnomalyTyped, PartialFitRefusesWhatItCannotDo) {
  using T = TypeParam;
  const auto X = sensors<T>(400, 7);
  DetectorParams p;
  p.method = AnomalyMethod::kmeans;
  DensityAnomalyDetector<T> km(p);
  EXPECT_INVALID(km.partial_fit(view(X)), "DensityAnomalyDetector::partial_fit: method kmeans is fitted in one batch");
  EXPECT_FALSE(km.is_fitted());
  p.method = AnomalyMethod::gmm;
  p.half_life = -1;
  DensityAnomalyDetector<T> det(p);
  EXPECT_INVALID(det.partial_fit(view(X)), "half_life must be finite and >= 0, got -1");
  p.half_life = 0;
  det.set_params(p);
  det.partial_fit(view(X));
  det.partial_fit(view(X));
  // A failed step leaves the detector as it was (strong guarantee).
  const double offset = det.offset();
  const auto recent = det.stream_recent_scores();
  RowMatrix<T> bad = sensors<T>(60, 8);
  bad(5, 2) = std::numeric_limits<T>::infinity();
  EXPECT_INVALID(det.partial_fit(view(bad)), "DensityAnomalyDetector::partial_fit", "row 5");
  const RowMatrix<T> two = X.leftCols(2);
  EXPECT_INVALID(det.partial_fit(view(two)), "X has 2 features, but the model was fitted with 3");
  EXPECT_EQ(det.offset(), offset);
  EXPECT_EQ(det.stream_recent_scores(), recent);
  EXPECT_EQ(det.n_steps(), 2);
  EXPECT_INVALID(det.set_stream_state(0, {1.0}), "1 recent scores with n_steps = 0");
  EXPECT_INVALID(det.set_stream_state(2, {1.0, std::nan("")}), "recent_scores[1] = nan is not finite");
}

TYPED_TEST(AnomalyTyped, BadInput) {
  using T = TypeParam;
  const auto X = sensors<T>(50, 13);
  DensityAnomalyDetector<T> det;
  EXPECT_THROW(det.score_samples(view(X)), mixtura::NotFittedError);
  const auto bad = [&](auto edit, const char* part) {
    DetectorParams p;
    edit(p);
    DensityAnomalyDetector<T> d(p);
    EXPECT_INVALID(d.fit(view(X)), part);
  };
  bad([](DetectorParams& p) { p.n_components = -1; }, "n_components must be >= 0");
  bad([](DetectorParams& p) { p.max_components = 0; }, "max_components must be >= 1");
  bad([](DetectorParams& p) { p.contamination = 0.7; }, "contamination must be in [0, 0.5]");
  bad([](DetectorParams& p) { p.false_alarm_rate = 0; }, "false_alarm_rate must be in (0, 1)");
  bad([](DetectorParams& p) { p.calibration_fraction = 1; }, "calibration_fraction must be in (0, 1)");
  bad([](DetectorParams& p) { p.reg_covar = -1; }, "reg_covar must be finite and >= 0");
  bad([](DetectorParams& p) { p.trim = 0.5; }, "trim must be in [0, 0.5) or kTrimAuto");
  bad([](DetectorParams& p) { p.trim = -0.5; }, "got -0.5");
  bad([](DetectorParams& p) { p.n_components = 60; }, "n_components (60) > rows to fit (40)");
  RowMatrix<T> nan = X;  // (NaN, a missing value: GapsScoreTheObservedFeatures)
  nan(17, 1) = std::numeric_limits<T>::infinity();
  EXPECT_INVALID(det.fit(view(nan)), "non-finite", "row 17");
  EXPECT_INVALID(det.fit(MatrixView<T>{X.data(), 1, 3}), "n_samples = 1");
  det.fit(view(X));
  const RowMatrix<T> two = X.leftCols(2);
  EXPECT_INVALID(det.score_samples(view(two)), "X has 2 features, but the model was fitted with 3");
  EXPECT_INVALID(det.explain(view(nan)), "row 17");
  EXPECT_INVALID(det.kmeans(), "not fitted with method kmeans");
}

// Rows with gaps (NaN): scaled by statistics of the observed values, scored by the density of their
// observed features in the original units (the Jacobian over those features only), explained with NaN
// where a value is missing.
TYPED_TEST(AnomalyTyped, GapsScoreTheObservedFeatures) {
  using T = TypeParam;
  RowMatrix<T> X = sensors<T>(3000, 21);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (Index i = 0; i < X.rows(); i += 5) X(i, (i / 5) % 3) = nan;
  for (Index i = 1; i < X.rows(); i += 11) X(i, (i + 1) % 3) = nan;
  for (const auto type : {mixtura::CovarianceType::full, mixtura::CovarianceType::diag}) {
    DetectorParams p;
    p.covariance_type = type;
    DensityAnomalyDetector<T> det(p);
    det.fit(view(X));
    const Eigen::VectorXd s = det.score_samples(view(X));
    ASSERT_TRUE(s.allFinite());
    RowMatrix<T> Z(X.rows(), X.cols());
    mixtura::scale_rows(view(X), det.scaling(), 0, Z);
    const Eigen::VectorXd z = det.mixture().score_samples(view(Z));
    for (Index i = 0; i < X.rows(); ++i) {
      double log_jacobian = 0;
      for (Index j = 0; j < X.cols(); ++j)
        if (!std::isnan(X(i, j))) log_jacobian += std::log(det.scaling().scale[j]);
      ASSERT_NEAR(s[i], z[i] - log_jacobian, 1e-12 * (1 + std::abs(s[i]))) << "row " << i;
    }
    // The threshold: calibrated on held-out scores of the same kind; about the false-alarm rate is flagged.
    const Eigen::VectorXd d = det.decision_function(view(X));
    EXPECT_LT((d.array() < 0).template cast<double>().mean(), 0.05);
    const mixtura::AnomalyExplanation e = det.explain(view(X));
    for (Index i = 0; i < 40; ++i)
      for (Index j = 0; j < X.cols(); ++j) EXPECT_EQ(std::isnan(e.contributions(i, j)), std::isnan(X(i, j))) << i << " " << j;
    // A value far off on an observed feature of a row with a gap is the one explained.
    RowMatrix<T> odd = X.topRows(1);  // X(0, 0) is missing
    odd(0, 2) = static_cast<T>(static_cast<double>(odd(0, 2)) + 40 * det.scaling().scale[2]);
    const Eigen::RowVectorXd c = det.explain(view(odd)).contributions.row(0);
    EXPECT_TRUE(std::isnan(c[0]));
    // Most of it: the shifted value also moves the row to broader components, under which the observed
    // x1 weighs a little more than before.
    EXPECT_GT(std::abs(c[2]), 0.75 * (std::abs(c[1]) + std::abs(c[2]))) << "type " << static_cast<int>(type) << " c " << c;
    EXPECT_LT(det.decision_function(view(odd))[0], 0);
  }
  DetectorParams p;
  p.method = AnomalyMethod::kmeans;
  DensityAnomalyDetector<T> km(p);
  EXPECT_INVALID(km.fit(view(X)), "non-finite value (nan) at row 0, column 0", "method gmm");
  const RowMatrix<T> complete = sensors<T>(500, 22);
  km.fit(view(complete));
  EXPECT_INVALID(km.score_samples(view(X)), "non-finite value (nan) at row 0, column 0", "method gmm");
  RowMatrix<T> empty = X;
  empty.row(42).setConstant(nan);
  DensityAnomalyDetector<T> det;
  EXPECT_INVALID(det.fit(view(empty)), "DensityAnomalyDetector::fit", "row 42 has no observed value");
}

}  // namespace
