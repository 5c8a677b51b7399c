// The CUDA Gaussian-mixture passes' arithmetic, checked on the host (no GPU needed): the layouts that
// say which thread computes what, the sorting network and the tree, and the replay backend
// (gmm_replay.hpp: the E-step and the initialisation passes tile by tile with the kernels' own
// functions). GaussianMixture::fit_on(ReplayBackend) is held to the tolerances the device must meet
// against the CPU: ELBO traces within 1e-5 (float) / 1e-10 (double) relative, from the CPU's
// initialisation computed in the device's order. And the fit on data the host cannot read (a
// DeviceMatrixView, and a DeviceVectorView of weights, at PROT_NONE addresses) gives the host-array
// fit's bits: the loop reads X and the weights only through the backend.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmm_replay.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

template <class T>
class GmmDeviceMath : public ::testing::Test {};
TYPED_TEST_SUITE(GmmDeviceMath, Scalars);

// Every output of G_k with a <= b <= D belongs to exactly one (thread block, thread), and the
// per-block staging holds the components the block's threads use.
TEST(GmmDeviceLayout, GramItemsCoverTheUpperTriangleOnce) {
  for (int K : {1, 2, 3, 7, 40}) {
    for (int D : {1, 2, 3, 4, 5, 16, 31, 33, 100}) {
      const cuda::GramLayout g = cuda::gram_layout(K, D, sizeof(float));
      std::vector<int> seen(static_cast<std::size_t>(g.n_items()), 0);
      for (std::int64_t b = 0; b < g.n_blocks(); ++b)
        for (int t = 0; t < cuda::GramLayout::kThreads; ++t) {
          int k, kl, p;
          if (!g.item_of(b, t, &k, &kl, &p)) continue;
          ASSERT_EQ(k, g.first_component(b) + kl);
          ASSERT_LT(kl, g.kb);
          ++seen[static_cast<std::size_t>(k) * g.n_pairs + p];
        }
      for (int s : seen) ASSERT_EQ(s, 1) << "K " << K << " D " << D;
      std::set<std::pair<int, int>> cells;
      for (int p = 0; p < g.n_pairs; ++p) {
        int ba, bb;
        g.pair(p, &ba, &bb);
        ASSERT_LE(ba, bb);
        ASSERT_LT(bb, g.nb);
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j)
            if (4 * ba + i <= 4 * bb + j && 4 * bb + j <= D) cells.insert({4 * ba + i, 4 * bb + j});
      }
      EXPECT_EQ(cells.size(), static_cast<std::size_t>((D + 1) * (D + 2) / 2));
      EXPECT_LE(g.shared_bytes, 32u * 1024u);
      EXPECT_GE(g.row_chunk, 1);
    }
  }
}

TEST(GmmDeviceLayout, PartialSlotsAreDisjointAndGroupsFitTheirBudget) {
  const cuda::GramLayout g = cuda::gram_layout(5, 7, sizeof(double));
  const cuda::GmmPartialLayout full = cuda::partial_layout(cuda::GmmShape::full, 5, 7, g);
  EXPECT_EQ(full.width(), 3 + g.n_items() * 16);
  const cuda::GmmPartialLayout diag = cuda::partial_layout(cuda::GmmShape::diag, 5, 7, g);
  std::set<std::int64_t> slots{cuda::GmmPartialLayout::kLogLikelihood, cuda::GmmPartialLayout::kEntropy,
                               cuda::GmmPartialLayout::kWeight};
  for (int k = 0; k < 5; ++k) {
    slots.insert(diag.nk_at(k));
    for (int j = 0; j < 7; ++j) {
      slots.insert(diag.s1_at(k, j));
      slots.insert(diag.s2_at(k, j));
    }
  }
  EXPECT_EQ(static_cast<std::int64_t>(slots.size()), diag.width());
  EXPECT_EQ(*slots.rbegin(), diag.width() - 1);
  const std::size_t budget = std::size_t{64} << 20;
  const std::int64_t tiles = cuda::group_tiles(64, full.width(), budget);
  EXPECT_LE(static_cast<std::size_t>(tiles * (cuda::kGmmTileRows * 64 + full.width())) * sizeof(double), budget);
  EXPECT_EQ(cuda::group_tiles(1 << 20, 1 << 20, 1), 1);
  EXPECT_EQ(cuda::tile_count(0), 0);
  EXPECT_EQ(cuda::tile_count(cuda::kGmmTileRows + 1), 2);
}

// The normalisation kernel's network sorts (value, row) ascending, ties by row, for the tile size.
TEST(GmmDeviceLayout, BitonicNetworkSortsWithTiesByRow) {
  const int n = static_cast<int>(cuda::kGmmTileRows);
  std::mt19937 gen(3);
  std::uniform_int_distribution<int> value(0, 50);
  std::vector<double> key(n);
  std::vector<std::int64_t> idx(n);
  std::vector<std::pair<double, std::int64_t>> expect;
  for (int t = 0; t < n; ++t) {
    key[t] = t % 7 == 0 ? std::numeric_limits<double>::infinity() : value(gen);
    idx[t] = 5000 + (t * 37) % n;  // a permutation: the network must not rely on the input order
    expect.push_back({key[t], idx[t]});
  }
  std::sort(expect.begin(), expect.end());
  for (int k = 2; k <= n; k *= 2)
    for (int j = k / 2; j > 0; j /= 2)
      for (int t = 0; t < n; ++t) cuda::bitonic_step(key.data(), idx.data(), t, j, k);
  for (int t = 0; t < n; ++t) {
    ASSERT_EQ(key[t], expect[t].first) << t;
    ASSERT_EQ(idx[t], expect[t].second) << t;
  }
}

// One row's log-sum-exp, responsibilities and entropy as the CPU's normalise_block gives them.
TEST(GmmDeviceMathRow, NormaliseRowMatchesTheCpu) {
  const int K = 5;
  RowMatrix<double> lp(3, K);
  lp << -1.0, -2.5, -800.0, -3.0, -1.0,  //
      -1e3, -1e3 - 1e-9, -1e3 + 2, -1e4, -1e3,  //
      0.0, -std::numeric_limits<double>::infinity(), -0.5, -700.5, -1.0;
  RowMatrix<double> cpu = lp;
  Eigen::VectorXd log_p(3), entropy(3);
  detail::normalise_block(cpu, 3, log_p, entropy);
  for (int i = 0; i < 3; ++i) {
    std::vector<double> row(lp.row(i).data(), lp.row(i).data() + K);
    double lg, h;
    cuda::normalise_row(row.data(), 1, K, 2.0, &lg, &h);
    EXPECT_NEAR(lg, log_p[i], 1e-13 * std::abs(log_p[i]));
    EXPECT_NEAR(h, entropy[i], 1e-13);
    for (int k = 0; k < K; ++k) EXPECT_NEAR(row[k], 2.0 * cpu(i, k), 1e-15) << i << " " << k;
  }
}

// What the scoring pass keeps of a row (score_row: log p and the most probable component) as the
// CPU's normalise_block and maxCoeff give them: ties to the first index, log(0) weights, terms below
// exp(-700), one component, a strided row; and the E-step's log p (normalise_row shares the sum).
TEST(GmmDeviceMathRow, ScoreRowIsTheCpusLogSumExpAndArgmax) {
  const double inf = std::numeric_limits<double>::infinity();
  const int K = 5;
  RowMatrix<double> lp(5, K);
  lp << -1.0, -2.5, -800.0, -3.0, -1.0,          // a tie at 0 and 4
      -2.0, -1e3, -1.0, -7.0, -1.0,               // a tie at 2 and 4
      -inf, -0.5, -inf, -0.5, -700.5,             // log(0) first, a tie at 1 and 3
      -1e3, -1e3 - 1e-9, -1e3 + 2, -1e4, -1e3,    // far from 0
      -5.0, -4.0, -3.0, -2.0, -1.0;               // the maximum last
  RowMatrix<double> cpu = lp;
  Eigen::VectorXd log_p(5), entropy(5);
  detail::normalise_block(cpu, 5, log_p, entropy);
  const std::int32_t expect_label[] = {0, 2, 1, 2, 4};
  for (int i = 0; i < 5; ++i) {
    Index best;
    lp.row(i).maxCoeff(&best);
    ASSERT_EQ(best, expect_label[i]) << "the CPU's tie rule";
    std::vector<double> strided(static_cast<std::size_t>(3 * K), std::numeric_limits<double>::quiet_NaN());
    for (int k = 0; k < K; ++k) strided[3 * k] = lp(i, k);
    double lg = 0;
    std::int32_t label = -1;
    cuda::score_row(strided.data(), 3, K, &lg, &label);
    EXPECT_NEAR(lg, log_p[i], 1e-13 * std::abs(log_p[i])) << i;
    EXPECT_EQ(label, expect_label[i]) << i;
    double only = 0;
    cuda::score_row(strided.data(), 3, K, &only, nullptr);  // either output alone
    EXPECT_TRUE(same_bits(only, lg)) << i;
    label = -1;
    cuda::score_row(strided.data(), 3, K, nullptr, &label);
    EXPECT_EQ(label, expect_label[i]) << i;
    std::vector<double> row(lp.row(i).data(), lp.row(i).data() + K);
    double e_step_log_p, h;
    cuda::normalise_row(row.data(), 1, K, 1.0, &e_step_log_p, &h);
    EXPECT_TRUE(same_bits(e_step_log_p, lg)) << i;
  }
  const double one = -3.25;  // K = 1: log p is the value itself
  double lg = 0;
  std::int32_t label = -1;
  cuda::score_row(&one, 1, 1, &lg, &label);
  EXPECT_EQ(lg, one);
  EXPECT_EQ(label, 0);
}

// The full log-density in T through the padded factors against a brute-force one in double.
TYPED_TEST(GmmDeviceMath, FullLogDensityMatchesBruteForce) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(600, 5, 11, 30.0);
  GmmParams p;
  p.n_components = 3;
  p.max_iter = 5;
  for (CovarianceType t : kTypes) {
    p.covariance_type = t;
    GaussianMixture<double> gm(p);
    gm.fit(RowMatrix<double>(x.template cast<double>()));
    const auto pm = detail::GmmPassModelData::of<T>(gm.model());
    const cuda::GmmPassModel& v = pm.view;
    const int K = 3, D = 5, d4 = cuda::padded4(D);
    std::vector<T> c(D), f(static_cast<std::size_t>(D) * K * d4);
    std::vector<double> off(static_cast<std::size_t>(K) * d4);
    const bool gram = t == CovarianceType::full || t == CovarianceType::tied;
    if (gram) cuda::pack_full_model(v, c.data(), f.data(), off.data());
    const RowMatrix<double> ref = gm.component_log_density(RowMatrix<double>(x.template cast<double>()));
    for (Index i = 0; i < x.rows(); i += 7)
      for (int k = 0; k < K; ++k) {
        const double got = gram ? cuda::full_log_density_reference(x.row(i).data(), c.data(), f.data(), off.data(),
                                                                   v.constant[k], D, K, k)
                                : cuda::diag_log_density(x.row(i).data(), v.means + k * D,
                                                         v.scale + k * (t == CovarianceType::spherical ? 1 : D),
                                                         t == CovarianceType::spherical, D, v.constant[k]);
        const double want = ref(i, k) + std::log(gm.weights()[k]);
        EXPECT_NEAR(got, want, (std::is_same<T, float>::value ? 1e-5 : 1e-12) * std::max(1.0, std::abs(want)))
            << to_string(t) << " row " << i << " k " << k;
      }
  }
}

// The replayed E-step gives the CPU's statistics over the edge shapes of the tilings: the same
// log-likelihood, entropy, weight, N_k and lowest rows, and an M-step on them the same model (the
// moments are taken around another point for full/tied in float: the mixture mean rounded to float).
TYPED_TEST(GmmDeviceMath, ReplayedEStepMatchesTheCpu) {
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
  for (const EdgeShape& shape : kEdgeShapes)
    for (CovarianceType t : kTypes) {
      const EdgeCase<T> c(shape, t);
      const MatrixView<T> X(c.x);
      const VectorView<T> w(c.w);
      const GmmStats cpu = gmm_e_step(CpuBackend{}, X, w, c.model, 3);
      const GmmStats dev = gmm_e_step(ReplayBackend{}, X, w, c.model, 3);
      EXPECT_NEAR(dev.log_likelihood, cpu.log_likelihood, tol * std::abs(cpu.log_likelihood)) << c.name;
      EXPECT_NEAR(dev.entropy, cpu.entropy, tol * std::abs(cpu.weight)) << c.name;
      EXPECT_NEAR(dev.weight, cpu.weight, 1e-12 * cpu.weight) << c.name;
      for (Index k = 0; k < shape.K; ++k) EXPECT_NEAR(dev.nk[k], cpu.nk[k], tol * cpu.weight) << c.name;
      ASSERT_EQ(dev.worst.rows.size(), cpu.worst.rows.size()) << c.name;
      for (std::size_t i = 0; i < cpu.worst.rows.size(); ++i)
        EXPECT_EQ(dev.worst.rows[i].second, cpu.worst.rows[i].second) << c.name;
      detail::MStepContext ctx;
      ctx.reg_covar = 1e-6;
      ctx.data_variance = detail::feature_variances(X, 1);
      const GmmModel a = detail::m_step(cpu, ctx, {}, {}), b = detail::m_step(dev, ctx, {}, {});
      EXPECT_LT((a.means - b.means).cwiseAbs().maxCoeff(), 20 * tol * a.means.cwiseAbs().maxCoeff()) << c.name;
      for (Index k = 0; k < shape.K; ++k)
        EXPECT_LT((a.covariance(k) - b.covariance(k)).cwiseAbs().maxCoeff(), 50 * tol * a.covariance(k).norm()) << c.name;
      EXPECT_NEAR(detail::elbo_from_stats(dev, b), detail::elbo_from_stats(cpu, a),
                  tol * std::abs(cpu.log_likelihood / cpu.weight)) << c.name;
    }
}

// The random responsibilities of the initialisation pass are the CPU's: the same counter-based draws
// (the generator is the one the kernels call), normalised to the same values up to the order of the
// sum; labels give one-hot rows, unit responsibilities the weight itself.
TEST(GmmDeviceMathRow, InitialResponsibilitiesAreTheCpus) {
  const int K = 7;
  const CounterRng rng(12345, 3);
  cuda::GmmRespSource src;
  src.kind = cuda::GmmRespSource::Kind::random;
  src.seed = rng.seed();
  src.stream = rng.stream();
  std::vector<double> r(static_cast<std::size_t>(2 * K));
  for (std::int64_t row : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999}, std::int64_t{1} << 33}) {
    cuda::init_resp_row(src, 0, row, K, 2.5, r.data(), 2);  // stride 2: the [k][row] layout of a group
    Eigen::VectorXd u(K);
    for (int k = 0; k < K; ++k) u[k] = rng.uniform_at(static_cast<std::uint64_t>(row * K + k));
    u /= u.sum();  // as random_resp_stats on the CPU
    for (int k = 0; k < K; ++k) EXPECT_NEAR(r[2 * k], 2.5 * u[k], 4e-16 * 2.5) << "row " << row << " k " << k;
  }
  src.kind = cuda::GmmRespSource::Kind::labels;
  cuda::init_resp_row(src, 3, 5, K, 0.5, r.data(), 1);
  for (int k = 0; k < K; ++k) EXPECT_EQ(r[k], k == 3 ? 0.5 : 0.0);
  src.kind = cuda::GmmRespSource::Kind::ones;
  cuda::init_resp_row(src, 0, 5, 1, 0.75, r.data(), 1);
  EXPECT_EQ(r[0], 0.75);
}

// An initialisation pass's statistics (dev: the device's, replayed) against the CPU's: the same
// weight, no log-likelihood or entropy, N_k within tol of the weight, and through the M-step the same
// model.
void expect_initial_stats_close(const GmmStats& cpu, const GmmStats& dev, const detail::MStepContext& ctx, double tol,
                                const std::string& at) {
  const Index K = cpu.n_components;
  EXPECT_NEAR(dev.weight, cpu.weight, 1e-13 * cpu.weight) << at;
  EXPECT_EQ(dev.log_likelihood, 0.0);
  EXPECT_EQ(dev.entropy, 0.0);
  for (Index k = 0; k < K; ++k) EXPECT_NEAR(dev.nk[k], cpu.nk[k], tol * cpu.weight) << at << " k " << k;
  const GmmModel a = detail::m_step(cpu, ctx, {}, {}), b = detail::m_step(dev, ctx, {}, {});
  EXPECT_LT((a.means - b.means).cwiseAbs().maxCoeff(), 20 * tol * a.means.cwiseAbs().maxCoeff()) << at;
  for (Index k = 0; k < K; ++k)
    EXPECT_LT((a.covariance(k) - b.covariance(k)).cwiseAbs().maxCoeff(), 50 * tol * a.covariance(k).norm())
        << at << " k " << k;
  EXPECT_LT((a.weights - b.weights).cwiseAbs().maxCoeff(), tol) << at;
}

// The initialisation passes in the device's order (replayed) against the CPU's, over the edge shapes
// of the tilings with zero and non-unit weights: the statistics of K-means-like labels (around the
// labels' first rows on the CPU, around their mean rounded to T for full/tied on the device; also with
// a component no label names), of random responsibilities, and the data's feature moments. Compared
// through the M-step: the same model.
TYPED_TEST(GmmDeviceMath, ReplayedInitialStatisticsMatchTheCpu) {
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
  for (const EdgeShape& shape : kEdgeShapes)
    for (CovarianceType t : kTypes) {
      const EdgeCase<T> c(shape, t);
      const MatrixView<T> X(c.x);
      const VectorView<T> w(c.w);
      const Index K = shape.K, D = shape.d;
      const detail::FeatureMoments fc = gmm_feature_moments(CpuBackend{}, X);
      const detail::FeatureMoments fr = gmm_feature_moments(ReplayBackend{}, X);
      for (Index j = 0; j < D; ++j) {
        EXPECT_NEAR(fr.mean[j], fc.mean[j], 1e-12 * (1 + std::abs(fc.mean[j]))) << c.name;
        EXPECT_NEAR(fr.variance[j], fc.variance[j], 1e-12 * fc.variance[j]) << c.name;
      }
      detail::MStepContext ctx;
      ctx.reg_covar = 1e-6;
      ctx.data_variance = fc.variance;
      std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows));
      for (Index i = 0; i < X.rows; ++i) labels[i] = static_cast<std::int32_t>((i / 7 + (c.x(i, 0) > 20)) % K);
      RowMatrix<double> first(K, D);
      for (Index k = 0; k < K; ++k) first.row(k) = c.x.row(std::find(labels.begin(), labels.end(), k) - labels.begin()).template cast<double>();
      const RowMatrix<double> mean = gmm_data_mean(CpuBackend{}, X, fc).replicate(K, 1);
      const CounterRng rng(77, 1);
      // Labels that leave the last component without rows (its shift row 0, as model_from_labels makes
      // it): the M-step must put its mean where the CPU's does, whatever point the device centres on.
      std::vector<std::int32_t> fewer = labels;
      RowMatrix<double> first_fewer = first;
      if (K > 1) {
        for (auto& l : fewer) l = l == K - 1 ? 0 : l;
        first_fewer.row(K - 1).setZero();
      }
      const std::pair<GmmStats, GmmStats> cases[] = {
          {gmm_label_stats(CpuBackend{}, X, w, labels.data(), t, first),
           gmm_label_stats(ReplayBackend{}, X, w, labels.data(), t, first)},
          {gmm_label_stats(CpuBackend{}, X, w, fewer.data(), t, first_fewer),
           gmm_label_stats(ReplayBackend{}, X, w, fewer.data(), t, first_fewer)},
          {random_resp_stats(CpuBackend{}, X, w, t, K, rng, mean), random_resp_stats(ReplayBackend{}, X, w, t, K, rng, mean)}};
      for (const auto& pr : cases) expect_initial_stats_close(pr.first, pr.second, ctx, tol, c.name);
    }
}

// The statistics of hard labels on the label kernels' replay (each tile's rows sorted by label, a
// component's moments from its own rows only) are, bit for bit, those of the one-hot route the device
// took before (init_resp_row's one-hot rows through the moments kernels: the rows of other components
// add exact zeros there), and the CPU's statistics of the same labels within the initialisation
// tolerance, through the M-step. The edge shapes of the tilings and kLabelShapes (K = 1, D = 1,
// components over several thread blocks; row counts never a multiple of the tile), weights with zeros
// and none, labels with empty components and with all rows in one.
TYPED_TEST(GmmDeviceMath, ReplayedLabelStatisticsAreTheOneHotBitsAndTheCpus) {
  using T = TypeParam;
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
  std::vector<EdgeShape> shapes(std::begin(kEdgeShapes), std::end(kEdgeShapes));
  shapes.insert(shapes.end(), std::begin(kLabelShapes), std::end(kLabelShapes));
  for (const EdgeShape& shape : shapes) {
    const LabelData<T> data(shape);
    const MatrixView<T> X(data.x);
    detail::MStepContext ctx;
    ctx.reg_covar = 1e-6;
    ctx.data_variance = gmm_feature_moments(CpuBackend{}, X).variance;
    for (CovarianceType t : kTypes)
      for (const LabelCase& lc : label_cases(data.x, shape.K))
        for (const bool weighted : {true, false}) {
          const VectorView<T> w = weighted ? VectorView<T>(data.w) : VectorView<T>{};
          const std::string at = data.name + " " + to_string(t) + " " + lc.name + (weighted ? " weighted" : "");
          const cuda::GmmPassStats a = replay_label_pass(X, w, t, lc, false), b = replay_label_pass(X, w, t, lc, true);
          expect_same_pass_bits(a, b, at);
          expect_initial_stats_close(gmm_label_stats(CpuBackend{}, X, w, lc.labels.data(), t, lc.shift),
                                     gmm_label_stats(ReplayBackend{}, X, w, lc.labels.data(), t, lc.shift), ctx, tol,
                                     at);
        }
  }
}

// What the device fit is held to, on the replayed kernels: the same ELBO staircase as the CPU within
// 1e-5 (float) / 1e-10 (double) relative, iteration by iteration, the same labels, close scores.
// Offset data (far from the origin) and sample weights; every covariance type.
TYPED_TEST(GmmDeviceMath, ReplayedFitFollowsTheCpuTrace) {
  expect_fit_follows_the_cpu(ReplayBackend{}, gmm_blobs<TypeParam>(3000, 3, 5, 100.0), 4, 25);
}

TYPED_TEST(GmmDeviceMath, ReplayedScoresAreRowIndependent) { expect_scores_row_independent<TypeParam>(ReplayBackend{}); }

// The scoring pass (each row reduced to log p and its most probable component on the device; only
// those come back) on the replayed kernels: against the host reduction of the very log-densities the
// N x K path brings back (normalise_block, maxCoeff) to 1e-14 relative (another exp and log, another
// order of the sum) with the same labels; and against the CPU's scores and criteria to the device's
// tolerance (10 x 1e-5 / 1e-10), with the same labels and ties to the first component.
TYPED_TEST(GmmDeviceMath, ReplayedScorePassIsTheLogSumExpOfTheKernelsDensities) {
  using T = TypeParam;
  const ReplayBackend be;
  for (const EdgeShape& shape : kEdgeShapes)
    for (CovarianceType t : kTypes) {
      const EdgeCase<T> c(shape, t);
      const MatrixView<T> X(c.x);
      GaussianMixture<T> gm;
      gm.set_model(c.model);
      Eigen::VectorXd host_log_p(X.rows);
      std::vector<std::int32_t> host_labels(static_cast<std::size_t>(X.rows));
      gmm_weighted_log_prob(be, X, c.model, [&](Index begin, Index rows, auto& s) {
        for (Index r = 0; r < rows; ++r) {
          Index best;
          s.lp.row(r).maxCoeff(&best);
          host_labels[static_cast<std::size_t>(begin + r)] = static_cast<std::int32_t>(best);
        }
        detail::normalise_block(s.lp, s.lp.rows(), s.log_p, s.entropy);
        host_log_p.segment(begin, rows) = s.log_p.head(rows);
      });
      const Eigen::VectorXd log_p = gm.score_samples_on(be, X);
      for (Index i = 0; i < X.rows; ++i)
        ASSERT_NEAR(log_p[i], host_log_p[i], 1e-14 * std::max(1.0, std::abs(host_log_p[i]))) << c.name << " row " << i;
      EXPECT_EQ(gm.predict_on(be, X), host_labels) << c.name;
    }
  expect_scoring_matches<T>(be, CpuBackend{}, 10 * trace_tolerance<T>());
}

// bic_on / aic_on: on the CPU backend, bic() and aic() (which delegate to them) and their definition;
// on the replayed passes from data the host cannot read, the host view's bits and the CPU's values
// within the device's tolerance; before a fit, the not-fitted error naming the criterion.
TYPED_TEST(GmmDeviceMath, InformationCriteriaOnEveryBackend) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(2500, 3, 41, 15.0);
  const MatrixView<T> host(x);
  const ReplayBackend be;
  const HostUnreadableCopy<T> dev(be.device, host);
  const GaussianMixture<T> unfitted;
  try {
    unfitted.bic_on(be, dev.view());
    ADD_FAILURE() << "bic_on before a fit";
  } catch (const NotFittedError& e) {
    EXPECT_NE(std::string(e.what()).find("GaussianMixture::bic:"), std::string::npos) << e.what();
  }
  try {
    unfitted.aic_on(CpuBackend{}, host);
    ADD_FAILURE() << "aic_on before a fit";
  } catch (const NotFittedError& e) {
    EXPECT_NE(std::string(e.what()).find("GaussianMixture::aic:"), std::string::npos) << e.what();
  }
  const double n = static_cast<double>(x.rows());
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    GaussianMixture<T> gm(p);
    gm.fit(x);
    const double bic = gm.bic(x), aic = gm.aic(x), k = gm.model().n_parameters();
    EXPECT_TRUE(same_bits(gm.bic_on(CpuBackend{}, host), bic)) << to_string(t);
    EXPECT_TRUE(same_bits(gm.aic_on(CpuBackend{}, host), aic)) << to_string(t);
    EXPECT_NEAR(bic, -2 * gm.score(x) * n + k * std::log(n), 1e-12 * std::abs(bic)) << to_string(t);
    EXPECT_NEAR(aic, -2 * gm.score(x) * n + 2 * k, 1e-12 * std::abs(aic)) << to_string(t);
    const double dev_bic = gm.bic_on(be, dev.view()), dev_aic = gm.aic_on(be, dev.view());
    EXPECT_TRUE(same_bits(dev_bic, gm.bic_on(be, host))) << to_string(t);
    EXPECT_TRUE(same_bits(dev_aic, gm.aic_on(be, host))) << to_string(t);
    EXPECT_NEAR(dev_bic, bic, 10 * trace_tolerance<T>() * std::abs(bic)) << to_string(t);
    EXPECT_NEAR(dev_aic, aic, 10 * trace_tolerance<T>() * std::abs(aic)) << to_string(t);
  }
}

/// x copied into rows `stride` values apart (the padding NaN: a pass that read it would show).
template <class T>
std::vector<T> strided_copy(const RowMatrix<T>& x, Index stride) {
  std::vector<T> v(static_cast<std::size_t>(x.rows() * stride), std::numeric_limits<T>::quiet_NaN());
  for (Index i = 0; i < x.rows(); ++i) std::copy_n(x.row(i).data(), x.cols(), v.data() + i * stride);
  return v;
}

TYPED_TEST(GmmDeviceMath, FitOnDataTheHostCannotReadIsTheHostArrayFit) {
  using T = TypeParam;
  // The whole fit loop on a DeviceMatrixView whose address the host cannot read (PROT_NONE): only the
  // backend's passes, fetch_rows and first_non_finite reach the values, by translating the address.
  // Any host read of X left in the loop (input check, feature moments, the statistics of K-means
  // labels or random responsibilities, the rows of k-means++ and random_from_data, re-seeded
  // components, scoring) faults. Results must be the host-array fit's, bit for bit, on the same passes.
  const RowMatrix<T> x = gmm_blobs<T>(4000, 4, 31, 30.0);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.25 + (i % 3));
  const std::vector<T> padded = strided_copy(x, 7);
  const MatrixView<T> host(x), host_strided(padded.data(), x.rows(), x.cols(), 7);
  const ReplayBackend be;
  const HostUnreadableCopy<T> dev(be.device, host), dev_strided(be.device, host_strided);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(x.rows()));
  for (Index i = 0; i < x.rows(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);

  struct Case {
    const char* name;
    CovarianceType type;
    GmmInit init;
    bool weighted, strided, given_labels, far_mean;
  };
  for (const Case& c : {Case{"kmeans, full, weighted", CovarianceType::full, GmmInit::kmeans, true, false, false, false},
                        Case{"kmeans, diag, strided", CovarianceType::diag, GmmInit::kmeans, false, true, false, false},
                        Case{"random, tied, weighted", CovarianceType::tied, GmmInit::random, true, false, false, false},
                        Case{"random, spherical, strided", CovarianceType::spherical, GmmInit::random, true, true,
                             false, false},
                        Case{"k-means++, full", CovarianceType::full, GmmInit::kmeans_plusplus, false, false, false,
                             false},
                        Case{"random_from_data, diag, weighted", CovarianceType::diag, GmmInit::random_from_data, true,
                             false, false, false},
                        Case{"initial labels, tied", CovarianceType::tied, GmmInit::kmeans, true, false, true, false},
                        Case{"a far mean, re-seeded, full", CovarianceType::full, GmmInit::kmeans, true, false, false,
                             true}}) {
    SCOPED_TRACE(c.name);
    const GmmParams p = two_restart_params(c.type, c.init, 12);
    const VectorView<T> wv = c.weighted ? VectorView<T>(w) : VectorView<T>{};
    GaussianMixture<T> on_device(p), on_host(p);
    for (GaussianMixture<T>* gm : {&on_device, &on_host}) {
      if (c.given_labels) gm->set_initial_labels(labels);
      if (c.far_mean) gm->set_initial_params(far_mean_start(4, 30.0));
    }
    const int reads = be.device.state->n_device_reads;
    on_device.fit_on(be, c.strided ? dev_strided.view() : dev.view(), wv);
    on_host.fit_on(be, c.strided ? host_strided : host, wv);
    expect_same_fit(on_device, on_host);
    EXPECT_GT(be.device.state->n_device_reads, reads) << "the loop asked the backend for X's values";
    if (c.far_mean) {
      EXPECT_TRUE(reseeded_a_component(on_device)) << "the case needs a re-seeded component";
    }

    const DeviceMatrixView<T> dv = c.strided ? dev_strided.view() : dev.view();
    const MatrixView<T> hv = c.strided ? host_strided : host;
    const Eigen::VectorXd sa = on_device.score_samples_on(be, dv), sb = on_host.score_samples_on(be, hv);
    for (Index i = 0; i < x.rows(); ++i) ASSERT_TRUE(same_bits(sa[i], sb[i])) << "row " << i;
    EXPECT_TRUE(same_bits(on_device.score_on(be, dv, wv), on_host.score_on(be, hv, wv)));
    EXPECT_EQ(on_device.predict_on(be, dv), on_host.predict_on(be, hv));
    EXPECT_TRUE(on_device.predict_proba_on(be, dv) == on_host.predict_proba_on(be, hv));
    EXPECT_TRUE(on_device.component_log_density_on(be, dv) == on_host.component_log_density_on(be, hv));
    // And the same on the CPU: scores of device data agree with the CPU's on the host copy.
    const Eigen::VectorXd cpu = on_host.score_samples(x);
    EXPECT_LT((sa - cpu).cwiseAbs().maxCoeff(), 10 * trace_tolerance<T>() * cpu.cwiseAbs().maxCoeff());

    // A warm start continues from the fitted model; it too reads X only through the backend.
    GmmParams warm = p;
    warm.warm_start = true;
    on_device.set_params(warm);
    on_host.set_params(warm);
    on_device.fit_on(be, dv, wv);
    on_host.fit_on(be, hv, wv);
    expect_same_fit(on_device, on_host);
  }
}

TYPED_TEST(GmmDeviceMath, FitOnWeightsTheHostCannotReadIsTheHostArrayFit) {
  using T = TypeParam;
  // X and the sample weights both behind PROT_NONE. The passes (E-step, the statistics of labels and of
  // random responsibilities, the K-means init's passes and draws) read the weights in place, their check
  // is a device pass (first_bad_weight), the total weight and the rows that re-seed a component come
  // from the E-step: any host read of the weights in the loop faults. The one copy the loop makes,
  // through fetch_rows, is for init = random_from_data (once a fit); every other init copies fewer
  // values than there are weights. Results: the host-array fit's bits, and those of device X with host
  // weights, for every init, with restarts, a re-seeded component and a warm start.
  const Index n = 4000, D = 4;
  const RowMatrix<T> x = gmm_blobs<T>(n, D, 37, 30.0);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(n);
  for (Index i = 0; i < n; ++i) w[i] = static_cast<T>(i % 5 == 0 ? 0.0 : 0.25 + (i % 3));
  const MatrixView<T> host(x);
  const VectorView<T> host_w(w);
  const ReplayBackend be;
  const HostUnreadableCopy<T> dev(be.device, host), dev_w(be.device, MatrixView<T>(w.data(), n, 1));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) labels[i] = static_cast<std::int32_t>(i % 3);
  GmmInitialParams complete;  // every parameter given: no initialisation pass
  complete.weights.resize(3);
  complete.weights << 0.2, 0.3, 0.5;
  complete.means = RowMatrix<double>::Constant(3, D, 30.0);
  complete.means.row(1).array() += 4.0;
  complete.means.row(2).array() -= 4.0;
  complete.precisions.assign(3, Eigen::MatrixXd::Identity(D, D));
  const GmmInitialParams far = far_mean_start(D, 30.0);

  struct Case {
    const char* name;
    CovarianceType type;
    GmmInit init;
    const GmmInitialParams* given;
    bool given_labels;
  };
  for (const Case& c : {Case{"kmeans, full", CovarianceType::full, GmmInit::kmeans, nullptr, false},
                        Case{"k-means++, diag", CovarianceType::diag, GmmInit::kmeans_plusplus, nullptr, false},
                        Case{"random, tied", CovarianceType::tied, GmmInit::random, nullptr, false},
                        Case{"random_from_data, spherical", CovarianceType::spherical, GmmInit::random_from_data,
                             nullptr, false},
                        Case{"given parameters, full", CovarianceType::full, GmmInit::kmeans, &complete, false},
                        Case{"given labels, tied", CovarianceType::tied, GmmInit::kmeans, nullptr, true},
                        Case{"a far mean, re-seeded, full", CovarianceType::full, GmmInit::kmeans, &far, false}}) {
    SCOPED_TRACE(c.name);
    const GmmParams p = two_restart_params(c.type, c.init, 12);
    GaussianMixture<T> on_device(p), on_host(p), host_weights(p);
    for (GaussianMixture<T>* gm : {&on_device, &on_host, &host_weights}) {
      if (c.given_labels) gm->set_initial_labels(labels);
      if (c.given) gm->set_initial_params(*c.given);
    }
    const auto& st = *be.device.state;
    const int reads = st.n_device_reads;
    const std::int64_t fetched = st.n_fetched_values;
    on_device.fit_on(be, dev.view(), dev_w.vector());
    const std::int64_t copied = st.n_fetched_values - fetched;
    on_host.fit_on(be, host, host_w);
    host_weights.fit_on(be, dev.view(), host_w);
    expect_same_fit(on_device, on_host);
    expect_same_fit(host_weights, on_host);
    EXPECT_GT(st.n_device_reads, reads + 1) << "the weights were checked by the backend";
    if (c.init == GmmInit::random_from_data) {
      EXPECT_GE(copied, n) << "the draw by weight reads the copied weights";
      EXPECT_LT(copied, 2 * n) << "one copy a fit, not one a restart";
    } else {
      EXPECT_LT(copied, n) << "no copy of the weights";
    }
    if (c.given == &far) {
      EXPECT_TRUE(reseeded_a_component(on_device)) << "the case needs a re-seeded component";
    }
    EXPECT_TRUE(same_bits(on_device.score_on(be, dev.view(), dev_w.vector()), on_host.score_on(be, host, host_w)));

    // A warm start continues from the fitted model, reading the weights in place too.
    GmmParams warm = p;
    warm.warm_start = true;
    on_device.set_params(warm);
    on_host.set_params(warm);
    const std::int64_t before_warm = st.n_fetched_values;
    on_device.fit_on(be, dev.view(), dev_w.vector());
    on_host.fit_on(be, host, host_w);
    expect_same_fit(on_device, on_host);
    EXPECT_LT(st.n_fetched_values - before_warm, n) << "no copy of the weights";
  }
}

TYPED_TEST(GmmDeviceMath, BadWeightsOnTheDeviceGiveTheCpuErrors) {
  using T = TypeParam;
  // The checks of device weights: the CPU's messages word for word (first bad index, which check, its
  // value; the sum when all are zero; the length; too few rows of positive weight for
  // random_from_data), for fit and score, and a failed fit leaves the model unfitted.
  const ReplayBackend be;
  GmmParams p;
  p.n_components = 2;
  const RowMatrix<T> x = gmm_blobs<T>(50, 3, 4);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(50);
  const HostUnreadableCopy<T> dev(be.device, MatrixView<T>(x)), dev_w(be.device, MatrixView<T>(w.data(), 50, 1));
  GaussianMixture<T> gm(p), ref(p), fitted(p);
  fitted.fit(x);
  expect_bad_weights_give_the_cpu_errors(w, [&] { ref.fit(x, w); }, [&] { gm.fit_on(be, dev.view(), dev_w.vector()); });
  expect_bad_weights_give_the_cpu_errors(w, [&] { fitted.score(x, w); },
                                         [&] { fitted.score_on(be, dev.view(), dev_w.vector()); });
  const Eigen::Matrix<T, Eigen::Dynamic, 1> short_w = w.head(49);
  const std::string size = invalid_argument_message([&] { ref.fit(x, short_w); });
  ASSERT_NE(size.find("sample_weight has 49 entries but X has 50 rows"), std::string::npos) << size;
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(be, dev.view(), DeviceVectorView<T>(dev_w.vector().data, 49)); }),
            size);
  EXPECT_EQ(invalid_argument_message([&] { fitted.score_on(be, dev.view(), DeviceVectorView<T>(dev_w.vector().data, 49)); }),
            invalid_argument_message([&] { fitted.score(x, short_w); }));
  // One row of positive weight: too few for two components drawn from rows.
  w.setZero();
  w[7] = T(2);
  GmmParams from_data = p;
  from_data.init = GmmInit::random_from_data;
  gm.set_params(from_data);
  ref.set_params(from_data);
  const std::string few = invalid_argument_message([&] { ref.fit(x, w); });
  ASSERT_NE(few.find("random_from_data needs n_components (2) rows of positive weight, found 1"), std::string::npos)
      << few;
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(be, dev.view(), dev_w.vector()); }), few);
  EXPECT_FALSE(gm.is_fitted());
  // Not fitted: scoring says so before it looks at the weights.
  EXPECT_THROW(gm.score_on(be, dev.view(), dev_w.vector()), NotFittedError);
  w.setOnes();
  gm.fit_on(be, dev.view(), dev_w.vector());  // good weights: fits
  EXPECT_TRUE(gm.is_fitted());
}

TYPED_TEST(GmmDeviceMath, BadDataOnTheDeviceGivesTheCpuErrors) {
  using T = TypeParam;
  const ReplayBackend be;
  GmmParams p;
  p.n_components = 2;
  RowMatrix<T> x = gmm_blobs<T>(60, 3, 4);
  x(37, 2) = -std::numeric_limits<T>::infinity();
  x(41, 0) = std::numeric_limits<T>::quiet_NaN();
  const HostUnreadableCopy<T> dev(be.device, MatrixView<T>(x));
  GaussianMixture<T> gm(p), ref(p);
  // The very message of the CPU's check: function, condition, first offending row/column and value.
  const std::string cpu = invalid_argument_message([&] { ref.fit(x); });
  ASSERT_NE(cpu.find("GaussianMixture::fit"), std::string::npos) << cpu;
  ASSERT_NE(cpu.find("(-inf) at row 37, column 2"), std::string::npos) << cpu;
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(be, dev.view()); }), cpu);
  EXPECT_FALSE(gm.is_fitted());
  x(37, 2) = 0;
  // NaN, a missing value on the CPU, is refused on a backend without the gaps passes, saying so.
  EXPECT_INVALID(gm.fit_on(be, dev.view()), "GaussianMixture::fit", "non-finite value (nan)", "row 41, column 0",
                 "on the CPU");
  EXPECT_INVALID(gm.fit_on(be, DeviceMatrixView<T>()), "GaussianMixture::fit", "empty");
  EXPECT_INVALID(gm.fit_on(be, DeviceMatrixView<T>(dev.view().data, 60, 3, 2)), "row stride (2) < n_features (3)");
  EXPECT_FALSE(gm.is_fitted());
  // Scoring before a fit: the not-fitted error, before anything reads X.
  EXPECT_THROW(gm.score_samples_on(be, dev.view()), NotFittedError);
  x(41, 0) = 1;
  gm.fit_on(be, dev.view());
  ref.fit(x);
  x(3, 1) = std::numeric_limits<T>::infinity();
  EXPECT_EQ(invalid_argument_message([&] { gm.score_samples_on(be, dev.view()); }),
            invalid_argument_message([&] { ref.score_samples(x); }));
  EXPECT_EQ(invalid_argument_message([&] { gm.predict_on(be, dev.view()); }),
            invalid_argument_message([&] { ref.predict(x); }));
  EXPECT_EQ(invalid_argument_message([&] { gm.predict_proba_on(be, dev.view()); }),
            invalid_argument_message([&] { ref.predict_proba(x); }));
  x(3, 1) = std::numeric_limits<T>::quiet_NaN();
  EXPECT_INVALID(gm.score_samples_on(be, dev.view()), "GaussianMixture::score_samples", "(nan) at row 3, column 1",
                 "on the CPU");
  x(3, 1) = 0;
  const RowMatrix<T> narrow = x.leftCols(2);
  const HostUnreadableCopy<T> dev_narrow(be.device, MatrixView<T>(narrow));
  EXPECT_EQ(invalid_argument_message([&] { gm.score_samples_on(be, dev_narrow.view()); }),
            invalid_argument_message([&] { ref.score_samples(narrow); }));
  const Eigen::Matrix<T, Eigen::Dynamic, 1> short_w = Eigen::Matrix<T, Eigen::Dynamic, 1>::Ones(10);
  EXPECT_EQ(invalid_argument_message([&] { gm.fit_on(be, dev.view(), VectorView<T>(short_w)); }),
            invalid_argument_message([&] { ref.fit(x, VectorView<T>(short_w)); }));
}

}  // namespace
