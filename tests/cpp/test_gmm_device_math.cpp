// The CUDA Gaussian-mixture passes' arithmetic, checked on the host (no GPU needed): the layouts that
// say which thread computes what, the sorting network and the tree, and the replay backend
// (gmm_replay.hpp: the E-step tile by tile with the kernels' own functions). GaussianMixture::
// fit_on(ReplayBackend) is held to the tolerances the device must meet against the CPU: ELBO traces
// within 1e-5 (float) / 1e-10 (double) relative.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
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

// What the device fit is held to, on the replayed kernels: the same ELBO staircase as the CPU within
// 1e-5 (float) / 1e-10 (double) relative, iteration by iteration, the same labels, close scores.
// Offset data (far from the origin) and sample weights; every covariance type.
TYPED_TEST(GmmDeviceMath, ReplayedFitFollowsTheCpuTrace) {
  expect_fit_follows_the_cpu(ReplayBackend{}, gmm_blobs<TypeParam>(3000, 3, 5, 100.0), 4, 25);
}

TYPED_TEST(GmmDeviceMath, ReplayedScoresAreRowIndependent) { expect_scores_row_independent<TypeParam>(ReplayBackend{}); }

}  // namespace
