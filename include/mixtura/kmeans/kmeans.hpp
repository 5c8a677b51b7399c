#pragma once
/// mixtura::KMeans: Lloyd's algorithm as coordinate descent on the distortion, with a trace.

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "mixtura/backend/contract.hpp"
#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/core/timer.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"
#include "mixtura/kmeans/init.hpp"
#include "mixtura/kmeans/lloyd.hpp"
#include "mixtura/kmeans/params.hpp"
#include "mixtura/kmeans/sparse_pass.hpp"

namespace mixtura {

/// What a fit leaves besides the centres, for restoring a saved model (KMeans::set_centers); every
/// part may be empty.
struct KMeansFitRecord {
  std::vector<std::int32_t> labels;  ///< labels of the training rows, each in [0, n_clusters)
  std::vector<KMeansRun> runs;       ///< every restart; empty: one run with no trace
  std::vector<KMeansEvent> events;
  int best_restart = 0;              ///< index into runs of the kept restart
};

/// K-means clustering of n_samples rows of n_features values (T = float or double).
///
/// fit() has the strong guarantee: if it throws, the model keeps its previous state.
/// Results are bit-identical for any number of threads (see core/parallel.hpp).
template <class T>
class KMeans {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "mixtura::KMeans<T>: T must be float or double");

 public:
  using Scalar = T;
  using Callback = detail::KMeansCallback;

  explicit KMeans(KMeansParams params = {}) : params_(params) {}

  const KMeansParams& params() const { return params_; }
  /// Replaces the parameters; the fitted state (if any) is kept until the next fit.
  void set_params(const KMeansParams& params) { params_ = params; }
  /// Called after every iteration of every restart; return false to stop the fit (throws Interrupted).
  void set_callback(Callback callback) { callback_ = std::move(callback); }

  /// Fits on X (n_samples x n_features) with optional sample weights (n_samples, >= 0).
  KMeans& fit(MatrixView<T> X, VectorView<T> sample_weight = {}) {
    return fit_on(CpuBackend{params_.n_threads}, X, sample_weight, MatrixView<T>{});
  }
  /// Fits from caller-given initial centres (n_clusters x n_features); implies init = given.
  KMeans& fit(MatrixView<T> X, VectorView<T> sample_weight, MatrixView<T> initial_centers) {
    return fit_on(CpuBackend{params_.n_threads}, X, sample_weight, initial_centers);
  }

  /// Fits on sparse rows (CSR, host memory, e.g. SciPy's csr_matrix): each pass costs the stored
  /// values times n_clusters; labels by exact distance, the statistics as for the same rows dense
  /// (kmeans/sparse_pass.hpp); Hamerly's bounds as for dense rows (algorithm).
  /// initial_centers: a dense host array, as in fit().
  KMeans& fit(const CsrMatrixView<T>& X, VectorView<T> sample_weight = {}, MatrixView<T> initial_centers = {}) {
    return fit_on(CpuBackend{params_.n_threads}, X, sample_weight, initial_centers);
  }

  /// The fit on a given backend (the loop is the same; only the data passes differ), e.g.
  /// fit_on(make_cuda_backend(), X) with mixtura/cuda.hpp. X: host memory (MatrixView, RowMatrix) or
  /// device memory (DeviceMatrixView: the passes read it in place, the loop reaches its values only
  /// through the backend). sample_weight: host (VectorView) or, with device X, device memory
  /// (DeviceVectorView: read in place, checked on the device with the CPU's messages; copied to the
  /// host only for init = random and on iterations that re-seed an empty cluster). initial_centers:
  /// a host array, as in fit().
  template <class Backend, class XView, class WView = VectorView<T>>
  KMeans& fit_on(const Backend& be, const XView& X, const WView& sample_weight = {},
                 MatrixView<T> initial_centers = {}) {
    return fit_data(be, detail::data_view_t<T, XView>(X), detail::weights_view_t<T, WView>(sample_weight),
                    initial_centers);
  }

  /// Nearest centre of each row of X.
  std::vector<std::int32_t> predict(MatrixView<T> X) const { return predict_on(CpuBackend{params_.n_threads}, X); }
  std::vector<std::int32_t> predict(const CsrMatrixView<T>& X) const {
    return predict_on(CpuBackend{params_.n_threads}, X);
  }
  /// predict() on a given backend, for X in host or (on a device backend) device memory; the labels
  /// come back to the host.
  template <class Backend, class XView>
  std::vector<std::int32_t> predict_on(const Backend& be, const XView& X) const {
    return predict_data(be, detail::data_view_t<T, XView>(X));
  }
  /// Fits, then returns the labels of the training rows.
  std::vector<std::int32_t> fit_predict(MatrixView<T> X, VectorView<T> sample_weight = {}) {
    fit(X, sample_weight);
    return state_.labels;
  }
  /// Euclidean distance of each row to each centre, n_samples x n_clusters.
  RowMatrix<T> transform(MatrixView<T> X) const { return transform_on(CpuBackend{params_.n_threads}, X); }
  RowMatrix<T> transform(const CsrMatrixView<T>& X) const { return transform_on(CpuBackend{params_.n_threads}, X); }
  /// transform() on a given backend, for X in host or device memory; the distances come back to the host.
  template <class Backend, class XView>
  RowMatrix<T> transform_on(const Backend& be, const XView& X) const {
    return transform_data(be, detail::data_view_t<T, XView>(X));
  }
  /// Minus the (weighted) distortion of X under the fitted centres (higher is better).
  double score(MatrixView<T> X, VectorView<T> sample_weight = {}) const {
    return score_on(CpuBackend{params_.n_threads}, X, sample_weight);
  }
  double score(const CsrMatrixView<T>& X, VectorView<T> sample_weight = {}) const {
    return score_on(CpuBackend{params_.n_threads}, X, sample_weight);
  }
  /// score() on a given backend, for X in host or device memory; sample weights as in fit_on.
  template <class Backend, class XView, class WView = VectorView<T>>
  double score_on(const Backend& be, const XView& X, const WView& sample_weight = {}) const {
    return score_data(be, detail::data_view_t<T, XView>(X), detail::weights_view_t<T, WView>(sample_weight));
  }

  bool is_fitted() const { return fitted_; }
  /// n_clusters x n_features.
  const RowMatrix<T>& cluster_centers() const { return fitted("cluster_centers").centers; }
  /// Labels of the training rows under the kept restart.
  const std::vector<std::int32_t>& labels() const { return fitted("labels").labels; }
  /// Weighted distortion of the training rows under the final centres.
  double inertia() const { return best_run().inertia; }
  int n_iter() const { return best_run().n_iter; }
  bool converged() const { return best_run().converged; }
  Index n_features_in() const { return fitted("n_features_in").n_features; }
  /// Index of the kept restart.
  int best_restart() const { return fitted("best_restart").best; }
  /// Every restart, in order, with its trace.
  const std::vector<KMeansRun>& runs() const { return fitted("runs").runs; }
  /// The trace of the kept restart.
  const std::vector<KMeansIteration>& trace() const { return best_run().trace; }
  /// Empty-cluster events of all restarts.
  const std::vector<KMeansEvent>& events() const { return fitted("events").events; }
  /// The centres the fit started from when they were given (n_clusters x n_features), else empty;
  /// a model file keeps them as the init parameter.
  const RowMatrix<T>& initial_centers() const { return fitted("initial_centers").initial; }
  /// Records given initial centres for a fitted model (a loaded one's), n_clusters x n_features.
  void set_initial_centers(RowMatrix<T> centers) {
    const State& s = fitted("set_initial_centers");
    detail::check_initial_record("KMeans::set_initial_centers", centers, s.centers);
    state_.initial = std::move(centers);
  }

  /// Replaces the fitted state by given centres (n_clusters x n_features, finite), e.g. a loaded
  /// model, with what else its fit left (labels, restarts, events). Parameters are left unchanged.
  void set_centers(RowMatrix<T> centers, KMeansFitRecord record = {}) {
    const char* where = "KMeans::set_centers";
    const Index K = centers.rows();
    MIXTURA_EXPECTS(K >= 1 && centers.cols() >= 1, "%s: empty centres (%lld x %lld)", where,
                    static_cast<long long>(K), static_cast<long long>(centers.cols()));
    MIXTURA_EXPECTS(centers.allFinite(), "%s: the centres contain a non-finite value", where);
    for (std::size_t i = 0; i < record.labels.size(); ++i)
      MIXTURA_EXPECTS(record.labels[i] >= 0 && record.labels[i] < K, "%s: label %d of row %zu is outside [0, %lld)",
                      where, record.labels[i], i, static_cast<long long>(K));
    if (record.runs.empty()) record.runs.emplace_back();
    const int n_runs = static_cast<int>(record.runs.size());
    MIXTURA_EXPECTS(record.best_restart >= 0 && record.best_restart < n_runs,
                    "%s: best_restart %d is outside [0, %d)", where, record.best_restart, n_runs);
    for (const KMeansEvent& e : record.events)
      MIXTURA_EXPECTS(e.restart >= 0 && e.restart < n_runs && e.cluster >= 0 && e.cluster < K,
                      "%s: event of restart %d, cluster %d is outside %d restarts, %lld clusters", where, e.restart,
                      e.cluster, n_runs, static_cast<long long>(K));
    State s;
    s.n_features = centers.cols();
    s.centers = std::move(centers);
    s.labels = std::move(record.labels);
    s.runs = std::move(record.runs);
    s.events = std::move(record.events);
    s.best = record.best_restart;
    state_ = std::move(s);
    fitted_ = true;
  }

 private:
  /// fit_on for a host or device view of X (View = MatrixView or DeviceMatrixView) and of the weights
  /// (WView = VectorView or, with device X, DeviceVectorView).
  template <class Backend, template <class> class View, template <class> class WView>
  KMeans& fit_data(const Backend& be, View<T> X, WView<T> w, MatrixView<T> initial_centers) {
    static_assert(detail::satisfies_kmeans_contract<Backend, T, View<T>, WView<T>>(), "");
    const char* where = "KMeans::fit";
    const KMeansParams& p = params_;
    const bool given = initial_centers.data != nullptr || p.init == KMeansInit::given;
    MIXTURA_EXPECTS(p.n_clusters >= 1, "%s: n_clusters must be >= 1, got %d", where, p.n_clusters);
    MIXTURA_EXPECTS(p.max_iter >= 1, "%s: max_iter must be >= 1, got %d", where, p.max_iter);
    MIXTURA_EXPECTS(p.n_init >= 1, "%s: n_init must be >= 1, got %d", where, p.n_init);
    MIXTURA_EXPECTS(std::isfinite(p.tol) && p.tol >= 0, "%s: tol must be finite and >= 0, got %g", where, p.tol);
    MIXTURA_EXPECTS(p.n_local_trials >= 0, "%s: n_local_trials must be >= 0, got %d", where, p.n_local_trials);
    MIXTURA_EXPECTS(p.n_threads >= 0 && p.n_threads <= kMaxThreads, "%s: n_threads must be in [0, %d], got %d",
                    where, kMaxThreads, p.n_threads);
    check_data_on(be, where, X);
    MIXTURA_EXPECTS(X.rows >= p.n_clusters, "%s: n_samples (%lld) < n_clusters (%d)", where,
                    static_cast<long long>(X.rows), p.n_clusters);
    check_weights_on(be, where, w, X.rows);
    if (given) {
      MIXTURA_EXPECTS(initial_centers.data != nullptr,
                      "%s: init = given but no initial centres were passed (use fit(X, sample_weight, centers))",
                      where);
      MIXTURA_EXPECTS(initial_centers.rows == p.n_clusters && initial_centers.cols == X.cols,
                      "%s: initial centres have shape (%lld, %lld), expected (n_clusters, n_features) = (%d, %lld)",
                      where, static_cast<long long>(initial_centers.rows),
                      static_cast<long long>(initial_centers.cols), p.n_clusters, static_cast<long long>(X.cols));
      MIXTURA_EXPECTS(p.n_init == 1, "%s: n_init must be 1 with given initial centres, got %d", where, p.n_init);
      detail::check_data("KMeans::fit (initial centres)", initial_centers, be.n_threads);
    }
    // Random init reads every weight on the host: device weights are copied once (data_access.hpp).
    std::vector<T> weights_copy;
    const VectorView<T> w_host =
        p.init == KMeansInit::random && !given ? host_weights(be, w, weights_copy) : VectorView<T>{};
    if (p.init == KMeansInit::random && !given) {
      const Index positive = detail::count_positive(w_host, X.rows);
      MIXTURA_EXPECTS(positive >= p.n_clusters,
                      "%s: init = random needs n_clusters (%d) rows of positive weight, found %lld", where,
                      p.n_clusters, static_cast<long long>(positive));
    }

    const auto scope = data_scope(be);  // CUDA: X stays on the device until the fit returns
    const double tol_abs = p.tol == 0 ? 0.0 : p.tol * mean_feature_variance(be, X);
    State next;
    next.n_features = X.cols;
    if (given) next.initial = initial_centers.map();
    std::vector<std::int32_t> labels;
    for (int r = 0; r < p.n_init; ++r) {
      detail::Stopwatch clock;
      RowMatrix<T> centers(p.n_clusters, X.cols);
      if (given && initial_centers.data != nullptr) {  // (checked above; spelled out for GCC's -Wnonnull)
        for (Index k = 0; k < p.n_clusters; ++k)
          std::copy_n(initial_centers.row(k), X.cols, centers.row(k).data());
      } else {
        const CounterRng rng(p.seed, static_cast<std::uint64_t>(r));
        const auto rows = p.init == KMeansInit::random
                              ? random_rows(X, w_host, p.n_clusters, rng, be.n_threads)
                              : kmeans_plusplus_rows(be, X, w, p.n_clusters, p.n_local_trials, rng);
        centers = fetch_rows(be, X, rows);
      }
      const double init_seconds = clock.seconds();
      KMeansRun run =
          detail::lloyd(be, X, w, centers, labels, p.max_iter, tol_abs, r, next.events, callback_, p.algorithm);
      run.init_seconds = init_seconds;
      run.seconds = clock.seconds();
      if (r == 0 || run.inertia < next.runs[next.best].inertia) {
        next.best = r;
        next.centers = std::move(centers);
        next.labels.swap(labels);
      }
      next.runs.push_back(std::move(run));
    }
    state_ = std::move(next);
    fitted_ = true;
    return *this;
  }

  struct State {
    RowMatrix<T> centers;
    std::vector<std::int32_t> labels;
    std::vector<KMeansRun> runs;
    std::vector<KMeansEvent> events;
    RowMatrix<T> initial;  ///< given initial centres, else empty
    int best = 0;
    Index n_features = 0;
  };

  const State& fitted(const char* what) const {
    if (!fitted_)
      throw NotFittedError(detail::format("KMeans::%s: this KMeans instance is not fitted yet; call fit() first", what));
    return state_;
  }
  const KMeansRun& best_run() const { return fitted("trace").runs[static_cast<std::size_t>(state_.best)]; }
  template <class Backend, template <class> class View>
  std::vector<std::int32_t> predict_data(const Backend& be, View<T> X) const {
    static_assert(detail::satisfies_kmeans_contract<Backend, T, View<T>, VectorView<T>>(), "");
    check_input("KMeans::predict", be, X);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows));
    kmeans_predict(be, X, VectorView<T>{}, state_.centers, labels.data());
    return labels;
  }
  template <class Backend, template <class> class View, template <class> class WView>
  double score_data(const Backend& be, View<T> X, WView<T> sample_weight) const {
    static_assert(detail::satisfies_kmeans_contract<Backend, T, View<T>, WView<T>>(), "");
    check_input("KMeans::score", be, X);
    check_weights_on(be, "KMeans::score", sample_weight, X.rows);
    return -kmeans_predict(be, X, sample_weight, state_.centers, nullptr);
  }
  template <class Backend, template <class> class View>
  RowMatrix<T> transform_data(const Backend& be, View<T> X) const {
    static_assert(detail::satisfies_kmeans_contract<Backend, T, View<T>, VectorView<T>>(), "");
    check_input("KMeans::transform", be, X);
    return kmeans_transform(be, X, state_.centers);
  }
  template <class Backend, template <class> class View>
  void check_input(const char* where, const Backend& be, View<T> X) const {
    if (!fitted_)
      throw NotFittedError(detail::format("%s: this KMeans instance is not fitted yet; call fit() first", where));
    check_data_on(be, where, X);
    detail::check_features(where, X.cols, state_.n_features);
  }

  KMeansParams params_;
  Callback callback_;
  State state_;
  bool fitted_ = false;
};

}  // namespace mixtura
