#pragma once
/// mixtura::MiniBatchKMeans: K-means on random mini-batches with a learning rate per centre (Sculley
/// 2010, with scikit-learn's early stopping and reassignment of starved centres). Each batch goes
/// through KMeans' assignment pass; the step is the update of its statistics (kmeans/stats.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/core/timer.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"
#include "mixtura/kmeans/init.hpp"
#include "mixtura/kmeans/params.hpp"
#include "mixtura/kmeans/sparse_pass.hpp"
#include "mixtura/kmeans/statistics.hpp"

namespace mixtura {

/// Parameters of MiniBatchKMeans; names and meanings follow scikit-learn's MiniBatchKMeans.
struct MiniBatchKMeansParams {
  int n_clusters = 8;                             ///< K, number of centres (>= 1)
  KMeansInit init = KMeansInit::kmeans_plusplus;  ///< initialisation method (on init_size random rows)
  int max_iter = 100;                             ///< passes over the data: at most max_iter * n_samples / batch_size steps
  Index batch_size = 1024;                        ///< rows per mini-batch (>= 1; at most n_samples are used)
  double tol = 0.0;                               ///< stop when a step's squared centre shift <= tol * mean feature variance (0: off)
  int max_no_improvement = 10;                    ///< stop after this many steps without a lower smoothed distortion (< 0: off)
  Index init_size = 0;                            ///< rows the initialisation sees; 0: 3 * batch_size (at least 3 * n_clusters)
  int n_init = 1;                                 ///< initialisations; the lowest distortion on init_size random rows wins
  double reassignment_ratio = 0.01;               ///< centres whose count is below this fraction of the largest move to random rows
  std::uint64_t seed = 0;                         ///< key of the counter-based random numbers (batches, init, reassignment)
  int n_local_trials = 0;                         ///< k-means++ candidates per step; 0 = 2 + floor(ln K)
  int n_threads = 0;                              ///< OpenMP threads of each batch's pass; 0 = OpenMP's default
  bool compute_labels = true;                     ///< fit: labels and inertia of every row at the end (one more pass)
};

/// One mini-batch step.
struct MiniBatchStep {
  double distortion_assign = 0;  ///< J of the batch under the centres before the step (sum of w_i ||x_i - mu||^2)
  double distortion_update = 0;  ///< J of the same rows and labels under the centres after it (from the statistics)
  double center_shift = 0;       ///< sum_k ||mu_k^new - mu_k^old||^2
  int n_reassigned = 0;          ///< starved centres moved to random rows of the batch
  double seconds = 0;            ///< wall time of the step
};

/// A starved centre moved to a row (reassignment_ratio).
struct MiniBatchEvent {
  std::int64_t step = 0;  ///< the step (0-based, counted over fit and partial_fit calls)
  int cluster = 0;        ///< the centre moved
  Index row = -1;         ///< the row it moved to: a row of fit's X, or of the partial_fit call's X
};

/// What a mini-batch fit carries from one step to the next: partial_fit resumes from it.
template <class T>
struct MiniBatchKMeansState {
  RowMatrix<T> centers;                ///< n_clusters x n_features
  std::vector<double> counts;          ///< [K] weight absorbed by each centre (its inverse is the learning rate)
  std::int64_t n_steps = 0;            ///< steps taken
  std::int64_t n_since_reassign = 0;   ///< rows since the last reassignment check
};

/// What a fit records besides its state (a model file carries it; set_state restores it).
struct MiniBatchKMeansRecord {
  std::vector<std::int32_t> labels;    ///< of the last fit's or partial_fit's rows (empty: not computed)
  double inertia = 0;                  ///< their weighted distortion
  int n_iter = 0;                      ///< passes over the data the last fit's steps amount to
  std::vector<MiniBatchStep> trace;    ///< the last trace.size() <= n_steps steps (all since the fit, unless set_state)
  std::vector<MiniBatchEvent> events;  ///< reassignments in those steps
};

namespace detail {
/// Streams of the counter-based generator (restart r of the initialisation uses stream r, as KMeans).
inline constexpr std::uint64_t kStreamValidationRows = 1ull << 32;
inline constexpr std::uint64_t kStreamInitRows = 2ull << 32;   // + restart
inline constexpr std::uint64_t kStreamBatches = 3ull << 32;
inline constexpr std::uint64_t kStreamReassign = 4ull << 32;   // + step

/// m rows of [0, n) drawn uniformly with replacement: counters [first, first + m) of rng.
inline std::vector<Index> uniform_rows(const CounterRng& rng, std::uint64_t first, Index m, Index n) {
  std::vector<Index> rows(static_cast<std::size_t>(m));
  for (Index j = 0; j < m; ++j)
    rows[j] = std::min(n - 1, static_cast<Index>(rng.uniform_at(first + static_cast<std::uint64_t>(j)) * n));
  return rows;
}

/// Rows drawn with replacement with probability proportional to their weight, by bisecting the
/// cumulative weights (O(log n) a draw; unit weights: uniform).
class WeightedRows {
 public:
  template <class T>
  WeightedRows(VectorView<T> w, Index n) : n_(n) {
    if (w.empty()) return;
    cum_.resize(static_cast<std::size_t>(n));
    double acc = 0;
    for (Index i = 0; i < n; ++i) cum_[i] = acc += static_cast<double>(w[i]);
  }
  Index draw(double u) const {
    if (cum_.empty()) return std::min(n_ - 1, static_cast<Index>(u * n_));
    const double total = cum_.back();
    auto it = std::upper_bound(cum_.begin(), cum_.end(), u * total);
    if (it == cum_.end()) it = std::lower_bound(cum_.begin(), cum_.end(), total);  // round-off: last positive row
    return static_cast<Index>(it - cum_.begin());
  }

 private:
  Index n_;
  std::vector<double> cum_;
};

/// The distinct values among the rows of positive weight of X, in the order of their hashes
/// (core/row_hash.hpp): a row of each (the first in that order) and the weight of the rows equal to it.
/// A row of integer weight w gives what w copies of it of unit weight give, in any row order.
struct DistinctRows {
  std::vector<Index> first;
  std::vector<double> mass;
  Index size() const { return static_cast<Index>(first.size()); }
};
template <class XView, class T>
DistinctRows distinct_rows(const XView& X, VectorView<T> w) {
  const std::vector<RowHash> hash = row_hashes(CpuBackend{1}, X);
  std::vector<Index> order;
  for (Index i = 0; i < X.rows; ++i)
    if (row_weight(w, i) > 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return hash[a] < hash[b]; });
  DistinctRows v;
  for (std::size_t p = 0; p < order.size(); ++p) {
    if (p == 0 || !(hash[order[p]] == hash[order[p - 1]])) {
      v.first.push_back(order[p]);
      v.mass.push_back(0.0);
    }
    v.mass.back() += row_weight(w, order[p]);
  }
  return v;
}

/// Up to m of the values drawn without replacement, each with probability proportional to its weight
/// among those left (counters [0, m) of rng), as rows of X: a value drawn is not drawn again. Fewer
/// than m when fewer values are left.
inline std::vector<Index> draw_distinct(const DistinctRows& values, Index m, const CounterRng& rng) {
  const std::vector<double>& mass = values.mass;
  // A sum tree over the values' masses: a draw descends it in O(log n); a drawn value's leaf is set to 0
  // and its ancestors are added again from their children (no running subtraction, no drift).
  const std::size_t nv = mass.size();
  std::size_t leaves = 1;
  while (leaves < nv) leaves *= 2;
  std::vector<double> tree(2 * leaves, 0.0);
  std::copy(mass.begin(), mass.end(), tree.begin() + static_cast<std::ptrdiff_t>(leaves));
  for (std::size_t t = leaves - 1; t >= 1; --t) tree[t] = tree[2 * t] + tree[2 * t + 1];
  std::vector<Index> out;
  for (Index j = 0; j < m && tree[1] > 0; ++j) {
    double target = rng.uniform_at(static_cast<std::uint64_t>(j)) * tree[1];
    std::size_t t = 1;
    while (t < leaves) {
      if (target < tree[2 * t]) {
        t = 2 * t;
      } else {
        target -= tree[2 * t];
        t = 2 * t + 1;
      }
    }
    if (!(tree[t] > 0))  // round-off past the last value of positive mass: that value
      for (t = 1; t < leaves;) t = tree[2 * t + 1] > 0 ? 2 * t + 1 : 2 * t;
    out.push_back(values.first[t - leaves]);
    tree[t] = 0;
    for (t /= 2; t >= 1; t /= 2) tree[t] = tree[2 * t] + tree[2 * t + 1];
  }
  return out;
}

/// Rows `rows` of X into `out` (rows.size() x X.cols) and their weights into `w_out` (if w is given).
template <class T>
void gather_rows(MatrixView<T> X, VectorView<T> w, const std::vector<Index>& rows, RowMatrix<T>& out,
                 std::vector<T>& w_out) {
  out.resize(static_cast<Index>(rows.size()), X.cols);
  for (std::size_t j = 0; j < rows.size(); ++j)
    std::copy_n(X.row(rows[j]), X.cols, out.row(static_cast<Index>(j)).data());
  w_out.clear();
  if (!w.empty())
    for (const Index r : rows) w_out.push_back(w[r]);
}

/// Rows `rows` of sparse X into `out` (a CSR matrix of its own) and their weights into `w_out`.
template <class T>
void gather_rows(const CsrMatrixView<T>& X, VectorView<T> w, const std::vector<Index>& rows, CsrRows<T>& out,
                 std::vector<T>& w_out) {
  out.assign_rows(X, rows);
  w_out.clear();
  if (!w.empty())
    for (const Index r : rows) w_out.push_back(w[r]);
}

/// What gather_rows fills for a view of X (dense rows or CSR rows), and the view of it.
template <class T>
RowMatrix<T> batch_of(MatrixView<T>);
template <class T>
CsrRows<T> batch_of(const CsrMatrixView<T>&);
template <class XView>
using batch_t = decltype(batch_of(std::declval<XView>()));
template <class T>
MatrixView<T> view_of(const RowMatrix<T>& b) {
  return MatrixView<T>(b);
}
template <class T>
CsrMatrixView<T> view_of(const CsrRows<T>& b) {
  return b.view();
}

/// scikit-learn's smoothed batch distortion and its early stopping, for fit.
struct MiniBatchConvergence {
  double ewa = std::numeric_limits<double>::quiet_NaN(), ewa_min = std::numeric_limits<double>::quiet_NaN();
  int no_improvement = 0;

  /// Whether to stop after step `step` (0-based) whose batch of `batch` rows (of n) had mean
  /// distortion `mean` and moved the centres by `shift`. The first step is ignored (its distortion
  /// is the initialisation's).
  bool stop(std::int64_t step, double mean, double shift, Index batch, Index n, double tol_abs, int max_no_improvement) {
    if (step == 0) return false;
    if (std::isnan(ewa)) {
      ewa = mean;
    } else {
      const double alpha = std::min(1.0, static_cast<double>(batch) * 2.0 / static_cast<double>(n + 1));
      ewa = ewa * (1 - alpha) + mean * alpha;
    }
    if (tol_abs > 0 && shift <= tol_abs) return true;
    if (std::isnan(ewa_min) || ewa < ewa_min) {
      no_improvement = 0;
      ewa_min = ewa;
    } else {
      ++no_improvement;
    }
    return max_no_improvement >= 0 && no_improvement >= max_no_improvement;
  }
};
}  // namespace detail

/// Mini-batch K-means of n_samples rows of n_features values (T = float or double).
///
/// fit() draws batches of batch_size rows (with replacement, with probability proportional to the
/// sample weight) from the counter-based generator keyed by the seed; when batch_size >= n_samples,
/// each step takes all rows with their weights instead, so that integer weights fit as repeated rows
/// would, in any row order (with tol = 0: tol scales the unweighted variance). Each step assigns the batch to
/// the nearest centres and moves each centre towards the mean of its batch rows by the step size
/// W_batch / (count + W_batch) (count: the weight it absorbed so far). partial_fit() takes its X as one
/// batch. Results are bit-identical for any number of threads. fit() and partial_fit() have the strong
/// guarantee: if they throw, the model keeps its previous state.
template <class T>
class MiniBatchKMeans {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "mixtura::MiniBatchKMeans<T>: T must be float or double");

 public:
  using Scalar = T;
  /// Called after every step (its 0-based index over the fit's life, its record); return false to stop
  /// (throws Interrupted; the model keeps its previous state).
  using Callback = std::function<bool(std::int64_t step, const MiniBatchStep&)>;

  explicit MiniBatchKMeans(MiniBatchKMeansParams params = {}) : params_(params) {}

  const MiniBatchKMeansParams& params() const { return params_; }
  /// Replaces the parameters; the fitted state (if any) is kept (partial_fit goes on from it).
  void set_params(const MiniBatchKMeansParams& params) { params_ = params; }
  void set_callback(Callback callback) { callback_ = std::move(callback); }

  /// Fits on X (n_samples x n_features) with optional sample weights (n_samples, >= 0) from a fresh
  /// start; initial_centers (n_clusters x n_features) implies init = given.
  MiniBatchKMeans& fit(MatrixView<T> X, VectorView<T> sample_weight = {}, MatrixView<T> initial_centers = {}) {
    return fit_rows(CpuBackend{params_.n_threads}, X, sample_weight, initial_centers);
  }
  /// fit on sparse rows (CSR, host memory): batches are CSR too, stepped by the sparse passes
  /// (kmeans/sparse_pass.hpp); the same centres as the rows dense, where the labels are the same.
  MiniBatchKMeans& fit(const CsrMatrixView<T>& X, VectorView<T> sample_weight = {}, MatrixView<T> initial_centers = {}) {
    return fit_rows(CpuBackend{params_.n_threads}, X, sample_weight, initial_centers);
  }
  /// fit with the passes of a CPU backend: CpuBackend, or DispatchedCpuBackend (backend/dispatched.hpp)
  /// for the passes compiled for this CPU; its n_threads in place of params().n_threads. The batches
  /// are drawn on the host, so there is no device form. The same for partial_fit_on, predict_on, ...
  template <class Backend>
  MiniBatchKMeans& fit_on(const Backend& be, MatrixView<T> X, VectorView<T> sample_weight = {},
                          MatrixView<T> initial_centers = {}) {
    return fit_rows(be, X, sample_weight, initial_centers);
  }
  template <class Backend>
  MiniBatchKMeans& fit_on(const Backend& be, const CsrMatrixView<T>& X, VectorView<T> sample_weight = {},
                          MatrixView<T> initial_centers = {}) {
    return fit_rows(be, X, sample_weight, initial_centers);
  }

  /// One step on X as one batch (n_samples x n_features, sample weights optional). The first call
  /// (on an unfitted model) initialises the centres from X (or from initial_centers); later calls go
  /// on from the state of the last fit or partial_fit.
  MiniBatchKMeans& partial_fit(MatrixView<T> X, VectorView<T> sample_weight = {}, MatrixView<T> initial_centers = {}) {
    return partial_fit_rows(CpuBackend{params_.n_threads}, X, sample_weight, initial_centers);
  }
  MiniBatchKMeans& partial_fit(const CsrMatrixView<T>& X, VectorView<T> sample_weight = {},
                               MatrixView<T> initial_centers = {}) {
    return partial_fit_rows(CpuBackend{params_.n_threads}, X, sample_weight, initial_centers);
  }
  template <class Backend>
  MiniBatchKMeans& partial_fit_on(const Backend& be, MatrixView<T> X, VectorView<T> sample_weight = {},
                                  MatrixView<T> initial_centers = {}) {
    return partial_fit_rows(be, X, sample_weight, initial_centers);
  }
  template <class Backend>
  MiniBatchKMeans& partial_fit_on(const Backend& be, const CsrMatrixView<T>& X, VectorView<T> sample_weight = {},
                                  MatrixView<T> initial_centers = {}) {
    return partial_fit_rows(be, X, sample_weight, initial_centers);
  }

  /// Nearest centre of each row of X.
  std::vector<std::int32_t> predict(MatrixView<T> X) const { return predict_rows(CpuBackend{params_.n_threads}, X); }
  std::vector<std::int32_t> predict(const CsrMatrixView<T>& X) const {
    return predict_rows(CpuBackend{params_.n_threads}, X);
  }
  template <class Backend>
  std::vector<std::int32_t> predict_on(const Backend& be, MatrixView<T> X) const { return predict_rows(be, X); }
  template <class Backend>
  std::vector<std::int32_t> predict_on(const Backend& be, const CsrMatrixView<T>& X) const {
    return predict_rows(be, X);
  }
  /// Euclidean distance of each row to each centre, n_samples x n_clusters.
  RowMatrix<T> transform(MatrixView<T> X) const { return transform_rows(CpuBackend{params_.n_threads}, X); }
  RowMatrix<T> transform(const CsrMatrixView<T>& X) const { return transform_rows(CpuBackend{params_.n_threads}, X); }
  template <class Backend>
  RowMatrix<T> transform_on(const Backend& be, MatrixView<T> X) const { return transform_rows(be, X); }
  template <class Backend>
  RowMatrix<T> transform_on(const Backend& be, const CsrMatrixView<T>& X) const { return transform_rows(be, X); }
  /// Minus the (weighted) distortion of X under the centres (higher is better).
  double score(MatrixView<T> X, VectorView<T> sample_weight = {}) const {
    return score_rows(CpuBackend{params_.n_threads}, X, sample_weight);
  }
  double score(const CsrMatrixView<T>& X, VectorView<T> sample_weight = {}) const {
    return score_rows(CpuBackend{params_.n_threads}, X, sample_weight);
  }
  template <class Backend>
  double score_on(const Backend& be, MatrixView<T> X, VectorView<T> sample_weight = {}) const {
    return score_rows(be, X, sample_weight);
  }
  template <class Backend>
  double score_on(const Backend& be, const CsrMatrixView<T>& X, VectorView<T> sample_weight = {}) const {
    return score_rows(be, X, sample_weight);
  }

 private:
  /// The host CPU backends only: the batches are drawn and gathered on the host.
  template <class Backend>
  static constexpr bool on_host_cpu() {
    static_assert(detail::is_host_cpu_backend<Backend>::value,
                  "mixtura::MiniBatchKMeans runs on a CPU backend (CpuBackend, DispatchedCpuBackend): it draws "
                  "its batches from host memory");
    return true;
  }

  template <class Backend, class XView>
  MiniBatchKMeans& fit_rows(const Backend& be, const XView& X, VectorView<T> sample_weight,
                            MatrixView<T> initial_centers) {
    static_assert(on_host_cpu<Backend>(), "");
    const char* where = "MiniBatchKMeans::fit";
    const MiniBatchKMeansParams& p = params_;
    check_params(where);
    MIXTURA_EXPECTS(p.max_iter >= 1, "%s: max_iter must be >= 1, got %d", where, p.max_iter);
    MIXTURA_EXPECTS(std::isfinite(p.tol) && p.tol >= 0, "%s: tol must be finite and >= 0, got %g", where, p.tol);
    check_data_on(be, where, X);
    MIXTURA_EXPECTS(X.rows >= p.n_clusters, "%s: n_samples (%lld) < n_clusters (%d)", where,
                    static_cast<long long>(X.rows), p.n_clusters);
    const double total_weight = detail::check_weights(where, sample_weight, X.rows);
    const Index n = X.rows, batch = std::min(p.batch_size, n);

    Fitted next;
    next.n_features = X.cols;
    next.state.centers = initial_centers.data ? given_centers(where, X, initial_centers)
                                              : best_initialisation(be, X, sample_weight, batch);
    if (initial_centers.data) next.initial = next.state.centers;
    next.state.counts.assign(static_cast<std::size_t>(p.n_clusters), 0.0);

    const double tol_abs = p.tol > 0 ? p.tol * mean_feature_variance(be, X) : 0.0;
    const std::int64_t n_steps = std::max<std::int64_t>(1, static_cast<std::int64_t>(p.max_iter) * n / batch);
    // batch_size >= n_samples: every step takes the whole data with its weights (no draws), so that
    // integer weights fit as repeated rows would, in any row order.
    const bool whole = p.batch_size >= n;
    const detail::WeightedRows sampler(whole ? VectorView<T>{} : sample_weight, n);  // whole: never drawn from
    const CounterRng batches(p.seed, detail::kStreamBatches);
    detail::MiniBatchConvergence conv;
    std::vector<Index> rows(static_cast<std::size_t>(batch));
    if (whole) std::iota(rows.begin(), rows.end(), Index{0});
    detail::batch_t<XView> xb;
    std::vector<T> no_weights;
    double last_mean = 0;
    for (std::int64_t i = 0; i < n_steps; ++i) {
      MiniBatchStep rec;
      if (whole) {
        rec = step(be, next, X, sample_weight, rows, true);
      } else {
        const std::uint64_t first = static_cast<std::uint64_t>(i) * static_cast<std::uint64_t>(batch);
        for (Index j = 0; j < batch; ++j) rows[j] = sampler.draw(batches.uniform_at(first + static_cast<std::uint64_t>(j)));
        detail::gather_rows(X, VectorView<T>{}, rows, xb, no_weights);  // drawn by weight: unit weights in the step
        rec = step(be, next, detail::view_of(xb), VectorView<T>{}, rows, false);
      }
      // The batch's distortion per unit of weight (drawn batches: per row).
      last_mean = rec.distortion_assign / (whole ? total_weight : static_cast<double>(batch));
      if (conv.stop(i, last_mean, rec.center_shift, batch, n, tol_abs, p.max_no_improvement)) break;
    }
    next.n_iter = static_cast<int>((next.state.n_steps * batch + n - 1) / n);
    if (p.compute_labels) {
      next.labels.resize(static_cast<std::size_t>(n));
      next.inertia = kmeans_predict(be, X, sample_weight, next.state.centers, next.labels.data());
    } else {
      next.inertia = (std::isnan(conv.ewa) ? last_mean : conv.ewa) * total_weight;
    }
    fitted_ = std::move(next);
    is_fitted_ = true;
    return *this;
  }

  template <class Backend, class XView>
  MiniBatchKMeans& partial_fit_rows(const Backend& be, const XView& X, VectorView<T> sample_weight,
                                    MatrixView<T> initial_centers) {
    static_assert(on_host_cpu<Backend>(), "");
    const char* where = "MiniBatchKMeans::partial_fit";
    const MiniBatchKMeansParams& p = params_;
    check_params(where);
    check_data_on(be, where, X);
    Fitted next;
    if (is_fitted_) {
      detail::check_features(where, X.cols, fitted_.n_features);
      next = fitted_;
    } else {
      MIXTURA_EXPECTS(X.rows >= p.n_clusters, "%s: n_samples (%lld) < n_clusters (%d)", where,
                      static_cast<long long>(X.rows), p.n_clusters);
      detail::check_weights(where, sample_weight, X.rows);
      next.n_features = X.cols;
      next.state.centers = initial_centers.data
                               ? given_centers(where, X, initial_centers)
                               : initialisation(be, X, sample_weight, resolved_init_size(std::min(p.batch_size, X.rows), X.rows), 0);
      if (initial_centers.data) next.initial = next.state.centers;
      next.state.counts.assign(static_cast<std::size_t>(p.n_clusters), 0.0);
    }
    detail::check_chunk_weights(where, sample_weight, X.rows);
    std::vector<Index> rows(static_cast<std::size_t>(X.rows));
    std::iota(rows.begin(), rows.end(), Index{0});
    step(be, next, X, sample_weight, rows, false);
    next.labels.clear();
    if (p.compute_labels) {
      next.labels.resize(static_cast<std::size_t>(X.rows));
      next.inertia = kmeans_predict(be, X, sample_weight, next.state.centers, next.labels.data());
    }
    fitted_ = std::move(next);
    is_fitted_ = true;
    return *this;
  }

  template <class Backend, class XView>
  std::vector<std::int32_t> predict_rows(const Backend& be, const XView& X) const {
    static_assert(on_host_cpu<Backend>(), "");
    check_input(be, "MiniBatchKMeans::predict", X);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows));
    kmeans_predict(be, X, VectorView<T>{}, fitted_.state.centers, labels.data());
    return labels;
  }
  template <class Backend, class XView>
  RowMatrix<T> transform_rows(const Backend& be, const XView& X) const {
    static_assert(on_host_cpu<Backend>(), "");
    check_input(be, "MiniBatchKMeans::transform", X);
    return kmeans_transform(be, X, fitted_.state.centers);
  }
  template <class Backend, class XView>
  double score_rows(const Backend& be, const XView& X, VectorView<T> sample_weight) const {
    static_assert(on_host_cpu<Backend>(), "");
    check_input(be, "MiniBatchKMeans::score", X);
    detail::check_weights("MiniBatchKMeans::score", sample_weight, X.rows);
    return -kmeans_predict(be, X, sample_weight, fitted_.state.centers, nullptr);
  }

 public:
  bool is_fitted() const { return is_fitted_; }
  /// n_clusters x n_features.
  const RowMatrix<T>& cluster_centers() const { return fitted("cluster_centers").state.centers; }
  /// [K] weight each centre has absorbed.
  const std::vector<double>& counts() const { return fitted("counts").state.counts; }
  /// Labels of fit's rows, or of the last partial_fit's (empty when compute_labels is off).
  const std::vector<std::int32_t>& labels() const { return fitted("labels").labels; }
  /// Weighted distortion of those rows under the final centres (compute_labels off, after fit:
  /// scikit-learn's estimate, the smoothed batch distortion times the total weight).
  double inertia() const { return fitted("inertia").inertia; }
  /// Steps taken by fit and partial_fit calls since the last fit.
  std::int64_t n_steps() const { return fitted("n_steps").state.n_steps; }
  /// Passes over the data the last fit's steps amount to, rounded up (0 before any fit).
  int n_iter() const { return fitted("n_iter").n_iter; }
  Index n_features_in() const { return fitted("n_features_in").n_features; }
  /// One record per step.
  const std::vector<MiniBatchStep>& trace() const { return fitted("trace").trace; }
  /// Starved centres moved to rows.
  const std::vector<MiniBatchEvent>& events() const { return fitted("events").events; }
  /// What partial_fit resumes from.
  const MiniBatchKMeansState<T>& state() const { return fitted("state").state; }
  /// The centres the last fit (or the first partial_fit) started from when they were given, else
  /// empty; a model file keeps them as the init parameter.
  const RowMatrix<T>& initial_centers() const { return fitted("initial_centers").initial; }
  /// Records given initial centres for a fitted model (a loaded one's), n_clusters x n_features.
  void set_initial_centers(RowMatrix<T> centers) {
    detail::check_initial_record("MiniBatchKMeans::set_initial_centers", centers, fitted("set_initial_centers").state.centers);
    fitted_.initial = std::move(centers);
  }

  /// Replaces the fitted state (e.g. a saved one): centres n_clusters x n_features (finite), counts
  /// [n_clusters] (finite, >= 0), and what was recorded (a model file's; by default nothing: trace,
  /// events and labels empty). partial_fit appends to the record's trace and events. Parameters
  /// are left unchanged: partial_fit resumes bit for bit under the parameters (seed, batch_size,
  /// reassignment_ratio) the state was reached with.
  void set_state(MiniBatchKMeansState<T> state, MiniBatchKMeansRecord record = {}) {
    const char* where = "MiniBatchKMeans::set_state";
    const Index K = state.centers.rows();
    MIXTURA_EXPECTS(K >= 1 && state.centers.cols() >= 1, "%s: empty centres (%lld x %lld)", where,
                    static_cast<long long>(K), static_cast<long long>(state.centers.cols()));
    MIXTURA_EXPECTS(state.centers.allFinite(), "%s: the centres contain a non-finite value", where);
    MIXTURA_EXPECTS(static_cast<Index>(state.counts.size()) == K, "%s: %zu counts for %lld centres", where,
                    state.counts.size(), static_cast<long long>(K));
    for (std::size_t k = 0; k < state.counts.size(); ++k)
      MIXTURA_EXPECTS(std::isfinite(state.counts[k]) && state.counts[k] >= 0, "%s: counts[%zu] = %g is not finite and >= 0",
                      where, k, state.counts[k]);
    MIXTURA_EXPECTS(state.n_steps >= 0 && state.n_since_reassign >= 0,
                    "%s: n_steps (%lld) and n_since_reassign (%lld) must be >= 0", where,
                    static_cast<long long>(state.n_steps), static_cast<long long>(state.n_since_reassign));
    check_record(where, record, K, state.n_steps);
    Fitted f;
    f.n_features = state.centers.cols();
    f.state = std::move(state);
    f.labels = std::move(record.labels);
    f.inertia = record.inertia;
    f.n_iter = record.n_iter;
    f.trace = std::move(record.trace);
    f.events = std::move(record.events);
    fitted_ = std::move(f);
    is_fitted_ = true;
  }

 private:
  struct Fitted {
    MiniBatchKMeansState<T> state;
    std::vector<std::int32_t> labels;
    std::vector<MiniBatchStep> trace;
    std::vector<MiniBatchEvent> events;
    RowMatrix<T> initial;  ///< given initial centres, else empty
    double inertia = 0;
    int n_iter = 0;
    Index n_features = 0;
  };

  void check_params(const char* where) const {
    const MiniBatchKMeansParams& p = params_;
    MIXTURA_EXPECTS(p.n_clusters >= 1, "%s: n_clusters must be >= 1, got %d", where, p.n_clusters);
    MIXTURA_EXPECTS(p.batch_size >= 1, "%s: batch_size must be >= 1, got %lld", where,
                    static_cast<long long>(p.batch_size));
    MIXTURA_EXPECTS(p.n_init >= 1, "%s: n_init must be >= 1, got %d", where, p.n_init);
    MIXTURA_EXPECTS(p.init_size >= 0, "%s: init_size must be >= 0 (0: 3 * batch_size), got %lld", where,
                    static_cast<long long>(p.init_size));
    MIXTURA_EXPECTS(std::isfinite(p.reassignment_ratio) && p.reassignment_ratio >= 0,
                    "%s: reassignment_ratio must be finite and >= 0, got %g", where, p.reassignment_ratio);
    MIXTURA_EXPECTS(p.n_local_trials >= 0, "%s: n_local_trials must be >= 0, got %d", where, p.n_local_trials);
    MIXTURA_EXPECTS(p.n_threads >= 0 && p.n_threads <= kMaxThreads, "%s: n_threads must be in [0, %d], got %d",
                    where, kMaxThreads, p.n_threads);
  }

  /// A record set_state can keep: labels in [0, K), inertia finite and >= 0, n_iter >= 0, a trace of
  /// at most n_steps steps, and events in those steps (the last trace.size() ones).
  static void check_record(const char* where, const MiniBatchKMeansRecord& r, Index K, std::int64_t n_steps) {
    for (std::size_t i = 0; i < r.labels.size(); ++i)
      MIXTURA_EXPECTS(r.labels[i] >= 0 && r.labels[i] < K, "%s: labels[%zu] = %d is outside [0, %lld)", where, i,
                      r.labels[i], static_cast<long long>(K));
    MIXTURA_EXPECTS(std::isfinite(r.inertia) && r.inertia >= 0 && r.n_iter >= 0,
                    "%s: inertia (%g) must be finite and >= 0, n_iter (%d) >= 0", where, r.inertia, r.n_iter);
    const auto rows = static_cast<std::int64_t>(r.trace.size());
    MIXTURA_EXPECTS(rows <= n_steps, "%s: a trace of %lld steps for n_steps = %lld", where, static_cast<long long>(rows),
                    static_cast<long long>(n_steps));
    for (std::size_t i = 0; i < r.events.size(); ++i) {
      const MiniBatchEvent& e = r.events[i];
      MIXTURA_EXPECTS(e.step >= n_steps - rows && e.step < n_steps && e.cluster >= 0 && e.cluster < K && e.row >= 0,
                      "%s: event %zu (step %lld, cluster %d, row %lld) is outside the trace's steps [%lld, %lld), "
                      "the clusters [0, %lld) or the rows", where, i, static_cast<long long>(e.step), e.cluster,
                      static_cast<long long>(e.row), static_cast<long long>(n_steps - rows),
                      static_cast<long long>(n_steps), static_cast<long long>(K));
    }
  }

  /// scikit-learn's init_size: 3 * batch (at least 3 * n_clusters) by default, at most n rows.
  Index resolved_init_size(Index batch, Index n) const {
    Index s = params_.init_size > 0 ? params_.init_size : 3 * batch;
    if (s < params_.n_clusters) s = 3 * static_cast<Index>(params_.n_clusters);
    return std::min(s, n);
  }

  template <class XView>
  RowMatrix<T> given_centers(const char* where, const XView& X, MatrixView<T> c) const {
    MIXTURA_EXPECTS(c.rows == params_.n_clusters && c.cols == X.cols,
                    "%s: initial centres have shape (%lld, %lld), expected (n_clusters, n_features) = (%d, %lld)",
                    where, static_cast<long long>(c.rows), static_cast<long long>(c.cols), params_.n_clusters,
                    static_cast<long long>(X.cols));
    detail::check_data(where, c, params_.n_threads);
    return c.map();
  }

  /// Restart r's centres: k-means++ or weighted random rows on init_size rows drawn uniformly (all
  /// rows when init_size >= n), as scikit-learn's _init_centroids.
  template <class Backend, class XView>
  RowMatrix<T> initialisation(const Backend& be, const XView& X, VectorView<T> w, Index init_size, int r) const {
    const char* where = "MiniBatchKMeans: initialisation";
    const MiniBatchKMeansParams& p = params_;
    detail::batch_t<XView> xs;
    std::vector<T> ws;
    XView Xs = X;
    VectorView<T> wsv = w;
    if (init_size < X.rows) {
      const auto rows = detail::uniform_rows(CounterRng(p.seed, detail::kStreamInitRows + static_cast<std::uint64_t>(r)),
                                             0, init_size, X.rows);
      detail::gather_rows(X, w, rows, xs, ws);
      Xs = detail::view_of(xs);
      wsv = w.empty() ? VectorView<T>{} : VectorView<T>(ws.data(), static_cast<Index>(ws.size()));
    }
    const Index positive = detail::count_positive(wsv, Xs.rows);
    MIXTURA_EXPECTS(positive >= (p.init == KMeansInit::random ? p.n_clusters : 1),
                    "%s: init = %s needs %d rows of positive weight among the %lld rows it sees (init_size), found %lld",
                    where, to_string(p.init), p.init == KMeansInit::random ? p.n_clusters : 1,
                    static_cast<long long>(Xs.rows), static_cast<long long>(positive));
    const CounterRng rng(p.seed, static_cast<std::uint64_t>(r));
    // k-means++'s passes fold 4096-row blocks: a thread per block at most (as for the batches).
    Backend init_be = be;
    init_be.n_threads = static_cast<int>(std::min<Index>(detail::resolve_threads(be.n_threads), (Xs.rows + 4095) / 4096));
    const auto picked = p.init == KMeansInit::random
                            ? random_rows(Xs, wsv, p.n_clusters, rng, init_be.n_threads)
                            : kmeans_plusplus_rows(init_be, Xs, wsv, p.n_clusters, p.n_local_trials, rng);
    return fetch_rows(be, Xs, picked);
  }

  /// n_init initialisations; the one of lowest distortion on init_size rows drawn uniformly (all rows
  /// with their weights when init_size >= n) wins.
  template <class Backend, class XView>
  RowMatrix<T> best_initialisation(const Backend& be, const XView& X, VectorView<T> w, Index batch) const {
    const Index init_size = resolved_init_size(batch, X.rows);
    detail::batch_t<XView> xv;
    std::vector<T> wv;
    XView Xv = X;
    VectorView<T> wvv = w;
    if (params_.n_init > 1 && init_size < X.rows) {
      const auto valid = detail::uniform_rows(CounterRng(params_.seed, detail::kStreamValidationRows), 0, init_size, X.rows);
      detail::gather_rows(X, w, valid, xv, wv);
      Xv = detail::view_of(xv);
      wvv = w.empty() ? VectorView<T>{} : VectorView<T>(wv.data(), static_cast<Index>(wv.size()));
    }
    RowMatrix<T> best;
    double best_j = 0;
    for (int r = 0; r < params_.n_init; ++r) {
      RowMatrix<T> c = initialisation(be, X, w, init_size, r);
      const double j = params_.n_init == 1 ? 0.0 : kmeans_predict(be, Xv, wvv, c, nullptr);
      if (r == 0 || j < best_j) {
        best = std::move(c);
        best_j = j;
      }
    }
    return best;
  }

  /// scikit-learn's rule: reassign when a centre has absorbed nothing, or every 10 K rows.
  static bool reassign_due(MiniBatchKMeansState<T>& s, Index rows) {
    s.n_since_reassign += rows;
    const bool starved = std::any_of(s.counts.begin(), s.counts.end(), [](double c) { return c == 0; });
    if (starved || s.n_since_reassign >= 10 * static_cast<std::int64_t>(s.centers.rows())) {
      s.n_since_reassign = 0;
      return true;
    }
    return false;
  }

  /// One step on batch X (data_rows[i]: the row of the caller's data that X's row i is, for events).
  /// whole: X is all of fit's data, and the reassignment check runs every step (each step has seen
  /// every row, whatever their number).
  template <class Backend, class XView>
  MiniBatchStep step(const Backend& be, Fitted& f, const XView& X, VectorView<T> w,
                     const std::vector<Index>& data_rows, bool whole) const {
    detail::Stopwatch clock;
    MiniBatchKMeansState<T>& st = f.state;
    const Index K = st.centers.rows(), D = st.centers.cols();
    if (whole) st.n_since_reassign = 0;
    const bool reassign = whole || reassign_due(st, std::min(params_.batch_size, X.rows));
    std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows), -1);
    // A thread per 2^22 multiply-adds of the batch at most: a batch of 1024 rows, K = 32, D = 8 takes
    // ~50 us on one thread, and a parallel region per step cost ~12 ms a step on a loaded 2-core
    // machine (bench/RESULTS.md). The result does not depend on it.
    const Index work = X.rows * K * D;
    Backend batch_be = be;
    batch_be.n_threads =
        static_cast<int>(std::max<Index>(1, std::min<Index>(detail::resolve_threads(be.n_threads), work >> 22)));
    const KMeansStats s = kmeans_assign(batch_be, X, w, st.centers, labels.data());
    MiniBatchStep rec;
    rec.distortion_assign = s.distortion;
    const RowMatrix<T> old = st.centers;
    // J of the batch under centre b of cluster k (batch mean m_k, old centre a_k):
    // J_k(a_k) - W_k ||m_k - a_k||^2 + W_k ||m_k - b_k||^2.
    auto gap = [&](Index k, const T* b) {
      double g = 0;
      for (Index d = 0; d < D; ++d) {
        const double t = s.sums[k * D + d] / s.weight[k] - static_cast<double>(b[d]);
        g += t * t;
      }
      return s.weight[k] * g;
    };
    double j = s.distortion;
    for (Index k = 0; k < K; ++k) {
      const double W = s.weight[k];
      if (!(W > 0)) continue;
      const double c = st.counts[k], total = c + W;
      T* mu = st.centers.row(k).data();
      for (Index d = 0; d < D; ++d) mu[d] = static_cast<T>((static_cast<double>(mu[d]) * c + s.sums[k * D + d]) / total);
      st.counts[k] = total;
      j += gap(k, mu) - gap(k, old.row(k).data());
    }
    if (reassign && params_.reassignment_ratio > 0)
      rec.n_reassigned = reassign_starved(f, X, w, data_rows, [&](Index k, const T* b) {
        if (s.weight[k] > 0) j += gap(k, b) - gap(k, st.centers.row(k).data());
      });
    rec.distortion_update = std::max(0.0, j);
    for (Index k = 0; k < K; ++k) rec.center_shift += detail::sq_dist(st.centers.row(k).data(), old.row(k).data(), D);
    ++st.n_steps;
    rec.seconds = clock.seconds();
    f.trace.push_back(rec);
    if (callback_ && !callback_(st.n_steps - 1, rec))
      throw Interrupted(detail::format("MiniBatchKMeans: interrupted by the caller at step %lld",
                                       static_cast<long long>(st.n_steps - 1)));
    return rec;
  }

  /// Moves centres whose count is below reassignment_ratio times the largest to rows of the batch
  /// drawn by weight, never two to the same value (at most half the batch's distinct values, the
  /// lowest counts first), then raises their counts to the lowest count kept, as scikit-learn does.
  /// moved(k, new_centre) is called before each move.
  template <class XView, class Moved>
  int reassign_starved(Fitted& f, const XView& X, VectorView<T> w, const std::vector<Index>& data_rows,
                       Moved&& moved) const {
    MiniBatchKMeansState<T>& st = f.state;
    const Index K = st.centers.rows();
    const double limit = params_.reassignment_ratio * *std::max_element(st.counts.begin(), st.counts.end());
    std::vector<Index> order(static_cast<std::size_t>(K));
    std::iota(order.begin(), order.end(), Index{0});
    std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return st.counts[a] < st.counts[b]; });
    std::vector<char> flagged(static_cast<std::size_t>(K), 0);
    Index n_flagged = 0;
    for (Index k = 0; k < K; ++k) n_flagged += flagged[k] = st.counts[k] < limit;
    if (n_flagged == 0) return 0;
    const detail::DistinctRows values = detail::distinct_rows(X, w);
    if (static_cast<double>(n_flagged) > 0.5 * static_cast<double>(values.size())) {
      for (std::size_t e = static_cast<std::size_t>(values.size() / 2); e < order.size(); ++e) flagged[order[e]] = 0;
      n_flagged = std::count(flagged.begin(), flagged.end(), 1);
    }
    const auto picked = detail::draw_distinct(
        values, n_flagged, CounterRng(params_.seed, detail::kStreamReassign + static_cast<std::uint64_t>(st.n_steps)));
    const Index n_pick = static_cast<Index>(picked.size());
    double kept_min = std::numeric_limits<double>::infinity();
    for (Index k = 0; k < K; ++k)
      if (!flagged[k]) kept_min = std::min(kept_min, st.counts[k]);
    int e = 0;
    for (Index k = 0; k < K; ++k) {
      if (!flagged[k]) continue;
      if (e < n_pick) {
        const RowMatrix<T> row = fetch_rows(CpuBackend{1}, X, {picked[static_cast<std::size_t>(e)]});
        moved(k, row.data());
        std::copy_n(row.data(), X.cols, st.centers.row(k).data());
        f.events.push_back({st.n_steps, static_cast<int>(k), data_rows[static_cast<std::size_t>(picked[static_cast<std::size_t>(e)])]});
        ++e;
      }
      if (std::isfinite(kept_min)) st.counts[k] = kept_min;  // every centre flagged: counts left as they are
    }
    return e;
  }

  const Fitted& fitted(const char* what) const {
    if (!is_fitted_)
      throw NotFittedError(
          detail::format("MiniBatchKMeans::%s: this MiniBatchKMeans instance is not fitted yet; call fit() or partial_fit() first", what));
    return fitted_;
  }
  template <class Backend, class XView>
  void check_input(const Backend& be, const char* where, const XView& X) const {
    if (!is_fitted_)
      throw NotFittedError(detail::format("%s: this MiniBatchKMeans instance is not fitted yet; call fit() first", where));
    check_data_on(be, where, X);
    detail::check_features(where, X.cols, fitted_.n_features);
  }

  MiniBatchKMeansParams params_;
  Callback callback_;
  Fitted fitted_;
  bool is_fitted_ = false;
};

}  // namespace mixtura
