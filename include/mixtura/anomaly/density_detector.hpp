#pragma once
/// mixtura::DensityAnomalyDetector: fit a density on (mostly) normal rows, score new rows by their
/// log-density, threshold without guessing, explain which features are off.

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mixtura/anomaly/params.hpp"
#include "mixtura/anomaly/scaling.hpp"
#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/gmm/gaps.hpp"
#include "mixtura/gmm/gaussian_mixture.hpp"
#include "mixtura/gmm/select.hpp"
#include "mixtura/kmeans/kmeans.hpp"

namespace mixtura {

/// Density-based anomaly detector (T = float or double). Features are scaled (DetectorParams::scaling),
/// a density is fitted in scaled units (a Gaussian mixture, or K-means centres with a variance per
/// cluster), and a row's score is its log-density in the ORIGINAL units (the scaling's Jacobian is
/// included), higher = more normal. decision_function = score - offset; predict gives +1 / -1.
///
/// With n_components = 0 the count is chosen by BIC among 1..max_components on the rows the
/// density is fitted on (counts whose density has as many free parameters as there are rows are
/// not tried). DetectorParams::trim fits twice, the second time without the training rows the first
/// fit scored lowest (rows that are not clean cannot buy a component of their own). The offset:
/// contamination > 0 flags that fraction of the training rows (scikit-learn's meaning); otherwise
/// ThresholdMethod::calibrate holds out calibration_fraction of the training rows (chosen by the
/// seed), fits on the rest and puts the offset at the
/// false_alarm_rate quantile of the held-out scores; ThresholdMethod::model_tail fits on all rows
/// and takes the same quantile of the scores of rows drawn from the fitted density (for one
/// component: the chi-square tail of the squared Mahalanobis distance).
///
/// Backends: fit, score_samples, decision_function and predict run their data passes on the CPU
/// backend; the *_on forms take a backend (CpuBackend, or CudaBackend from make_cuda_backend() with
/// mixtura/cuda.hpp) for the density's fits (every BIC candidate's K-means and EM, and its BIC), the
/// threshold's scores and the scores. X is host memory either way: the scaling, the calibration split,
/// method kmeans's cluster variances and the model-tail draws run on the host (O(N D) or less).
template <class T>
class DensityAnomalyDetector {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "mixtura::DensityAnomalyDetector<T>: T must be float or double");

 public:
  using Scalar = T;

  explicit DensityAnomalyDetector(DetectorParams params = {}) : params_(params) {}

  const DetectorParams& params() const { return params_; }
  void set_params(const DetectorParams& params) { params_ = params; }
  /// Called after every iteration of every K-means and EM fit behind the density (every BIC
  /// candidate's); return false to stop the fit (throws Interrupted, the detector keeps its state).
  void set_callback(std::function<bool()> keep_going) { keep_going_ = std::move(keep_going); }

  /// Fits on X (n_samples x n_features, at least 2 rows). Strong guarantee: on a throw the
  /// detector keeps its previous state.
  DensityAnomalyDetector& fit(MatrixView<T> X) { return fit_on(CpuBackend{params_.n_threads}, X); }
  /// fit with the data passes on backend `be` (X in host memory).
  template <class Backend>
  DensityAnomalyDetector& fit_on(const Backend& be, MatrixView<T> X) {
    const char* where = "DensityAnomalyDetector::fit";
    const DetectorParams& p = params_;
    check_params(where);
    const bool gaps = check_data_gaps<Backend>(where, X);
    MIXTURA_EXPECTS(X.rows >= 2, "%s: need n_samples >= 2, got n_samples = %lld", where,
                    static_cast<long long>(X.rows));
    State s;
    s.n_features = X.cols;
    s.scaling = fit_scaling(X, p.scaling, p.n_threads, gaps);
    RowMatrix<T> Z(X.rows, X.cols);
    scale_rows(X, s.scaling, 0, Z);

    // Rows the density is fitted on, and the held-out rows of the calibration.
    const bool calibrate = p.contamination == 0 && p.threshold == ThresholdMethod::calibrate;
    RowMatrix<T> fit_rows, held_rows;
    if (calibrate) {
      split_rows(where, Z, fit_rows, held_rows);
    }
    const RowMatrix<T>& F = calibrate ? fit_rows : Z;
    fit_density(be, s, view_of(F));
    if (p.trim != 0) {
      // Trimmed fit: set aside the rows the first fit finds least likely, fit again on the rest.
      RowMatrix<T> kept = trimmed_rows(be, s, F, gaps);
      s.n_trimmed = F.rows() - kept.rows();
      if (s.n_trimmed > 0) {
        s.selection.clear();
        s.kmeans = KMeans<T>();
        fit_density(be, s, view_of(kept));
      }
    }

    std::vector<double> scores;
    double q = p.false_alarm_rate;
    if (p.contamination > 0) {
      q = p.contamination;
      scores = to_vector(original_scores(be, s, view_of(Z), gaps));
    } else if (calibrate) {
      scores = to_vector(original_scores(be, s, view_of(held_rows), gaps));
      if (p.trim != 0) scores = untrimmed(std::move(scores));
    } else {
      scores = tail_scores(be, s, s.scaling.log_jacobian());
    }
    s.offset = detail::quantile(scores, q);
    s.score_median = detail::quantile(scores, 0.5);
    state_ = std::move(s);
    fitted_ = true;
    return *this;
  }

  /// Log-density of each row in the original units (higher = more normal), n_samples.
  Eigen::VectorXd score_samples(MatrixView<T> X) const { return score_samples_on(CpuBackend{params_.n_threads}, X); }
  /// score_samples - offset: negative for rows flagged as anomalous.
  Eigen::VectorXd decision_function(MatrixView<T> X) const {
    return decision_function_on(CpuBackend{params_.n_threads}, X);
  }
  /// +1 (normal) or -1 (anomalous) per row.
  std::vector<std::int32_t> predict(MatrixView<T> X) const { return predict_on(CpuBackend{params_.n_threads}, X); }

  /// score_samples, decision_function and predict with the scoring passes on backend `be` (X in host
  /// memory, scaled on the host block by block). A row's score depends only on its values and its
  /// index modulo 256, on every backend.
  template <class Backend>
  Eigen::VectorXd score_samples_on(const Backend& be, MatrixView<T> X) const {
    return scores_of(be, X, "score_samples", "DensityAnomalyDetector::score_samples");
  }
  template <class Backend>
  Eigen::VectorXd decision_function_on(const Backend& be, MatrixView<T> X) const {
    return score_samples_on(be, X).array() - fitted("decision_function").offset;
  }
  template <class Backend>
  std::vector<std::int32_t> predict_on(const Backend& be, MatrixView<T> X) const {
    const Eigen::VectorXd d = decision_function_on(be, X);
    std::vector<std::int32_t> out(static_cast<std::size_t>(d.size()));
    for (Index i = 0; i < d.size(); ++i) out[static_cast<std::size_t>(i)] = d[i] < 0 ? -1 : 1;
    return out;
  }

  /// Follows a stream (method gmm): scores the chunk X, lets its rows that were not flagged teach the
  /// density and moves the threshold, so that an anomaly does not teach the detector that it is normal.
  /// The first call on an unfitted detector fits X (as fit). Each later call, with the scores of X
  /// before the step: the rows scoring at least offset() go, scaled with the fit's scaling, to the
  /// mixture's online EM (GaussianMixture::partial_fit with params().half_life); every row's score
  /// joins the recent scores (the last max(200, ceil(half_life)) rows, 10 000 without a half-life),
  /// a flagged row's as the offset itself; once 50 are there, score_median() becomes their median
  /// and offset() moves with it, keeping the distance score_median() - offset() it had. Python's
  /// partial_fit takes the same step (tests/python/test_model_files.py compares them). Strong guarantee.
  DensityAnomalyDetector& partial_fit(MatrixView<T> X) { return partial_fit_on(CpuBackend{params_.n_threads}, X); }
  /// partial_fit with the scoring and online-EM passes on backend `be` (X in host memory).
  template <class Backend>
  DensityAnomalyDetector& partial_fit_on(const Backend& be, MatrixView<T> X) {
    const char* where = "DensityAnomalyDetector::partial_fit";
    check_params(where);
    MIXTURA_EXPECTS(params_.method == AnomalyMethod::gmm,
                    "%s: method kmeans is fitted in one batch; partial_fit adapts method gmm (its Gaussian "
                    "mixture's online EM)", where);
    if (!fitted_) {
      fit_on(be, X);
      state_.n_steps = 1;
      return *this;
    }
    const Eigen::VectorXd scores = scores_of(be, X, "partial_fit", where);  // checks X
    State s = state_;
    const Index D = X.cols;
    std::vector<Index> kept;
    for (Index i = 0; i < X.rows; ++i)
      if (scores[i] >= s.offset) kept.push_back(i);
    if (!kept.empty()) {
      RowMatrix<T> Z(static_cast<Index>(kept.size()), D);
      for (std::size_t r = 0; r < kept.size(); ++r) scale_row(X.row(kept[r]), s.scaling, D, Z.row(static_cast<Index>(r)).data());
      // The detector's parameters (a loaded mixture's are defaults): reg_covar, n_threads, half_life.
      GmmParams gp = density_params(static_cast<int>(s.density.model().n_components));
      gp.half_life = params_.half_life;
      s.density.set_params(gp);
      s.density.partial_fit_on(be, view_of(Z));
    }
    // A flagged row counts as lying at the threshold: its value teaches nothing, but the median still
    // sees how many rows fell below (so the threshold can come down when most rows are flagged).
    const double window = params_.half_life > 0 ? std::max(kStreamWindowMin, std::ceil(params_.half_life))
                                                : kStreamWindowDefault;
    for (Index i = 0; i < X.rows; ++i) s.recent_scores.push_back(std::max(scores[i], s.offset));
    if (static_cast<double>(s.recent_scores.size()) > window)
      s.recent_scores.erase(s.recent_scores.begin(),
                            s.recent_scores.end() - static_cast<std::ptrdiff_t>(window));
    if (!std::isfinite(s.score_median)) {  // a detector set from parts or loaded from an older file
      if (!kept.empty()) {
        std::vector<double> v;
        for (Index i : kept) v.push_back(scores[i]);
        s.score_median = detail::median(v);
      }
    } else if (static_cast<double>(s.recent_scores.size()) >= kStreamMedianMin) {
      const double gap = s.score_median - s.offset;
      std::vector<double> v = s.recent_scores;
      s.score_median = detail::median(v);
      s.offset = s.score_median - gap;
      MIXTURA_EXPECTS(std::isfinite(s.offset), "%s: the threshold became %g (scores of X: non-finite)", where,
                      s.offset);
    }
    s.n_steps += 1;
    state_ = std::move(s);
    return *this;
  }

  /// Per-row, per-feature contributions under the responsible component (see AnomalyExplanation).
  /// A row with gaps is explained under its observed features' marginal: a missing feature's
  /// contribution is NaN, an observed one's is that of the marginal (the same formula with the
  /// precision of the observed block, Sigma_oo^-1).
  AnomalyExplanation explain(MatrixView<T> X) const { return explain_on(CpuBackend{params_.n_threads}, X); }
  /// explain with its labelling pass on a CPU backend (CpuBackend, DispatchedCpuBackend). There is no
  /// device form: beside that pass each row takes a D x D product under its component, host work,
  /// and explanations are asked of the few flagged rows.
  template <class Backend>
  AnomalyExplanation explain_on(const Backend& be, MatrixView<T> X) const {
    static_assert(detail::is_host_cpu_backend<Backend>::value,
                  "mixtura::DensityAnomalyDetector::explain_on runs on a CPU backend (CpuBackend, "
                  "DispatchedCpuBackend): its per-row products are host work");
    const State& s = fitted("explain");
    check_input<Backend>("DensityAnomalyDetector::explain", X);
    const GmmModel& m = s.density.model();
    const Index K = m.n_components, D = m.n_features;
    std::vector<Eigen::MatrixXd> precision(static_cast<std::size_t>(K));
    std::vector<Eigen::VectorXd> inv_sd(static_cast<std::size_t>(K));
    for (Index k = 0; k < K; ++k) {
      precision[k] = m.precision(k);
      inv_sd[k] = precision[k].diagonal().cwiseSqrt().cwiseInverse();
    }
    const std::vector<Eigen::MatrixXd> gap_precision = detail::gap_precisions(m);
    AnomalyExplanation out;
    out.contributions.resize(X.rows, D);
    out.component.resize(static_cast<std::size_t>(X.rows));
    for_scaled_blocks(s, X, [&](Index begin, MatrixView<T> Z) {
      const std::vector<std::int32_t> comp = s.density.predict_on(be, Z);
      detail::for_blocks(Z.rows, 256, be.n_threads, [] { return Eigen::VectorXd(); },
                         [&](Eigen::VectorXd& d, Index b, Index e) {
                           for (Index r = b; r < e; ++r) {
                             const Index k = comp[static_cast<std::size_t>(r)];
                             d = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(Z.row(r), D).template cast<double>() -
                                 m.means.row(k).transpose();
                             if (d.array().isNaN().any())
                               out.contributions.row(begin + r) = gap_contributions(m, gap_precision, precision[k], k, d);
                             else
                               out.contributions.row(begin + r) = (precision[k] * d).cwiseProduct(inv_sd[k]).transpose();
                             out.component[static_cast<std::size_t>(begin + r)] = static_cast<std::int32_t>(k);
                           }
                         });
    });
    return out;
  }

  bool is_fitted() const { return fitted_; }
  double offset() const { return fitted("offset").offset; }
  /// The median of the scores the offset is a quantile of (held-out, training or model-drawn rows):
  /// with offset(), where the threshold sits within the normal rows' scores (streams move it with the
  /// median of recent scores). NaN when unknown (a detector set from parts or loaded from older files).
  double score_median() const { return fitted("score_median").score_median; }
  const ScalingFit& scaling() const { return fitted("scaling").scaling; }
  /// The density in scaled units (kmeans: spherical components at the centres, weights = cluster shares).
  const GmmModel& model() const { return fitted("model").density.model(); }
  /// The Gaussian mixture behind the scores (method gmm: the fitted one, with its ELBO trace).
  const GaussianMixture<T>& mixture() const { return fitted("mixture").density; }
  /// The K-means fit (method kmeans only).
  const KMeans<T>& kmeans() const {
    const State& s = fitted("kmeans");
    if (!s.kmeans.is_fitted())
      throw InvalidArgument("DensityAnomalyDetector::kmeans: the detector was not fitted with method kmeans");
    return s.kmeans;
  }
  int n_components() const { return static_cast<int>(model().n_components); }
  Index n_features_in() const { return fitted("n_features_in").n_features; }
  /// BIC of every count tried (empty when n_components was given); with trimming, of the second fit.
  const std::vector<DetectorCandidate>& selection() const { return fitted("selection").selection; }
  /// Training rows the trimmed fit set aside (0 without trimming).
  Index n_trimmed() const { return fitted("n_trimmed").n_trimmed; }
  /// partial_fit calls since the last fit (the one that fitted counts as 1; 0 after fit).
  std::int64_t n_steps() const { return fitted("n_steps").n_steps; }
  /// The recent scores the streaming threshold is the median of (a flagged row's as the offset then).
  const std::vector<double>& stream_recent_scores() const { return fitted("stream_recent_scores").recent_scores; }
  /// Replaces the streaming state (for loading a saved detector): n_steps >= 1 (method gmm), or 0 with
  /// no recent scores; the scores finite.
  void set_stream_state(std::int64_t n_steps, std::vector<double> recent_scores) {
    const char* where = "DensityAnomalyDetector::set_stream_state";
    fitted("set_stream_state");
    State& s = state_;
    MIXTURA_EXPECTS(n_steps >= 0, "%s: n_steps must be >= 0, got %lld", where, static_cast<long long>(n_steps));
    MIXTURA_EXPECTS(n_steps == 0 || params_.method == AnomalyMethod::gmm,
                    "%s: only method gmm streams, got n_steps = %lld", where, static_cast<long long>(n_steps));
    MIXTURA_EXPECTS(n_steps > 0 || recent_scores.empty(), "%s: %zu recent scores with n_steps = 0", where,
                    recent_scores.size());
    for (std::size_t i = 0; i < recent_scores.size(); ++i)
      MIXTURA_EXPECTS(std::isfinite(recent_scores[i]), "%s: recent_scores[%zu] = %g is not finite", where, i,
                      recent_scores[i]);
    s.n_steps = n_steps;
    s.recent_scores = std::move(recent_scores);
  }

  /// The GaussianMixture parameters of the density with n_components components (method gmm).
  GmmParams density_params(int n_components) const {
    GmmParams g;
    g.n_components = n_components;
    g.covariance_type = params_.covariance_type;
    g.tol = params_.tol;
    g.reg_covar = params_.reg_covar;
    g.max_iter = params_.max_iter;
    g.n_init = params_.n_init;
    g.seed = params_.seed;
    g.n_threads = params_.n_threads;
    return g;
  }
  /// The KMeans parameters of method kmeans with n_clusters clusters.
  KMeansParams kmeans_params(int n_clusters) const {
    KMeansParams kp;
    kp.n_clusters = n_clusters;
    kp.n_init = params_.n_init;
    kp.max_iter = std::max(params_.max_iter, 300);
    kp.seed = params_.seed;
    kp.n_threads = params_.n_threads;
    return kp;
  }

  /// Replaces the fitted state (for loading a saved detector): the scaling, the density in scaled
  /// units (kmeans: spherical), the offset. params().method must match how `model` scores.
  void set_fitted(ScalingFit scaling, GmmModel model, double offset) {
    GaussianMixture<T> density(density_params(static_cast<int>(model.n_components)));
    density.set_model(std::move(model));
    set_fitted(std::move(scaling), std::move(density), offset);
  }
  /// The same with the fitted estimators themselves: `density` (method gmm: the fitted mixture,
  /// with its trace), the BIC table and, for method kmeans, the K-means fit.
  void set_fitted(ScalingFit scaling, GaussianMixture<T> density, double offset,
                  std::vector<DetectorCandidate> selection = {}, KMeans<T> kmeans = KMeans<T>(),
                  double score_median = std::numeric_limits<double>::quiet_NaN(), Index n_trimmed = 0) {
    const char* where = "DensityAnomalyDetector::set_fitted";
    MIXTURA_EXPECTS(n_trimmed >= 0, "%s: n_trimmed must be >= 0, got %lld", where, static_cast<long long>(n_trimmed));
    const GmmModel& model = density.model();
    MIXTURA_EXPECTS(scaling.center.size() == model.n_features && scaling.scale.size() == model.n_features,
                    "%s: scaling has %lld / %lld entries but the model has %lld features", where,
                    static_cast<long long>(scaling.center.size()), static_cast<long long>(scaling.scale.size()),
                    static_cast<long long>(model.n_features));
    MIXTURA_EXPECTS(scaling.center.allFinite(), "%s: centres must be finite", where);
    for (Index j = 0; j < scaling.scale.size(); ++j)
      MIXTURA_EXPECTS(scaling.scale[j] >= detail::kMinScale && scaling.scale[j] <= detail::kMaxScale,
                      "%s: scale[%lld] = %g, expected in [%g, %g]", where, static_cast<long long>(j), scaling.scale[j],
                      detail::kMinScale, detail::kMaxScale);
    MIXTURA_EXPECTS(std::isfinite(offset), "%s: offset must be finite, got %g", where, offset);
    MIXTURA_EXPECTS(params_.method == AnomalyMethod::gmm || model.type == CovarianceType::spherical,
                    "%s: method kmeans scores with a spherical model, got covariance type '%s'", where,
                    to_string(model.type));
    MIXTURA_EXPECTS(!kmeans.is_fitted() || (params_.method == AnomalyMethod::kmeans &&
                                            kmeans.cluster_centers().rows() == model.n_components &&
                                            kmeans.cluster_centers().cols() == model.n_features),
                    "%s: the K-means fit must belong to method kmeans and match the model's %lld x %lld", where,
                    static_cast<long long>(model.n_components), static_cast<long long>(model.n_features));
    State s;
    s.n_features = model.n_features;
    s.scaling = std::move(scaling);
    s.density = std::move(density);
    s.kmeans = std::move(kmeans);
    s.selection = std::move(selection);
    s.offset = offset;
    s.score_median = score_median;
    s.n_trimmed = n_trimmed;
    state_ = std::move(s);
    fitted_ = true;
  }

 private:
  struct State {
    ScalingFit scaling;
    GaussianMixture<T> density;
    KMeans<T> kmeans;
    std::vector<DetectorCandidate> selection;
    double offset = 0;
    double score_median = std::numeric_limits<double>::quiet_NaN();
    Index n_features = 0;
    Index n_trimmed = 0;
    std::int64_t n_steps = 0;           // partial_fit's
    std::vector<double> recent_scores;  // partial_fit's, oldest first
  };

  // partial_fit's recent scores: at least this many rows with a half-life, this many without one; the
  // threshold moves once this many are there.
  static constexpr double kStreamWindowMin = 200, kStreamWindowDefault = 10000, kStreamMedianMin = 50;

  static MatrixView<T> view_of(const RowMatrix<T>& a) { return {a.data(), a.rows(), a.cols()}; }
  static std::vector<double> to_vector(const Eigen::VectorXd& v) { return {v.data(), v.data() + v.size()}; }

  void check_params(const char* where) const {
    const DetectorParams& p = params_;
    MIXTURA_EXPECTS(p.n_components >= 0, "%s: n_components must be >= 0 (0 = chosen by BIC), got %d", where,
                    p.n_components);
    MIXTURA_EXPECTS(p.max_components >= 1, "%s: max_components must be >= 1, got %d", where, p.max_components);
    MIXTURA_EXPECTS(std::isfinite(p.reg_covar) && p.reg_covar >= 0, "%s: reg_covar must be finite and >= 0, got %g",
                    where, p.reg_covar);
    MIXTURA_EXPECTS(p.contamination >= 0 && p.contamination <= 0.5,
                    "%s: contamination must be in [0, 0.5] (0 = use the threshold method), got %g", where,
                    p.contamination);
    MIXTURA_EXPECTS(p.false_alarm_rate > 0 && p.false_alarm_rate < 1, "%s: false_alarm_rate must be in (0, 1), got %g",
                    where, p.false_alarm_rate);
    MIXTURA_EXPECTS(p.calibration_fraction > 0 && p.calibration_fraction < 1,
                    "%s: calibration_fraction must be in (0, 1), got %g", where, p.calibration_fraction);
    MIXTURA_EXPECTS(p.trim == kTrimAuto || (p.trim >= 0 && p.trim < 0.5),
                    "%s: trim must be in [0, 0.5) or kTrimAuto (-1, \"auto\"), got %g", where, p.trim);
    MIXTURA_EXPECTS(p.n_init >= 1, "%s: n_init must be >= 1, got %d", where, p.n_init);
    MIXTURA_EXPECTS(p.max_iter >= 1, "%s: max_iter must be >= 1, got %d", where, p.max_iter);
    MIXTURA_EXPECTS(std::isfinite(p.tol) && p.tol >= 0, "%s: tol must be finite and >= 0, got %g", where, p.tol);
    MIXTURA_EXPECTS(p.n_threads >= 0 && p.n_threads <= kMaxThreads, "%s: n_threads must be in [0, %d], got %d",
                    where, kMaxThreads, p.n_threads);
    MIXTURA_EXPECTS(std::isfinite(p.half_life) && p.half_life >= 0, "%s: half_life must be finite and >= 0, got %g",
                    where, p.half_life);
  }

  /// score_samples_on, its errors naming `where` (fitted: what).
  template <class Backend>
  Eigen::VectorXd scores_of(const Backend& be, MatrixView<T> X, const char* what, const char* where) const {
    const State& s = fitted(what);
    const bool gaps = check_input<Backend>(where, X);
    Eigen::VectorXd out(X.rows);
    for_scaled_blocks(s, X,
                      [&](Index begin, MatrixView<T> Z) { out.segment(begin, Z.rows) = original_scores(be, s, Z, gaps); });
    return out;
  }

  /// The checks before scoring; returns whether X has a gap (check_data_gaps).
  template <class Backend>
  bool check_input(const char* where, MatrixView<T> X) const {
    const bool gaps = check_data_gaps<Backend>(where, X);
    detail::check_features(where, X.cols, state_.n_features);
    return gaps;
  }

  /// detail::check_data, with NaN a missing value for method gmm where Backend's Gaussian-mixture
  /// passes take gaps (a row with no observed value is still an error). Returns whether X has a gap.
  template <class Backend>
  bool check_data_gaps(const char* where, MatrixView<T> X) const {
    if constexpr (detail::takes_gaps<Backend, MatrixView<T>, VectorView<T>>()) {
      if (params_.method == AnomalyMethod::gmm) return detail::check_data_with_gaps(where, X, params_.n_threads);
      detail::check_data(where, X, params_.n_threads);
      return false;
    } else {
      detail::check_data(where, X, params_.n_threads);
      return false;
    }
  }

  /// The scores in the original units of scaled rows Z: log p(z) minus the scaling's log-Jacobian, the
  /// latter over a row's observed features only (log p(z_o) is a density of those). gaps: whether the
  /// input check found a NaN (else no row is searched for one).
  template <class Backend>
  Eigen::VectorXd original_scores(const Backend& be, const State& s, MatrixView<T> Z, bool gaps) const {
    return to_original_units(s, Z, z_scores(be, s, Z), gaps);
  }
  /// Log-densities z of the scaled rows Z in the original units (original_scores).
  static Eigen::VectorXd to_original_units(const State& s, MatrixView<T> Z, const Eigen::VectorXd& z, bool gaps) {
    Eigen::VectorXd out = z.array() - s.scaling.log_jacobian();
    for (Index r = 0; gaps && r < Z.rows; ++r) {
      const T* row = Z.row(r);
      bool gap = false;
      for (Index j = 0; j < Z.cols; ++j) gap = gap || std::isnan(row[j]);
      if (!gap) continue;
      double log_jacobian = 0;
      for (Index j = 0; j < Z.cols; ++j)
        if (!std::isnan(row[j])) log_jacobian += std::log(s.scaling.scale[j]);
      out[r] = z[r] - log_jacobian;
    }
    return out;
  }

  /// explain's row with gaps (d = z - mu_k, NaN where missing): the filled-in conditional mean makes
  /// (P d)_o = Sigma_oo^-1 d_o, and the marginal precision's diagonal is P_jj - (P_om P_mm^-1 P_mo)_jj.
  static Eigen::RowVectorXd gap_contributions(const GmmModel& m, const std::vector<Eigen::MatrixXd>& gap_precision,
                                              const Eigen::MatrixXd& precision, Index k, const Eigen::VectorXd& d) {
    const Index D = m.n_features;
    std::vector<char> missing(static_cast<std::size_t>(D));
    Eigen::VectorXd x(D), delta(D);
    for (Index j = 0; j < D; ++j) {
      missing[static_cast<std::size_t>(j)] = std::isnan(d[j]) ? 1 : 0;
      x[j] = d[j] + m.means(k, j);
    }
    const detail::GapPattern pattern(m, gap_precision, missing.data());
    pattern.log_prob(m, k, m.log_normaliser(k), x.data(), delta.data());
    const Eigen::VectorXd g = precision * delta;
    Eigen::RowVectorXd out = Eigen::RowVectorXd::Constant(D, std::numeric_limits<double>::quiet_NaN());
    for (std::size_t b = 0; b < pattern.observed.size(); ++b) {
      const Index j = pattern.observed[b];
      double p = precision(j, j);
      if (!pattern.chol.empty()) p -= pattern.schur_diagonal(m, k, b);
      out[j] = g[j] / std::sqrt(p);
    }
    return out;
  }

  const State& fitted(const char* what) const {
    if (!fitted_)
      throw NotFittedError(detail::format(
          "DensityAnomalyDetector::%s: this DensityAnomalyDetector instance is not fitted yet; call fit() first",
          what));
    return state_;
  }

  /// The held-out rows: round(calibration_fraction * n) rows with the smallest random keys.
  void split_rows(const char* where, const RowMatrix<T>& Z, RowMatrix<T>& fit_rows, RowMatrix<T>& held_rows) const {
    const Index n = Z.rows();
    const Index m = static_cast<Index>(std::llround(params_.calibration_fraction * static_cast<double>(n)));
    MIXTURA_EXPECTS(m >= 1 && n - m >= 2,
                    "%s: calibration needs at least 1 held-out and 2 fitting rows; calibration_fraction %g of "
                    "n_samples = %lld holds out %lld (use more rows, another fraction, contamination, or "
                    "threshold model-tail)",
                    where, params_.calibration_fraction, static_cast<long long>(n), static_cast<long long>(m));
    const CounterRng rng(params_.seed, 0x63616c6962ull);  // "calib"
    std::vector<std::pair<std::uint64_t, Index>> keys(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) keys[static_cast<std::size_t>(i)] = {rng.bits_at(static_cast<std::uint64_t>(i)), i};
    std::nth_element(keys.begin(), keys.begin() + m, keys.end());
    std::vector<char> held(static_cast<std::size_t>(n), 0);
    for (Index i = 0; i < m; ++i) held[static_cast<std::size_t>(keys[static_cast<std::size_t>(i)].second)] = 1;
    fit_rows.resize(n - m, Z.cols());
    held_rows.resize(m, Z.cols());
    Index f = 0, h = 0;
    for (Index i = 0; i < n; ++i) {
      if (held[static_cast<std::size_t>(i)]) held_rows.row(h++) = Z.row(i);
      else fit_rows.row(f++) = Z.row(i);
    }
  }

  /// The rows of F the trimmed fit keeps, in their order. Rows are ranked by their log-density under
  /// the first fit's components that hold more than the share to trim (kTrimAutoMinWeight with the
  /// fence), renormalised: a component that few enough rows to be trimmed could fill on their own
  /// does not vouch for its rows. Set aside: the share `trim` (contamination's with kTrimAuto when
  /// contamination > 0) with the lowest, ties to the earlier row; or with kTrimAuto the rows below
  /// Q1 - 3 IQR. At least 2 rows and the largest candidate count stay.
  template <class Backend>
  RowMatrix<T> trimmed_rows(const Backend& be, const State& s, const RowMatrix<T>& F, bool gaps) const {
    const Index n = F.rows();
    const double share = params_.trim == kTrimAuto ? params_.contamination : params_.trim;
    const Eigen::VectorXd score = supported_scores(be, s, view_of(F), gaps, share > 0 ? share : kTrimAutoMinWeight);
    std::vector<Index> order(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::sort(order.begin(), order.end(), [&](Index a, Index b) {
      return score[a] < score[b] || (score[a] == score[b] && a < b);
    });
    Index drop = 0;
    if (share > 0) {
      drop = static_cast<Index>(std::floor(share * static_cast<double>(n)));
    } else {
      const double fence = trim_fence(to_vector(score));
      while (drop < n && score[order[static_cast<std::size_t>(drop)]] < fence) ++drop;
    }
    const Index floor_rows = std::max<Index>(2, candidate_counts(n, F.cols()).back());
    drop = std::max<Index>(0, std::min(drop, n - floor_rows));
    std::vector<char> out(static_cast<std::size_t>(n), 0);
    for (Index i = 0; i < drop; ++i) out[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;
    RowMatrix<T> kept(n - drop, F.cols());
    for (Index i = 0, r = 0; i < n; ++i)
      if (!out[static_cast<std::size_t>(i)]) kept.row(r++) = F.row(i);
    return kept;
  }

  /// kTrimAuto's cut: Tukey's far-out fence Q1 - 3 IQR of the scores.
  static double trim_fence(std::vector<double> v) {
    const double q1 = detail::quantile(v, 0.25), q3 = detail::quantile(v, 0.75);
    return q1 - kTrimFenceIqr * (q3 - q1);
  }

  /// The held-out scores a trimmed fit calibrates on: without the share `trim` with the lowest (or with
  /// kTrimAuto those below Q1 - 3 IQR of these scores), so that faulty training rows, which a trimmed
  /// density scores low, do not pull the threshold down among themselves.
  std::vector<double> untrimmed(std::vector<double> scores) const {
    const std::size_t m = scores.size();
    std::sort(scores.begin(), scores.end());
    std::size_t drop = 0;
    if (params_.trim > 0) {
      drop = static_cast<std::size_t>(std::floor(params_.trim * static_cast<double>(m)));
    } else {
      const double fence = trim_fence(scores);
      while (drop < m && scores[drop] < fence) ++drop;
    }
    drop = std::min(drop, m - 1);  // one row at least places the threshold
    return {scores.begin() + static_cast<std::ptrdiff_t>(drop), scores.end()};
  }

  /// Log-density (original units) of scaled rows Z under the components of s's density whose weight
  /// exceeds min_weight, their weights renormalised (the heaviest component if none does).
  template <class Backend>
  Eigen::VectorXd supported_scores(const Backend& be, const State& s, MatrixView<T> Z, bool gaps,
                                   double min_weight) const {
    const GmmModel& m = s.density.model();
    Index heaviest = 0;
    m.weights.maxCoeff(&heaviest);
    std::vector<Index> kept;
    for (Index k = 0; k < m.n_components; ++k)
      if (m.weights[k] > min_weight || k == heaviest) kept.push_back(k);
    double total = 0;
    for (Index k : kept) total += m.weights[k];
    const RowMatrix<double> lcd = s.density.component_log_density_on(be, Z);
    Eigen::VectorXd z(Z.rows);
    for (Index i = 0; i < Z.rows; ++i) {
      double top = -std::numeric_limits<double>::infinity();
      for (Index k : kept) top = std::max(top, std::log(m.weights[k] / total) + lcd(i, k));
      double sum = 0;
      for (Index k : kept) sum += std::exp(std::log(m.weights[k] / total) + lcd(i, k) - top);
      z[i] = top + std::log(sum);
    }
    return to_original_units(s, Z, z, gaps);
  }

  /// 1..max_components, stopping before the first count whose density has at least as many free
  /// parameters as there are rows to fit (its BIC would rest on nothing).
  std::vector<int> candidate_counts(Index n_rows, Index n_features) const {
    if (params_.n_components > 0) return {params_.n_components};
    const CovarianceType type =
        params_.method == AnomalyMethod::gmm ? params_.covariance_type : CovarianceType::spherical;
    std::vector<int> counts{1};
    for (int k = 2; k <= std::min<Index>(params_.max_components, n_rows); ++k) {
      if (GmmModel(type, k, n_features).n_parameters() >= static_cast<double>(n_rows)) break;
      counts.push_back(k);
    }
    return counts;
  }

  /// The density on the scaled rows F, every fit and BIC on `be`; F stays on the backend (one upload to
  /// a GPU) until the selection is done.
  template <class Backend>
  void fit_density(const Backend& be, State& s, MatrixView<T> F) const {
    const DetectorParams& p = params_;
    const std::vector<int> counts = candidate_counts(F.rows, F.cols);
    MIXTURA_EXPECTS(counts.back() <= F.rows, "DensityAnomalyDetector::fit: n_components (%d) > rows to fit (%lld)",
                    counts.back(), static_cast<long long>(F.rows));
    const auto scope = data_scope(be);
    if (p.method == AnomalyMethod::gmm) {
      if (counts.size() == 1) {
        s.density = GaussianMixture<T>(density_params(counts[0]));
        s.density.set_callback(gmm_callback());
        s.density.fit_on(be, F);
        s.density.set_callback({});
        return;
      }
      GmmSelection<T> sel = select_gaussian_mixture_on(be, F, counts, {p.covariance_type}, density_params(1), {},
                                                       gmm_callback(), kmeans_callback());
      sel.model.set_callback({});
      for (const GmmCandidate& c : sel.table) s.selection.push_back({c.n_components, c.bic});
      s.density = std::move(sel.model);
      return;
    }
    double best_bic = std::numeric_limits<double>::infinity();
    for (int k : counts) {
      KMeans<T> km(kmeans_params(k));
      km.set_callback(kmeans_callback());
      km.fit_on(be, F);
      km.set_callback({});
      GaussianMixture<T> density(density_params(k));
      density.set_model(cluster_model(F, km));
      // BIC of the hard-assignment density: every row counted under its best component.
      const Eigen::VectorXd ll = hard_scores(be, density.model(), F);
      const double n = static_cast<double>(F.rows);
      const double bic = -2 * ll.sum() + density.model().n_parameters() * std::log(n);
      if (counts.size() > 1) s.selection.push_back({k, bic});
      if (bic < best_bic) {
        best_bic = bic;
        s.density = std::move(density);
        s.kmeans = std::move(km);
      }
    }
  }

  /// Spherical components at the K-means centres: variance s_k = mean squared distance per
  /// feature of the cluster's rows + reg_covar, weight = the cluster's share of the rows. On the host
  /// on every backend, like the scaling: one O(N D) walk with the fit's labels, which are on the host
  /// (the backend's kmeans_distances_to_assigned would add its distances in another order, changing
  /// the CPU's bits).
  GmmModel cluster_model(MatrixView<T> F, const KMeans<T>& km) const {
    const RowMatrix<T>& c = km.cluster_centers();
    const Index K = c.rows(), D = c.cols();
    GmmModel m(CovarianceType::spherical, K, D);
    m.means = c.template cast<double>();
    Eigen::VectorXd count = Eigen::VectorXd::Zero(K), ss = Eigen::VectorXd::Zero(K);
    const auto& labels = km.labels();
    for (Index i = 0; i < F.rows; ++i) {
      const Index k = labels[static_cast<std::size_t>(i)];
      double d2 = 0;
      for (Index j = 0; j < D; ++j) {
        const double d = static_cast<double>(F.row(i)[j]) - m.means(k, j);
        d2 += d * d;
      }
      count[k] += 1;
      ss[k] += d2;
    }
    for (Index k = 0; k < K; ++k) {
      const double var = (count[k] > 0 ? ss[k] / (count[k] * static_cast<double>(D)) : 0) + params_.reg_covar;
      MIXTURA_EXPECTS(var > 0, "DensityAnomalyDetector::fit: cluster %lld has zero spread and reg_covar = 0; "
                      "set reg_covar > 0", static_cast<long long>(k));
      m.diag_factor(k, 0) = 1 / std::sqrt(var);
    }
    m.weights = count / static_cast<double>(F.rows);
    return m;
  }

  /// max_k log(pi_k N(z | component k)) per row, from the backend's weighted log-densities (on a GPU
  /// they cross PCIe, K doubles a row: K <= max_components is small).
  template <class Backend>
  Eigen::VectorXd hard_scores(const Backend& be, const GmmModel& m, MatrixView<T> Z) const {
    Eigen::VectorXd out(Z.rows);
    gmm_weighted_log_prob(be, Z, m, [&](Index begin, Index rows, auto& s) {
      out.segment(begin, rows) = s.lp.topRows(rows).rowwise().maxCoeff();
    });
    return out;
  }

  /// Log-density of scaled rows under the fitted density (scaled units).
  template <class Backend>
  Eigen::VectorXd z_scores(const Backend& be, const State& s, MatrixView<T> Z) const {
    if (params_.method == AnomalyMethod::gmm) return s.density.score_samples_on(be, Z);
    return hard_scores(be, s.density.model(), Z);
  }

  /// Scores (original units) of rows drawn from the fitted density: enough for the quantile to
  /// rest on >= 100 rows below it. The draws are made on the host, scored on `be`; each chunk is its
  /// own pass outside any data scope (a freed chunk's address may come back for the next one).
  template <class Backend>
  std::vector<double> tail_scores(const Backend& be, const State& s, double log_jacobian) const {
    const Index total = std::max<Index>(100000, static_cast<Index>(std::ceil(100 / params_.false_alarm_rate)));
    const Index chunk = 20000;
    const CounterRng keys(params_.seed, 0x7461696cull);  // "tail"
    std::vector<double> out;
    out.reserve(static_cast<std::size_t>(total));
    for (Index begin = 0, c = 0; begin < total; begin += chunk, ++c) {
      const Index rows = std::min(chunk, total - begin);
      const auto drawn = s.density.sample(rows, keys.bits_at(static_cast<std::uint64_t>(c)));
      const Eigen::VectorXd z = z_scores(be, s, view_of(drawn.first));
      for (Index i = 0; i < rows; ++i) out.push_back(z[i] - log_jacobian);
    }
    return out;
  }

  /// Calls f(begin, scaled rows) for blocks of X, so that no full scaled copy is held.
  template <class F>
  void for_scaled_blocks(const State& s, MatrixView<T> X, F&& f) const {
    const Index block = 65536;
    RowMatrix<T> Z;
    for (Index begin = 0; begin < X.rows; begin += block) {
      Z.resize(std::min(block, X.rows - begin), X.cols);
      scale_rows(X, s.scaling, begin, Z);
      f(begin, view_of(Z));
    }
  }

  /// The callbacks of the fits behind the density: keep_going_, or none.
  typename GaussianMixture<T>::Callback gmm_callback() const {
    if (!keep_going_) return {};
    return [this](int, int, const GmmIteration&) { return keep_going_(); };
  }
  typename KMeans<T>::Callback kmeans_callback() const {
    if (!keep_going_) return {};
    return [this](int, int, const KMeansIteration&) { return keep_going_(); };
  }

  DetectorParams params_;
  std::function<bool()> keep_going_;
  State state_;
  bool fitted_ = false;
};

}  // namespace mixtura
