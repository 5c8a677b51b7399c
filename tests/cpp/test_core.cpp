// Core pieces: the counter-based generator, the deterministic fold, error formatting, views.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "mixtura/core.hpp"

using namespace mixtura;

// Philox4x32-10 known-answer vectors from Random123's kat_vectors (counter, key) -> output.
TEST(CounterRng, PhiloxKnownAnswers) {
  auto a = detail::philox4x32_10({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(a[0], 0x6627e8d5u);
  EXPECT_EQ(a[1], 0xe169c58du);
  EXPECT_EQ(a[2], 0xbc57ac4cu);
  EXPECT_EQ(a[3], 0x9b00dbd8u);
  auto b = detail::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(b[0], 0x408f276du);
  EXPECT_EQ(b[1], 0x41c83b0eu);
  EXPECT_EQ(b[2], 0xa20bc7c6u);
  EXPECT_EQ(b[3], 0x6d5451fdu);
}

TEST(CounterRng, PureFunctionOfSeedStreamCounter) {
  CounterRng a(42, 3), b(42, 3), c(43, 3), d(42, 4);
  for (std::uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(a.bits_at(i), b.bits_at(i));
    EXPECT_NE(a.bits_at(i), c.bits_at(i));
    EXPECT_NE(a.bits_at(i), d.bits_at(i));
  }
  // The sequential walk reads the same numbers as the addressed ones.
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_EQ(a.next_uniform(), b.uniform_at(i));
}

TEST(CounterRng, UniformsInRangeWithSaneMoments) {
  CounterRng rng(7);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform_at(i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    const double v = rng.uniform_open_at(i);
    ASSERT_GT(v, 0.0);
    ASSERT_LE(v, 1.0);
    sum += u;
    sum2 += u * u;
  }
  // mean 1/2 and variance 1/12, within ~6 standard errors.
  EXPECT_NEAR(sum / n, 0.5, 6 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.003);
}

TEST(BlockPlan, GroupsCoverBlocksIndependentlyOfThreads) {
  for (Index n : {0, 1, 255, 256, 257, 100000}) {
    detail::BlockPlan plan(n, 256);
    EXPECT_EQ(plan.n_blocks, (n + 255) / 256);
    EXPECT_LE(plan.n_groups, detail::kMaxGroups);
    EXPECT_EQ(plan.group_first(0), 0);
    EXPECT_EQ(plan.group_first(plan.n_groups), plan.n_blocks);
    for (Index g = 0; g < plan.n_groups; ++g) EXPECT_LT(plan.group_first(g), plan.group_first(g + 1));
  }
}

// A sum of values of wildly different magnitudes is order-sensitive in floating point; the fold
// must give the same bits for every thread count.
TEST(FoldRows, BitIdenticalAcrossThreadCounts) {
  const Index n = 1000003;
  std::vector<double> v(n);
  for (Index i = 0; i < n; ++i) v[i] = std::ldexp(1.0 + (i % 7) * 0.1, static_cast<int>(i % 60) - 30);
  auto run = [&](int threads) {
    return detail::fold_rows(
               n, 1000, threads, [] { return detail::SumStat{}; }, [] { return detail::NoScratch{}; },
               [&](detail::SumStat& s, detail::NoScratch&, Index b, Index e) {
                 for (Index i = b; i < e; ++i) s.value += v[i];
               })
        .value;
  };
  const double one = run(1);
  for (int t : {2, 3, 4, 8}) EXPECT_EQ(one, run(t)) << t << " threads";
  EXPECT_NEAR(one, std::accumulate(v.begin(), v.end(), 0.0), 1e-9 * std::abs(one));
}

TEST(FoldRows, ExceptionInsideParallelRegionIsRethrown) {
  auto fold = [] {
    return detail::fold_rows(
        10000, 100, 2, [] { return detail::SumStat{}; }, [] { return detail::NoScratch{}; },
        [](detail::SumStat&, detail::NoScratch&, Index b, Index) {
          if (b == 5000) throw std::runtime_error("boom at 5000");
        });
  };
  EXPECT_THROW(fold(), std::runtime_error);
}

TEST(Errors, ExpectsFormatsTheMessage) {
  try {
    MIXTURA_EXPECTS(1 > 2, "f: n_samples (%lld) < n_clusters (%d)", 3LL, 5);
    FAIL() << "no throw";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "f: n_samples (3) < n_clusters (5)");
    const std::invalid_argument& base = e;  // catchable as the standard type
    (void)base;
  }
}

TEST(Validate, FindsTheFirstNonFiniteValue) {
  std::vector<float> x(4000 * 3, 1.0f);
  x[2500 * 3 + 2] = NAN;
  x[3999 * 3 + 0] = INFINITY;
  MatrixView<float> v(x.data(), 4000, 3);
  for (int t : {1, 2}) {
    const auto bad = detail::find_non_finite(v, t);
    EXPECT_EQ(bad.row, 2500);
    EXPECT_EQ(bad.col, 2);
  }
}

TEST(MatrixView, StridedRowsAndSlices) {
  std::vector<double> buf = {1, 2, 99, 3, 4, 99, 5, 6, 99};
  MatrixView<double> v(buf.data(), 3, 2, 3);
  EXPECT_EQ(v.row(2)[1], 6);
  EXPECT_EQ(v.slice(1, 3).row(0)[0], 3);
  EXPECT_EQ(v.map()(2, 0), 5);
}

// The level a program was compiled for is one its CPU supports (else it could not run), the CPU's
// levels are a prefix of isa_levels() (each level implies the ones below it), and the other fields
// say what the build is.
TEST(BuildInfo, ReportsTheCompiledLevelAmongTheCpusLevels) {
  const BuildInfo b = build_info();
  const auto& all = isa_levels();
  ASSERT_FALSE(b.cpu_levels.empty());
  ASSERT_LE(b.cpu_levels.size(), all.size());
  for (std::size_t i = 0; i < b.cpu_levels.size(); ++i) EXPECT_EQ(b.cpu_levels[i], all[i]);
  EXPECT_NE(std::find(b.cpu_levels.begin(), b.cpu_levels.end(), b.isa), b.cpu_levels.end()) << b.isa;
  EXPECT_EQ(b.isa_compiled, std::vector<std::string>{b.isa});  // header-only: this unit's own level
  const char* cap = std::getenv("MIXTURA_ISA");
  EXPECT_EQ(b.isa_cap, cap ? cap : "");
  EXPECT_EQ(b.version, std::string(MIXTURA_VERSION_STRING));
  EXPECT_FALSE(b.compiler.empty());
  EXPECT_EQ(b.openmp, built_with_openmp());
  EXPECT_GE(b.max_threads, 1);
}

// Values whose squares overflow double are refused with the value and its place (check_data, behind
// every entry point), not passed on to become inf and NaN; the limit itself is accepted.
TEST(CheckData, RefusesValuesBeyondTheDataLimitWithTheirPlace) {
  const auto message = [](const RowMatrix<double>& x) -> std::string {
    try {
      detail::check_data("GaussianMixture::fit", MatrixView<double>(x), 1);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "";
  };
  RowMatrix<double> x = RowMatrix<double>::Zero(5, 3);
  x(2, 1) = kDataValueLimit;
  x(4, 0) = -kDataValueLimit;
  EXPECT_EQ(message(x), "");
  x(3, 2) = -1.5e151;
  EXPECT_EQ(message(x), "GaussianMixture::fit: X holds -1.5e+151 at row 3, column 2: values must be within +-1e+150 "
                        "(beyond, their squares overflow double); rescale the data");
  x(1, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(message(x), "GaussianMixture::fit: X contains a non-finite value (nan) at row 1, column 0; missing values "
                        "(NaN) are taken by GaussianMixture and DensityAnomalyDetector (method gmm) on the "
                        "CPU (docs/missing-values.md)");
}
