// mixtura._core's Gaussian mixtures: fit, the scoring functions and sampling, on host arrays and on
// arrays in CUDA device memory, registered per float type (bindings.hpp); and the conversions between
// the model and scikit-learn's arrays that the detector shares.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io/models.hpp"

namespace mixtura_py {

mixtura::CovarianceType parse_covariance(const std::string& t) {
  if (t == "full") return mixtura::CovarianceType::full;
  if (t == "tied") return mixtura::CovarianceType::tied;
  if (t == "diag") return mixtura::CovarianceType::diag;
  if (t == "spherical") return mixtura::CovarianceType::spherical;
  throw mixtura::InvalidArgument("GaussianMixture: covariance_type must be 'full', 'tied', 'diag' or 'spherical', got '" + t + "'");
}

namespace {
/// scikit-learn's shapes of precisions / precisions_cholesky / covariances for each type.
std::vector<py::ssize_t> param_shape(mixtura::CovarianceType t, py::ssize_t k, py::ssize_t d) {
  switch (t) {
    case mixtura::CovarianceType::full: return {k, d, d};
    case mixtura::CovarianceType::tied: return {d, d};
    case mixtura::CovarianceType::diag: return {k, d};
    case mixtura::CovarianceType::spherical: return {k};
  }
  return {};
}

/// An array's shape as the model-file checks take it (and mixtura::detail::shape_string writes it).
std::vector<std::uint64_t> shape_of(const py::array& a) {
  std::vector<std::uint64_t> shape;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) shape.push_back(static_cast<std::uint64_t>(a.shape(d)));
  return shape;
}
}  // namespace

/// Precision factors (scikit-learn's precisions_cholesky_) from the model, in scikit-learn's shape.
DArray factors_of(const mixtura::GmmModel& m) {
  const py::ssize_t K = m.n_components, D = m.n_features;
  DArray out(param_shape(m.type, K, D));
  double* o = out.mutable_data();
  switch (m.type) {
    case mixtura::CovarianceType::full:
    case mixtura::CovarianceType::tied:
      for (std::size_t k = 0; k < m.factor.size(); ++k)
        for (py::ssize_t i = 0; i < D; ++i)
          for (py::ssize_t j = 0; j < D; ++j) *o++ = m.factor[k](i, j);
      break;
    case mixtura::CovarianceType::diag:
    case mixtura::CovarianceType::spherical:
      std::copy(m.diag_factor.data(), m.diag_factor.data() + m.diag_factor.size(), o);
      break;
  }
  return out;
}

/// Covariances (or precisions) in scikit-learn's shape.
DArray matrices_of(const mixtura::GmmModel& m, bool precision) {
  const py::ssize_t K = m.n_components, D = m.n_features;
  DArray out(param_shape(m.type, K, D));
  double* o = out.mutable_data();
  const py::ssize_t n = m.type == mixtura::CovarianceType::tied ? 1 : K;
  for (py::ssize_t k = 0; k < n; ++k) {
    const Eigen::MatrixXd a = precision ? m.precision(k) : m.covariance(k);
    switch (m.type) {
      case mixtura::CovarianceType::full:
      case mixtura::CovarianceType::tied:
        for (py::ssize_t i = 0; i < D; ++i)
          for (py::ssize_t j = 0; j < D; ++j) *o++ = a(i, j);
        break;
      case mixtura::CovarianceType::diag:
        for (py::ssize_t i = 0; i < D; ++i) *o++ = a(i, i);
        break;
      case mixtura::CovarianceType::spherical: *o++ = a(0, 0); break;
    }
  }
  return out;
}

/// The model from scikit-learn-shaped arrays (weights_, means_, precisions_cholesky_), checked by the
/// model-file loader's own code (shapes against covariance_type, n_components and n_features, then
/// the values): these arrays are user-settable attributes and what a model file held.
mixtura::GmmModel model_from(const std::string& type, const DArray& weights, const DArray& means,
                             const DArray& factors) {
  const auto values = [](const DArray& a) { return std::vector<double>(a.data(), a.data() + a.size()); };
  return mixtura::detail::gmm_model_from_shaped(parse_covariance(type), values(weights), shape_of(weights),
                                                values(means), shape_of(means), values(factors), shape_of(factors),
                                                "GaussianMixture");
}

namespace {
/// The model's arrays in scikit-learn's names and shapes.
void put_model(py::dict& out, const mixtura::GmmModel& m) {
  out["weights"] = vector_array(m.weights);
  out["means"] = matrix_array(m.means);
  out["precisions_cholesky"] = factors_of(m);
  out["covariances"] = matrices_of(m, false);
  out["precisions"] = matrices_of(m, true);
}

/// The events as dicts, their iterations counted from iteration_offset.
py::list events_list(const std::vector<mixtura::GmmEvent>& events, int iteration_offset) {
  py::list out;
  for (const auto& e : events)
    out.append(py::dict(py::arg("kind") = mixtura::to_string(e.kind), py::arg("restart") = e.restart,
                        py::arg("iteration") = e.iteration + iteration_offset, py::arg("component") = e.component,
                        py::arg("row") = e.row, py::arg("value") = e.value));
  return out;
}
}  // namespace

/// The fitted attributes of a Gaussian-mixture fit (what GaussianMixture.fit stores).
template <class T>
py::dict gmm_result(const mixtura::GaussianMixture<T>& gm) {
  py::dict out;
  put_model(out, gm.model());
  out["lower_bound"] = gm.lower_bound();
  out["n_iter"] = gm.n_iter();
  out["converged"] = gm.converged();
  out["best_restart"] = gm.best_restart();
  out["traces"] = traces_of(gm.runs(), [](const mixtura::GmmIteration& it) {
    return std::make_pair(it.lower_bound, it.elbo_after_m);
  });
  out["events"] = events_list(gm.events(), 0);
  return out;
}

template py::dict gmm_result(const mixtura::GaussianMixture<float>&);
template py::dict gmm_result(const mixtura::GaussianMixture<double>&);

namespace {

using Stats = mixtura::GmmStats;

/// A Gaussian mixture holding the model of scikit-learn-shaped arrays, for scoring.
template <class T>
mixtura::GaussianMixture<T> gmm_with_model(const std::string& type, const DArray& weights, const DArray& means,
                                           const DArray& factors, int n_threads) {
  mixtura::GmmParams p;
  p.n_threads = n_threads;
  mixtura::GaussianMixture<T> gm(p);
  gm.set_model(model_from(type, weights, means, factors));
  return gm;
}


/// S2 as scikit-learn users read moments: (K, D, D) symmetric for full/tied, (K, D) diagonal otherwise.
DArray second_moments_of(const Stats& s) {
  const py::ssize_t K = s.n_components, D = s.n_features;
  if (!s.full_moments()) return matrix_array(s.s2_diag);
  DArray out({K, D, D});
  double* o = out.mutable_data();
  for (py::ssize_t k = 0; k < K; ++k) {
    const Eigen::MatrixXd m = s.second_moment(k);
    for (py::ssize_t i = 0; i < D; ++i)
      for (py::ssize_t j = 0; j < D; ++j) *o++ = m(i, j);
  }
  return out;
}

/// Each array of a state on its own (the properties build theirs alone, not the whole state).
DArray nk_of(const Stats& s) {
  return vector_array(Eigen::Map<const Eigen::VectorXd>(s.nk.data(), static_cast<Eigen::Index>(s.nk.size())));
}

/// The worst-explained rows: log p (m,) float64 and row indices (m,) int64, from lists as NumPy reads
/// them (so an empty one is float64, as pickles have always held it), and their values (m, D), (0, D)
/// when they were not kept.
py::array worst_log_likelihood_of(const Stats& s) {
  std::vector<double> log_p;
  for (const auto& r : s.worst.rows) log_p.push_back(r.first);
  return py::array(py::cast(log_p));
}

py::array worst_rows_of(const Stats& s) {
  std::vector<std::int64_t> rows;
  for (const auto& r : s.worst.rows) rows.push_back(static_cast<std::int64_t>(r.second));
  return py::array(py::cast(rows));
}

py::array_t<double> worst_values_of(const Stats& s) {
  py::array_t<double> out({static_cast<py::ssize_t>(s.worst.values.size()), static_cast<py::ssize_t>(s.n_features)});
  double* o = out.mutable_data();
  for (const Eigen::VectorXd& v : s.worst.values) o = std::copy(v.data(), v.data() + v.size(), o);
  return out;
}

py::tuple stats_state(const Stats& s) {
  return py::make_tuple(std::string(mixtura::to_string(s.type)), static_cast<long long>(s.n_components),
                        static_cast<long long>(s.n_features), nk_of(s), matrix_array(s.s1), matrix_array(s.shift),
                        second_moments_of(s), s.log_likelihood, s.entropy, s.weight,
                        static_cast<long long>(s.worst.capacity), worst_log_likelihood_of(s), worst_rows_of(s),
                        worst_values_of(s));
}

/// The statistics of a pickled state, every shape checked against the sizes it names (a bad one is
/// named with its shape and the one expected).
Stats stats_from_state(const py::tuple& t) {
  using mixtura::detail::shape_string;
  const char* where = "GaussianMixtureStatistics: pickled state";
  if (t.size() != 14) throw mixtura::InvalidArgument(std::string(where) + " has " + std::to_string(t.size()) + " fields, expected 14");
  const auto type = parse_covariance(t[0].cast<std::string>());
  const long long K = t[1].cast<long long>(), D = t[2].cast<long long>(), capacity = t[10].cast<long long>();
  MIXTURA_EXPECTS(K >= 1 && D >= 1 && K <= INT32_MAX && D <= INT32_MAX && capacity >= 0 && capacity <= K,
                  "%s: %lld components, %lld features, %lld worst rows", where, K, D, capacity);
  const auto expect = [&](const py::array& a, const std::vector<std::uint64_t>& shape, const char* name) {
    MIXTURA_EXPECTS(shape_of(a) == shape, "%s: %s has shape %s, expected %s", where, name,
                    shape_string(shape_of(a)).c_str(), shape_string(shape).c_str());
  };
  Stats s(type, K, D, static_cast<std::size_t>(capacity));
  const auto k = static_cast<std::uint64_t>(K), d = static_cast<std::uint64_t>(D);
  const DArray nk = t[3].cast<DArray>(), s1 = t[4].cast<DArray>(), shift = t[5].cast<DArray>(), s2 = t[6].cast<DArray>();
  expect(nk, {k}, "nk");
  expect(s1, {k, d}, "s1");
  expect(shift, {k, d}, "shift");
  expect(s2, s.full_moments() ? std::vector<std::uint64_t>{k, d, d} : std::vector<std::uint64_t>{k, d}, "s2");
  std::copy(nk.data(), nk.data() + K, s.nk.begin());
  s.s1 = Eigen::Map<const mixtura::RowMatrix<double>>(s1.data(), K, D);
  s.shift = Eigen::Map<const mixtura::RowMatrix<double>>(shift.data(), K, D);
  if (s.full_moments()) {
    for (long long k = 0; k < K; ++k)
      s.s2[static_cast<std::size_t>(k)] = Eigen::Map<const mixtura::RowMatrix<double>>(s2.data() + k * D * D, D, D);
  } else {
    s.s2_diag = Eigen::Map<const mixtura::RowMatrix<double>>(s2.data(), K, D);
  }
  s.log_likelihood = t[7].cast<double>();
  s.entropy = t[8].cast<double>();
  s.weight = t[9].cast<double>();
  const DArray log_p = t[11].cast<DArray>(), values = t[13].cast<DArray>();
  const auto rows = t[12].cast<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>();
  const py::ssize_t m = log_p.size();
  MIXTURA_EXPECTS(m <= capacity, "%s: worst_log_likelihood has shape %s, expected (m,) with m <= %lld", where,
                  shape_string(shape_of(log_p)).c_str(), capacity);
  MIXTURA_EXPECTS(rows.size() == m, "%s: worst_rows has shape %s, expected (%zd,), one per worst_log_likelihood",
                  where, shape_string(shape_of(rows)).c_str(), static_cast<std::ptrdiff_t>(m));
  MIXTURA_EXPECTS(values.size() == 0 || (values.ndim() == 2 && values.shape(0) == m && values.shape(1) == D),
                  "%s: worst_values has shape %s, expected (%zd, %lld) or none", where,
                  shape_string(shape_of(values)).c_str(), static_cast<std::ptrdiff_t>(m), D);
  for (py::ssize_t j = 0; j < m; ++j) {
    s.worst.rows.emplace_back(log_p.data()[j], static_cast<mixtura::Index>(rows.data()[j]));
    if (values.size()) s.worst.values.push_back(Eigen::Map<const Eigen::VectorXd>(values.data() + j * D, D));
  }
  return s;
}


/// What an update or a partial_fit step left: the model's arrays, the step's trace record, its events
/// (iterations counted from iteration_offset) and the online-EM state.
template <class T>
py::dict step_result(const mixtura::GaussianMixture<T>& gm, int iteration_offset, bool applied = true) {
  py::dict out;
  put_model(out, gm.model());
  // None: update dropped the step (its bound fell within round-off), the trace gains no record.
  if (applied) {
    const mixtura::GmmIteration& rec = gm.trace().back();
    out["record"] = py::make_tuple(rec.lower_bound, rec.elbo_after_m, rec.entropy, rec.seconds);
  } else {
    out["record"] = py::none();
  }
  out["converged"] = gm.converged();
  out["events"] = events_list(gm.events(), iteration_offset);
  const mixtura::GmmStreamState& st = gm.stream_state();
  if (st.empty()) {
    out["stream"] = py::none();
  } else {
    py::array_t<bool> starved(static_cast<py::ssize_t>(st.starved.size()));
    for (std::size_t k = 0; k < st.starved.size(); ++k) starved.mutable_data()[k] = st.starved[k];
    out["stream"] = py::make_tuple(st.statistics, static_cast<long long>(st.n_steps), starved);
  }
  return out;
}

mixtura::GmmParams stream_params(const std::string& type, int n_components, double reg_covar, double tol,
                                 double learning_offset, double learning_decay, double half_life, int n_threads) {
  mixtura::GmmParams p;
  set_mixture_params(p, n_components, type, reg_covar, tol, n_threads);
  p.learning_offset = learning_offset;
  p.learning_decay = learning_decay;
  p.half_life = half_life;
  return p;
}

template <class T>
Stats gmm_statistics(const Array<T>& X, const std::optional<Array<T>>& sample_weight, const std::string& type,
                     const DArray& weights, const DArray& means, const DArray& factors, long long first_row,
                     int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  py::gil_scoped_release release;
  return gm.statistics_on(host_backend(n_threads), Xv, wv, static_cast<mixtura::Index>(first_row));
}

/// update() of a mixture holding the given model (or none: the statistics alone make it).
py::dict gmm_update(const Stats& stats, const std::string& type, int n_components, double reg_covar, double tol,
                    const std::optional<DArray>& weights, const std::optional<DArray>& means,
                    const std::optional<DArray>& factors, const std::optional<DArray>& previous_lower_bound,
                    int n_iter) {
  mixtura::GaussianMixture<double> gm(stream_params(type, n_components, reg_covar, tol, 10, 0.7, 0, 1));
  std::size_t before = 0;  // records the core holds before the step: the previous one, or none
  if (weights && means && factors) {
    mixtura::GmmRun run;  // the previous record, for update's convergence test
    if (previous_lower_bound && previous_lower_bound->size() == 1) {
      mixtura::GmmIteration rec;
      rec.lower_bound = previous_lower_bound->data()[0];
      run.trace.push_back(rec);
      run.n_iter = 1;
      before = 1;
    }
    gm.set_model(model_from(type, *weights, *means, *factors), {run}, {}, 0);
  }
  {
    py::gil_scoped_release release;
    gm.update(stats);
  }
  // The core numbers the step after the records it holds (before); Python's trace holds n_iter.
  return step_result(gm, n_iter - static_cast<int>(before), gm.trace().size() > before);
}

template <class T>
py::dict gmm_partial_fit(const Array<T>& X, const std::optional<Array<T>>& sample_weight, const std::string& type,
                         const DArray& weights, const DArray& means, const DArray& factors, double reg_covar,
                         double learning_offset, double learning_decay, double half_life, int n_threads,
                         const std::optional<Stats>& stream, long long n_steps,
                         const std::optional<py::array_t<bool>>& starved, int n_iter) {
  mixtura::GaussianMixture<T> gm(stream_params(type, static_cast<int>(means.ndim() == 2 ? means.shape(0) : 0), reg_covar,
                                               0, learning_offset, learning_decay, half_life, n_threads));
  gm.set_model(model_from(type, weights, means, factors));
  if (stream) {
    mixtura::GmmStreamState st;
    st.statistics = *stream;
    st.n_steps = n_steps;
    if (starved) st.starved.assign(starved->data(), starved->data() + starved->size());
    gm.set_stream_state(std::move(st));
  }
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  run_interruptibly([&] { gm.partial_fit_on(host_backend(n_threads), Xv, wv); });
  return step_result(gm, n_iter);
}

}  // namespace

namespace {

mixtura::GmmInit parse_gmm_init(const std::string& i) {
  if (i == "kmeans") return mixtura::GmmInit::kmeans;
  if (i == "k-means++") return mixtura::GmmInit::kmeans_plusplus;
  if (i == "random") return mixtura::GmmInit::random;
  if (i == "random_from_data") return mixtura::GmmInit::random_from_data;
  throw mixtura::InvalidArgument("GaussianMixture: init_params must be 'kmeans', 'k-means++', 'random' or 'random_from_data', got '" + i + "'");
}


/// A Gaussian mixture with the parameters of a fit, its starting parameters (scikit-learn's shapes
/// for D features) and the iteration callback (verbose, Ctrl-C).
template <class T>
mixtura::GaussianMixture<T> make_gmm(py::ssize_t D, int n_components, const std::string& covariance_type, double tol,
                                     double reg_covar, int max_iter, int n_init, const std::string& init_params,
                                     std::uint64_t seed, int n_threads, int verbose,
                                     const std::optional<DArray>& weights_init, const std::optional<DArray>& means_init,
                                     const std::optional<DArray>& precisions_init, const std::string& on_degenerate,
                                     const std::optional<py::tuple>& warm) {
  mixtura::GmmParams p;
  set_mixture_params(p, n_components, covariance_type, reg_covar, tol, n_threads);
  p.max_iter = max_iter;
  p.n_init = n_init;
  p.init = parse_gmm_init(init_params);
  p.seed = seed;
  if (on_degenerate != "recover" && on_degenerate != "raise")
    throw mixtura::InvalidArgument("GaussianMixture: on_degenerate must be 'recover' or 'raise', got '" + on_degenerate + "'");
  p.on_degenerate = on_degenerate == "raise" ? mixtura::DegeneratePolicy::raise : mixtura::DegeneratePolicy::recover;
  p.warm_start = warm.has_value();
  mixtura::GaussianMixture<T> gm(p);
  if (warm) {  // (weights, means, precisions_cholesky, lower_bound): EM goes on from this model and bound
    const py::tuple& t = *warm;
    if (t.size() != 4) throw mixtura::InvalidArgument("GaussianMixture::fit: warm must be (weights, means, factors, lower_bound)");
    mixtura::GmmRun run;
    run.lower_bound = t[3].cast<double>();
    gm.set_model(model_from(covariance_type, t[0].cast<DArray>(), t[1].cast<DArray>(), t[2].cast<DArray>()), {run}, {}, 0);
  }
  mixtura::GmmInitialParams in;
  if (weights_init) in.weights = Eigen::Map<const Eigen::VectorXd>(weights_init->data(), weights_init->size());
  if (means_init) {
    if (means_init->ndim() != 2) throw mixtura::InvalidArgument("GaussianMixture::fit: means_init must be 2-dimensional");
    in.means = Eigen::Map<const mixtura::RowMatrix<double>>(means_init->data(), means_init->shape(0), means_init->shape(1));
  }
  if (precisions_init) {
    const DArray& a = *precisions_init;
    switch (p.covariance_type) {
      case mixtura::CovarianceType::full:
        if (a.ndim() != 3 || a.shape(1) != D || a.shape(2) != D)
          throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_components, n_features, n_features) for 'full'");
        for (py::ssize_t k = 0; k < a.shape(0); ++k)
          in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data() + k * D * D, D, D));
        break;
      case mixtura::CovarianceType::tied:
        if (a.ndim() != 2) throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_features, n_features) for 'tied'");
        in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data(), a.shape(0), a.shape(1)));
        break;
      case mixtura::CovarianceType::diag:
        if (a.ndim() != 2) throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_components, n_features) for 'diag'");
        in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data(), a.shape(0), a.shape(1)));
        break;
      case mixtura::CovarianceType::spherical:
        if (a.ndim() != 1) throw mixtura::InvalidArgument("GaussianMixture::fit: precisions_init must have shape (n_components,) for 'spherical'");
        in.precisions.push_back(Eigen::Map<const mixtura::RowMatrix<double>>(a.data(), a.shape(0), 1));
        break;
    }
  }
  gm.set_initial_params(in);
  gm.set_callback([verbose](int restart, int iteration, const mixtura::GmmIteration& it) {
    py::gil_scoped_acquire acquire;
    if (verbose)
      py::print(py::str("Restart {}, iteration {}: lower bound {:.8g}, ELBO after M-step {:.8g}, {:.3f} ms")
                    .format(restart, iteration, it.lower_bound, it.elbo_after_m, it.seconds * 1e3));
    return PyErr_CheckSignals() == 0;
  });
  return gm;
}

template <class T>
py::dict gmm_fit(const Array<T>& X, const std::optional<Array<T>>& sample_weight, int n_components,
                 const std::string& covariance_type, double tol, double reg_covar, int max_iter, int n_init,
                 const std::string& init_params, std::uint64_t seed, int n_threads, int verbose,
                 const std::optional<DArray>& weights_init, const std::optional<DArray>& means_init,
                 const std::optional<DArray>& precisions_init, const std::string& on_degenerate,
                 const std::optional<py::tuple>& warm, const std::string& device) {
  auto gm = make_gmm<T>(X.ndim() == 2 ? X.shape(1) : 0, n_components, covariance_type, tol, reg_covar, max_iter, n_init,
                        init_params, seed, n_threads, verbose, weights_init, means_init, precisions_init, on_degenerate,
                        warm);
  const auto Xv = view(X, "X");
  const auto wv = weights_view(sample_weight);
  run_interruptibly([&] { on_device(device, n_threads, [&](const auto& be) { gm.fit_on(be, Xv, wv); }); });

  return gmm_result(gm);
}

/// `what` (score_samples, predict_proba, component_log_density, predict: the GaussianMixture methods) of
/// X, a host or device view, on backend `be`, with the GIL released.
template <class T, class Backend, class View>
py::array gmm_eval_on(const mixtura::GaussianMixture<T>& gm, const Backend& be, View Xv, const std::string& what) {
  if (what == "score_samples") {
    Eigen::VectorXd s;
    {
      py::gil_scoped_release release;
      s = gm.score_samples_on(be, Xv);
    }
    return vector_array(s);
  }
  if (what == "predict") {  // the argmax of the weighted log-densities (one label a row crosses from a device)
    std::vector<std::int32_t> labels;
    {
      py::gil_scoped_release release;
      labels = gm.predict_on(be, Xv);
    }
    return labels_array<std::int64_t>(labels);
  }
  if (what != "predict_proba" && what != "component_log_density")
    throw mixtura::InvalidArgument("gmm_eval: what must be 'score_samples', 'predict_proba', "
                                   "'component_log_density' or 'predict', got '" + what + "'");
  mixtura::RowMatrix<double> r;
  {
    py::gil_scoped_release release;
    r = what == "predict_proba" ? gm.predict_proba_on(be, Xv) : gm.component_log_density_on(be, Xv);
  }
  return matrix_array(r);
}

template <class T>
py::array gmm_eval(const Array<T>& X, const std::string& type, const DArray& weights, const DArray& means,
                   const DArray& factors, const std::string& what, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  return gmm_eval_on(gm, host_backend(n_threads), view(X, "X"), what);
}

py::tuple gmm_sample(const std::string& type, const DArray& weights, const DArray& means, const DArray& factors,
                     long long n_samples, std::uint64_t seed) {
  mixtura::GaussianMixture<double> gm;
  gm.set_model(model_from(type, weights, means, factors));
  auto s = gm.sample(n_samples, seed);
  DArray x({s.first.rows(), s.first.cols()});
  std::copy(s.first.data(), s.first.data() + s.first.size(), x.mutable_data());
  py::array_t<std::int32_t> y(static_cast<py::ssize_t>(s.second.size()));
  std::copy(s.second.begin(), s.second.end(), y.mutable_data());
  return py::make_tuple(x, y);
}

#if MIXTURA_HAS_CUDA
template <class T>
py::dict gmm_fit_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                        const std::optional<Array<T>>& sample_weight, int n_components,
                        const std::string& covariance_type, double tol, double reg_covar, int max_iter, int n_init,
                        const std::string& init_params, std::uint64_t seed, int n_threads, int verbose,
                        const std::optional<DArray>& weights_init, const std::optional<DArray>& means_init,
                        const std::optional<DArray>& precisions_init, const std::string& on_degenerate,
                        const std::optional<py::tuple>& warm, std::uintptr_t sample_weight_ptr) {
  auto gm = make_gmm<T>(cols, n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, seed,
                        n_threads, verbose, weights_init, means_init, precisions_init, on_degenerate, warm);
  const auto Xv = device_view<T>(ptr, rows, cols, stride);
  const auto wv = weights_view(sample_weight);
  run_interruptibly([&] {
    const auto be = mixtura::make_cuda_backend(0, n_threads);
    if (sample_weight_ptr)  // weights in device memory too: read in place
      gm.fit_on(be, Xv, device_weights<T>(sample_weight_ptr, rows));
    else
      gm.fit_on(be, Xv, wv);
  });
  return gmm_result(gm);
}

template <class T>
py::array gmm_eval_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                          const std::string& type, const DArray& weights, const DArray& means, const DArray& factors,
                          const std::string& what, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  return gmm_eval_on(gm, mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride), what);
}

/// The weighted mean log-density of device X with sample weights in device memory (n values, checked
/// on the device).
template <class T>
double gmm_score_device(std::uintptr_t ptr, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                        const std::string& type, const DArray& weights, const DArray& means, const DArray& factors,
                        std::uintptr_t sample_weight_ptr, int n_threads) {
  const auto gm = gmm_with_model<T>(type, weights, means, factors, n_threads);
  py::gil_scoped_release release;
  return gm.score_on(mixtura::make_cuda_backend(0, n_threads), device_view<T>(ptr, rows, cols, stride),
                     device_weights<T>(sample_weight_ptr, rows));
}

#endif

template <class T>
void bind_gmm_types(py::module_& m) {
  m.def(typed_name<T>("gmm_fit").c_str(), &gmm_fit<T>, py::arg("X").noconvert(), py::arg("sample_weight").noconvert(),
        py::arg("n_components"), py::arg("covariance_type"), py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"),
        py::arg("n_init"), py::arg("init_params"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"),
        py::arg("weights_init"), py::arg("means_init"), py::arg("precisions_init"), py::arg("on_degenerate"),
        py::arg("warm"), py::arg("device") = "cpu");
  m.def(typed_name<T>("gmm_statistics").c_str(), &gmm_statistics<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("first_row"), py::arg("n_threads"));
  m.def(typed_name<T>("gmm_partial_fit").c_str(), &gmm_partial_fit<T>, py::arg("X").noconvert(),
        py::arg("sample_weight").noconvert(), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("reg_covar"), py::arg("learning_offset"), py::arg("learning_decay"),
        py::arg("half_life"), py::arg("n_threads"), py::arg("stream"), py::arg("n_steps"), py::arg("starved"),
        py::arg("n_iter"));
  m.def(typed_name<T>("gmm_eval").c_str(), &gmm_eval<T>, py::arg("X").noconvert(), py::arg("covariance_type"),
        py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"), py::arg("what"), py::arg("n_threads"));
#if MIXTURA_HAS_CUDA
  m.def(typed_name<T>("gmm_fit_device").c_str(), &gmm_fit_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("sample_weight").noconvert(), py::arg("n_components"),
        py::arg("covariance_type"), py::arg("tol"), py::arg("reg_covar"), py::arg("max_iter"), py::arg("n_init"),
        py::arg("init_params"), py::arg("seed"), py::arg("n_threads"), py::arg("verbose"), py::arg("weights_init"),
        py::arg("means_init"), py::arg("precisions_init"), py::arg("on_degenerate"), py::arg("warm"),
        py::arg("sample_weight_ptr") = 0);
  m.def(typed_name<T>("gmm_eval_device").c_str(), &gmm_eval_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("what"), py::arg("n_threads"));
  m.def(typed_name<T>("gmm_score_device").c_str(), &gmm_score_device<T>, py::arg("ptr"), py::arg("rows"),
        py::arg("cols"), py::arg("stride"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("sample_weight_ptr"), py::arg("n_threads"));
#endif
}

}  // namespace

void bind_gmm(py::module_& m) {
  py::class_<Stats>(m, "GaussianMixtureStatistics", R"doc(
Sufficient statistics of rows under a Gaussian mixture (GaussianMixture.statistics): additive, small
(nothing per row) and picklable. ``a.merge(b)`` (or ``a + b``) gives the statistics of both sets of rows;
GaussianMixture.update(stats) makes the M-step of them.

Attributes (read-only NumPy copies): covariance_type, n_components, n_features; nk (K,): sum of
w_i r_ik; s1 (K, D): sum of w_i r_ik (x_i - shift_k); s2: sum of w_i r_ik (x_i - shift_k)(x_i - shift_k)^T,
(K, D, D) for full/tied, its diagonal (K, D) for diag/spherical; shift (K, D); weight: sum of w_i;
log_likelihood: sum of w_i log p(x_i); entropy: sum of w_i H(r_i); worst_log_likelihood, worst_rows,
worst_values: the n_components worst-explained rows (where a collapsed component is re-seeded).)doc")
      .def_property_readonly("covariance_type", [](const Stats& s) { return std::string(mixtura::to_string(s.type)); })
      .def_property_readonly("n_components", [](const Stats& s) { return static_cast<long long>(s.n_components); })
      .def_property_readonly("n_features", [](const Stats& s) { return static_cast<long long>(s.n_features); })
      .def_property_readonly("nk", &nk_of)
      .def_property_readonly("s1", [](const Stats& s) { return matrix_array(s.s1); })
      .def_property_readonly("shift", [](const Stats& s) { return matrix_array(s.shift); })
      .def_property_readonly("s2", [](const Stats& s) { return second_moments_of(s); })
      .def_property_readonly("weight", [](const Stats& s) { return s.weight; })
      .def_property_readonly("log_likelihood", [](const Stats& s) { return s.log_likelihood; })
      .def_property_readonly("entropy", [](const Stats& s) { return s.entropy; })
      .def_property_readonly("worst_log_likelihood", &worst_log_likelihood_of)
      .def_property_readonly("worst_rows", &worst_rows_of)
      .def_property_readonly("worst_values", &worst_values_of)
      .def("merge", [](const Stats& a, const Stats& b) { Stats out = a; out.merge(b); return out; }, py::arg("other"),
           "The statistics of both sets of rows (a new object; moments around b's shift are moved to a's).")
      .def("__add__", [](const Stats& a, const Stats& b) { Stats out = a; out.merge(b); return out; })
      .def("__repr__", [](const Stats& s) {
        return "GaussianMixtureStatistics(covariance_type='" + std::string(mixtura::to_string(s.type)) +
               "', n_components=" + std::to_string(s.n_components) + ", n_features=" + std::to_string(s.n_features) +
               ", weight=" + py::str(py::float_(s.weight)).cast<std::string>() + ")";
      })
      // Pickles name mixtura._gmm's function, not this class: the module holding it depends on the CPU.
      .def("__reduce__", [](const Stats& s) {
        return py::make_tuple(py::module_::import("mixtura._gmm").attr("_statistics_from_state"),
                              py::make_tuple(stats_state(s)));
      });
  m.def("gmm_statistics_from_state", &stats_from_state, py::arg("state"));
  // The factors a fit starts from given precisions (as GaussianMixture's initial model takes them):
  // L lower with P = L L^T (Eigen's LLT) for full/tied, sqrt(P) for diag/spherical.
  m.def("gmm_precision_factors", [](const std::string& type, const DArray& precisions) {
    const auto t = parse_covariance(type);
    DArray out(std::vector<py::ssize_t>(precisions.shape(), precisions.shape() + precisions.ndim()));
    double* o = out.mutable_data();
    constexpr const char* where = "GaussianMixture.fit";
    if (t == mixtura::CovarianceType::diag || t == mixtura::CovarianceType::spherical) {
      mixtura::detail::check_precision_values(where, t, precisions.data(), static_cast<std::size_t>(precisions.size()));
      for (py::ssize_t i = 0; i < precisions.size(); ++i) o[i] = std::sqrt(precisions.data()[i]);
      return out;
    }
    const py::ssize_t D = precisions.ndim() >= 2 ? precisions.shape(precisions.ndim() - 1) : 0;
    MIXTURA_EXPECTS(D > 0 && precisions.ndim() >= 2 && precisions.shape(precisions.ndim() - 2) == D,
                    "gmm_precision_factors: precisions must be square matrices");
    for (py::ssize_t k = 0; k * D * D < precisions.size(); ++k) {
      const Eigen::Map<const mixtura::RowMatrix<double>> p(precisions.data() + k * D * D, D, D);
      Eigen::Map<mixtura::RowMatrix<double>>(o + k * D * D, D, D) =
          mixtura::detail::checked_precision_factor(where, static_cast<std::size_t>(k), t, p);
    }
    return out;
  }, py::arg("covariance_type"), py::arg("precisions"));
  bind_gmm_types<float>(m);
  bind_gmm_types<double>(m);
  m.def("gmm_update", &gmm_update, py::arg("statistics"), py::arg("covariance_type"), py::arg("n_components"),
        py::arg("reg_covar"), py::arg("tol"), py::arg("weights"), py::arg("means"), py::arg("precisions_cholesky"),
        py::arg("previous_lower_bound"), py::arg("n_iter"));
  m.def("gmm_n_parameters",
        [](const std::string& covariance_type, long long n_components, long long n_features) {
          mixtura::GmmModel shape;  // the count needs the type and the sizes only
          shape.type = parse_covariance(covariance_type);
          shape.n_components = n_components;
          shape.n_features = n_features;
          return shape.n_parameters();
        },
        py::arg("covariance_type"), py::arg("n_components"), py::arg("n_features"),
        "Free parameters of a mixture (for BIC and AIC), as scikit-learn counts them.");
  m.def("gmm_sample", &gmm_sample, py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("n_samples"), py::arg("seed"));
}

}  // namespace mixtura_py
