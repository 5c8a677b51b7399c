// The dispatched CPU backend (backend/dispatched.hpp, libmixtura_dispatched) at every level it holds
// that this CPU runs:
// - baseline: the passes are the header's compiled with this program's flags, so every fit and score
//   is the header CPU backend's bit for bit;
// - every level: K-means, Gaussian mixtures and the detector follow the CPU's within the tolerance the
//   other backends are held to (gmm_replay.hpp), with the same labels and iteration counts on
//   separated data, and a detector fitted there is that backend's own passes bit for bit;
// - the process's level is the highest the CPU runs, at most MIXTURA_ISA; unknown names are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "detector_backend.hpp"
#include "mixtura/backend/dispatched.hpp"
#include "mixtura/kmeans.hpp"
#include "test_util.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

bool cpu_runs(const std::string& level) {
  for (const std::string& l : cpu_isa_levels())
    if (l == level) return true;
  return false;
}

/// The levels to test: compiled in and run by this CPU.
std::vector<std::string> levels_here() {
  std::vector<std::string> out;
  for (const std::string& l : dispatched_levels())
    if (cpu_runs(l)) out.push_back(l);
  return out;
}

template <class T>
class Dispatched : public ::testing::Test {};
TYPED_TEST_SUITE(Dispatched, Scalars);

/// K-means with every search, k-means++ and random starts, weights: `be`'s fit against the header's.
template <class T>
void expect_kmeans_follows_the_cpu(const DispatchedCpuBackend& be, bool exact) {
  const RowMatrix<T> x = blobs<T>(3000, 16, 24, 5);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(1 + i % 3);
  const double rel = trace_tolerance<T>();
  for (const KMeansAlgorithm alg : {KMeansAlgorithm::lloyd, KMeansAlgorithm::hamerly, KMeansAlgorithm::yinyang})
    for (const KMeansInit init : {KMeansInit::kmeans_plusplus, KMeansInit::random}) {
      KMeansParams p;
      p.n_clusters = 24;
      p.algorithm = alg;
      p.init = init;
      p.n_init = 2;
      p.seed = 3;
      KMeans<T> cpu(p), dis(p);
      cpu.fit(MatrixView<T>(x), VectorView<T>(w));
      dis.fit_on(be, MatrixView<T>(x), VectorView<T>(w));
      const std::string at = std::string(build_info(be).isa) + " " + to_string(alg) + " " + to_string(init);
      EXPECT_EQ(dis.labels(), cpu.labels()) << at;
      EXPECT_EQ(dis.n_iter(), cpu.n_iter()) << at;
      const RowMatrix<T> q = blobs<T>(500, 16, 24, 6);
      const std::vector<std::int32_t> la = cpu.predict(MatrixView<T>(q)), lb = dis.predict_on(be, MatrixView<T>(q));
      EXPECT_EQ(la, lb) << at;
      const RowMatrix<T> ta = cpu.transform(MatrixView<T>(q)), tb = dis.transform_on(be, MatrixView<T>(q));
      const double sa = cpu.score(MatrixView<T>(q)), sb = dis.score_on(be, MatrixView<T>(q));
      if (exact) {
        EXPECT_TRUE(dis.cluster_centers() == cpu.cluster_centers()) << at;
        EXPECT_TRUE(same_bits(dis.inertia(), cpu.inertia())) << at;
        EXPECT_TRUE(ta == tb) << at;
        EXPECT_TRUE(same_bits(sa, sb)) << at;
        ASSERT_EQ(dis.trace().size(), cpu.trace().size()) << at;
        for (std::size_t i = 0; i < cpu.trace().size(); ++i) {
          EXPECT_TRUE(same_bits(dis.trace()[i].distortion_assign, cpu.trace()[i].distortion_assign)) << at << " it " << i;
          EXPECT_TRUE(same_bits(dis.trace()[i].distortion_update, cpu.trace()[i].distortion_update)) << at << " it " << i;
        }
      } else {
        const double scale = cpu.cluster_centers().cwiseAbs().maxCoeff();
        EXPECT_LE((dis.cluster_centers() - cpu.cluster_centers()).cwiseAbs().maxCoeff(), rel * scale) << at;
        EXPECT_NEAR(dis.inertia(), cpu.inertia(), rel * cpu.inertia()) << at;
        EXPECT_LE((ta - tb).template cast<double>().cwiseAbs().maxCoeff(),
                  rel * static_cast<double>(ta.cwiseAbs().maxCoeff()))
            << at;
        EXPECT_NEAR(sb, sa, rel * std::abs(sa)) << at;
      }
    }
}

TYPED_TEST(Dispatched, KMeansFollowsTheHeaderCpuBackend) {
  for (const std::string& level : levels_here())
    expect_kmeans_follows_the_cpu<TypeParam>(dispatched_backend(0, level.c_str()), level == "baseline");
}

TYPED_TEST(Dispatched, SparseRowsTakeTheHeadersPassesBitForBit) {
  using T = TypeParam;
  // CSR rows go to the header's CPU passes (compiled here): the CpuBackend fit at every level.
  RowMatrix<T> x = blobs<T>(2000, 40, 5, 9);
  for (Index i = 0; i < x.rows(); ++i)
    for (Index j = 0; j < x.cols(); ++j)
      if ((i * 7 + j * 3) % 5 != 0) x(i, j) = 0;
  std::vector<T> values;
  std::vector<std::int32_t> indices;
  std::vector<std::int64_t> indptr{0};
  for (Index i = 0; i < x.rows(); ++i) {
    for (Index j = 0; j < x.cols(); ++j)
      if (x(i, j) != T(0)) {
        values.push_back(x(i, j));
        indices.push_back(static_cast<std::int32_t>(j));
      }
    indptr.push_back(static_cast<std::int64_t>(values.size()));
  }
  const CsrMatrixView<T> X(values.data(), indices.data(), indptr.data(), x.rows(), x.cols());
  for (const std::string& level : levels_here())
    for (const KMeansAlgorithm alg : {KMeansAlgorithm::lloyd, KMeansAlgorithm::hamerly}) {
      const DispatchedCpuBackend be = dispatched_backend(0, level.c_str());
      KMeansParams p;
      p.n_clusters = 5;
      p.algorithm = alg;
      KMeans<T> cpu(p), dis(p);
      cpu.fit(X);
      dis.fit_on(be, X);
      const std::string at = level + " " + to_string(alg);
      EXPECT_TRUE(dis.cluster_centers() == cpu.cluster_centers()) << at;
      EXPECT_EQ(dis.labels(), cpu.labels()) << at;
      EXPECT_TRUE(same_bits(dis.inertia(), cpu.inertia())) << at;
      EXPECT_TRUE(dis.transform_on(be, X) == cpu.transform(X)) << at;
    }
}

TYPED_TEST(Dispatched, ChunkStatisticsTakeTheFusedPass) {
  using T = TypeParam;
  // kmeans_statistics_on takes the fused pass here too: the farthest rows' distances are the pass's own
  // (exactly the header's at the baseline), not recomputed in a second pass. Centres off the blobs,
  // so that many rows sit far from their centre.
  const RowMatrix<T> x = blobs<T>(3000, 19, 12, 21);
  const RowMatrix<T> c = blobs<T>(12, 19, 12, 22);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(0.5 + i % 4);
  const KMeansStats want = kmeans_statistics(MatrixView<T>(x), VectorView<T>(w), c);
  ASSERT_EQ(want.farthest.size(), 11u);
  const double rel = trace_tolerance<T>();
  for (const std::string& level : levels_here()) {
    const DispatchedCpuBackend be = dispatched_backend(0, level.c_str());
    const KMeansStats got = kmeans_statistics_on(be, MatrixView<T>(x), c, VectorView<T>(w));
    const bool exact = level == "baseline";
    EXPECT_EQ(got.count, want.count) << level;
    EXPECT_EQ(got.n_changed, want.n_changed) << level;
    ASSERT_EQ(got.farthest.size(), want.farthest.size()) << level;
    for (std::size_t f = 0; f < want.farthest.size(); ++f) {
      EXPECT_EQ(got.farthest[f].row, want.farthest[f].row) << level << " candidate " << f;
      EXPECT_EQ(got.farthest[f].values, want.farthest[f].values) << level << " candidate " << f;
      if (exact)
        EXPECT_TRUE(same_bits(got.farthest[f].distance, want.farthest[f].distance)) << level << " candidate " << f;
      else
        EXPECT_NEAR(got.farthest[f].distance, want.farthest[f].distance, rel * want.farthest[f].distance) << level;
    }
    if (exact) {
      EXPECT_EQ(got.weight, want.weight);
      EXPECT_EQ(got.sums, want.sums);
      EXPECT_TRUE(same_bits(got.distortion, want.distortion));
    } else {
      EXPECT_NEAR(got.distortion, want.distortion, rel * want.distortion) << level;
    }
  }
}

TYPED_TEST(Dispatched, MiniBatchKMeansFollowsTheHeaderCpuBackend) {
  using T = TypeParam;
  // fit (drawn batches, k-means++ on init_size rows), partial_fit chunk by chunk, and the scores: the
  // passes through the dispatched backend, bit for bit at the baseline. A fixed number of steps (no
  // early stop), so that the levels take the same steps.
  const RowMatrix<T> x = blobs<T>(4000, 12, 8, 31);
  Eigen::Matrix<T, Eigen::Dynamic, 1> w(x.rows());
  for (Index i = 0; i < x.rows(); ++i) w[i] = static_cast<T>(1 + i % 2);
  MiniBatchKMeansParams p;
  p.n_clusters = 8;
  p.batch_size = 256;
  p.max_iter = 3;
  p.max_no_improvement = -1;
  p.n_init = 2;
  p.seed = 4;
  const double rel = trace_tolerance<T>();
  const RowMatrix<T> q = blobs<T>(300, 12, 8, 32);
  for (const std::string& level : levels_here()) {
    const DispatchedCpuBackend be = dispatched_backend(0, level.c_str());
    const bool exact = level == "baseline";
    MiniBatchKMeans<T> cpu(p), dis(p), cpu_stream(p), dis_stream(p);
    cpu.fit(MatrixView<T>(x), VectorView<T>(w));
    dis.fit_on(be, MatrixView<T>(x), VectorView<T>(w));
    for (Index b = 0; b < x.rows(); b += 1000) {
      const MatrixView<T> chunk(x.row(b).data(), 1000, x.cols());
      cpu_stream.partial_fit(chunk);
      dis_stream.partial_fit_on(be, chunk);
    }
    EXPECT_EQ(dis.labels(), cpu.labels()) << level;
    EXPECT_EQ(dis.n_steps(), cpu.n_steps()) << level;
    EXPECT_EQ(dis.predict_on(be, MatrixView<T>(q)), cpu.predict(MatrixView<T>(q))) << level;
    const RowMatrix<T> ta = cpu.transform(MatrixView<T>(q)), tb = dis.transform_on(be, MatrixView<T>(q));
    const double sa = cpu.score(MatrixView<T>(q)), sb = dis.score_on(be, MatrixView<T>(q));
    if (exact) {
      EXPECT_TRUE(dis.cluster_centers() == cpu.cluster_centers());
      EXPECT_TRUE(dis_stream.cluster_centers() == cpu_stream.cluster_centers());
      EXPECT_TRUE(same_bits(dis.inertia(), cpu.inertia()));
      ASSERT_EQ(dis.trace().size(), cpu.trace().size());
      for (std::size_t i = 0; i < cpu.trace().size(); ++i)
        EXPECT_TRUE(same_bits(dis.trace()[i].distortion_assign, cpu.trace()[i].distortion_assign)) << "step " << i;
      EXPECT_TRUE(ta == tb);
      EXPECT_TRUE(same_bits(sa, sb));
    } else {
      const double scale = cpu.cluster_centers().cwiseAbs().maxCoeff();
      EXPECT_LE((dis.cluster_centers() - cpu.cluster_centers()).cwiseAbs().maxCoeff(), rel * scale) << level;
      EXPECT_LE((dis_stream.cluster_centers() - cpu_stream.cluster_centers()).cwiseAbs().maxCoeff(), rel * scale)
          << level;
      EXPECT_NEAR(dis.inertia(), cpu.inertia(), rel * cpu.inertia()) << level;
      EXPECT_LE((ta - tb).template cast<double>().cwiseAbs().maxCoeff(),
                rel * static_cast<double>(ta.cwiseAbs().maxCoeff()))
          << level;
      EXPECT_NEAR(sb, sa, rel * std::abs(sa)) << level;
    }
  }
}

TYPED_TEST(Dispatched, GaussianMixtureFollowsTheHeaderCpuBackend) {
  using T = TypeParam;
  const RowMatrix<T> x = gmm_blobs<T>(2500, 5, 21, 0.0, 6.0);
  for (const std::string& level : levels_here()) {
    const DispatchedCpuBackend be = dispatched_backend(0, level.c_str());
    SCOPED_TRACE(level);
    expect_fit_follows_the_cpu<T>(be, x, 3, 5);  // 5 iterations: before round-off decides where tol = 0 stops
    expect_scoring_matches<T>(be, CpuBackend{}, 10 * trace_tolerance<T>());
    if (level != "baseline") continue;
    for (const CovarianceType t : kTypes) {  // the baseline level is the header's code: every bit
      GmmParams p;
      p.n_components = 3;
      p.covariance_type = t;
      p.n_init = 2;
      p.max_iter = 20;
      GaussianMixture<T> cpu(p), dis(p);
      cpu.fit(MatrixView<T>(x));
      dis.fit_on(be, MatrixView<T>(x));
      expect_same_fit(dis, cpu);
      const Eigen::VectorXd a = cpu.score_samples(MatrixView<T>(x)), b = dis.score_samples_on(be, MatrixView<T>(x));
      EXPECT_TRUE(a == b) << to_string(t);
    }
  }
}

TYPED_TEST(Dispatched, GaussianMixtureTakesRowsWithGaps) {
  using T = TypeParam;
  RowMatrix<T> x = gmm_blobs<T>(2000, 4, 8, 0.0, 6.0);
  for (Index i = 0; i < x.rows(); i += 7) x(i, i % 4) = std::numeric_limits<T>::quiet_NaN();
  for (const std::string& level : levels_here()) {
    const DispatchedCpuBackend be = dispatched_backend(0, level.c_str());
    GmmParams p;
    p.n_components = 3;
    p.max_iter = 20;
    GaussianMixture<T> cpu(p), dis(p);
    cpu.fit(MatrixView<T>(x));
    dis.fit_on(be, MatrixView<T>(x));
    EXPECT_EQ(dis.n_iter(), cpu.n_iter()) << level;
    EXPECT_NEAR(dis.lower_bound(), cpu.lower_bound(), trace_tolerance<T>() * std::abs(cpu.lower_bound())) << level;
    EXPECT_EQ(dis.predict_on(be, MatrixView<T>(x)), cpu.predict(MatrixView<T>(x))) << level;
    if (level == "baseline") expect_same_fit(dis, cpu);
  }
}

TYPED_TEST(Dispatched, DetectorFollowsTheHeaderCpuBackend) {
  for (const std::string& level : levels_here()) {
    SCOPED_TRACE(level);
    const DispatchedCpuBackend be = dispatched_backend(0, level.c_str());
    expect_detector_follows_the_cpu<TypeParam>(be);
    expect_detector_stream_follows_the_cpu<TypeParam>(be);
    expect_detector_is_the_backends_passes<TypeParam>(be);
  }
}

TYPED_TEST(Dispatched, DetectorExplainsWithTheLevelsLabels) {
  using T = TypeParam;
  // explain_on labels the rows with the level's pass; the contributions are host code: the header's
  // explain bit for bit at the baseline, the same components and contributions to rounding elsewhere.
  // A row with a gap is explained under its observed marginal (NaN where missing).
  RowMatrix<T> x = detector_data<T>(2000, 41);
  DensityAnomalyDetector<T> det;
  det.fit(MatrixView<T>(x));
  RowMatrix<T> q = detector_data<T>(300, 42);
  q(7, 1) = std::numeric_limits<T>::quiet_NaN();
  const AnomalyExplanation want = det.explain(MatrixView<T>(q));
  const double rel = trace_tolerance<T>();
  for (const std::string& level : levels_here()) {
    const AnomalyExplanation got = det.explain_on(dispatched_backend(0, level.c_str()), MatrixView<T>(q));
    EXPECT_EQ(got.component, want.component) << level;
    EXPECT_TRUE(std::isnan(got.contributions(7, 1))) << level;
    const Eigen::ArrayXXd a = want.contributions.array().isNaN().select(0.0, want.contributions.array());
    const Eigen::ArrayXXd b = got.contributions.array().isNaN().select(0.0, got.contributions.array());
    if (level == "baseline")
      EXPECT_TRUE((a == b).all() && (got.contributions.array().isNaN() == want.contributions.array().isNaN()).all());
    else
      EXPECT_LE((a - b).abs().maxCoeff(), rel * (1 + a.abs().maxCoeff())) << level;
  }
}

TEST(Dispatched, ProcessLevelIsTheHighestTheCpuRunsAtMostMixturaIsa) {
  const char* cap_env = std::getenv("MIXTURA_ISA");
  const std::string cap = cap_env ? cap_env : "";
  const std::vector<std::string>& names = isa_levels();
  if (!cap.empty() && std::find(names.begin(), names.end(), cap) == names.end()) {
    // ctest runs this program once with MIXTURA_ISA=avx3 (tests/cpp/CMakeLists.txt).
    try {
      (void)build_info(DispatchedCpuBackend{});
      ADD_FAILURE() << "MIXTURA_ISA=" << cap << " was taken";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("MIXTURA_ISA='" + cap + "' is not a level"), std::string::npos) << e.what();
    }
    return;
  }
  std::string expected;
  for (const std::string& l : levels_here()) {
    expected = l;
    if (l == cap) break;
  }
  const BuildInfo b = build_info(DispatchedCpuBackend{});
  EXPECT_EQ(b.isa, expected) << "MIXTURA_ISA=" << cap;
  if (const char* must = std::getenv("MIXTURA_EXPECT_ISA")) {  // tests/isa_qemu.sh: the emulated CPU's level
    EXPECT_EQ(b.isa, must);
  }
  EXPECT_EQ(b.cpu_levels, cpu_isa_levels());
  EXPECT_EQ(b.isa_compiled, dispatched_levels());
  EXPECT_EQ(b.compiler, compiler_name());  // the library's, built by the same compiler here
  EXPECT_EQ(b.isa_cap, cap);
  EXPECT_EQ(build_info(dispatched_backend()).isa, expected);
  std::printf("dispatched level %s (CPU: %zu levels; MIXTURA_ISA=%s)\n", b.isa.c_str(), b.cpu_levels.size(),
              cap.empty() ? "unset" : cap.c_str());
}

TEST(Dispatched, UnknownOrUnrunnableLevelsAreRefusedByName) {
  try {
    (void)dispatched_backend(0, "avx3");
    ADD_FAILURE() << "level avx3 was taken";
  } catch (const InvalidArgument& e) {  // thrown inside libmixtura_dispatched, caught here
    EXPECT_NE(std::string(e.what()).find("level 'avx3' is not compiled into libmixtura_dispatched"), std::string::npos)
        << e.what();
  }
  for (const std::string& l : dispatched_levels())
    if (!cpu_runs(l)) {
      EXPECT_THROW((void)dispatched_backend(0, l.c_str()), InvalidArgument) << l;
    }
  const std::vector<std::string> compiled = dispatched_levels();
  ASSERT_FALSE(compiled.empty());
  EXPECT_EQ(compiled.front(), "baseline");
}

}  // namespace
