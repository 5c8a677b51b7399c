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
// - scores of a row that do not depend on the rows scored with it; the scoring pass (log-sum-exp and
//   argmax on the device) against its replay, the CPU, streaming and device data;
// - the initialisation passes (feature moments, statistics of labels and of random responsibilities)
//   against their replay; the statistics of labels bit for bit, resident and streamed;
// - data already on the device (DeviceMatrixView), and sample weights too (DeviceVectorView): the
//   host-array fit's bits, the CPU's errors.
// The others run everywhere (argument errors reach the caller before any device is touched).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_test_util.hpp"
#include "gmm_replay.hpp"
#include "mixtura/cuda.hpp"

// The CUDA backend meets the whole contract (backend/contract.hpp) for each pairing of views it takes.
static_assert(mixtura::detail::satisfies_gmm_contract<mixtura::CudaBackend, float, mixtura::MatrixView<float>,
                                                      mixtura::VectorView<float>>(), "");
static_assert(mixtura::detail::satisfies_gmm_contract<mixtura::CudaBackend, double, mixtura::DeviceMatrixView<double>,
                                                      mixtura::VectorView<double>>(), "");
static_assert(mixtura::detail::satisfies_gmm_contract<mixtura::CudaBackend, float, mixtura::DeviceMatrixView<float>,
                                                      mixtura::DeviceVectorView<float>>(), "");
static_assert(mixtura::detail::satisfies_gmm_scoring_contract<mixtura::CudaBackend, double,
                                                              mixtura::DeviceMatrixView<double>>(), "");

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

// Streams on the device: a chunk's statistics (with its worst rows' values) and an online-EM step
// follow the CPU's within the E-step's tolerance.
TYPED_TEST(CudaGmmDevice, DeviceStatisticsAndOnlineEmFollowTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
  const auto gpu = make_cuda_backend();
  const RowMatrix<T> x = gmm_blobs<T>(6000, 4, 3, 20.0);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.half_life = 2000;
    GaussianMixture<T> cpu(p);
    cpu.fit(MatrixView<T>(x.data(), 3000, x.cols()));
    GaussianMixture<T> dev = cpu;
    const MatrixView<T> chunk(x.data() + 3000 * x.cols(), 3000, x.cols());
    const GmmStats a = cpu.statistics(chunk), b = dev.statistics_on(gpu, chunk);
    EXPECT_TRUE(near_rel(b.log_likelihood, a.log_likelihood, tol)) << to_string(t);
    ASSERT_EQ(b.worst.values.size(), a.worst.values.size());
    for (std::size_t i = 0; i < a.worst.values.size(); ++i) EXPECT_EQ(b.worst.values[i], a.worst.values[i]);
    cpu.partial_fit(chunk);
    dev.partial_fit_on(gpu, chunk);
    EXPECT_LT((cpu.means() - dev.means()).cwiseAbs().maxCoeff(), 50 * tol * cpu.means().cwiseAbs().maxCoeff())
        << to_string(t);
    EXPECT_EQ(dev.stream_state().n_steps, 2);
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

// The scoring pass (log p and the most probable component reduced on the device; N values come back,
// not N x K) against its replay (the same log-densities and the same score_row: only the device's exp
// and log differ) and against the CPU (the device's tolerance), over the edge shapes and twin
// components (exact ties: the first index); streamed data gives the resident bits; device data
// (DeviceMatrixView, strided) gives the host array's bits, bic_on and aic_on included.
TYPED_TEST(CudaGmmDevice, DeviceScorePassMatchesTheReplayAndTheCpu) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const auto gpu = make_cuda_backend();
  expect_scoring_matches<T>(gpu, ReplayBackend{}, 1e-13);
  expect_scoring_matches<T>(gpu, CpuBackend{}, 10 * trace_tolerance<T>());

  const RowMatrix<T> x = gmm_blobs<T>(50000, 6, 19, 10.0);
  const auto streamed = make_cuda_backend(0, 0, 500 * 1000);
  const DeviceCopy<T> dev(x, x.cols() + 2);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 5;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const MatrixView<T> X(x);
    const Eigen::VectorXd a = gm.score_samples_on(gpu, X), b = gm.score_samples_on(streamed, X);
    const Eigen::VectorXd c = gm.score_samples_on(gpu, dev.view());
    for (Index i = 0; i < x.rows(); ++i) {
      ASSERT_TRUE(same_bits(a[i], b[i])) << to_string(t) << " streamed, row " << i;
      ASSERT_TRUE(same_bits(a[i], c[i])) << to_string(t) << " device data, row " << i;
    }
    const std::vector<std::int32_t> labels = gm.predict_on(gpu, X);
    EXPECT_EQ(gm.predict_on(streamed, X), labels) << to_string(t);
    EXPECT_EQ(gm.predict_on(gpu, dev.view()), labels) << to_string(t);
    EXPECT_TRUE(same_bits(gm.bic_on(gpu, dev.view()), gm.bic_on(gpu, X))) << to_string(t);
    EXPECT_TRUE(same_bits(gm.aic_on(gpu, dev.view()), gm.aic_on(streamed, X))) << to_string(t);
    EXPECT_NEAR(gm.bic_on(gpu, dev.view()), gm.bic(x), 10 * trace_tolerance<T>() * std::abs(gm.bic(x))) << to_string(t);
  }
}

// The initialisation passes on the device against their replay (the same functions in the same
// order; the diagonal moments may differ by the device's contraction into fused multiply-adds) over
// the edge shapes of the tilings, with zero and non-unit weights.
TYPED_TEST(CudaGmmDevice, DeviceInitialStatisticsMatchTheReplay) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 1e-6 : 1e-12;
  const auto gpu = make_cuda_backend();
  for (const EdgeShape& shape : kEdgeShapes)
    for (CovarianceType t : kTypes) {
      const EdgeCase<T> c(shape, t);
      const MatrixView<T> X(c.x);
      const VectorView<T> w(c.w);
      const Index K = shape.K, D = shape.d;
      const detail::FeatureMoments fd = gmm_feature_moments(gpu, X), fr = gmm_feature_moments(ReplayBackend{}, X);
      for (Index j = 0; j < D; ++j) {
        EXPECT_TRUE(near_rel(fd.mean[j], fr.mean[j], 1e-13, 1.0)) << c.name;
        EXPECT_TRUE(near_rel(fd.variance[j], fr.variance[j], 1e-13)) << c.name;
      }
      std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows));
      for (Index i = 0; i < X.rows; ++i) labels[i] = static_cast<std::int32_t>((i / 7 + (c.x(i, 0) > 20)) % K);
      RowMatrix<double> first(K, D);
      for (Index k = 0; k < K; ++k)
        first.row(k) = c.x.row(std::find(labels.begin(), labels.end(), k) - labels.begin()).template cast<double>();
      const RowMatrix<double> mean = fr.mean.transpose().replicate(K, 1);
      const CounterRng rng(77, 1);
      const std::pair<GmmStats, GmmStats> cases[] = {
          {gmm_label_stats(gpu, X, w, labels.data(), t, first),
           gmm_label_stats(ReplayBackend{}, X, w, labels.data(), t, first)},
          {random_resp_stats(gpu, X, w, t, K, rng, mean), random_resp_stats(ReplayBackend{}, X, w, t, K, rng, mean)}};
      for (const auto& pr : cases) {
        const GmmStats& dev = pr.first;
        const GmmStats& rep = pr.second;
        EXPECT_EQ(dev.weight, rep.weight) << c.name;
        EXPECT_TRUE(dev.shift == rep.shift) << c.name;
        for (Index k = 0; k < K; ++k) {
          EXPECT_TRUE(near_rel(dev.nk[k], rep.nk[k], tol, rep.weight)) << c.name << " k " << k;
          const double scale = rep.second_moment(k).cwiseAbs().maxCoeff() + rep.s1.row(k).cwiseAbs().maxCoeff();
          EXPECT_LE((dev.s1.row(k) - rep.s1.row(k)).cwiseAbs().maxCoeff(), tol * scale) << c.name << " k " << k;
          EXPECT_LE((dev.second_moment(k) - rep.second_moment(k)).cwiseAbs().maxCoeff(), tol * scale)
              << c.name << " k " << k;
        }
      }
    }
}

// The statistics of hard labels (gram_labels_kernel, diag_labels_kernel) give their replay's bits:
// integer sorting, then products and sums whose fused multiply-adds are written out, no exp or log.
// Over the edge shapes and kLabelShapes, labels with empty components and all rows in one, weights
// with zeros and none; and 50000 rows streamed in chunks of whole segments give the resident bits.
TYPED_TEST(CudaGmmDevice, DeviceLabelStatisticsAreTheBitsOfTheirReplay) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const auto gpu = make_cuda_backend();
  const auto device_pass = [](const CudaBackend& be, MatrixView<T> X, VectorView<T> w, CovarianceType t,
                              const LabelCase& lc) {
    return label_pass<T>(X.rows, t, lc, [&](cuda::GmmShape shape, int K, const cuda::GmmRespSource& src,
                                            const double* center, const double* means) {
      cuda::GmmPassStats ps;
      cuda::gmm_resp_stats(be, detail::host_matrix(X), detail::row_weights(w), shape, K, src, center, means, ps);
      return ps;
    });
  };
  std::vector<EdgeShape> shapes(std::begin(kEdgeShapes), std::end(kEdgeShapes));
  shapes.insert(shapes.end(), std::begin(kLabelShapes), std::end(kLabelShapes));
  for (const EdgeShape& shape : shapes) {
    const LabelData<T> data(shape);
    const MatrixView<T> X(data.x);
    for (CovarianceType t : kTypes)
      for (const LabelCase& lc : label_cases(data.x, shape.K))
        for (const bool weighted : {true, false}) {
          const VectorView<T> w = weighted ? VectorView<T>(data.w) : VectorView<T>{};
          const std::string at = data.name + " " + to_string(t) + " " + lc.name + (weighted ? " weighted" : "");
          expect_same_pass_bits(device_pass(gpu, X, w, t, lc), replay_label_pass(X, w, t, lc, false), at);
        }
  }
  const LabelData<T> big(EdgeShape{50000, 6, 5});
  const auto streamed = make_cuda_backend(0, 0, 500 * 1000);
  for (CovarianceType t : kTypes)
    for (const LabelCase& lc : label_cases(big.x, 5)) {
      const MatrixView<T> X(big.x);
      const VectorView<T> w(big.w);
      const std::string at = std::string(to_string(t)) + " " + lc.name + " streamed";
      expect_same_pass_bits(device_pass(streamed, X, w, t, lc), device_pass(gpu, X, w, t, lc), at);
    }
}

TYPED_TEST(CudaGmmDevice, FitOnDeviceDataIsTheHostArrayFitBitForBit) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // Device data goes through the same passes as the resident upload of the host array (dense rows, the
  // same kernels and order), so every result has the same bits: every init, restarts, weights, a
  // re-seeded component, strided rows (compacted on the device), and a backend whose budget streams
  // the host array (streaming gives the resident bits; device data is never streamed).
  const RowMatrix<T> x = gmm_blobs<T>(30000, 5, 17, 25.0);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 7 == 0 ? 0.0 : 0.5 + (i % 4));
  const DeviceCopy<T> dense(x, x.cols()), strided(x, x.cols() + 3);
  const auto gpu = make_cuda_backend();
  const auto small = make_cuda_backend(0, 0, std::size_t{256} << 10);
  struct Case {
    CovarianceType type;
    GmmInit init;
    bool far_mean;
  };
  for (const auto* be : {&gpu, &small})
    for (const bool use_strided : {false, true}) {
      const DeviceMatrixView<T> dv = use_strided ? strided.view() : dense.view();
      for (const Case& c : {Case{CovarianceType::full, GmmInit::kmeans, false},
                            Case{CovarianceType::tied, GmmInit::random, false},
                            Case{CovarianceType::diag, GmmInit::kmeans_plusplus, false},
                            Case{CovarianceType::spherical, GmmInit::random_from_data, false},
                            Case{CovarianceType::full, GmmInit::kmeans, true}}) {
        SCOPED_TRACE(::testing::Message() << (be == &small ? "small budget, " : "") << (use_strided ? "strided, " : "")
                                          << to_string(c.type) << ", " << to_string(c.init)
                                          << (c.far_mean ? ", re-seeded" : ""));
        GaussianMixture<T> a(two_restart_params(c.type, c.init, 10)), b(two_restart_params(c.type, c.init, 10));
        if (c.far_mean) {
          a.set_initial_params(far_mean_start(5, 25.0));
          b.set_initial_params(far_mean_start(5, 25.0));
        }
        a.fit_on(*be, dv, VectorView<T>(w));
        b.fit_on(gpu, MatrixView<T>(x), VectorView<T>(w));
        expect_same_fit(a, b);
        const Eigen::VectorXd sa = a.score_samples_on(*be, dv), sb = b.score_samples_on(gpu, MatrixView<T>(x));
        for (Index i = 0; i < x.rows(); ++i) ASSERT_TRUE(same_bits(sa[i], sb[i])) << "row " << i;
        EXPECT_EQ(a.predict_on(*be, dv), b.predict_on(gpu, MatrixView<T>(x)));
        EXPECT_TRUE(a.predict_proba_on(*be, dv) == b.predict_proba_on(gpu, MatrixView<T>(x)));
        EXPECT_TRUE(same_bits(a.score_on(*be, dv, VectorView<T>(w)), b.score_on(gpu, MatrixView<T>(x), VectorView<T>(w))));
      }
    }
}

// And what the issue asks of the device fit, on data already on the device: the CPU's ELBO trace
// within 1e-5 (float) / 1e-10 (double) relative, the same labels.
TYPED_TEST(CudaGmmDevice, DeviceDataFitFollowsTheCpuTrace) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(20000, 6, 23, -60.0);
  const DeviceCopy<T> dev(x, x.cols());
  for (CovarianceType t : kTypes)
    for (GmmInit init : {GmmInit::kmeans, GmmInit::random}) {
      GmmParams p;
      p.n_components = 4;
      p.covariance_type = t;
      p.init = init;
      p.tol = 0;
      p.max_iter = 15;
      GaussianMixture<T> cpu(p), gpu(p);
      cpu.fit(x);
      gpu.fit_on(make_cuda_backend(), dev.view());
      const auto& a = cpu.trace();
      const auto& b = gpu.trace();
      ASSERT_EQ(a.size(), b.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(near_rel(b[i].lower_bound, a[i].lower_bound, trace_tolerance<T>())) << to_string(t) << " it " << i;
        EXPECT_TRUE(near_rel(b[i].elbo_after_m, a[i].elbo_after_m, trace_tolerance<T>())) << to_string(t) << " it " << i;
      }
      EXPECT_EQ(gpu.predict_on(make_cuda_backend(), dev.view()), cpu.predict(x)) << to_string(t);
    }
}

TYPED_TEST(CudaGmmDevice, BadDeviceDataGivesTheCpuErrors) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  RowMatrix<T> x = gmm_blobs<T>(5000, 3, 4);
  DeviceCopy<T> dev(x, 5);
  const auto gpu = make_cuda_backend();
  GmmParams p;
  p.n_components = 2;
  GaussianMixture<T> gm(p), ref(p);
  x(4100, 2) = -std::numeric_limits<T>::infinity();
  x(4321, 0) = std::numeric_limits<T>::quiet_NaN();
  dev.set(4100, 2, x(4100, 2));
  dev.set(4321, 0, x(4321, 0));
  const std::string cpu = invalid_argument_message([&] { ref.fit(x); });
  ASSERT_NE(cpu.find("(-inf) at row 4100, column 2"), std::string::npos) << cpu;
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(gpu, dev.view()); }), cpu);
  x(4100, 2) = 0;
  dev.set(4100, 2, 0);
  // NaN, a missing value on the CPU, is refused on the CUDA backend, saying so.
  EXPECT_INVALID(gm.fit_on(gpu, dev.view()), "GaussianMixture::fit", "non-finite value (nan) at row 4321, column 0",
                 "on the CPU");
  EXPECT_FALSE(gm.is_fitted());
  x(4321, 0) = 0;
  dev.set(4321, 0, 0);
  gm.fit_on(gpu, dev.view());
  ref.fit(x);
  x(17, 1) = std::numeric_limits<T>::infinity();
  dev.set(17, 1, x(17, 1));
  EXPECT_EQ(invalid_argument_message([&] { gm.score_samples_on(gpu, dev.view()); }),
            invalid_argument_message([&] { ref.score_samples(x); }));
  dev.set(17, 1, std::numeric_limits<T>::quiet_NaN());
  EXPECT_INVALID(gm.score_samples_on(gpu, dev.view()), "(nan) at row 17, column 1", "on the CPU");
  // Host memory passed as device data is refused, not read.
  EXPECT_INVALID(gm.fit_on(gpu, DeviceMatrixView<T>(x.data(), x.rows(), x.cols())), "is not device memory");
  EXPECT_INVALID(gm.predict_on(gpu, DeviceMatrixView<T>(x.data(), x.rows(), x.cols())), "is not device memory");
}

TYPED_TEST(CudaGmmDevice, FitOnDeviceWeightsIsTheHostWeightsFitBitForBit) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  // Device weights are read in place by the kernels that read the uploaded host weights (the E-step,
  // the initialisation statistics, the K-means init): the same bits for every init, restarts, a
  // re-seeded component, a warm start, and a backend whose budget would stream the host array; score too.
  const RowMatrix<T> x = gmm_blobs<T>(30000, 5, 19, 25.0);
  RowMatrix<T> w(x.rows(), 1);
  for (Index i = 0; i < x.rows(); ++i) w(i, 0) = static_cast<T>(i % 7 == 0 ? 0.0 : 0.5 + (i % 4));
  const Eigen::Matrix<T, Eigen::Dynamic, 1> wv = w.col(0);
  const DeviceCopy<T> dx(x, x.cols()), dw(w, 1);
  const DeviceVectorView<T> dev_w(dw.view().data, x.rows());
  const auto gpu = make_cuda_backend();
  const auto small = make_cuda_backend(0, 0, std::size_t{256} << 10);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(x.rows()));
  for (Index i = 0; i < x.rows(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
  struct Case {
    CovarianceType type;
    GmmInit init;
    bool far_mean, given_labels;
  };
  for (const auto* be : {&gpu, &small})
    for (const Case& c : {Case{CovarianceType::full, GmmInit::kmeans, false, false},
                          Case{CovarianceType::tied, GmmInit::random, false, false},
                          Case{CovarianceType::diag, GmmInit::kmeans_plusplus, false, false},
                          Case{CovarianceType::spherical, GmmInit::random_from_data, false, false},
                          Case{CovarianceType::tied, GmmInit::kmeans, false, true},
                          Case{CovarianceType::full, GmmInit::kmeans, true, false}}) {
      SCOPED_TRACE(::testing::Message() << (be == &small ? "small budget, " : "") << to_string(c.type) << ", "
                                        << to_string(c.init) << (c.far_mean ? ", re-seeded" : "")
                                        << (c.given_labels ? ", given labels" : ""));
      const GmmParams p = two_restart_params(c.type, c.init, 10);
      GaussianMixture<T> a(p), b(p);
      for (GaussianMixture<T>* gm : {&a, &b}) {
        if (c.given_labels) gm->set_initial_labels(labels);
        if (c.far_mean) gm->set_initial_params(far_mean_start(5, 25.0));
      }
      a.fit_on(*be, dx.view(), dev_w);
      b.fit_on(gpu, MatrixView<T>(x), VectorView<T>(wv));
      expect_same_fit(a, b);
      if (c.far_mean) {
        EXPECT_TRUE(reseeded_a_component(a)) << "the case needs a re-seeded component";
      }
      EXPECT_TRUE(same_bits(a.score_on(*be, dx.view(), dev_w), b.score_on(gpu, MatrixView<T>(x), VectorView<T>(wv))));
      GmmParams warm = p;
      warm.warm_start = true;
      a.set_params(warm);
      b.set_params(warm);
      a.fit_on(*be, dx.view(), dev_w);
      b.fit_on(gpu, MatrixView<T>(x), VectorView<T>(wv));
      expect_same_fit(a, b);
    }
}

TYPED_TEST(CudaGmmDevice, BadDeviceWeightsGiveTheCpuErrors) {
  SKIP_WITHOUT_DEVICE();
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(20000, 3, 4);
  RowMatrix<T> w = RowMatrix<T>::Ones(x.rows(), 1);
  const DeviceCopy<T> dx(x, 3);
  DeviceCopy<T> dw(w, 1);
  const DeviceVectorView<T> dev_w(dw.view().data, x.rows());
  const auto gpu = make_cuda_backend();
  GmmParams p;
  p.n_components = 2;
  GaussianMixture<T> gm(p), ref(p), fitted(p);
  fitted.fit(x);
  // Two bad weights in different segments: the lower index is reported, as on the CPU.
  w(17000, 0) = std::numeric_limits<T>::quiet_NaN();
  w(9000, 0) = T(-2);
  dw.set(17000, 0, w(17000, 0));
  dw.set(9000, 0, w(9000, 0));
  Eigen::Matrix<T, Eigen::Dynamic, 1> wv = w.col(0);
  const std::string cpu = invalid_argument_message([&] { ref.fit(x, wv); });
  ASSERT_NE(cpu.find("sample_weight[9000] = -2 is negative"), std::string::npos) << cpu;
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(gpu, dx.view(), dev_w); }), cpu);
  EXPECT_EQ(invalid_argument_message([&] { fitted.score_on(gpu, dx.view(), dev_w); }),
            invalid_argument_message([&] { fitted.score(x, wv); }));
  // All zero: the CPU's "sums to 0".
  const RowMatrix<T> zeros = RowMatrix<T>::Zero(x.rows(), 1);
  const DeviceCopy<T> dz(zeros, 1);
  wv.setZero();
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(gpu, dx.view(), DeviceVectorView<T>(dz.view().data, x.rows())); }),
            invalid_argument_message([&] { ref.fit(x, wv); }));
  EXPECT_FALSE(gm.is_fitted());
  // Host memory passed as device weights is refused, not read.
  const Eigen::Matrix<T, Eigen::Dynamic, 1> ones = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(x.rows());
  EXPECT_INVALID(gm.fit_on(gpu, dx.view(), DeviceVectorView<T>(ones.data(), x.rows())), "sample_weight",
                 "is not device memory");
  EXPECT_INVALID(fitted.score_on(gpu, dx.view(), DeviceVectorView<T>(ones.data(), x.rows())), "sample_weight",
                 "is not device memory");
}

}  // namespace
