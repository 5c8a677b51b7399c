#pragma once
/// mixtura::GaussianMixture: Gaussian mixtures fitted by EM, with the ELBO staircase recorded.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "mixtura/backend/contract.hpp"
#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/core/timer.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/gmm/cpu_pass.hpp"
#include "mixtura/gmm/gaps.hpp"
#include "mixtura/gmm/init.hpp"
#include "mixtura/gmm/m_step.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/params.hpp"
#include "mixtura/gmm/streaming.hpp"
#include "mixtura/kmeans/kmeans.hpp"

namespace mixtura {

/// Caller-given starting parameters, any subset (scikit-learn's weights_init, means_init,
/// precisions_init). Shapes: weights [K] summing to 1; means K x D; precisions: full -> K matrices
/// D x D, tied -> 1 matrix D x D, diag -> 1 matrix K x D, spherical -> 1 matrix K x 1, all positive
/// definite (positive).
struct GmmInitialParams {
  Eigen::VectorXd weights;
  RowMatrix<double> means;
  std::vector<Eigen::MatrixXd> precisions;
  bool empty() const { return weights.size() == 0 && means.size() == 0 && precisions.empty(); }
  bool complete() const { return weights.size() && means.size() && !precisions.empty(); }
};

/// Where online EM stands: the running statistics (per unit weight) that the model is the M-step
/// of, and how many chunks made them.
struct GmmStreamState {
  GmmStats statistics;
  std::int64_t n_steps = 0;   ///< chunks blended in; the model partial_fit started from counts as one
  std::vector<bool> starved;  ///< per component: at the weight floor (an event was recorded when it got there)
  bool empty() const { return n_steps == 0; }
};

namespace detail {
/// A fall of the per-sample lower bound at most this times max(1, |L|) is round-off (measured falls at
/// a fixed point: a few ulps of L, about 1e-15 relative).
inline constexpr double kBoundRoundOff = 1e-12;
/// Whether the bound fell from `previous` to `current` by no more than round-off (EM never lowers it).
inline bool roundoff_fall(double previous, double current) {
  const double fall = previous - current;
  return fall > 0 && fall <= kBoundRoundOff * std::max(1.0, std::abs(previous));
}

/// The K-means run behind init = kmeans for restart `restart` (shared with model selection, which
/// runs it once per component count for all covariance types).
inline KMeansParams kmeans_init_params(const GmmParams& p, int restart) {
  KMeansParams kp;
  kp.n_clusters = p.n_components;
  kp.n_init = 1;
  kp.seed = CounterRng(p.seed, static_cast<std::uint64_t>(restart)).bits_at(0);
  kp.n_threads = p.n_threads;
  return kp;
}

/// One full or tied precisions_init matrix P (D x D), checked in scikit-learn's words ('full
/// precision' should be ...) and then what failed; returns L with P = L L^T, L lower with a
/// positive diagonal. `where` names the call, k the matrix.
inline Eigen::MatrixXd checked_precision_factor(const char* where, std::size_t k, CovarianceType t,
                                                const Eigen::Ref<const Eigen::MatrixXd>& p) {
  MIXTURA_EXPECTS(p.allFinite() && p.isApprox(p.transpose(), 1e-10),
                  "%s: precisions_init[%zu]: '%s precision' should be symmetric, positive-definite (it is not "
                  "symmetric)", where, k, to_string(t));
  const Eigen::LLT<Eigen::MatrixXd> llt(p);
  Eigen::MatrixXd L = llt.matrixL();
  MIXTURA_EXPECTS(llt.info() == Eigen::Success && (L.diagonal().array() > 0).all(),
                  "%s: precisions_init[%zu]: '%s precision' should be symmetric, positive-definite (it is not "
                  "positive-definite)", where, k, to_string(t));
  return L;
}

/// diag and spherical precisions_init: n values, each positive and finite.
inline void check_precision_values(const char* where, CovarianceType t, const double* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    MIXTURA_EXPECTS(std::isfinite(v[i]) && v[i] > 0, "%s: precisions_init: '%s precision' should be positive (and "
                    "finite)", where, to_string(t));
}
}  // namespace detail

/// Gaussian mixture of n_components components over n_features, fitted by EM (T = float or double;
/// parameters are held in double). Each iteration records L(theta_t), the mean log-likelihood at the
/// parameters before its M-step (scikit-learn's lower_bounds_), and ELBO(q_t, theta_{t+1}) after it,
/// computed from the statistics alone: the staircase L(theta_t) <= ELBO(q_t, theta_{t+1}) <= L(theta_{t+1})
/// holds up to round-off when reg_covar = 0 (what holds for reg_covar > 0: README, "The ELBO staircase").
///
/// fit() has the strong guarantee: if it throws, the model keeps its previous state.
template <class T>
class GaussianMixture {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "mixtura::GaussianMixture<T>: T must be float or double");

 public:
  using Scalar = T;
  using Callback = std::function<bool(int restart, int iteration, const GmmIteration&)>;

  explicit GaussianMixture(GmmParams params = {}) : params_(params) {}

  const GmmParams& params() const { return params_; }
  void set_params(const GmmParams& params) { params_ = params; }
  /// Starting parameters used by the next fits (cleared by passing an empty struct).
  void set_initial_params(GmmInitialParams init) { initial_ = std::move(init); }
  /// Hard labels (one per row of the next fit's X, each in [0, n_components)) that start EM in place
  /// of `init`, as K-means labels do; an empty vector clears them. Caller-given weights, means and
  /// precisions still take precedence.
  void set_initial_labels(std::vector<std::int32_t> labels) { initial_labels_ = std::move(labels); }
  /// Called after every iteration of every restart; return false to stop the fit (throws Interrupted).
  void set_callback(Callback callback) { callback_ = std::move(callback); }

  /// Fits on X (n_samples x n_features) with optional sample weights (n_samples, >= 0).
  GaussianMixture& fit(MatrixView<T> X, VectorView<T> sample_weight = {}) {
    return fit_on(CpuBackend{params_.n_threads}, X, sample_weight);
  }

  /// The fit on a given backend (CpuBackend, CudaBackend): the loop is the same, only the data
  /// passes differ. X: host memory (MatrixView, RowMatrix; a device backend holds its copy for the
  /// whole fit) or device memory (DeviceMatrixView: read in place; the loop reaches its values only
  /// through the backend: the non-finite check, the feature moments and the initialisation statistics
  /// as device passes, the initial and re-seeded rows as small copies). sample_weight: host
  /// (VectorView, uploaded beside X) or, with device X, device memory (DeviceVectorView: read in place
  /// and checked on the device with the CPU's messages; copied to the host only for init =
  /// random_from_data). Same results as fit() on host copies of X and the weights.
  template <class Backend, class XView, class WView = VectorView<T>>
  GaussianMixture& fit_on(const Backend& be, const XView& X, const WView& sample_weight = {}) {
    return fit_data(be, detail::data_view_t<T, XView>(X), detail::weights_view_t<T, WView>(sample_weight));
  }

  /// The sufficient statistics of X under the fitted model: the E-step's N_k, S1_k, S2_k (around the
  /// shift they carry), sum w log p(x), sum w H(q), sum w, and the n_components worst-explained rows
  /// with their values (numbered from first_row: X's place in a larger data set). Merged over chunks
  /// (GmmStats::merge) and handed to update(), they give the batch fit's iteration: the same bits when
  /// the chunks are the pass's reduction groups merged in order (core/parallel.hpp), else within
  /// round-off. Small: O(K D^2), nothing per row.
  GmmStats statistics(MatrixView<T> X, VectorView<T> sample_weight = {}, Index first_row = 0) const {
    return statistics_on(CpuBackend{params_.n_threads}, X, sample_weight, first_row);
  }
  template <class Backend, class XView, class WView = VectorView<T>>
  GmmStats statistics_on(const Backend& be, const XView& X, const WView& sample_weight = {}, Index first_row = 0) const {
    return statistics_data(be, detail::data_view_t<T, XView>(X), detail::weights_view_t<T, WView>(sample_weight),
                           first_row);
  }

  /// One M-step from statistics (any model's, merged over any chunks): the fit's update, with
  /// reg_covar, the degenerate-component policy (re-seeds on the statistics' worst rows, floors scaled
  /// by their data variance; recorded in events()) and the ELBO staircase's record appended to the
  /// trace (converged() when its L moved by less than tol since the previous record; a fall within
  /// round-off is not applied: event roundoff_decrease, converged). The statistics'
  /// covariance type and sizes must match the parameters (and the fitted model's features). Clears the
  /// online-EM state: partial_fit goes on from the new model.
  GaussianMixture& update(const GmmStats& stats) {
    const char* where = "GaussianMixture::update";
    check_statistics(where, stats);
    detail::Stopwatch clock;
    State next = fitted_ ? state_ : State{};
    if (!fitted_) {
      next.n_features = stats.n_features;
      next.runs.emplace_back();
    }
    GmmRun& run = next.runs[static_cast<std::size_t>(next.best)];
    const double previous = run.trace.empty() ? -std::numeric_limits<double>::infinity() : run.trace.back().lower_bound;
    const double current = stats.log_likelihood / stats.weight;
    if (detail::roundoff_fall(previous, current)) {  // as fit: the step is dropped, the fit has converged
      next.events.push_back({GmmEvent::Kind::roundoff_decrease, next.best, run.n_iter, -1, -1, previous - current});
      run.converged = true;
      commit(std::move(next), GmmStreamState{});
      return *this;
    }
    GmmModel model = detail::update_from_statistics(stats, params_.reg_covar, &next.events, next.best, run.n_iter);
    append_record(run, stats, model, clock);
    run.converged = std::abs(run.lower_bound - previous) < params_.tol;  // as fit judges its iterations
    next.model = std::move(model);
    commit(std::move(next), GmmStreamState{});
    return *this;
  }

  /// Online (stepwise) EM on one chunk of a stream. The first call on an unfitted model fits the
  /// chunk (as fit()); on a fitted model (fit, set_model, a loaded file) it goes on from that model.
  /// Each later chunk t: its E-step statistics are blended into the running ones with step rho_t
  /// (GmmParams: learning_offset, learning_decay, half_life), the model becomes their M-step;
  /// components whose share falls below a floor keep it (event component_starved). The trace gains
  /// one record per chunk: the chunk's mean log-likelihood before the step and its ELBO after.
  GaussianMixture& partial_fit(MatrixView<T> X, VectorView<T> sample_weight = {}) {
    return partial_fit_on(CpuBackend{params_.n_threads}, X, sample_weight);
  }
  template <class Backend, class XView, class WView = VectorView<T>>
  GaussianMixture& partial_fit_on(const Backend& be, const XView& X, const WView& sample_weight = {}) {
    return partial_fit_data(be, detail::data_view_t<T, XView>(X), detail::weights_view_t<T, WView>(sample_weight));
  }
  /// Online EM's state (empty before partial_fit, and after fit, update and set_model).
  const GmmStreamState& stream_state() const { return stream_; }
  /// Restores a saved state (with the model it belongs to already set).
  void set_stream_state(GmmStreamState s) {
    const char* where = "GaussianMixture::set_stream_state";
    if (!s.empty()) {
      check_statistics(where, s.statistics);
      MIXTURA_EXPECTS(s.n_steps >= 1, "%s: n_steps must be >= 1, got %lld", where, static_cast<long long>(s.n_steps));
      MIXTURA_EXPECTS(static_cast<Index>(s.starved.size()) == s.statistics.n_components,
                      "%s: %zu starved flags for %lld components", where, s.starved.size(),
                      static_cast<long long>(s.statistics.n_components));
      MIXTURA_EXPECTS(fitted_, "%s: set the model first", where);
    }
    stream_ = std::move(s);
  }

  /// log p(x) of each row (higher = more typical).
  Eigen::VectorXd score_samples(MatrixView<T> X) const { return score_samples_on(CpuBackend{params_.n_threads}, X); }
  /// Weighted mean of score_samples.
  double score(MatrixView<T> X, VectorView<T> sample_weight = {}) const {
    return score_on(CpuBackend{params_.n_threads}, X, sample_weight);
  }
  /// Posterior probability of each component for each row, n_samples x n_components.
  RowMatrix<double> predict_proba(MatrixView<T> X) const { return predict_proba_on(CpuBackend{params_.n_threads}, X); }
  /// Most probable component of each row.
  std::vector<std::int32_t> predict(MatrixView<T> X) const { return predict_on(CpuBackend{params_.n_threads}, X); }
  /// log N(x | mu_k, Sigma_k) of each row under each component (without the mixing weight).
  RowMatrix<double> component_log_density(MatrixView<T> X) const {
    return component_log_density_on(CpuBackend{params_.n_threads}, X);
  }

  /// The scoring functions above on a given backend, for X in host memory (MatrixView, RowMatrix) or,
  /// on a device backend, in device memory (DeviceMatrixView: read in place; results in host memory).
  /// Each row's result depends only on that row (and on its index modulo the backend's block), not
  /// on the rows scored with it. score_on's weights in device memory are copied to the host (as many
  /// values as the scores that come back) and checked there, so its messages and bits are those of
  /// the host copy.
  template <class Backend, class XView>
  Eigen::VectorXd score_samples_on(const Backend& be, const XView& X) const {
    return score_samples_data(be, detail::data_view_t<T, XView>(X));
  }
  template <class Backend, class XView, class WView = VectorView<T>>
  double score_on(const Backend& be, const XView& X, const WView& sample_weight = {}) const {
    return score_data(be, detail::data_view_t<T, XView>(X), detail::weights_view_t<T, WView>(sample_weight));
  }
  template <class Backend, class XView>
  RowMatrix<double> predict_proba_on(const Backend& be, const XView& X) const {
    return predict_proba_data(be, detail::data_view_t<T, XView>(X));
  }
  template <class Backend, class XView>
  std::vector<std::int32_t> predict_on(const Backend& be, const XView& X) const {
    return predict_data(be, detail::data_view_t<T, XView>(X));
  }
  template <class Backend, class XView>
  RowMatrix<double> component_log_density_on(const Backend& be, const XView& X) const {
    return component_log_density_data(be, detail::data_view_t<T, XView>(X));
  }
  /// Bayesian information criterion on X (lower is better): -2 n score(X) + n_parameters log n.
  double bic(MatrixView<T> X) const { return bic_on(CpuBackend{params_.n_threads}, X); }
  /// Akaike information criterion on X (lower is better): -2 n score(X) + 2 n_parameters.
  double aic(MatrixView<T> X) const { return aic_on(CpuBackend{params_.n_threads}, X); }
  /// bic and aic on a given backend, for X in host or (on a device backend) device memory, through
  /// score_on: the same pass, the same bits.
  template <class Backend, class XView>
  double bic_on(const Backend& be, const XView& X) const {
    return information_criterion(Criterion::bic, be, detail::data_view_t<T, XView>(X));
  }
  template <class Backend, class XView>
  double aic_on(const Backend& be, const XView& X) const {
    return information_criterion(Criterion::aic, be, detail::data_view_t<T, XView>(X));
  }

  /// n_samples rows drawn from the fitted mixture, reproducibly from `seed`, with their components.
  std::pair<RowMatrix<T>, std::vector<std::int32_t>> sample(Index n_samples, std::uint64_t seed = 0) const {
    const GmmModel& m = fitted("sample").model;
    MIXTURA_EXPECTS(n_samples >= 1, "GaussianMixture::sample: n_samples must be >= 1, got %lld",
                    static_cast<long long>(n_samples));
    const Index K = m.n_components, D = m.n_features;
    const CounterRng rng(seed, 0);
    RowMatrix<T> x(n_samples, D);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n_samples));
    std::vector<Eigen::MatrixXd> chol(static_cast<std::size_t>(K));  // covariance = A A^T
    for (Index k = 0; k < K; ++k) chol[k] = Eigen::LLT<Eigen::MatrixXd>(m.covariance(k)).matrixL();
    // Row i reads counters i (2D + 1) .. i (2D + 1) + 2D: one uniform for the component, a pair
    // per feature for a Box-Muller normal.
    const std::uint64_t per_row = 2 * static_cast<std::uint64_t>(D) + 1;
    for (Index i = 0; i < n_samples; ++i) {
      const std::uint64_t base = static_cast<std::uint64_t>(i) * per_row;
      const double u = rng.uniform_at(base);
      double acc = 0;
      Index k = 0;
      for (; k < K - 1; ++k) {
        acc += m.weights[k];
        if (u < acc) break;
      }
      Eigen::VectorXd z(D);
      for (Index j = 0; j < D; ++j) {
        const double u1 = rng.uniform_open_at(base + 1 + 2 * static_cast<std::uint64_t>(j));
        const double u2 = rng.uniform_at(base + 2 + 2 * static_cast<std::uint64_t>(j));
        z[j] = std::sqrt(-2 * std::log(u1)) * std::cos(2 * 3.14159265358979323846 * u2);
      }
      const Eigen::VectorXd v = m.means.row(k).transpose() + chol[k] * z;
      for (Index j = 0; j < D; ++j) x(i, j) = static_cast<T>(v[j]);
      labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(k);
    }
    return {std::move(x), std::move(labels)};
  }

  bool is_fitted() const { return fitted_; }
  const GmmModel& model() const { return fitted("model").model; }
  const Eigen::VectorXd& weights() const { return model().weights; }
  const RowMatrix<double>& means() const { return model().means; }
  double lower_bound() const { return best_run().lower_bound; }
  int n_iter() const { return best_run().n_iter; }
  bool converged() const { return best_run().converged; }
  Index n_features_in() const { return fitted("n_features_in").n_features; }
  int best_restart() const { return fitted("best_restart").best; }
  const std::vector<GmmRun>& runs() const { return fitted("runs").runs; }
  const std::vector<GmmIteration>& trace() const { return best_run().trace; }
  const std::vector<GmmEvent>& events() const { return fitted("events").events; }

  /// Replaces the fitted state by a given model (for loading a saved model).
  void set_model(GmmModel model) {
    MIXTURA_EXPECTS(model.n_components >= 1 && model.n_features >= 1,
                    "GaussianMixture::set_model: empty model (%lld components, %lld features)",
                    static_cast<long long>(model.n_components), static_cast<long long>(model.n_features));
    State s;
    s.n_features = model.n_features;
    s.model = std::move(model);
    s.runs.emplace_back();
    commit(std::move(s), GmmStreamState{});
  }
  /// The same, keeping what the fit left: every restart (non-empty), its events and the kept restart.
  void set_model(GmmModel model, std::vector<GmmRun> runs, std::vector<GmmEvent> events, int best_restart) {
    const int n_runs = static_cast<int>(runs.size());
    MIXTURA_EXPECTS(n_runs >= 1, "GaussianMixture::set_model: no restarts given");
    MIXTURA_EXPECTS(best_restart >= 0 && best_restart < n_runs,
                    "GaussianMixture::set_model: best_restart %d is outside [0, %d)", best_restart, n_runs);
    set_model(std::move(model));
    state_.runs = std::move(runs);
    state_.events = std::move(events);
    state_.best = best_restart;
  }

 private:
  struct State {
    GmmModel model;
    std::vector<GmmRun> runs;
    std::vector<GmmEvent> events;
    int best = 0;
    Index n_features = 0;
  };

  const State& fitted(const char* what) const {
    if (!fitted_)
      throw NotFittedError(detail::format(
          "GaussianMixture::%s: this GaussianMixture instance is not fitted yet; call fit() first", what));
    return state_;
  }
  const GmmRun& best_run() const { return fitted("trace").runs[static_cast<std::size_t>(state_.best)]; }
  void commit(State s, GmmStreamState stream) {
    state_ = std::move(s);
    stream_ = std::move(stream);
    fitted_ = true;
  }

  /// Statistics that update() and the stream state may take: this mixture's type and sizes.
  void check_statistics(const char* where, const GmmStats& s) const {
    const Index K = fitted_ ? state_.model.n_components : params_.n_components;
    MIXTURA_EXPECTS(s.type == params_.covariance_type && s.n_components == K,
                    "%s: statistics of covariance_type %s with %lld components, expected %s with %lld", where,
                    to_string(s.type), static_cast<long long>(s.n_components), to_string(params_.covariance_type),
                    static_cast<long long>(K));
    if (fitted_) detail::check_features(where, s.n_features, state_.n_features);
    MIXTURA_EXPECTS(s.n_features >= 1, "%s: statistics of %lld features", where, static_cast<long long>(s.n_features));
    MIXTURA_EXPECTS(s.weight > 0 && std::isfinite(s.weight), "%s: statistics of total weight %g; need a positive finite weight",
                    where, s.weight);
    // Shifts are rows or means of data within +-kDataValueLimit; beyond, moving them overflows.
    MIXTURA_EXPECTS(s.shift.size() == 0 || s.shift.cwiseAbs().maxCoeff() <= kDataValueLimit,
                    "%s: statistics with a shift of %g, expected within +-%g", where,
                    s.shift.size() ? s.shift.cwiseAbs().maxCoeff() : 0.0, kDataValueLimit);
    MIXTURA_EXPECTS(s.worst.values.empty() || s.worst.values.size() == s.worst.rows.size(),
                    "%s: statistics with %zu worst rows but %zu row values", where, s.worst.rows.size(), s.worst.values.size());
  }

  /// The trace record of an update: L = the statistics' mean log-likelihood (under the model they came
  /// from), ELBO(q, new model) from the statistics alone.
  static void append_record(GmmRun& run, const GmmStats& s, const GmmModel& updated, const detail::Stopwatch& clock) {
    GmmIteration rec;
    rec.lower_bound = s.log_likelihood / s.weight;
    rec.entropy = s.entropy / s.weight;
    rec.elbo_after_m = detail::elbo_from_stats(s, updated);
    rec.seconds = clock.seconds();
    run.trace.push_back(rec);
    run.n_iter += 1;
    run.converged = false;
    run.lower_bound = rec.lower_bound;
    run.seconds += rec.seconds;
  }

  template <class Backend, template <class> class View, template <class> class WView>
  GmmStats statistics_data(const Backend& be, View<T> X, WView<T> w, Index first_row) const {
    static_assert(detail::satisfies_gmm_contract<Backend, T, View<T>, WView<T>>(), "");
    const char* where = "GaussianMixture::statistics";
    const bool gaps = check_input(where, be, X);
    check_weights_on(be, where, w, X.rows);
    MIXTURA_EXPECTS(first_row >= 0, "%s: first_row must be >= 0, got %lld", where, static_cast<long long>(first_row));
    [[maybe_unused]] const auto scope = data_scope(be);
    GmmStats s = e_step(be, X, w, state_.model, static_cast<std::size_t>(state_.model.n_components), gaps);
    s.unpack();
    attach_worst_values(be, X, s, first_row);
    return s;
  }
  /// The worst rows' values (their indices moved by first_row), so that the statistics stand alone; a
  /// missing value takes the model's mixture mean of its feature (a re-seeded mean must be finite).
  template <class Backend, template <class> class View>
  void attach_worst_values(const Backend& be, View<T> X, GmmStats& s, Index first_row) const {
    std::vector<Index> rows;
    for (const auto& r : s.worst.rows) rows.push_back(r.second);
    const RowMatrix<T> values = fetch_rows(be, X, rows);
    const Eigen::VectorXd mixture_mean = state_.model.means.transpose() * state_.model.weights;
    s.worst.values.clear();
    for (std::size_t j = 0; j < rows.size(); ++j) {
      Eigen::VectorXd v = values.row(static_cast<Index>(j)).transpose().template cast<double>();
      v = v.array().isNaN().select(mixture_mean, v);
      s.worst.values.push_back(std::move(v));
      s.worst.rows[j].second += first_row;
    }
  }

  /// The passes with the `gaps` flag where the backend takes rows with gaps (detail::takes_gaps; else
  /// check_input and fit refused X with a NaN, and gaps is false).
  template <class Backend, class XView, class WView>
  static GmmStats e_step(const Backend& be, XView X, WView w, const GmmModel& m, std::size_t n_worst, bool gaps) {
    if constexpr (detail::takes_gaps<Backend, XView, WView>()) return gmm_e_step(be, X, w, m, n_worst, gaps);
    else return gmm_e_step(be, X, w, m, n_worst);
  }
  template <class Backend, class XView>
  static void score_rows(const Backend& be, XView X, const GmmModel& m, double* log_p, std::int32_t* labels, bool gaps) {
    if constexpr (detail::takes_gaps<Backend, XView, VectorView<T>>()) gmm_score_rows(be, X, m, log_p, labels, gaps);
    else gmm_score_rows(be, X, m, log_p, labels);
  }
  template <class Backend, class XView, class Out>
  static void weighted_log_prob(const Backend& be, XView X, const GmmModel& m, Out&& out, bool gaps) {
    if constexpr (detail::takes_gaps<Backend, XView, VectorView<T>>())
      gmm_weighted_log_prob(be, X, m, std::forward<Out>(out), gaps);
    else gmm_weighted_log_prob(be, X, m, std::forward<Out>(out));
  }
  /// check_data_on, with NaN taken as a missing value where the backend takes gaps (a row with no
  /// observed value is still an error). Returns whether X has a gap.
  template <class Backend, template <class> class View>
  static bool check_data_gaps(const Backend& be, const char* where, View<T> X) {
    if constexpr (detail::takes_gaps<Backend, View<T>, VectorView<T>>()) {
      return detail::check_data_with_gaps(where, X, be.n_threads);
    } else {
      check_data_on(be, where, X);
      return false;
    }
  }

  template <class Backend, template <class> class View, template <class> class WView>
  GaussianMixture& partial_fit_data(const Backend& be, View<T> X, WView<T> w) {
    const char* where = "GaussianMixture::partial_fit";
    const GmmParams& p = params_;
    MIXTURA_EXPECTS(std::isfinite(p.learning_offset) && p.learning_offset >= 0,
                    "%s: learning_offset must be finite and >= 0, got %g", where, p.learning_offset);
    MIXTURA_EXPECTS(p.learning_decay > 0.5 && p.learning_decay <= 1, "%s: learning_decay must be in (0.5, 1], got %g",
                    where, p.learning_decay);
    MIXTURA_EXPECTS(std::isfinite(p.half_life) && p.half_life >= 0, "%s: half_life must be finite and >= 0, got %g",
                    where, p.half_life);
    if (!fitted_) {  // the first chunk: a batch fit, which then counts as step 1
      fit_data(be, X, w);
      stream_ = start_stream();
      return *this;
    }
    detail::Stopwatch clock;
    const bool gaps = check_input(where, be, X);
    check_weights_on(be, where, w, X.rows);
    GmmStreamState stream = stream_.empty() ? start_stream() : stream_;
    GmmStats chunk;
    {
      [[maybe_unused]] const auto scope = data_scope(be);
      chunk = e_step(be, X, w, state_.model, static_cast<std::size_t>(state_.model.n_components), gaps);
      chunk.unpack();
      attach_worst_values(be, X, chunk, 0);
    }
    State next = state_;
    GmmRun& run = next.runs[static_cast<std::size_t>(next.best)];
    const int iteration = run.n_iter;
    stream.n_steps += 1;
    detail::blend(stream.statistics, chunk, detail::stream_step(p, stream.n_steps, chunk.weight));
    detail::floor_starving(stream.statistics, stream.starved, &next.events, next.best, iteration);
    GmmModel model = detail::update_from_statistics(stream.statistics, p.reg_covar, &next.events, next.best, iteration);
    // Statistics EM itself made give a usable model (means within the data's limit); a state set or
    // loaded from elsewhere may not.
    bool usable = model.weights.allFinite() && model.means.allFinite() && model.diag_factor.allFinite() &&
                  (model.means.size() == 0 || model.means.cwiseAbs().maxCoeff() <= kDataValueLimit);
    for (const Eigen::MatrixXd& f : model.factor) usable = usable && f.allFinite();
    MIXTURA_EXPECTS(usable, "%s: the running statistics of online EM give a model that is not finite or has means "
                    "beyond +-%g: the stream state (set_stream_state, or a model file's stream_* sections) is not "
                    "one online EM makes", where, kDataValueLimit);
    append_record(run, chunk, model, clock);
    next.model = std::move(model);
    commit(std::move(next), std::move(stream));
    return *this;
  }
  GmmStreamState start_stream() const {
    GmmStreamState s;
    s.statistics = detail::model_statistics(state_.model, params_.reg_covar);
    s.n_steps = 1;
    s.starved.assign(static_cast<std::size_t>(state_.model.n_components), false);
    return s;
  }
  /// The checks before a pass under the fitted model; returns whether X has a gap (check_data_gaps).
  template <class Backend, template <class> class View>
  bool check_input(const char* where, const Backend& be, View<T> X) const {
    if (!fitted_)
      throw NotFittedError(detail::format("%s: this GaussianMixture instance is not fitted yet; call fit() first", where));
    const bool gaps = check_data_gaps(be, where, X);
    detail::check_features(where, X.cols, state_.n_features);
    return gaps;
  }

  /// With on_degenerate = raise: throws for the first event in events[from...] where scikit-learn's fit
  /// fails, a covariance that is not positive definite: floored, or re-seeded without reg_covar (an
  /// emptied component's covariance is then 0; with reg_covar > 0 it is reg_covar * I and fine).
  void refuse_degenerate(const std::vector<GmmEvent>& events, std::size_t from) const {
    if (params_.on_degenerate != DegeneratePolicy::raise) return;
    for (std::size_t i = from; i < events.size(); ++i) {
      const GmmEvent& e = events[i];
      const bool singular = e.kind == GmmEvent::Kind::covariance_floored ||
                            (e.kind == GmmEvent::Kind::component_reseeded && params_.reg_covar == 0);
      if (!singular) continue;
      throw InvalidArgument(detail::format(
          "GaussianMixture::fit: Fitting the mixture model failed because some components have ill-defined empirical "
          "covariance (for instance caused by singleton or collapsed samples). Try to decrease the number of "
          "components, increase reg_covar, or scale the input data. (on_degenerate = raise: %s, component %d, "
          "restart %d, iteration %d)", to_string(e.kind), e.component, e.restart, e.iteration));
    }
  }

  /// fit_on for a host or device view of X (View = MatrixView or DeviceMatrixView) and of the weights
  /// (WView = VectorView or, with device X, DeviceVectorView). Their values are reached only through the
  /// backend: check_data_on, check_weights_on, the passes, fetch_rows, host_weights (core/data_access.hpp).
  template <class Backend, template <class> class View, template <class> class WView>
  GaussianMixture& fit_data(const Backend& be, View<T> X, WView<T> sample_weight) {
    static_assert(detail::satisfies_gmm_contract<Backend, T, View<T>, WView<T>>(), "");
    const char* where = "GaussianMixture::fit";
    const GmmParams& p = params_;
    MIXTURA_EXPECTS(p.n_components >= 1, "%s: n_components must be >= 1, got %d", where, p.n_components);
    MIXTURA_EXPECTS(p.max_iter >= 0, "%s: max_iter must be >= 0, got %d", where, p.max_iter);
    MIXTURA_EXPECTS(p.n_init >= 1, "%s: n_init must be >= 1, got %d", where, p.n_init);
    MIXTURA_EXPECTS(std::isfinite(p.tol) && p.tol >= 0, "%s: tol must be finite and >= 0, got %g", where, p.tol);
    MIXTURA_EXPECTS(std::isfinite(p.reg_covar) && p.reg_covar >= 0, "%s: reg_covar must be finite and >= 0, got %g",
                    where, p.reg_covar);
    MIXTURA_EXPECTS(p.n_threads >= 0 && p.n_threads <= kMaxThreads, "%s: n_threads must be in [0, %d], got %d",
                    where, kMaxThreads, p.n_threads);
    const bool gaps = check_data_gaps(be, where, X);
    MIXTURA_EXPECTS(X.rows >= p.n_components, "%s: n_components (%d) > n_samples (%lld)", where, p.n_components,
                    static_cast<long long>(X.rows));
    check_weights_on(be, where, sample_weight, X.rows);
    check_initial(where, X.cols);
    if (!initial_labels_.empty()) {
      MIXTURA_EXPECTS(static_cast<Index>(initial_labels_.size()) == X.rows,
                      "%s: %zu initial labels for %lld rows", where, initial_labels_.size(),
                      static_cast<long long>(X.rows));
      for (std::size_t i = 0; i < initial_labels_.size(); ++i)
        MIXTURA_EXPECTS(initial_labels_[i] >= 0 && initial_labels_[i] < p.n_components,
                        "%s: initial label %d of row %zu is outside [0, n_components = %d)", where, initial_labels_[i],
                        i, p.n_components);
    }
    const bool warm = p.warm_start && fitted_;
    if (warm) detail::check_features(where, X.cols, state_.n_features);
    // init = random_from_data draws rows by weight on the host: device weights are copied once.
    std::vector<T> weights_copy;
    const bool draws_rows =
        !warm && !initial_.complete() && initial_labels_.empty() && p.init == GmmInit::random_from_data;
    const VectorView<T> w_host = draws_rows ? host_weights(be, sample_weight, weights_copy) : VectorView<T>{};
    if (draws_rows) {
      const Index positive = detail::count_positive(w_host, X.rows);
      MIXTURA_EXPECTS(positive >= p.n_components,
                      "%s: init = random_from_data needs n_components (%d) rows of positive weight, found %lld", where,
                      p.n_components, static_cast<long long>(positive));
    }
    [[maybe_unused]] const auto scope = data_scope(be);

    // Rows with gaps: the initialisation, the floors' scale and re-seeded rows use a copy of X with each
    // gap filled by its feature's observed mean; the E-steps read X itself (gmm/gaps.hpp).
    RowMatrix<T> filled;
    View<T> X_init = X;
    detail::FeatureMoments data;
    if constexpr (detail::takes_gaps<Backend, View<T>, WView<T>>()) {
      if (gaps) {
        data = detail::observed_feature_moments(where, X);
        filled = detail::filled_copy(X, data.mean);
        X_init = MatrixView<T>(filled);
      }
    }
    if (!gaps) data = gmm_feature_moments(be, X);
    detail::MStepContext ctx;
    ctx.reg_covar = p.reg_covar;
    ctx.data_variance = data.variance;
    const std::size_t n_worst = static_cast<std::size_t>(p.n_components);
    auto row_of = [&](Index i) -> Eigen::VectorXd {  // a re-seeded component's row: D values copied
      return fetch_rows(be, X_init, {i}).row(0).transpose().template cast<double>();
    };

    State next;
    next.n_features = X.cols;
    // max_iter = 0 keeps the initial parameters: with no iteration to rank restarts by, one restart.
    const int restarts = warm || p.max_iter == 0 ? 1 : p.n_init;
    for (int r = 0; r < restarts; ++r) {
      detail::Stopwatch clock;
      ctx.restart = r;
      ctx.iteration = -1;
      ctx.events = &next.events;
      GmmModel model = warm ? state_.model : initial_model(be, X_init, sample_weight, w_host, r, ctx, data);
      refuse_degenerate(next.events, 0);
      GmmRun run;
      run.init_seconds = clock.seconds();
      double lower_bound = warm ? state_.runs[static_cast<std::size_t>(state_.best)].lower_bound
                                : -std::numeric_limits<double>::infinity();
      for (int it = 0; it < p.max_iter; ++it) {
        detail::Stopwatch iter_clock;
        ctx.iteration = it;
        const GmmStats stats = e_step(be, X, sample_weight, model, n_worst, gaps);
        GmmIteration rec;
        rec.lower_bound = stats.log_likelihood / stats.weight;
        rec.entropy = stats.entropy / stats.weight;
        // EM never lowers L; a fall within round-off means the fixed point is reached. The step is
        // dropped (lower_bounds stay non-decreasing, nothing recorded is altered) and the fit ends.
        if (detail::roundoff_fall(lower_bound, rec.lower_bound)) {
          next.events.push_back({GmmEvent::Kind::roundoff_decrease, r, it, -1, -1, lower_bound - rec.lower_bound});
          run.converged = true;
          break;
        }
        const std::size_t events_before = next.events.size();
        GmmModel updated = detail::update_from_statistics(stats, p.reg_covar, ctx.events, r, it, row_of);
        refuse_degenerate(next.events, events_before);
        rec.elbo_after_m = detail::elbo_from_stats(stats, updated);
        model = std::move(updated);
        rec.seconds = iter_clock.seconds();
        run.trace.push_back(rec);
        run.n_iter = it + 1;
        const double previous = lower_bound;
        lower_bound = rec.lower_bound;
        if (callback_ && !callback_(r, it, rec))
          throw Interrupted(detail::format("GaussianMixture::fit: interrupted by the caller at restart %d, iteration %d", r, it));
        if (std::abs(lower_bound - previous) < p.tol) {
          run.converged = true;
          break;
        }
      }
      run.lower_bound = lower_bound;
      run.seconds = clock.seconds();
      if (r == 0 || run.lower_bound > next.runs[static_cast<std::size_t>(next.best)].lower_bound) {
        next.best = r;
        next.model = std::move(model);
      }
      next.runs.push_back(std::move(run));
    }
    commit(std::move(next), GmmStreamState{});
    return *this;
  }

  template <class Backend, template <class> class View>
  Eigen::VectorXd score_samples_data(const Backend& be, View<T> X) const {
    static_assert(detail::satisfies_gmm_scoring_contract<Backend, T, View<T>>(), "");
    const bool gaps = check_input("GaussianMixture::score_samples", be, X);
    Eigen::VectorXd out(X.rows);
    score_rows(be, X, state_.model, out.data(), static_cast<std::int32_t*>(nullptr), gaps);
    return out;
  }
  template <class Backend, template <class> class View, template <class> class WView>
  double score_data(const Backend& be, View<T> X, WView<T> weights) const {
    const Eigen::VectorXd s = score_samples_data(be, X);
    std::vector<T> weights_copy;
    const VectorView<T> sample_weight = host_weights(be, weights, weights_copy);  // device weights: one copy
    const double total = detail::check_weights("GaussianMixture::score", sample_weight, X.rows);
    double acc = 0;
    for (Index i = 0; i < X.rows; ++i) acc += detail::row_weight(sample_weight, i) * s[i];
    return acc / total;
  }
  enum class Criterion { bic, aic };
  /// -2 n score(X) + n_parameters (log n for BIC, 2 for AIC).
  template <class Backend, template <class> class View>
  double information_criterion(Criterion c, const Backend& be, View<T> X) const {
    const double n_parameters = fitted(c == Criterion::bic ? "bic" : "aic").model.n_parameters();
    const double n = static_cast<double>(X.rows);
    const double fit_term = -2 * score_data(be, X, VectorView<T>{}) * n;
    return fit_term + n_parameters * (c == Criterion::bic ? std::log(n) : 2.0);
  }
  template <class Backend, template <class> class View>
  RowMatrix<double> predict_proba_data(const Backend& be, View<T> X) const {
    static_assert(detail::satisfies_gmm_scoring_contract<Backend, T, View<T>>(), "");
    const bool gaps = check_input("GaussianMixture::predict_proba", be, X);
    const Index K = state_.model.n_components;
    RowMatrix<double> out(X.rows, K);
    weighted_log_prob(be, X, state_.model, [&](Index begin, Index rows, auto& s) {
      detail::normalise_block(s.lp, s.lp.rows(), s.log_p, s.entropy);
      out.middleRows(begin, rows) = s.lp.topRows(rows);
    }, gaps);
    return out;
  }
  template <class Backend, template <class> class View>
  std::vector<std::int32_t> predict_data(const Backend& be, View<T> X) const {
    static_assert(detail::satisfies_gmm_scoring_contract<Backend, T, View<T>>(), "");
    const bool gaps = check_input("GaussianMixture::predict", be, X);
    std::vector<std::int32_t> out(static_cast<std::size_t>(X.rows));
    score_rows(be, X, state_.model, static_cast<double*>(nullptr), out.data(), gaps);
    return out;
  }
  template <class Backend, template <class> class View>
  RowMatrix<double> component_log_density_data(const Backend& be, View<T> X) const {
    static_assert(detail::satisfies_gmm_scoring_contract<Backend, T, View<T>>(), "");
    const bool gaps = check_input("GaussianMixture::component_log_density", be, X);
    const Index K = state_.model.n_components;
    RowMatrix<double> out(X.rows, K);
    const Eigen::RowVectorXd log_w = state_.model.weights.array().log().matrix().transpose();
    weighted_log_prob(be, X, state_.model, [&](Index begin, Index rows, auto& s) {
      out.middleRows(begin, rows) = s.lp.topRows(rows).rowwise() - log_w;
    }, gaps);
    return out;
  }

  void check_initial(const char* where, Index D) const {
    const Index K = params_.n_components;
    const GmmInitialParams& in = initial_;
    if (in.weights.size()) {
      MIXTURA_EXPECTS(in.weights.size() == K, "%s: weights_init has %lld entries, expected n_components = %lld", where,
                      static_cast<long long>(in.weights.size()), static_cast<long long>(K));
      for (Index k = 0; k < K; ++k)
        MIXTURA_EXPECTS(std::isfinite(in.weights[k]) && in.weights[k] >= 0,
                        "%s: weights_init[%lld] = %g must be finite and >= 0", where, static_cast<long long>(k), in.weights[k]);
      MIXTURA_EXPECTS(std::abs(in.weights.sum() - 1.0) <= 1e-8, "%s: weights_init sums to %.12g, expected 1", where,
                      in.weights.sum());
    }
    if (in.means.size()) {
      MIXTURA_EXPECTS(in.means.rows() == K && in.means.cols() == D,
                      "%s: means_init has shape (%lld, %lld), expected (n_components, n_features) = (%lld, %lld)", where,
                      static_cast<long long>(in.means.rows()), static_cast<long long>(in.means.cols()),
                      static_cast<long long>(K), static_cast<long long>(D));
      MIXTURA_EXPECTS(in.means.allFinite(), "%s: means_init contains a non-finite value", where);
    }
    if (in.precisions.empty()) return;
    const CovarianceType t = params_.covariance_type;
    const Index want_n = t == CovarianceType::full ? K : 1;
    MIXTURA_EXPECTS(static_cast<Index>(in.precisions.size()) == want_n,
                    "%s: precisions_init has %lld matrices, expected %lld for covariance_type %s", where,
                    static_cast<long long>(in.precisions.size()), static_cast<long long>(want_n), to_string(t));
    for (std::size_t k = 0; k < in.precisions.size(); ++k) {
      const Eigen::MatrixXd& p = in.precisions[k];
      if (t == CovarianceType::full || t == CovarianceType::tied) {
        MIXTURA_EXPECTS(p.rows() == D && p.cols() == D, "%s: precisions_init[%zu] has shape (%lld, %lld), expected (%lld, %lld)",
                        where, k, static_cast<long long>(p.rows()), static_cast<long long>(p.cols()),
                        static_cast<long long>(D), static_cast<long long>(D));
        detail::checked_precision_factor(where, k, t, p);
      } else {
        const Index cols = t == CovarianceType::diag ? D : 1;
        MIXTURA_EXPECTS(p.rows() == K && p.cols() == cols,
                        "%s: precisions_init has shape (%lld, %lld), expected (%lld, %lld) for covariance_type %s", where,
                        static_cast<long long>(p.rows()), static_cast<long long>(p.cols()), static_cast<long long>(K),
                        static_cast<long long>(cols), to_string(t));
        detail::check_precision_values(where, t, p.data(), static_cast<std::size_t>(p.size()));
      }
    }
  }

  /// scikit-learn's M-step on one-hot responsibilities, around each label's first row (a point near
  /// its mean; the rows fetched from X, K copies of D values).
  template <class Backend, template <class> class View, template <class> class WView>
  GmmModel model_from_labels(const Backend& be, View<T> X, WView<T> w, const std::vector<std::int32_t>& labels,
                             const detail::MStepContext& ctx) const {
    const Index K = params_.n_components, D = X.cols;
    RowMatrix<double> shift = RowMatrix<double>::Zero(K, D);  // labels nobody has: around 0
    std::vector<Index> first_rows, first_labels;
    std::vector<bool> seen(static_cast<std::size_t>(K), false);
    for (Index i = 0; i < X.rows && static_cast<Index>(first_rows.size()) < K; ++i)
      if (!seen[labels[i]]) {
        seen[labels[i]] = true;
        first_rows.push_back(i);
        first_labels.push_back(labels[i]);
      }
    const RowMatrix<T> rows = fetch_rows(be, X, first_rows);
    for (std::size_t j = 0; j < first_rows.size(); ++j)
      shift.row(first_labels[j]) = rows.row(static_cast<Index>(j)).template cast<double>();
    const GmmStats st = gmm_label_stats(be, X, w, labels.data(), params_.covariance_type, shift);
    return detail::m_step(st, ctx, {}, {});
  }

  /// w_host: the weights as the host reads them (host_weights), for init = random_from_data only.
  template <class Backend, template <class> class View, template <class> class WView>
  GmmModel initial_model(const Backend& be, View<T> X, WView<T> w, VectorView<T> w_host, int restart,
                         const detail::MStepContext& ctx, const detail::FeatureMoments& data) const {
    const GmmParams& p = params_;
    const Index K = p.n_components, D = X.cols;
    GmmModel m;
    if (!initial_.complete() && !initial_labels_.empty()) {
      m = model_from_labels(be, X, w, initial_labels_, ctx);
    } else if (!initial_.complete()) {
      const CounterRng rng(p.seed, static_cast<std::uint64_t>(restart));
      switch (p.init) {
        case GmmInit::kmeans: {
          KMeans<T> km(detail::kmeans_init_params(p, restart));
          km.fit_on(be, X, w, MatrixView<T>{});
          m = model_from_labels(be, X, w, km.labels(), ctx);
          break;
        }
        case GmmInit::random: {
          const RowMatrix<double> shift = gmm_data_mean(be, X, data).replicate(K, 1);
          const GmmStats st = random_resp_stats(be, X, w, p.covariance_type, K, rng, shift);
          m = detail::m_step(st, ctx, {}, {});
          break;
        }
        case GmmInit::kmeans_plusplus:
          m = detail::model_on_rows(fetch_rows(be, X, kmeans_plusplus_rows(be, X, w, p.n_components, 0, rng)),
                                    p.covariance_type, ctx);
          break;
        case GmmInit::random_from_data:  // (enough rows of positive weight: checked by fit_data)
          m = detail::model_on_rows(fetch_rows(be, X, random_rows(X, w_host, p.n_components, rng, p.n_threads)),
                                    p.covariance_type, ctx);
          break;
      }
    } else {
      m = GmmModel(p.covariance_type, K, D);
    }
    if (initial_.weights.size()) m.weights = initial_.weights;
    if (initial_.means.size()) m.means = initial_.means;
    if (!initial_.precisions.empty()) {
      switch (p.covariance_type) {
        case CovarianceType::full:
        case CovarianceType::tied:
          for (std::size_t k = 0; k < initial_.precisions.size(); ++k)
            m.factor[k] = Eigen::LLT<Eigen::MatrixXd>(initial_.precisions[k]).matrixL();  // P = L L^T
          break;
        case CovarianceType::diag:
        case CovarianceType::spherical: m.diag_factor = initial_.precisions[0].array().sqrt(); break;
      }
    }
    return m;
  }

  GmmParams params_;
  GmmInitialParams initial_;
  std::vector<std::int32_t> initial_labels_;
  Callback callback_;
  State state_;
  GmmStreamState stream_;
  bool fitted_ = false;
};

}  // namespace mixtura
