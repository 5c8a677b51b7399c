// Properties of EM: the ELBO staircase, Jensen's inequality, exact log-densities, determinism,
// float32 stability on offset sensor-like data, sampling and model selection.
#include "gmm_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

template <class T>
class GmmProperties : public ::testing::Test {};
TYPED_TEST_SUITE(GmmProperties, Scalars);

// With reg_covar = 0 the M-step maximises ELBO(q_t, .) exactly and the E-step makes the bound
// tight, so L(theta_t) <= ELBO(q_t, theta_{t+1}) <= L(theta_{t+1}) (to round-off).
TYPED_TEST(GmmProperties, ElboStaircaseWithoutRegularisation) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(3000, 3, 5);
  for (CovarianceType t : kTypes) {
    for (GmmInit init : {GmmInit::kmeans, GmmInit::random}) {
      GmmParams p;
      p.n_components = 4;
      p.covariance_type = t;
      p.reg_covar = 0;
      p.tol = 0;
      p.max_iter = 30;
      p.init = init;
      GaussianMixture<T> gm(p);
      gm.fit(x);
      const auto& tr = gm.trace();
      ASSERT_EQ(tr.size(), 30u);
      for (std::size_t i = 0; i < tr.size(); ++i) {
        const double slack = 1e-11 * std::abs(tr[i].lower_bound);
        EXPECT_LE(tr[i].lower_bound, tr[i].elbo_after_m + slack) << to_string(t) << " it " << i;
        if (i + 1 < tr.size()) {
          EXPECT_LE(tr[i].elbo_after_m, tr[i + 1].lower_bound + slack) << to_string(t) << " it " << i;
        }
        EXPECT_GE(tr[i].entropy, 0.0);
      }
      EXPECT_TRUE(gm.events().empty());
    }
  }
}

// With reg_covar > 0 the middle step may fall below L(theta_t), but only by the second-order amount
// documented in the README (about D r^2 / 4 per sample for unit variances): 1e-12 here.
TEST(GmmElbo, StaircaseWithDefaultRegularisationWithinTheDocumentedBound) {
  const RowMatrix<double> x = gmm_blobs<double>(3000, 3, 15);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.tol = 0;
    p.max_iter = 20;
    GaussianMixture<double> gm(p);
    gm.fit(x);
    const auto& tr = gm.trace();
    for (std::size_t i = 0; i < tr.size(); ++i) {
      EXPECT_LE(tr[i].lower_bound, tr[i].elbo_after_m + 1e-12) << to_string(t) << " it " << i;
      if (i + 1 < tr.size()) {
        EXPECT_LE(tr[i].elbo_after_m, tr[i + 1].lower_bound + 1e-12) << to_string(t) << " it " << i;
      }
    }
  }
}

// The middle value is computed from the statistics alone; at theta_t itself the same formula
// must give back the log-likelihood of the E-step (the bound is tight at the posterior).
TEST(GmmElbo, FromStatisticsIsTightAtTheEStepParameters) {
  const RowMatrix<double> x = gmm_blobs<double>(2000, 4, 9);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.max_iter = 5;
    GaussianMixture<double> gm(p);
    gm.fit(x);
    const GmmStats st = gmm_e_step(CpuBackend{}, MatrixView<double>(x), VectorView<double>(), gm.model(), 0);
    EXPECT_NEAR(detail::elbo_from_stats(st, gm.model()), st.log_likelihood / st.weight, 1e-10)
        << to_string(t);
    EXPECT_NEAR(st.log_likelihood / st.weight, gm.score(x), 1e-12);
  }
}

// Jensen: for any q, E_q[log p(x, z)] + H(q) <= log p(x), with equality at the posterior.
TEST(GmmElbo, JensenForRandomResponsibilities) {
  const RowMatrix<double> x = gmm_blobs<double>(500, 2, 3);
  GmmParams p;
  p.n_components = 3;
  GaussianMixture<double> gm(p);
  gm.fit(x);
  const RowMatrix<double> log_n = gm.component_log_density(x);
  const Eigen::VectorXd log_p = gm.score_samples(x);
  const RowMatrix<double> post = gm.predict_proba(x);
  std::mt19937 gen(1);
  std::uniform_real_distribution<double> u(0.01, 1.0);
  for (Index i = 0; i < x.rows(); ++i) {
    auto elbo = [&](const Eigen::RowVectorXd& q) {
      double e = 0;
      for (Index k = 0; k < 3; ++k)
        if (q[k] > 0) e += q[k] * (std::log(gm.weights()[k]) + log_n(i, k) - std::log(q[k]));
      return e;
    };
    for (int trial = 0; trial < 5; ++trial) {
      Eigen::RowVectorXd q(3);
      for (Index k = 0; k < 3; ++k) q[k] = u(gen);
      q /= q.sum();
      EXPECT_LE(elbo(q), log_p[i] + 1e-12);
    }
    EXPECT_NEAR(elbo(post.row(i)), log_p[i], 1e-10);
  }
}

TYPED_TEST(GmmProperties, ScoreSamplesEqualBruteForceDensity) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(600, 3, 4);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const Eigen::VectorXd s = gm.score_samples(x);
    for (Index i = 0; i < 50; ++i) {
      const double want = brute_log_density(gm.model(), x.row(i).template cast<double>().transpose());
      EXPECT_NEAR(s[i], want, 1e-10 * std::abs(want)) << to_string(t);
    }
    const RowMatrix<double> proba = gm.predict_proba(x);
    EXPECT_LE((proba.rowwise().sum().array() - 1).abs().maxCoeff(), 1e-12);
    const auto labels = gm.predict(x);
    for (Index i = 0; i < x.rows(); ++i) {
      Index best;
      proba.row(i).maxCoeff(&best);
      EXPECT_EQ(labels[i], best);
    }
  }
}

// The batched pass reads, per block of columns of y = (x - c) C, only the factor rows that are not all
// zero there, and accumulates second moments pair by pair in groups of component lanes. Against
// brute force (per-component solves; posteriors and moments row by row), for upper factors and for
// the lower Cholesky factors of the same precisions (other rows skipped), at D from one block to
// four with padding (33, 41), K below, at and above one group of 8 lanes, full and tied, with twins.
TEST(GmmBatchedPass, LogDensitiesAndMomentsEqualBruteForceForUpperAndLowerFactors) {
  std::mt19937 gen(5);
  std::normal_distribution<double> z;
  std::uniform_real_distribution<double> u(0.5, 1.5);
  for (const Index d : {5, 8, 16, 33, 41})
    for (const Index K : {3, 8, 9})
      for (const CovarianceType t : {CovarianceType::full, CovarianceType::tied})
        for (const bool lower : {false, true}) {
          const std::string at = std::string(to_string(t)) + " d " + std::to_string(d) + " K " + std::to_string(K) +
                                 (lower ? " lower" : " upper");
          GmmModel m(t, K, d);
          for (Index k = 0; k < K; ++k) m.weights[k] = u(gen);
          m.weights /= m.weights.sum();
          for (Index i = 0; i < m.means.size(); ++i) m.means.data()[i] = 2 * z(gen);
          for (Eigen::MatrixXd& f : m.factor) {
            f.setZero();
            for (Index j = 0; j < d; ++j)
              for (Index i = 0; i <= j; ++i) f(i, j) = i == j ? u(gen) : 0.3 * z(gen);
            // The lower Cholesky factor L of the same precision U U^T: other zeros, same density.
            if (lower) f = Eigen::MatrixXd(Eigen::MatrixXd(f * f.transpose()).llt().matrixL());
          }
          if (t == CovarianceType::full) {  // component 2 a twin of component 1
            m.weights[2] = m.weights[1];
            m.means.row(2) = m.means.row(1);
            m.factor[2] = m.factor[1];
          }
          RowMatrix<double> x(300, d);
          for (Index i = 0; i < x.size(); ++i) x.data()[i] = 2 * z(gen);
          std::vector<double> log_p(300);
          gmm_score_rows(CpuBackend{}, MatrixView<double>(x), m, log_p.data(), nullptr);
          const GmmStats st = gmm_e_step(CpuBackend{}, MatrixView<double>(x), VectorView<double>(), m, 0);
          std::vector<Eigen::MatrixXd> s2(static_cast<std::size_t>(K), Eigen::MatrixXd::Zero(d, d));
          double log_likelihood = 0;
          for (Index i = 0; i < x.rows(); ++i) {
            const Eigen::VectorXd xi = x.row(i).transpose();
            const double want = brute_log_density(m, xi);
            ASSERT_NEAR(log_p[static_cast<std::size_t>(i)], want, 1e-11 * std::abs(want)) << at << " row " << i;
            log_likelihood += want;
            for (Index k = 0; k < K; ++k) {  // posterior r_ik from brute force, moments around the pass's shift
              GmmModel one = m;
              one.n_components = 1;
              one.weights = Eigen::VectorXd::Ones(1);
              one.means = m.means.row(k);
              if (t == CovarianceType::full) one.factor = {m.factor[static_cast<std::size_t>(k)]};
              const double r = m.weights[k] * std::exp(brute_log_density(one, xi) - want);
              const Eigen::VectorXd dx = xi - st.shift.row(k).transpose();
              s2[static_cast<std::size_t>(k)] += r * dx * dx.transpose();
            }
          }
          EXPECT_NEAR(st.log_likelihood, log_likelihood, 1e-11 * std::abs(log_likelihood)) << at;
          for (Index k = 0; k < K; ++k) {
            const Eigen::MatrixXd& want = s2[static_cast<std::size_t>(k)];
            EXPECT_LE((st.second_moment(k) - want).cwiseAbs().maxCoeff(), 1e-11 * want.cwiseAbs().maxCoeff())
                << at << " component " << k;
          }
        }
}

// A component copied bit for bit (weight, mean, factor) ties with its original on every row, and
// the tie goes to the first: twins are evaluated once, because a blocked GEMM rounds a column by its
// position (on AVX-512 the twin of a D = 16 component differed in the last bit on most rows). The
// twin sits after a different component, at several D, so GEMM panels and vector tails cut it apart.
TYPED_TEST(GmmProperties, TwinComponentsTieExactlyAndTheFirstWins) {
  using T = TypeParam;
  for (const Index d : {3, 8, 13, 16, 37, 130}) {
    const RowMatrix<T> x = gmm_blobs<T>(700, d, 11);
    for (CovarianceType t : kTypes) {
      GmmParams p;
      p.n_components = 3;
      p.covariance_type = t;
      p.max_iter = 5;
      GaussianMixture<T> fitted(p);
      fitted.fit(x);
      GmmModel m = fitted.model();
      m.weights[2] = m.weights[0];
      m.weights /= m.weights.sum();
      m.weights[2] = m.weights[0];  // bit for bit after the division as well
      m.means.row(2) = m.means.row(0);
      if (t == CovarianceType::full) m.factor[2] = m.factor[0];
      if (t == CovarianceType::diag || t == CovarianceType::spherical) m.diag_factor.row(2) = m.diag_factor.row(0);
      GaussianMixture<T> gm;
      gm.set_model(m);
      const std::string at = std::string(to_string(t)) + " d " + std::to_string(d);
      const auto labels = gm.predict(x);
      EXPECT_EQ(std::count(labels.begin(), labels.end(), 2), 0) << at << ": a tie went to the later twin";
      // The posteriors of twins agree to rounding only: exp of a row runs on vector packets and a scalar
      // tail (Eigen's exp and std::exp), and a twin may fall in the other one.
      const RowMatrix<double> proba = gm.predict_proba(x);
      for (Index i = 0; i < x.rows(); ++i) ASSERT_NEAR(proba(i, 2), proba(i, 0), 1e-15) << at << " row " << i;
      // One bit of the mean apart: no longer a twin, evaluated on its own, and close to component 0.
      m.means(2, 0) = std::nextafter(m.means(2, 0), 1e300);
      gm.set_model(m);
      const RowMatrix<double> apart = gm.predict_proba(x);
      EXPECT_LE((apart.col(2) - apart.col(0)).cwiseAbs().maxCoeff(), 1e-6) << at;
    }
  }
}

// Scoring centres a block once on the mixture mean and subtracts (mu_k - c) C_k per component. With
// components 10^4 standard deviations apart, far from the origin, the rows near each component and
// the far anomalies keep their digits: against the per-component density (x - mu_k, no cancellation)
// to 1e-10 relative, for every covariance type.
TYPED_TEST(GmmProperties, ScoresOfFarApartComponentsKeepTheirDigits) {
  using T = TypeParam;
  const Index D = 4, K = 3;
  std::mt19937 gen(7);
  std::normal_distribution<double> z;
  for (CovarianceType t : kTypes) {
    GmmModel m(t, K, D);
    m.weights << 0.5, 0.3, 0.2;
    for (Index k = 0; k < K; ++k) {
      for (Index j = 0; j < D; ++j)  // fractions: x - c must not be exact in float by luck
        m.means(k, j) = 1e5 + (j == k ? 1e4 : 0.0) - 3e3 * static_cast<double>(k) + 0.123456789 * static_cast<double>(j + k + 1);
      if (t == CovarianceType::full || (t == CovarianceType::tied && k == 0)) {
        Eigen::MatrixXd c = Eigen::MatrixXd::Zero(D, D);  // upper triangular, positive diagonal
        for (Index i = 0; i < D; ++i) {
          c(i, i) = 0.5 + 0.25 * static_cast<double>(i + k);
          for (Index j = i + 1; j < D; ++j) c(i, j) = 0.3 * z(gen);
        }
        m.factor[static_cast<std::size_t>(k)] = c;
      }
      if (t == CovarianceType::diag)
        for (Index j = 0; j < D; ++j) m.diag_factor(k, j) = 0.5 + 0.2 * static_cast<double>(j + k);
      if (t == CovarianceType::spherical) m.diag_factor(k, 0) = 0.7 + 0.1 * static_cast<double>(k);
    }
    RowMatrix<T> x(300, D);
    for (Index i = 0; i < x.rows(); ++i) {
      const Index k = i % K;
      const double spread = i % 10 == 9 ? 1e4 : i % 10 == 8 ? 50.0 : 1.5;  // anomalies among normal rows
      for (Index j = 0; j < D; ++j) x(i, j) = static_cast<T>(m.means(k, j) + spread * z(gen));
    }
    GaussianMixture<T> gm;
    gm.set_model(m);
    const Eigen::VectorXd s = gm.score_samples(x);
    for (Index i = 0; i < x.rows(); ++i) {
      const double want = brute_log_density(m, x.row(i).template cast<double>().transpose());
      ASSERT_NEAR(s[i], want, 1e-10 * std::abs(want)) << to_string(t) << " row " << i;
    }
  }
}

TYPED_TEST(GmmProperties, BitIdenticalForOneAndTwoThreads) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(20000, 5, 8);  // many blocks and reduction groups
  auto fit = [&](int threads) {
    GmmParams p;
    p.n_components = 4;
    p.n_init = 2;
    p.max_iter = 8;
    p.n_threads = threads;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    return gm;
  };
  const auto a = fit(1), b = fit(2);
  ASSERT_EQ(a.n_iter(), b.n_iter());
  EXPECT_EQ(a.means(), b.means());
  EXPECT_EQ(a.weights(), b.weights());
  for (std::size_t r = 0; r < a.runs().size(); ++r)
    for (std::size_t i = 0; i < a.runs()[r].trace.size(); ++i) {
      EXPECT_EQ(a.runs()[r].trace[i].lower_bound, b.runs()[r].trace[i].lower_bound);
      EXPECT_EQ(a.runs()[r].trace[i].elbo_after_m, b.runs()[r].trace[i].elbo_after_m);
    }
}

// Readings around 1e4 with unit noise in float32: statistics around the current means, in double,
// keep the float fit on the double one (raw float moments would lose everything below 1e-3).
TEST(GmmFloat32, StableOnLargeOffsets) {
  const RowMatrix<double> xd = gmm_blobs<double>(20000, 3, 12, /*offset=*/1e4);
  const RowMatrix<float> xf = xd.cast<float>();
  const RowMatrix<double> xr = xf.cast<double>();  // the same rounded readings in double
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.tol = 0;
    p.max_iter = 20;
    GaussianMixture<float> gf(p);
    GaussianMixture<double> gd(p);
    GmmInitialParams init;  // the same start for both (K-means on float and double data may differ)
    init.weights = Eigen::VectorXd::Constant(3, 1.0 / 3);
    init.means = xr.topRows(3);
    const Index n_prec = t == CovarianceType::full ? 3 : 1;
    for (Index k = 0; k < n_prec; ++k)
      init.precisions.push_back(t == CovarianceType::diag        ? Eigen::MatrixXd(Eigen::MatrixXd::Ones(3, 3))
                                : t == CovarianceType::spherical ? Eigen::MatrixXd(Eigen::MatrixXd::Ones(3, 1))
                                                                 : Eigen::MatrixXd(Eigen::MatrixXd::Identity(3, 3)));
    gf.set_initial_params(init);
    gd.set_initial_params(init);
    gf.fit(xf);
    gd.fit(xr);
    ASSERT_EQ(gf.trace().size(), gd.trace().size());
    for (std::size_t i = 0; i < gf.trace().size(); ++i) {
      ASSERT_TRUE(std::isfinite(gf.trace()[i].lower_bound));
      EXPECT_NEAR(gf.trace()[i].lower_bound, gd.trace()[i].lower_bound, 1e-6 * std::abs(gd.trace()[i].lower_bound))
          << to_string(t) << " it " << i;
    }
    // Unit-scale noise: about -1.4 per feature and sample, not the -inf or NaN of a broken float fit.
    EXPECT_GT(gf.lower_bound(), -3.0 * 3);
  }
}

TEST(GmmSample, ReproducibleAndFaithful) {
  const RowMatrix<double> x = gmm_blobs<double>(3000, 2, 2);
  GmmParams p;
  p.n_components = 3;
  GaussianMixture<double> gm(p);
  gm.fit(x);
  const auto a = gm.sample(20000, 5), b = gm.sample(20000, 5), c = gm.sample(20000, 6);
  EXPECT_EQ(a.first, b.first);
  EXPECT_NE(a.first, c.first);
  // Refitting on the samples from the same start recovers the weights.
  GaussianMixture<double> refit(p);
  GmmInitialParams init;
  init.weights = gm.weights();
  init.means = gm.means();
  for (Index k = 0; k < 3; ++k) init.precisions.push_back(gm.model().precision(k));
  refit.set_initial_params(init);
  refit.fit(a.first);
  EXPECT_LE((refit.weights() - gm.weights()).cwiseAbs().maxCoeff(), 0.02);
  EXPECT_LE((refit.means() - gm.means()).cwiseAbs().maxCoeff(), 0.1);
}

TEST(GmmSelect, BicFindsThreeComponents) {
  const RowMatrix<double> x = gmm_blobs<double>(3000, 2, 21, 0.0, /*sep=*/8.0);
  GmmParams base;
  base.n_init = 2;
  const auto sel = select_gaussian_mixture<double>(x, {1, 2, 3, 4, 5}, {CovarianceType::full, CovarianceType::diag}, base);
  ASSERT_EQ(sel.table.size(), 10u);
  EXPECT_EQ(sel.table[sel.best].n_components, 3);
  EXPECT_EQ(sel.model.params().n_components, 3);
  for (const auto& c : sel.table) EXPECT_GE(c.bic, sel.table[sel.best].bic);
  // BIC and AIC as scikit-learn defines them: -2 n score + penalty.
  EXPECT_NEAR(sel.model.bic(x) - sel.model.aic(x),
              sel.model.model().n_parameters() * (std::log(3000.0) - 2), 1e-6);
}

// Sharing one K-means per count across covariance types must not change any result.
TEST(GmmSelect, SharedKMeansGivesTheResultsOfIndependentFits) {
  const RowMatrix<double> x = gmm_blobs<double>(2000, 3, 5);
  const std::vector<CovarianceType> types = {CovarianceType::full, CovarianceType::spherical};
  const auto sel = select_gaussian_mixture<double>(x, {2, 3}, types);
  std::size_t row = 0;
  for (int k : {2, 3})
    for (CovarianceType t : types) {
      GmmParams p;
      p.n_components = k;
      p.covariance_type = t;
      GaussianMixture<double> gm(p);
      gm.fit(x);
      EXPECT_EQ(sel.table[row].bic, gm.bic(x)) << k << " " << to_string(t);
      EXPECT_EQ(sel.table[row].n_iter, gm.n_iter());
      ++row;
    }
}

TEST(GmmInitialLabels, BadLabelsAreRejected) {
  const RowMatrix<double> x = gmm_blobs<double>(10, 2, 5);
  GmmParams p;
  p.n_components = 2;
  GaussianMixture<double> gm(p);
  gm.set_initial_labels({0, 1, 0});
  EXPECT_INVALID(gm.fit(x), "GaussianMixture::fit: 3 initial labels for 10 rows");
  gm.set_initial_labels({0, 1, 0, 1, 0, 1, 0, 1, 2, 0});
  EXPECT_INVALID(gm.fit(x), "initial label 2 of row 8 is outside [0, n_components = 2)");
}

TYPED_TEST(GmmProperties, WarmStartContinuesFromTheFittedModel) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(2000, 2, 6);
  GmmParams p;
  p.n_components = 3;
  p.tol = 0;
  p.max_iter = 10;
  GaussianMixture<T> once(p);
  p.max_iter = 5;
  GaussianMixture<T> twice(p);
  twice.fit(x);
  p.warm_start = true;
  twice.set_params(p);
  twice.fit(x);
  p.max_iter = 10;
  p.warm_start = false;
  once.set_params(p);
  once.fit(x);
  // 5 + 5 iterations from the same start = 10 iterations.
  EXPECT_LE((twice.means() - once.means()).cwiseAbs().maxCoeff(), 1e-9);
}
