// Gaussian mixtures on the CUDA backend, with the CPU backend and the host replay of the kernels
// (gmm_replay.hpp) as oracles.
//
// Tests named Device* need a GPU and skip without one:
// - the device E-step against the replay (same functions, same order: only exp/log and the rounding
//   of responsibilities to T may differ) over shapes that reach every edge of the kernels' tilings,
//   and against the CPU's statistics;
// - fit_on(gpu) against fit() for float and double and every covariance type: ELBO traces within
//   1e-5 / 1e-10 relative, the same labels, the same scores to the same tolerance;
// - two runs, and streaming against residency: the same bits;
// - scores of a row that do not depend on the rows scored with it.
// The others run everywhere (argument errors reach the caller before any device is touched).
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda_test_util.hpp"
#include "gmm_replay.hpp"
#include "mixtura/cuda.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {


template <class T>
class CudaGmmDevice : public ::testing::Test {};
TYPED_TEST_SUITE(CudaGmmDevice, Scalars);

::testing::AssertionResult near_rel(double a, double b, double rel, double floor = 0.0) {
  const double scale = std::max({std::fabs(a), std::fabs(b), floor});
  if (std::fabs(a - b) <= rel * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " vs " << b << " (relative tolerance " << rel << ")";
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Every recorded value of two fits, bit for bit.
template <class T>
void expect_same_fit(const GaussianMixture<T>& a, const GaussianMixture<T>& b) {
  ASSERT_EQ(a.runs().size(), b.runs().size());
  for (std::size_t r = 0; r < a.runs().size(); ++r) {
    const auto& ta = a.runs()[r].trace;
    const auto& tb = b.runs()[r].trace;
    ASSERT_EQ(ta.size(), tb.size());
    for (std::size_t i = 0; i < ta.size(); ++i) {
      EXPECT_TRUE(same_bits(ta[i].lower_bound, tb[i].lower_bound)) << "restart " << r << " it " << i;
      EXPECT_TRUE(same_bits(ta[i].elbo_after_m, tb[i].elbo_after_m)) << "restart " << r << " it " << i;
      EXPECT_TRUE(same_bits(ta[i].entropy, tb[i].entropy)) << "restart " << r << " it " << i;
    }
  }
  EXPECT_TRUE(a.means() == b.means());
  EXPECT_TRUE(a.weights() == b.weights());
  for (Index k = 0; k < a.model().n_components; ++k) EXPECT_TRUE(a.model().covariance(k) == b.model().covariance(k));
}

TYPED_TEST(CudaGmmDevice, BadInputGivesTheCpuErrorsBeforeTouchingTheDevice) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(100, 2, 1);
  GmmParams p;
  p.n_components = 200;
  GaussianMixture<T> gm(p);
  const CudaBackend none;  // no context: only a device pass would need one
  EXPECT_INVALID(gm.fit_on(none, MatrixView<T>(x)), "n_components (200) > n_samples (100)");
  p.n_components = 2;
  gm.set_params(p);
  EXPECT_INVALID(gm.fit_on(none, MatrixView<T>(x)), "no context", "make_cuda_backend");
}

// The device E-step against its replay on the host (gmm_replay.hpp) over the edge shapes of the
// tilings, with n_worst none, below and above a tile.
TYPED_TEST(CudaGmmDevice, DeviceEStepMatchesTheReplayedKernels) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 1e-6 : 1e-12;
  const auto gpu = make_cuda_backend();
  for (const EdgeShape& shape : kEdgeShapes)
    for (CovarianceType t : kTypes) {
      const EdgeCase<T> c(shape, t);
      for (std::size_t n_worst : {std::size_t{0}, std::size_t{7}, std::size_t{1500}}) {
        const GmmStats dev = gmm_e_step(gpu, MatrixView<T>(c.x), VectorView<T>(c.w), c.model, n_worst);
        const GmmStats rep = gmm_e_step(ReplayBackend{}, MatrixView<T>(c.x), VectorView<T>(c.w), c.model, n_worst);
        const std::string at = c.name + " n_worst " + std::to_string(n_worst);
        EXPECT_TRUE(near_rel(dev.log_likelihood, rep.log_likelihood, tol)) << at;
        EXPECT_TRUE(near_rel(dev.entropy, rep.entropy, tol, rep.weight)) << at;
        EXPECT_EQ(dev.weight, rep.weight) << at;
        EXPECT_TRUE(dev.shift == rep.shift) << at;
        for (Index k = 0; k < shape.K; ++k) {
          EXPECT_TRUE(near_rel(dev.nk[k], rep.nk[k], tol, rep.weight)) << at << " k " << k;
          const double scale = rep.second_moment(k).cwiseAbs().maxCoeff() + rep.s1.row(k).cwiseAbs().maxCoeff();
          EXPECT_LE((dev.s1.row(k) - rep.s1.row(k)).cwiseAbs().maxCoeff(), tol * scale) << at << " k " << k;
          EXPECT_LE((dev.second_moment(k) - rep.second_moment(k)).cwiseAbs().maxCoeff(), tol * scale) << at << " k " << k;
        }
        ASSERT_EQ(dev.worst.rows.size(), rep.worst.rows.size()) << at;
        for (std::size_t i = 0; i < rep.worst.rows.size(); ++i)
          EXPECT_TRUE(near_rel(dev.worst.rows[i].first, rep.worst.rows[i].first, tol)) << at << " worst " << i;
      }
    }
}

// The same against the CPU backend's own E-step (statistics around another point for full/tied in
// float: compared through the M-step and the ELBO).
TYPED_TEST(CudaGmmDevice, DeviceEStepMatchesTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
  const auto gpu = make_cuda_backend();
  const RowMatrix<T> x = gmm_blobs<T>(20000, 6, 9, 50.0);
  for (CovarianceType t : kTypes) {
    const GmmModel m = fitted_model(x, t, 5);
    const GmmStats cpu = gmm_e_step(CpuBackend{}, MatrixView<T>(x), VectorView<T>{}, m, 5);
    const GmmStats dev = gmm_e_step(gpu, MatrixView<T>(x), VectorView<T>{}, m, 5);
    EXPECT_TRUE(near_rel(dev.log_likelihood, cpu.log_likelihood, tol)) << to_string(t);
    EXPECT_TRUE(near_rel(dev.entropy, cpu.entropy, tol, cpu.weight)) << to_string(t);
    EXPECT_EQ(dev.weight, cpu.weight);
    for (Index k = 0; k < 5; ++k) EXPECT_TRUE(near_rel(dev.nk[k], cpu.nk[k], tol, cpu.weight)) << to_string(t);
    for (std::size_t i = 0; i < cpu.worst.rows.size(); ++i) EXPECT_EQ(dev.worst.rows[i].second, cpu.worst.rows[i].second);
    detail::MStepContext ctx;
    ctx.reg_covar = 1e-6;
    ctx.data_variance = detail::feature_variances(MatrixView<T>(x), 0);
    const GmmModel a = detail::m_step(cpu, ctx, {}, {}), b = detail::m_step(dev, ctx, {}, {});
    EXPECT_LT((a.means - b.means).cwiseAbs().maxCoeff(), 50 * tol * a.means.cwiseAbs().maxCoeff()) << to_string(t);
    EXPECT_TRUE(near_rel(detail::elbo_from_stats(dev, b), detail::elbo_from_stats(cpu, a), tol)) << to_string(t);
  }
}

// What the issue asks of the device fit: the CPU's ELBO staircase within 1e-5 (float) / 1e-10 (double)
// relative at every iteration of every restart, from the same initialisation (K-means on the device,
// random responsibilities, k-means++), with sample weights, on data far from the origin; then the
// same labels and scores.
TYPED_TEST(CudaGmmDevice, DeviceFitFollowsTheCpuTrace) {
  SKIP_WITHOUT_DEVICE();
  expect_fit_follows_the_cpu(make_cuda_backend(), gmm_blobs<TypeParam>(30000, 8, 5, 100.0), 6, 20);
}

// Scoring on the device against the CPU on the same fitted model: log-densities to 1e-5 / 1e-10
// relative, the same most probable components.
TYPED_TEST(CudaGmmDevice, DeviceScoresMatchTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const double tol = trace_tolerance<T>();
  const auto gpu = make_cuda_backend();
  const RowMatrix<T> x = gmm_blobs<T>(7000, 12, 3, -40.0);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 10;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const RowMatrix<double> a = gm.component_log_density(x), b = gm.component_log_density_on(gpu, MatrixView<T>(x));
    EXPECT_LT((a - b).cwiseAbs().maxCoeff(), tol * a.cwiseAbs().maxCoeff()) << to_string(t);
    EXPECT_EQ(gm.predict_on(gpu, MatrixView<T>(x)), gm.predict(x)) << to_string(t);
  }
}

TYPED_TEST(CudaGmmDevice, TwoRunsGiveTheSameBits) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(20000, 5, 12);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 4;
    p.covariance_type = t;
    p.tol = 0;
    p.max_iter = 15;
    const auto gpu = make_cuda_backend();
    GaussianMixture<T> a(p), b(p), c(p);
    a.fit_on(gpu, MatrixView<T>(x));
    b.fit_on(gpu, MatrixView<T>(x));
    c.fit_on(make_cuda_backend(), MatrixView<T>(x));  // a fresh context
    expect_same_fit(a, b);
    expect_same_fit(a, c);
  }
}

// 50000 x 6 rows do not fit 500 kB: streamed in chunks of whole segments through the staging slots.
TYPED_TEST(CudaGmmDevice, StreamingGivesTheResidentBits) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(50000, 6, 14, 10.0);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(0.5 + (i % 7) * 0.25);
  const auto resident_gpu = make_cuda_backend();
  const auto streamed_gpu = make_cuda_backend(0, 0, 500 * 1000);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 5;
    p.covariance_type = t;
    p.tol = 0;
    p.max_iter = 10;
    GaussianMixture<T> resident(p), streamed(p);
    resident.fit_on(resident_gpu, MatrixView<T>(x), VectorView<T>(w));
    streamed.fit_on(streamed_gpu, MatrixView<T>(x), VectorView<T>(w));
    expect_same_fit(resident, streamed);
    const Eigen::VectorXd sa = resident.score_samples_on(resident_gpu, MatrixView<T>(x));
    const Eigen::VectorXd sb = resident.score_samples_on(streamed_gpu, MatrixView<T>(x));
    for (Index i = 0; i < x.rows(); ++i) ASSERT_TRUE(same_bits(sa[i], sb[i])) << to_string(t) << " row " << i;
  }
}

TYPED_TEST(CudaGmmDevice, ScoresAreRowIndependent) {
  SKIP_WITHOUT_DEVICE();
  expect_scores_row_independent<TypeParam>(make_cuda_backend());
}

}  // namespace
