// Gaussian mixtures from statistics alone: chunk statistics merged and updated equal the batch fit,
// and online EM (partial_fit) approaches the batch fit on a stationary stream and follows an abrupt
// change.
#include "gmm_util.hpp"

#include <cstring>

#include "mixtura/core/parallel.hpp"

using namespace mixtura;
using namespace mixtura_test;

template <class T>
class GmmStream : public ::testing::Test {};
TYPED_TEST_SUITE(GmmStream, Scalars);

namespace {

template <class T>
MatrixView<T> rows_of(const RowMatrix<T>& x, Index begin, Index end) {
  return MatrixView<T>(x.data() + begin * x.cols(), end - begin, x.cols());
}

/// The statistics of x under gm's model, chunk by chunk at the given boundaries, merged in order.
template <class T>
GmmStats chunked_statistics(const GaussianMixture<T>& gm, const RowMatrix<T>& x, const std::vector<Index>& cuts,
                            const std::vector<T>& w) {
  GmmStats total;
  for (std::size_t c = 0; c + 1 < cuts.size(); ++c) {
    const Index b = cuts[c], e = cuts[c + 1];
    const VectorView<T> wv = w.empty() ? VectorView<T>{} : VectorView<T>(w.data() + b, e - b);
    GmmStats s = gm.statistics(rows_of(x, b, e), wv, b);
    if (c == 0) total = std::move(s);
    else total.merge(s);
  }
  return total;
}

/// The boundaries of the E-step's reduction groups for n rows (core/parallel.hpp).
std::vector<Index> group_cuts(Index n) {
  const detail::BlockPlan plan(n, detail::kGmmBlock);
  std::vector<Index> cuts;
  for (Index g = 0; g <= plan.n_groups; ++g) cuts.push_back(std::min(n, plan.block_begin(plan.group_first(g))));
  return cuts;
}

template <class T>
bool same_bits(const GmmModel& a, const GmmModel& b) {
  if (a.weights != b.weights || a.means != b.means || a.diag_factor != b.diag_factor) return false;
  for (std::size_t k = 0; k < a.factor.size(); ++k)
    if (a.factor[k] != b.factor[k]) return false;
  return true;
}

double max_relative_difference(const GmmModel& a, const GmmModel& b) {
  const auto rel = [](const Eigen::MatrixXd& x, const Eigen::MatrixXd& y) {
    return (x - y).cwiseAbs().maxCoeff() / std::max(1.0, y.cwiseAbs().maxCoeff());
  };
  double d = std::max(rel(a.weights, b.weights), rel(a.means, b.means));
  for (Index k = 0; k < a.n_components; ++k) d = std::max(d, rel(a.covariance(k), b.covariance(k)));
  return d;
}

template <class T>
std::vector<T> some_weights(Index n) {
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = static_cast<T>(0.5 + (i % 7) * 0.25);
  return w;
}

}  // namespace

// fit is the loop "statistics of the data, update": cut at the E-step's reduction groups and merged
// in order, the chunks' statistics are the batch pass's bit for bit, and so are the models.
TYPED_TEST(GmmStream, ChunkStatisticsAtTheGroupsGiveTheBatchFitsBits) {
  using T = TypeParam;
  const Index n = 5000;  // 20 blocks of 256 rows: 20 groups
  const RowMatrix<T> x = gmm_blobs<T>(n, 4, 3, 100.0);
  for (const bool weighted : {false, true}) {
    const std::vector<T> w = weighted ? some_weights<T>(n) : std::vector<T>{};
    const VectorView<T> wv = weighted ? VectorView<T>(w.data(), n) : VectorView<T>{};
    for (CovarianceType t : kTypes) {
      GmmParams p;
      p.n_components = 3;
      p.covariance_type = t;
      p.tol = 0;
      p.max_iter = 6;
      GaussianMixture<T> batch(p);
      batch.fit(x, wv);
      p.max_iter = 1;  // the same first iteration, then the rest from statistics
      GaussianMixture<T> chunked(p);
      chunked.fit(x, wv);
      for (int it = 1; it < 6; ++it) chunked.update(chunked_statistics(chunked, x, group_cuts(n), w));
      EXPECT_TRUE(same_bits<T>(chunked.model(), batch.model())) << to_string(t) << " weighted " << weighted;
      ASSERT_EQ(chunked.trace().size(), batch.trace().size());
      for (std::size_t i = 0; i < batch.trace().size(); ++i) {
        EXPECT_EQ(chunked.trace()[i].lower_bound, batch.trace()[i].lower_bound) << to_string(t) << " it " << i;
        EXPECT_EQ(chunked.trace()[i].elbo_after_m, batch.trace()[i].elbo_after_m) << to_string(t) << " it " << i;
      }
    }
  }
}

// At EM's fixed point (tol = 0) update drops a step whose bound falls by round-off, as fit does: the
// loop of updates stops where the fit stops, with the same event and the same bits.
TYPED_TEST(GmmStream, UpdateLoopStopsAtTheRoundOffFallAsFitDoes) {
  using T = TypeParam;
  const Index n = 400;
  const RowMatrix<T> x = gmm_blobs<T>(n, 2, 11, 0.0, 1.5);
  GmmParams p;
  p.n_components = 3;
  p.reg_covar = 0;
  p.tol = 0;
  p.max_iter = 3000;
  GaussianMixture<T> batch(p);
  batch.fit(x);
  ASSERT_FALSE(batch.events().empty());
  ASSERT_EQ(batch.events().back().kind, GmmEvent::Kind::roundoff_decrease);
  p.max_iter = 1;
  GaussianMixture<T> chunked(p);
  chunked.fit(x);
  for (int it = 1; it < 3000 && !chunked.converged(); ++it) chunked.update(chunked_statistics(chunked, x, group_cuts(n), {}));
  EXPECT_TRUE(same_bits<T>(chunked.model(), batch.model()));
  EXPECT_EQ(chunked.n_iter(), batch.n_iter());
  ASSERT_EQ(chunked.events().size(), batch.events().size());
  EXPECT_EQ(chunked.events().back().kind, GmmEvent::Kind::roundoff_decrease);
  EXPECT_EQ(chunked.events().back().iteration, batch.events().back().iteration);
  EXPECT_EQ(chunked.events().back().value, batch.events().back().value);
}

// Any other chunking only reorders the sums: the same fit within round-off.
TYPED_TEST(GmmStream, AnyChunkingGivesTheBatchFitWithinRoundOff) {
  using T = TypeParam;
  const Index n = 3001;
  const RowMatrix<T> x = gmm_blobs<T>(n, 3, 8, -50.0);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.tol = 0;
    p.max_iter = 5;
    GaussianMixture<T> batch(p);
    batch.fit(x);
    p.max_iter = 1;
    GaussianMixture<T> chunked(p);
    chunked.fit(x);
    for (const std::vector<Index>& cuts :
         {std::vector<Index>{0, 1, 999, 1000, 2222, n}, std::vector<Index>{0, 17, 300, 1500, 2900, n}}) {
      GaussianMixture<T> gm = chunked;
      for (int it = 1; it < 5; ++it) gm.update(chunked_statistics(gm, x, cuts, {}));
      EXPECT_LT(max_relative_difference(gm.model(), batch.model()), 1e-12) << to_string(t);
      EXPECT_NEAR(gm.trace().back().lower_bound, batch.trace().back().lower_bound,
                  1e-12 * std::abs(batch.trace().back().lower_bound));
    }
  }
}

// Merging is associative (to round-off) and moving the moments to another shift changes nothing the
// update sees.
TEST(GmmStatistics, MergeIsAssociativeAndShiftsMoveExactly) {
  const RowMatrix<double> x = gmm_blobs<double>(1200, 3, 5, 10.0);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 2;
    p.covariance_type = t;
    p.max_iter = 3;
    GaussianMixture<double> gm(p);
    gm.fit(x);
    const GmmStats a = gm.statistics(rows_of(x, 0, 400), {}, 0);
    const GmmStats b = gm.statistics(rows_of(x, 400, 700), {}, 400);
    const GmmStats c = gm.statistics(rows_of(x, 700, 1200), {}, 700);
    GmmStats left = a, bc = b;
    left.merge(b);
    left.merge(c);
    bc.merge(c);
    GmmStats right = a;
    right.merge(bc);
    std::vector<GmmEvent> events;
    const GmmModel ml = detail::update_from_statistics(left, p.reg_covar, &events, 0, 0);
    const GmmModel mr = detail::update_from_statistics(right, p.reg_covar, &events, 0, 0);
    EXPECT_LT(max_relative_difference(ml, mr), 1e-14) << to_string(t);
    EXPECT_EQ(left.worst.rows, right.worst.rows);

    GmmStats moved = left;
    moved.move_shift(left.shift.array() + 3.5);
    const GmmModel mm = detail::update_from_statistics(moved, p.reg_covar, &events, 0, 0);
    EXPECT_LT(max_relative_difference(mm, ml), 1e-12) << to_string(t);
    EXPECT_TRUE(events.empty());
    // The variance behind the floors is the data's (weighted) per-feature variance.
    const Eigen::VectorXd v = left.data_variance();
    const detail::FeatureMoments fm = detail::feature_moments(MatrixView<double>(x), 1);
    EXPECT_LT((v - fm.variance).cwiseAbs().maxCoeff(), 1e-10 * fm.variance.maxCoeff()) << to_string(t);
  }
}

// The statistics a fitted model hands out give it back under update (the start of online EM).
TEST(GmmStatistics, ModelStatisticsGiveTheModelBack) {
  const RowMatrix<double> x = gmm_blobs<double>(2000, 4, 2);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    GaussianMixture<double> gm(p);
    gm.fit(x);
    std::vector<GmmEvent> events;
    const GmmModel back = detail::update_from_statistics(detail::model_statistics(gm.model(), p.reg_covar), p.reg_covar,
                                                         &events, 0, 0);
    EXPECT_LT(max_relative_difference(back, gm.model()), 1e-12) << to_string(t);
    EXPECT_TRUE(events.empty());
  }
}

namespace {

/// n rows of a 3-component mixture in 2-d with unit spherical noise around `centres` (3 x 2),
/// with mixing weights 0.5, 0.3, 0.2.
RowMatrix<double> mixture_rows(Index n, const RowMatrix<double>& centres, std::mt19937& gen) {
  std::normal_distribution<double> z;
  std::uniform_real_distribution<double> u;
  RowMatrix<double> x(n, 2);
  for (Index i = 0; i < n; ++i) {
    const double v = u(gen);
    const Index k = v < 0.5 ? 0 : v < 0.8 ? 1 : 2;
    for (Index j = 0; j < 2; ++j) x(i, j) = centres(k, j) + z(gen);
  }
  return x;
}

RowMatrix<double> sorted_means(const GmmModel& m) {  // components ordered by their first coordinate
  std::vector<Index> order(static_cast<std::size_t>(m.n_components));
  for (Index k = 0; k < m.n_components; ++k) order[static_cast<std::size_t>(k)] = k;
  std::sort(order.begin(), order.end(), [&](Index a, Index b) { return m.means(a, 0) < m.means(b, 0); });
  RowMatrix<double> out(m.n_components, m.n_features);
  for (Index k = 0; k < m.n_components; ++k) out.row(k) = m.means.row(order[static_cast<std::size_t>(k)]);
  return out;
}

}  // namespace

// Stepwise EM on a stationary stream (80 chunks of 500 rows) ends near the batch fit of all 40 000
// rows: the step sizes decay, so the running statistics average the chunks.
TEST(GmmOnlineEm, StationaryStreamApproachesTheBatchFit) {
  RowMatrix<double> centres(3, 2);
  centres << 0, 0, 6, 1, 3, 7;
  std::mt19937 gen(42);
  const Index chunk = 500, n_chunks = 80;
  const RowMatrix<double> all = mixture_rows(chunk * n_chunks, centres, gen);
  GmmParams p;
  p.n_components = 3;
  p.covariance_type = CovarianceType::full;
  p.seed = 1;
  GaussianMixture<double> batch(p);
  batch.fit(all);
  GaussianMixture<double> online(p);
  for (Index c = 0; c < n_chunks; ++c) online.partial_fit(rows_of(all, c * chunk, (c + 1) * chunk));
  EXPECT_EQ(online.stream_state().n_steps, n_chunks);
  const double gap = (sorted_means(online.model()) - sorted_means(batch.model())).cwiseAbs().maxCoeff();
  EXPECT_LT(gap, 0.05);  // the batch fit's standard error of a mean is about 0.01
  const double ll_gap = batch.score(all) - online.score(all);
  EXPECT_GE(ll_gap, -1e-12);  // the batch fit is the maximum (of this basin)
  EXPECT_LT(ll_gap, 2e-3);    // per row
  std::printf("stationary stream: largest mean gap %.4f, log-likelihood gap %.2e per row\n", gap, ll_gap);
  // One trace record per chunk after the first chunk's own fit: the chunk's mean log-likelihood.
  EXPECT_NEAR(online.trace().back().lower_bound, online.score(rows_of(all, (n_chunks - 1) * chunk, n_chunks * chunk)), 0.05);
}

// After an abrupt level shift of the whole process by (1.5, -1) (a sensor's offset jumps; each
// component's new rows still fall nearest to it), a half-life of 2000 rows follows within four
// half-lives; the decaying step, which averages everything seen, lags. (A jump larger than the
// components' separation leaves components behind at their floor: docs/streams.md.)
TEST(GmmOnlineEm, HalfLifeFollowsAnAbruptChange) {
  RowMatrix<double> before(3, 2), after(3, 2);
  before << 0, 0, 3, 7, 6, 1;  // ordered by the first coordinate, as sorted_means orders
  after = before.rowwise() + Eigen::RowVector2d(1.5, -1);
  std::mt19937 gen(7);
  const Index chunk = 500;
  GmmParams p;
  p.n_components = 3;
  p.seed = 3;
  GmmParams forgetting = p;
  forgetting.half_life = 2000;
  GaussianMixture<double> follows(forgetting), decays(p);
  for (int c = 0; c < 30; ++c) {
    const RowMatrix<double> x = mixture_rows(chunk, before, gen);
    follows.partial_fit(x);
    decays.partial_fit(x);
  }
  EXPECT_LT((sorted_means(follows.model()) - before).cwiseAbs().maxCoeff(), 0.3);
  const int n_after = 16;  // 8000 rows: four half-lives
  for (int c = 0; c < n_after; ++c) {
    const RowMatrix<double> x = mixture_rows(chunk, after, gen);
    follows.partial_fit(x);
    decays.partial_fit(x);
  }
  const double follows_gap = (sorted_means(follows.model()) - after).cwiseAbs().maxCoeff();
  const double decays_gap = (sorted_means(decays.model()) - after).cwiseAbs().maxCoeff();
  EXPECT_LT(follows_gap, 0.25);
  EXPECT_GT(decays_gap, 0.5);
  std::printf("after four half-lives: largest mean error %.3f with half_life, %.3f with the decaying step\n",
              follows_gap, decays_gap);
  for (const auto& e : follows.events()) EXPECT_NE(e.kind, GmmEvent::Kind::covariance_floored);
}

// A component whose rows stop coming keeps a floor (recorded once) and no value turns NaN.
TEST(GmmOnlineEm, StarvingComponentKeepsAFloor) {
  RowMatrix<double> centres(3, 2);
  centres << 0, 0, 20, 0, 0, 20;
  std::mt19937 gen(5);
  GmmParams p;
  p.n_components = 3;
  p.half_life = 500;
  GaussianMixture<double> gm(p);
  gm.partial_fit(mixture_rows(2000, centres, gen));
  // As if the fit had kept its second restart, the first one shorter: the stream's records (trace and
  // events) must go to the kept restart, or the file they make is refused.
  GmmRun shorter;
  shorter.trace.resize(1);
  shorter.n_iter = 1;
  gm.set_model(gm.model(), {shorter, gm.runs()[0]}, {}, 1);
  RowMatrix<double> two = centres;
  two.row(2) = centres.row(0);  // the third centre's rows go to the first
  for (int c = 0; c < 60; ++c) gm.partial_fit(mixture_rows(500, two, gen));
  int starved = 0;
  for (const auto& e : gm.events()) {
    if (e.kind != GmmEvent::Kind::component_starved) continue;
    ++starved;
    EXPECT_EQ(e.restart, gm.best_restart());
    EXPECT_LT(e.iteration, gm.n_iter());
  }
  EXPECT_EQ(starved, 1);
  // The events and trace are a valid model file's (the loader checks each event against its restart).
  EXPECT_NO_THROW(gaussian_mixture_from_sections<double>(from_bytes(to_bytes(to_model_file(gm)))));
  EXPECT_GE(gm.weights().minCoeff(), 0.5 * detail::kStreamWeightFloor);
  EXPECT_TRUE(gm.means().allFinite());
  const Eigen::MatrixXd lone = sorted_means(gm.model());
  EXPECT_NEAR(lone(0, 1) + lone(1, 1) + lone(2, 1), 20.0, 1.0);  // the starved component stayed near (0, 20)
}

TEST(GmmOnlineEm, BadInputIsRefusedWithItsValue) {
  const RowMatrix<double> x = gmm_blobs<double>(300, 2, 1);
  GmmParams p;
  p.n_components = 2;
  p.learning_decay = 0.5;
  GaussianMixture<double> gm(p);
  gm.fit(x);
  EXPECT_INVALID(gm.partial_fit(x), "learning_decay must be in (0.5, 1], got 0.5");
  p.learning_decay = 0.7;
  p.half_life = -1;
  gm.set_params(p);
  EXPECT_INVALID(gm.partial_fit(x), "half_life must be finite and >= 0, got -1");
  p.half_life = 0;
  gm.set_params(p);
  const RowMatrix<double> three = gmm_blobs<double>(300, 3, 1);
  EXPECT_INVALID(gm.partial_fit(three), "X has 3 features, but the model was fitted with 2");
  GmmStats s = gm.statistics(x);
  GmmParams other = p;
  other.covariance_type = CovarianceType::diag;
  GaussianMixture<double> diag(other);
  EXPECT_INVALID(diag.update(s), "statistics of covariance_type full with 2 components, expected diag with 2");
  GaussianMixture<double> unfitted(p);
  EXPECT_THROW(unfitted.statistics(x), NotFittedError);
  const GmmStats d(CovarianceType::diag, 2, 2, 2);
  EXPECT_INVALID(s.merge(d), "GmmStats::merge: statistics of full, 2 components, 2 features merged with diag");
  // Stream states online EM would not make (fuzzing found one in a model file: a shift of -2.5e220 and
  // a weight of 1.3e196, which gave NaN scores): refused where set, or where the step comes out
  // non-finite; the mixture keeps what it had.
  gm.partial_fit(x);
  GmmStreamState st = gm.stream_state();
  st.statistics.shift(0, 0) = -2.5e220;
  EXPECT_INVALID(gm.set_stream_state(st), "statistics with a shift of 2.5e+220, expected within +-1e+150");
  st = gm.stream_state();
  st.statistics.unpack();
  st.statistics.nk[0] = 1e-300;
  st.statistics.s1.row(0).setConstant(1e300);
  gm.set_stream_state(st);
  const RowMatrix<double> means = gm.model().means;
  EXPECT_INVALID(gm.partial_fit(x), "GaussianMixture::partial_fit: the running statistics of online EM give a "
                                    "model that is not finite or has means beyond +-1e+150");
  EXPECT_EQ(gm.model().means, means);
}

// Model files carry online EM's state: a loaded mixture's next step is the original's, bit for bit;
// a file with some of the stream sections is refused.
TEST(GmmOnlineEm, ModelFilesResumeTheStream) {
  RowMatrix<double> centres(3, 2);
  centres << 0, 0, 6, 1, 3, 7;
  std::mt19937 gen(9);
  for (CovarianceType t : kTypes) {
    GmmParams p;
    p.n_components = 3;
    p.covariance_type = t;
    p.half_life = 1000;
    GaussianMixture<double> gm(p);
    for (int c = 0; c < 4; ++c) gm.partial_fit(mixture_rows(400, centres, gen));
    const std::vector<std::uint8_t> bytes = to_bytes(to_model_file(gm));
    GaussianMixture<double> loaded = gaussian_mixture_from_sections<double>(from_bytes(bytes));
    loaded.set_params(p);
    ASSERT_EQ(loaded.stream_state().n_steps, 4);
    const RowMatrix<double> next = mixture_rows(400, centres, gen);
    gm.partial_fit(next);
    loaded.partial_fit(next);
    EXPECT_TRUE(same_bits<double>(loaded.model(), gm.model())) << to_string(t);
    EXPECT_EQ(loaded.trace().back().lower_bound, gm.trace().back().lower_bound);

    ModelFile partial = from_bytes(bytes);
    ModelFile cut;
    cut.kind = partial.kind;
    for (const auto& s : partial.sections)
      if (s.name != "stream_totals_") cut.sections.push_back(s);
    EXPECT_INVALID(gaussian_mixture_from_sections<double>(cut), "holds 6 of the 7 stream_* sections");
    ModelFile far = from_bytes(bytes);
    for (auto& s : far.sections)
      if (s.name == "stream_shift_") {
        const double v = -2.5e220;
        std::memcpy(s.payload.data(), &v, sizeof v);
      }
    EXPECT_INVALID(gaussian_mixture_from_sections<double>(far), "stream_shift_ holds -2.5e+220 at flat index 0");
  }
}
