#pragma once
/// Saving and loading KMeans and GaussianMixture as model files (io/model_file.hpp).
///
/// A model's sections carry scikit-learn's attribute names (cluster_centers_, weights_, means_,
/// precisions_cholesky_, ...); docs/model-format.md lists them per kind. Loading checks the contents
/// as well as the container: shapes agree, values are finite, weights are a distribution, Cholesky
/// factors are triangular with a positive diagonal. A loaded estimator predicts and scores exactly
/// like the one that was saved. `prefix` puts a model's sections under a name ("model.") so that a
/// composite model can hold several.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "mixtura/core/errors.hpp"
#include "mixtura/gmm/gaussian_mixture.hpp"
#include "mixtura/io/model_file.hpp"
#include "mixtura/kmeans/kmeans.hpp"
#include "mixtura/version.hpp"

namespace mixtura {

constexpr const char* kKMeansKind = "KMeans";
constexpr const char* kGaussianMixtureKind = "GaussianMixture";

/// What a model file holds, without building the estimator.
struct ModelFileInfo {
  std::string kind;             ///< "KMeans", "GaussianMixture", ...
  std::string dtype;            ///< "float32" or "float64": KMeans' centres; a mixture's parameters are float64
  std::int64_t n_features = 0;  ///< n_features_in_ (0 when the file has none)
};

/// Largest magnitude of a loaded f64 model value (means, precision factors, centres, scales) and,
/// reciprocally, the smallest positive scale or precision factor: squares and reciprocals of such
/// values stay finite, so a loaded model scores without overflow; no fit produces values outside.
constexpr double kModelValueLimit = 1e150;
/// The same for float32 K-means centres (squared distances are summed in float).
constexpr float kModelValueLimitF32 = 1e18f;

namespace detail {

template <class T>
constexpr double model_value_limit() { return sizeof(T) == 4 ? kModelValueLimitF32 : kModelValueLimit; }

/// Sections under a reader's prefix must be its kind's (`own`), `params.NAME`, or `mixtura_version`
/// at the top level; names under `sub` (an inner model's prefix) are its reader's. Other dotted
/// names ("test.X", "myapp.notes") are the application's and ignored; `params.`/`model.` are
/// mixtura's. A section of another kind is refused, not ignored: it means the file is not what
/// its kind says.
inline void check_section_names(const ModelFile& mf, const std::string& prefix, const char* kind,
                                std::initializer_list<const char*> own, const char* sub, const char* where) {
  for (const Section& sec : mf.sections) {
    if (sec.name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = sec.name.substr(prefix.size());
    if (prefix.empty() && rest == "mixtura_version") continue;
    if (rest.compare(0, 7, "params.") == 0 && rest.size() > 7 && rest.find('.', 7) == std::string::npos) continue;
    if (sub && rest.compare(0, std::strlen(sub), sub) == 0) continue;
    const std::size_t dot = rest.find('.');
    const bool reserved = rest.compare(0, 7, "params.") == 0 || rest.compare(0, 6, "model.") == 0;
    if (dot != std::string::npos && !reserved) continue;
    bool known = false;
    for (const char* o : own) known = known || rest == o;
    MIXTURA_EXPECTS(known, "%s: section '%s' is not one a %s model has (docs/model-format.md lists them): the file is "
                    "not what its kind says", where, sec.name.c_str(), kind);
  }
}

/// A JSON object written field by field (mixtura writes JSON, it never parses it).
class JsonObject {
 public:
  JsonObject& add(const char* key, long long v) { return raw(key, std::to_string(v)); }
  JsonObject& add(const char* key, int v) { return raw(key, std::to_string(v)); }
  JsonObject& add(const char* key, unsigned long long v) { return raw(key, std::to_string(v)); }
  JsonObject& add(const char* key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonObject& add(const char* key, std::nullptr_t) { return raw(key, "null"); }
  JsonObject& add(const char* key, double v) {
    if (!std::isfinite(v)) return raw(key, "null");
    std::string s = detail::format("%.17g", v);
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return raw(key, s);
  }
  JsonObject& add(const char* key, const char* v) {
    std::string s = "\"";
    for (const char* c = v; *c; ++c) {
      if (*c == '"' || *c == '\\') s += '\\';
      s += *c;
    }
    return raw(key, s + "\"");
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  JsonObject& raw(const char* key, const std::string& value) {
    if (!body_.empty()) body_ += ", ";
    body_ += "\"" + std::string(key) + "\": " + value;
    return *this;
  }
  std::string body_;
};

inline std::uint64_t u64(Index v) { return static_cast<std::uint64_t>(v); }

/// The section of a loaded model, "where: section 'x'" in errors.
struct SectionReader {
  const ModelFile& mf;
  std::string prefix;
  const char* where;

  std::string name(const char* s) const { return prefix + s; }
  bool has(const char* s) const { return mf.has(name(s)); }
  const Section& section(const char* s) const {
    MIXTURA_EXPECTS(has(s), "%s: the model file has no section '%s'", where, name(s).c_str());
    return mf.section(name(s));
  }
  /// Checks dtype and number of dimensions; returns the shape.
  std::vector<std::uint64_t> shape(const char* s, DType dt, std::size_t ndim) const {
    const Section& sec = section(s);
    MIXTURA_EXPECTS(sec.dtype == dt, "%s: section '%s' has dtype %s, expected %s", where, name(s).c_str(),
                    to_string(sec.dtype), to_string(dt));
    MIXTURA_EXPECTS(sec.shape.size() == ndim, "%s: section '%s' has shape %s, expected %zu dimensions", where,
                    name(s).c_str(), shape_string(sec.shape).c_str(), ndim);
    return sec.shape;
  }
  template <class T>
  std::vector<T> get(const char* s, const std::vector<std::uint64_t>& expected) const {
    const Section& sec = section(s);
    MIXTURA_EXPECTS(sec.dtype == dtype_of<T>::value, "%s: section '%s' has dtype %s, expected %s", where,
                    name(s).c_str(), to_string(sec.dtype), to_string(dtype_of<T>::value));
    MIXTURA_EXPECTS(sec.shape == expected, "%s: section '%s' has shape %s, expected %s", where, name(s).c_str(),
                    shape_string(sec.shape).c_str(), shape_string(expected).c_str());
    return mf.array<T>(name(s));
  }
  template <class T>
  T scalar(const char* s) const { return get<T>(s, {}).front(); }
  std::string text(const char* s) const {
    shape(s, DType::text, 1);
    return mf.text(name(s));
  }
  template <class T>
  void all_finite(const char* s, const std::vector<T>& v) const {
    for (std::size_t i = 0; i < v.size(); ++i)
      MIXTURA_EXPECTS(std::isfinite(v[i]), "%s: section '%s' holds a non-finite value (%g) at flat index %zu", where,
                      name(s).c_str(), static_cast<double>(v[i]), i);
  }
};

/// Restart lengths (restart_n_iter_) checked against the concatenated traces: all >= 0, summing to
/// the traces' rows. Returns the offset of each restart's first row.
inline std::vector<std::uint64_t> restart_offsets(const SectionReader& r, const std::vector<std::int64_t>& n_iter,
                                                  std::uint64_t rows) {
  std::vector<std::uint64_t> offsets;
  std::uint64_t at = 0;
  for (std::size_t i = 0; i < n_iter.size(); ++i) {
    MIXTURA_EXPECTS(n_iter[i] >= 0 && static_cast<std::uint64_t>(n_iter[i]) <= rows - at,
                    "%s: section '%s' gives restart %zu %lld iterations, but the traces hold %llu rows in all", r.where,
                    r.name("restart_n_iter_").c_str(), i, static_cast<long long>(n_iter[i]),
                    static_cast<unsigned long long>(rows));
    offsets.push_back(at);
    at += static_cast<std::uint64_t>(n_iter[i]);
  }
  MIXTURA_EXPECTS(at == rows, "%s: section '%s' sums to %llu iterations, but the traces hold %llu rows", r.where,
                  r.name("restart_n_iter_").c_str(), static_cast<unsigned long long>(at),
                  static_cast<unsigned long long>(rows));
  return offsets;
}

/// Reads restart_n_iter_, best_restart_, n_iter_ and converged_ (shared by both kinds); returns
/// (restart lengths, their offsets, number of trace rows) through the outputs.
inline void read_restarts(const SectionReader& r, const char* traces, std::vector<std::int64_t>& n_iter,
                          std::vector<std::uint64_t>& offsets, std::uint64_t& rows, int& best) {
  const auto rs = r.shape("restart_n_iter_", DType::i64, 1);
  MIXTURA_EXPECTS(rs[0] >= 1, "%s: section '%s' is empty: a fitted model has at least one restart", r.where,
                  r.name("restart_n_iter_").c_str());
  n_iter = r.get<std::int64_t>("restart_n_iter_", rs);
  const auto ts = r.shape(traces, DType::f64, 2);
  MIXTURA_EXPECTS(ts[1] == 2, "%s: section '%s' has shape %s, expected (n, 2)", r.where, r.name(traces).c_str(),
                  shape_string(ts).c_str());
  rows = ts[0];
  offsets = restart_offsets(r, n_iter, rows);
  const std::int64_t b = r.scalar<std::int64_t>("best_restart_");
  MIXTURA_EXPECTS(b >= 0 && static_cast<std::uint64_t>(b) < n_iter.size(),
                  "%s: best_restart_ = %lld is outside [0, %zu restarts)", r.where, static_cast<long long>(b),
                  n_iter.size());
  best = static_cast<int>(b);
  const std::int64_t it = r.scalar<std::int64_t>("n_iter_");
  MIXTURA_EXPECTS(it == n_iter[static_cast<std::size_t>(best)],
                  "%s: n_iter_ = %lld but restart_n_iter_ gives the kept restart %lld iterations", r.where,
                  static_cast<long long>(it), static_cast<long long>(n_iter[static_cast<std::size_t>(best)]));
  const std::int32_t conv = r.scalar<std::int32_t>("converged_");
  MIXTURA_EXPECTS(conv == 0 || conv == 1, "%s: converged_ = %d, expected 0 or 1", r.where, conv);
}

/// An optional per-restart or per-iteration column: empty when absent, else exactly `shape`.
template <class T>
std::vector<T> optional_column(const SectionReader& r, const char* s, const std::vector<std::uint64_t>& shape) {
  if (!r.has(s)) return {};
  return r.get<T>(s, shape);
}

inline const char* kmeans_event_kind_name(std::int64_t code) {
  return code == 0 ? "empty_cluster_reseeded" : code == 1 ? "empty_cluster_kept" : nullptr;
}

inline CovarianceType parse_covariance_type(const std::string& s, const char* where) {
  if (s == "full") return CovarianceType::full;
  if (s == "tied") return CovarianceType::tied;
  if (s == "diag") return CovarianceType::diag;
  if (s == "spherical") return CovarianceType::spherical;
  throw InvalidArgument(detail::format("%s: unknown covariance_type '%s' (expected full, tied, diag or spherical)",
                                       where, s.substr(0, 64).c_str()));
}

/// scikit-learn's shape of precisions_cholesky_ (and covariances_, precisions_) for a covariance type.
inline std::vector<std::uint64_t> gmm_parameter_shape(CovarianceType t, Index K, Index D) {
  switch (t) {
    case CovarianceType::full: return {u64(K), u64(D), u64(D)};
    case CovarianceType::tied: return {u64(D), u64(D)};
    case CovarianceType::diag: return {u64(K), u64(D)};
    case CovarianceType::spherical: return {u64(K)};
  }
  return {};
}

/// precisions_cholesky_ (what = 0), covariances_ (1) or precisions_ (2) in scikit-learn's shape,
/// row-major, computed as the Python estimator's fit computes them.
inline std::vector<double> gmm_parameter_values(const GmmModel& m, int what) {
  const Index K = m.n_components, D = m.n_features;
  std::vector<double> out;
  const Index n = m.type == CovarianceType::tied ? 1 : K;
  if (what == 0) {
    if (m.type == CovarianceType::full || m.type == CovarianceType::tied) {
      for (const Eigen::MatrixXd& f : m.factor)
        for (Index i = 0; i < D; ++i)
          for (Index j = 0; j < D; ++j) out.push_back(f(i, j));
    } else {
      out.assign(m.diag_factor.data(), m.diag_factor.data() + m.diag_factor.size());
    }
    return out;
  }
  for (Index k = 0; k < n; ++k) {
    const Eigen::MatrixXd a = what == 2 ? m.precision(k) : m.covariance(k);
    switch (m.type) {
      case CovarianceType::full:
      case CovarianceType::tied:
        for (Index i = 0; i < D; ++i)
          for (Index j = 0; j < D; ++j) out.push_back(a(i, j));
        break;
      case CovarianceType::diag:
        for (Index i = 0; i < D; ++i) out.push_back(a(i, i));
        break;
      case CovarianceType::spherical: out.push_back(a(0, 0)); break;
    }
  }
  return out;
}

/// The model from scikit-learn-shaped arrays, checked: weights a distribution, means finite, each
/// precision factor finite, triangular (upper or lower) with a positive diagonal.
inline GmmModel gmm_model_from_arrays(CovarianceType t, const std::vector<double>& weights,
                                      const std::vector<double>& means, const std::vector<double>& factors, Index K,
                                      Index D, const char* where) {
  double sum = 0;
  for (Index k = 0; k < K; ++k) {
    const double w = weights[static_cast<std::size_t>(k)];
    MIXTURA_EXPECTS(std::isfinite(w) && w >= 0, "%s: weights_[%lld] = %g must be finite and >= 0", where,
                    static_cast<long long>(k), w);
    sum += w;
  }
  MIXTURA_EXPECTS(std::abs(sum - 1.0) <= 1e-8, "%s: weights_ sum to %.12g, expected 1", where, sum);
  for (std::size_t i = 0; i < means.size(); ++i)
    MIXTURA_EXPECTS(std::isfinite(means[i]) && std::abs(means[i]) <= kModelValueLimit,
                    "%s: means_ holds %g at flat index %zu, expected finite and within +-%g", where, means[i], i,
                    kModelValueLimit);
  GmmModel m(t, K, D);
  m.weights = Eigen::Map<const Eigen::VectorXd>(weights.data(), K);
  m.means = Eigen::Map<const RowMatrix<double>>(means.data(), K, D);
  for (std::size_t i = 0; i < factors.size(); ++i)
    MIXTURA_EXPECTS(std::isfinite(factors[i]) && std::abs(factors[i]) <= kModelValueLimit,
                    "%s: precisions_cholesky_ holds %g at flat index %zu, expected finite and within +-%g", where,
                    factors[i], i, kModelValueLimit);
  switch (t) {
    case CovarianceType::full:
    case CovarianceType::tied:
      for (std::size_t k = 0; k < m.factor.size(); ++k) {
        Eigen::MatrixXd f = Eigen::Map<const RowMatrix<double>>(factors.data() + k * D * D, D, D);
        MIXTURA_EXPECTS(f.isUpperTriangular(0) || f.isLowerTriangular(0),
                        "%s: precisions_cholesky_ matrix %zu is not triangular", where, k);
        for (Index i = 0; i < D; ++i)
          MIXTURA_EXPECTS(f(i, i) >= 1 / kModelValueLimit,
                          "%s: precisions_cholesky_ matrix %zu has diagonal entry %lld = %g, expected >= %g", where, k,
                          static_cast<long long>(i), f(i, i), 1 / kModelValueLimit);
        m.factor[k] = std::move(f);
      }
      break;
    case CovarianceType::diag:
    case CovarianceType::spherical: {
      const Index cols = t == CovarianceType::diag ? D : 1;
      m.diag_factor = Eigen::Map<const RowMatrix<double>>(factors.data(), K, cols);
      for (std::size_t i = 0; i < factors.size(); ++i)
        MIXTURA_EXPECTS(factors[i] >= 1 / kModelValueLimit,
                        "%s: precisions_cholesky_ has entry %g at flat index %zu, expected >= %g", where, factors[i], i,
                        1 / kModelValueLimit);
      break;
    }
  }
  return m;
}

/// The model from arrays as the Python estimator holds them (weights_, means_, precisions_cholesky_)
/// with their shapes: every shape checked against covariance_type, n_components and n_features,
/// then the values as gmm_model_from_arrays checks them. The Python package builds its models here.
inline GmmModel gmm_model_from_shaped(CovarianceType t, const std::vector<double>& weights,
                                      const std::vector<std::uint64_t>& weights_shape, const std::vector<double>& means,
                                      const std::vector<std::uint64_t>& means_shape, const std::vector<double>& factors,
                                      const std::vector<std::uint64_t>& factors_shape, const char* where) {
  MIXTURA_EXPECTS(means_shape.size() == 2 && means_shape[0] >= 1 && means_shape[1] >= 1 &&
                      means_shape[0] <= static_cast<std::uint64_t>(INT32_MAX) &&
                      means_shape[1] <= static_cast<std::uint64_t>(INT32_MAX),
                  "%s: means_ has shape %s, expected (n_components, n_features), both >= 1", where,
                  shape_string(means_shape).c_str());
  const Index K = static_cast<Index>(means_shape[0]), D = static_cast<Index>(means_shape[1]);
  MIXTURA_EXPECTS(weights_shape == std::vector<std::uint64_t>{u64(K)},
                  "%s: weights_ has shape %s, expected (%lld,) for n_components = %lld", where,
                  shape_string(weights_shape).c_str(), static_cast<long long>(K), static_cast<long long>(K));
  const std::vector<std::uint64_t> expected = gmm_parameter_shape(t, K, D);
  MIXTURA_EXPECTS(factors_shape == expected,
                  "%s: precisions_cholesky_ has shape %s, expected %s for covariance_type '%s' with n_components = %lld "
                  "and n_features = %lld", where, shape_string(factors_shape).c_str(), shape_string(expected).c_str(),
                  to_string(t), static_cast<long long>(K), static_cast<long long>(D));
  return gmm_model_from_arrays(t, weights, means, factors, K, D, where);
}

/// A loaded model's covariances and precisions (what covariances_ and precisions_ hold) must be
/// finite: a valid factor can still be too ill-conditioned to invert.
inline void check_gmm_usable(const GmmModel& m, const char* where) {
  for (int what = 1; what <= 2; ++what) {
    const std::vector<double> v = gmm_parameter_values(m, what);
    for (std::size_t i = 0; i < v.size(); ++i)
      MIXTURA_EXPECTS(std::isfinite(v[i]), "%s: the %s computed from precisions_cholesky_ hold %g at flat index %zu: "
                      "the factors are too ill-conditioned to use", where, what == 1 ? "covariances" : "precisions",
                      v[i], i);
  }
}

/// Online EM's state (GaussianMixture::stream_state), when there is one: stream_n_steps_, stream_starved_
/// (int32 [K]), the running statistics stream_nk_ [K], stream_s1_ and stream_shift_ [K, D], stream_s2_
/// ([K, D, D] full/tied, [K, D] diag/spherical) and stream_totals_ (log-likelihood, entropy, weight).
inline void add_stream_sections(ModelFile& mf, const std::string& prefix, const GmmStreamState& st) {
  if (st.empty()) return;
  GmmStats s = st.statistics;
  s.unpack();
  const std::uint64_t K = u64(s.n_components), D = u64(s.n_features);
  mf.add_scalar<std::int64_t>(prefix + "stream_n_steps_", st.n_steps);
  std::vector<std::int32_t> starved(st.starved.begin(), st.starved.end());
  mf.add_array(prefix + "stream_starved_", starved, {K});
  mf.add_array(prefix + "stream_nk_", s.nk, {K});
  mf.add_array(prefix + "stream_s1_", s.s1.data(), {K, D});
  mf.add_array(prefix + "stream_shift_", s.shift.data(), {K, D});
  std::vector<double> s2;
  for (Index k = 0; k < s.n_components; ++k) {
    if (s.full_moments()) {
      const Eigen::MatrixXd m = s.second_moment(k);
      for (Index i = 0; i < s.n_features; ++i)
        for (Index j = 0; j < s.n_features; ++j) s2.push_back(m(i, j));
    } else {
      for (Index j = 0; j < s.n_features; ++j) s2.push_back(s.s2_diag(k, j));
    }
  }
  mf.add_array(prefix + "stream_s2_", s2, s.full_moments() ? std::vector<std::uint64_t>{K, D, D} : std::vector<std::uint64_t>{K, D});
  mf.add_array(prefix + "stream_totals_", std::vector<double>{s.log_likelihood, s.entropy, s.weight}, {3});
}

/// The state add_stream_sections wrote (empty when the file has none), checked: all or none of the
/// sections, shapes of the model's K and D, finite values, a positive weight.
inline GmmStreamState read_stream_sections(const SectionReader& r, CovarianceType type, Index K, Index D) {
  static const char* names[] = {"stream_n_steps_", "stream_starved_", "stream_nk_", "stream_s1_",
                                "stream_s2_",      "stream_shift_",   "stream_totals_"};
  int present = 0;
  for (const char* n : names) present += r.has(n);
  if (present == 0) return {};
  MIXTURA_EXPECTS(present == 7, "%s: the model file holds %d of the 7 stream_* sections of online EM's state", r.where,
                  present);
  const std::uint64_t k = u64(K), d = u64(D);
  GmmStreamState st;
  st.n_steps = r.scalar<std::int64_t>("stream_n_steps_");
  MIXTURA_EXPECTS(st.n_steps >= 1, "%s: stream_n_steps_ = %lld, expected >= 1", r.where, static_cast<long long>(st.n_steps));
  for (const std::int32_t v : r.get<std::int32_t>("stream_starved_", {k})) {
    MIXTURA_EXPECTS(v == 0 || v == 1, "%s: stream_starved_ holds %d, expected 0 or 1", r.where, v);
    st.starved.push_back(v == 1);
  }
  GmmStats s(type, K, D, static_cast<std::size_t>(K));
  const auto nk = r.get<double>("stream_nk_", {k});
  const auto s1 = r.get<double>("stream_s1_", {k, d});
  const auto shift = r.get<double>("stream_shift_", {k, d});
  const auto s2 = r.get<double>("stream_s2_", s.full_moments() ? std::vector<std::uint64_t>{k, d, d} : std::vector<std::uint64_t>{k, d});
  const auto totals = r.get<double>("stream_totals_", {3});
  r.all_finite("stream_nk_", nk);
  r.all_finite("stream_s1_", s1);
  r.all_finite("stream_shift_", shift);
  r.all_finite("stream_s2_", s2);
  r.all_finite("stream_totals_", totals);
  for (std::size_t j = 0; j < nk.size(); ++j)
    MIXTURA_EXPECTS(nk[j] >= 0, "%s: stream_nk_[%zu] = %g is negative", r.where, j, nk[j]);
  for (std::size_t j = 0; j < shift.size(); ++j)  // the statistics are centred near the means, which hold this too
    MIXTURA_EXPECTS(std::abs(shift[j]) <= kModelValueLimit, "%s: stream_shift_ holds %g at flat index %zu, expected "
                    "within +-%g", r.where, shift[j], j, kModelValueLimit);
  MIXTURA_EXPECTS(totals[2] > 0, "%s: stream_totals_ gives the running statistics weight %g, expected > 0", r.where,
                  totals[2]);
  s.nk = nk;
  s.s1 = Eigen::Map<const RowMatrix<double>>(s1.data(), K, D);
  s.shift = Eigen::Map<const RowMatrix<double>>(shift.data(), K, D);
  if (s.full_moments()) {
    for (Index c = 0; c < K; ++c) s.s2[static_cast<std::size_t>(c)] = Eigen::Map<const RowMatrix<double>>(s2.data() + c * D * D, D, D);
  } else {
    s.s2_diag = Eigen::Map<const RowMatrix<double>>(s2.data(), K, D);
  }
  s.log_likelihood = totals[0];
  s.entropy = totals[1];
  s.weight = totals[2];
  st.statistics = std::move(s);
  return st;
}

#define MIXTURA_IO_COMMON_SECTIONS                                                                               \
  "params", "n_features_in_", "feature_names_in_", "n_iter_", "converged_", "best_restart_", "restart_n_iter_", \
      "restart_converged_", "restart_seconds_", "trace_seconds_"

inline void check_kmeans_section_names(const ModelFile& mf, const std::string& prefix, const char* where) {
  check_section_names(mf, prefix, "KMeans",
                      {MIXTURA_IO_COMMON_SECTIONS, "cluster_centers_", "labels_", "inertia_", "distortion_traces_",
                       "events_", "restart_inertia_", "trace_center_shift_", "trace_n_changed_",
                       "trace_n_searched_"},
                      nullptr, where);
}
inline void check_gmm_section_names(const ModelFile& mf, const std::string& prefix, const char* where) {
  check_section_names(mf, prefix, "GaussianMixture",
                      {MIXTURA_IO_COMMON_SECTIONS, "covariance_type", "weights_", "means_", "precisions_cholesky_",
                       "lower_bound_", "elbo_traces_", "events_", "events_value_", "restart_lower_bound_",
                       "trace_entropy_", "stream_n_steps_", "stream_starved_", "stream_nk_", "stream_s1_",
                       "stream_s2_", "stream_shift_", "stream_totals_"},
                      nullptr, where);
}
#undef MIXTURA_IO_COMMON_SECTIONS

/// K-means' init as Python reads it: given centres as the array section params.init (no JSON key,
/// add_init_centres), a method by name; init = given without centres (set by hand) is left out.
template <class T>
void add_init(JsonObject& params, KMeansInit init, const RowMatrix<T>& initial) {
  if (initial.size() == 0 && init != KMeansInit::given) params.add("init", to_string(init));
}
template <class T>
void add_init_centres(ModelFile& mf, const std::string& prefix, const RowMatrix<T>& initial) {
  if (initial.size() > 0) mf.add_array(prefix + "params.init", initial.data(), {u64(initial.rows()), u64(initial.cols())});
}
/// params.init back into a loaded K-means model when it holds K x D centres in T (Python may have
/// written another dtype: a parameter C++ does not use, left to Python).
template <class T, class Model>
void restore_init_centres(const ModelFile& mf, const std::string& prefix, Model& m) {
  const Section* s = mf.find(prefix + "params.init");
  const RowMatrix<T>& c = m.cluster_centers();
  if (s == nullptr || s->dtype != dtype_of<T>::value || s->shape != std::vector<std::uint64_t>{u64(c.rows()), u64(c.cols())})
    return;
  const std::vector<T> v = mf.array<T>(prefix + "params.init");
  m.set_initial_centers(Eigen::Map<const RowMatrix<T>>(v.data(), c.rows(), c.cols()));
}

inline void add_common(ModelFile& mf, const std::string& prefix, const std::string& params, Index n_features) {
  mf.add_text(prefix + "params", params);
  mf.add_scalar<std::int64_t>(prefix + "n_features_in_", static_cast<std::int64_t>(n_features));
}

/// n_features_in_, which must match the fitted arrays' n_features.
inline void check_n_features(const SectionReader& r, Index D) {
  const std::int64_t n = r.scalar<std::int64_t>("n_features_in_");
  MIXTURA_EXPECTS(n == static_cast<std::int64_t>(D), "%s: n_features_in_ = %lld but the fitted arrays have %lld features",
                  r.where, static_cast<long long>(n), static_cast<long long>(D));
}

/// cluster_centers_ in dtype T, checked: at least one centre and one feature, finite, within the
/// bound that keeps distances finite, and n_features_in_ matching.
template <class T>
RowMatrix<T> read_cluster_centers(const SectionReader& r) {
  const auto cs = r.shape("cluster_centers_", dtype_of<T>::value, 2);
  MIXTURA_EXPECTS(cs[0] >= 1 && cs[1] >= 1 && cs[0] <= static_cast<std::uint64_t>(INT32_MAX),
                  "%s: cluster_centers_ has shape %s, expected at least one centre and one feature", r.where,
                  shape_string(cs).c_str());
  const Index K = static_cast<Index>(cs[0]), D = static_cast<Index>(cs[1]);
  const std::vector<T> centres = r.get<T>("cluster_centers_", cs);
  r.all_finite("cluster_centers_", centres);
  for (std::size_t i = 0; i < centres.size(); ++i)
    MIXTURA_EXPECTS(std::abs(static_cast<double>(centres[i])) <= model_value_limit<T>(),
                    "%s: cluster_centers_ holds %g at flat index %zu, expected within +-%g (distances would overflow)",
                    r.where, static_cast<double>(centres[i]), i, model_value_limit<T>());
  check_n_features(r, D);
  return Eigen::Map<const RowMatrix<T>>(centres.data(), K, D);
}

/// labels_, when present: int32, each in [0, K).
inline std::vector<std::int32_t> read_labels(const SectionReader& r, Index K) {
  if (!r.has("labels_")) return {};
  std::vector<std::int32_t> labels = r.get<std::int32_t>("labels_", r.shape("labels_", DType::i32, 1));
  for (std::size_t i = 0; i < labels.size(); ++i)
    MIXTURA_EXPECTS(labels[i] >= 0 && labels[i] < K, "%s: labels_[%zu] = %d is outside [0, n_clusters = %lld)",
                    r.where, i, labels[i], static_cast<long long>(K));
  return labels;
}

}  // namespace detail

// ---- K-means ---------------------------------------------------------------------------------

/// Adds a fitted KMeans' sections (named `prefix` + attribute) to `mf`.
template <class T>
void add_sections(ModelFile& mf, const KMeans<T>& km, const std::string& prefix = "") {
  if (!km.is_fitted()) throw NotFittedError("save_model: this KMeans instance is not fitted yet; call fit() first");
  const KMeansParams& p = km.params();
  detail::JsonObject params;
  params.add("n_clusters", p.n_clusters);
  const RowMatrix<T>& initial = km.initial_centers();
  detail::add_init(params, p.init, initial);
  params.add("n_init", p.n_init).add("max_iter", p.max_iter).add("tol", p.tol)
      .add("random_state", static_cast<unsigned long long>(p.seed)).add("n_threads", p.n_threads)
      .add("algorithm", to_string(p.algorithm));
  const auto& c = km.cluster_centers();
  detail::add_common(mf, prefix, params.str(), c.cols());
  detail::add_init_centres(mf, prefix, initial);
  mf.add_array(prefix + "cluster_centers_", c.data(), {detail::u64(c.rows()), detail::u64(c.cols())});
  mf.add_vector(prefix + "labels_", km.labels());
  mf.add_scalar(prefix + "inertia_", km.inertia());
  mf.add_scalar<std::int64_t>(prefix + "n_iter_", km.n_iter());
  mf.add_scalar<std::int32_t>(prefix + "converged_", km.converged() ? 1 : 0);
  mf.add_scalar<std::int64_t>(prefix + "best_restart_", km.best_restart());
  std::vector<double> traces, shift, it_seconds, r_inertia, r_seconds;
  std::vector<std::int64_t> n_iter, changed, searched;
  std::vector<std::int32_t> r_converged;
  for (const KMeansRun& run : km.runs()) {
    n_iter.push_back(static_cast<std::int64_t>(run.trace.size()));
    r_inertia.push_back(run.inertia);
    r_converged.push_back(run.converged ? 1 : 0);
    r_seconds.push_back(run.init_seconds);
    r_seconds.push_back(run.seconds);
    for (const KMeansIteration& it : run.trace) {
      traces.push_back(it.distortion_assign);
      traces.push_back(it.distortion_update);
      shift.push_back(it.center_shift);
      changed.push_back(it.n_changed);
      searched.push_back(it.n_searched);
      it_seconds.push_back(it.seconds);
    }
  }
  const std::uint64_t R = n_iter.size(), Tn = shift.size();
  mf.add_array(prefix + "distortion_traces_", traces, {Tn, 2});
  mf.add_vector(prefix + "restart_n_iter_", n_iter);
  std::vector<std::int64_t> events;
  for (const KMeansEvent& e : km.events()) {
    events.insert(events.end(), {static_cast<std::int64_t>(e.kind == KMeansEvent::Kind::empty_cluster_kept), e.restart,
                                 e.iteration, e.cluster, static_cast<std::int64_t>(e.row)});
  }
  mf.add_array(prefix + "events_", events, {events.size() / 5, 5});
  mf.add_array(prefix + "restart_inertia_", r_inertia, {R});
  mf.add_array(prefix + "restart_converged_", r_converged, {R});
  mf.add_array(prefix + "restart_seconds_", r_seconds, {R, 2});
  mf.add_array(prefix + "trace_center_shift_", shift, {Tn});
  mf.add_array(prefix + "trace_n_changed_", changed, {Tn});
  mf.add_array(prefix + "trace_n_searched_", searched, {Tn});
  mf.add_array(prefix + "trace_seconds_", it_seconds, {Tn});
}

/// A KMeans<T> from the sections named `prefix` + attribute; the centres must be of type T.
/// Parameters: n_clusters from the centres, the rest default (the JSON "params" section is for
/// readers that want it; C++ does not parse it).
template <class T>
KMeans<T> kmeans_from_sections(const ModelFile& mf, const std::string& prefix = "",
                               const char* where = "kmeans_from_sections") {
  const detail::SectionReader r{mf, prefix, where};
  detail::check_kmeans_section_names(mf, prefix, where);
  const RowMatrix<T> centres = detail::read_cluster_centers<T>(r);
  const Index K = centres.rows();

  KMeansFitRecord rec;
  rec.labels = detail::read_labels(r, K);
  std::vector<std::int64_t> n_iter;
  std::vector<std::uint64_t> offsets;
  std::uint64_t rows = 0;
  detail::read_restarts(r, "distortion_traces_", n_iter, offsets, rows, rec.best_restart);
  const std::uint64_t R = n_iter.size();
  const std::vector<double> traces = r.get<double>("distortion_traces_", {rows, 2});
  const double inertia = r.scalar<double>("inertia_");
  MIXTURA_EXPECTS(std::isfinite(inertia) && inertia >= 0, "%s: inertia_ = %g must be finite and >= 0", where, inertia);
  const bool converged = r.scalar<std::int32_t>("converged_") == 1;
  const auto r_inertia = detail::optional_column<double>(r, "restart_inertia_", {R});
  const auto r_converged = detail::optional_column<std::int32_t>(r, "restart_converged_", {R});
  const auto r_seconds = detail::optional_column<double>(r, "restart_seconds_", {R, 2});
  const auto shift = detail::optional_column<double>(r, "trace_center_shift_", {rows});
  const auto changed = detail::optional_column<std::int64_t>(r, "trace_n_changed_", {rows});
  const auto searched = detail::optional_column<std::int64_t>(r, "trace_n_searched_", {rows});
  for (std::size_t t = 0; t < searched.size(); ++t)
    MIXTURA_EXPECTS(searched[t] >= 0, "%s: section '%s' holds %lld at iteration %zu; rows searched are >= 0", where,
                    r.name("trace_n_searched_").c_str(), static_cast<long long>(searched[t]), t);
  const auto it_seconds = detail::optional_column<double>(r, "trace_seconds_", {rows});
  for (std::size_t i = 0; i < R; ++i) {
    KMeansRun run;
    run.n_iter = static_cast<int>(n_iter[i]);
    const bool best = static_cast<int>(i) == rec.best_restart;
    run.inertia = best ? inertia : r_inertia.empty() ? std::nan("") : r_inertia[i];
    run.converged = best ? converged : !r_converged.empty() && r_converged[i] == 1;
    if (!r_seconds.empty()) {
      run.init_seconds = r_seconds[2 * i];
      run.seconds = r_seconds[2 * i + 1];
    }
    for (std::uint64_t t = offsets[i]; t < offsets[i] + static_cast<std::uint64_t>(n_iter[i]); ++t) {
      KMeansIteration it;
      it.distortion_assign = traces[2 * t];
      it.distortion_update = traces[2 * t + 1];
      if (!shift.empty()) it.center_shift = shift[t];
      if (!changed.empty()) it.n_changed = changed[t];
      if (!searched.empty()) it.n_searched = searched[t];
      if (!it_seconds.empty()) it.seconds = it_seconds[t];
      run.trace.push_back(it);
    }
    rec.runs.push_back(std::move(run));
  }
  const auto es = r.shape("events_", DType::i64, 2);
  MIXTURA_EXPECTS(es[1] == 5, "%s: section '%s' has shape %s, expected (n, 5)", where, r.name("events_").c_str(),
                  detail::shape_string(es).c_str());
  const std::vector<std::int64_t> ev = r.get<std::int64_t>("events_", es);
  for (std::uint64_t i = 0; i < es[0]; ++i) {
    const std::int64_t* e = ev.data() + 5 * i;
    MIXTURA_EXPECTS(detail::kmeans_event_kind_name(e[0]) != nullptr && e[1] >= 0 && static_cast<std::uint64_t>(e[1]) < R &&
                        e[2] >= 0 && e[2] <= n_iter[static_cast<std::size_t>(e[1])] && e[3] >= 0 && e[3] < K && e[4] >= -1,
                    "%s: event %llu (kind %lld, restart %lld, iteration %lld, cluster %lld, row %lld) is out of range",
                    where, static_cast<unsigned long long>(i), static_cast<long long>(e[0]), static_cast<long long>(e[1]),
                    static_cast<long long>(e[2]), static_cast<long long>(e[3]), static_cast<long long>(e[4]));
    KMeansEvent event;
    event.kind = e[0] == 0 ? KMeansEvent::Kind::empty_cluster_reseeded : KMeansEvent::Kind::empty_cluster_kept;
    event.restart = static_cast<int>(e[1]);
    event.iteration = static_cast<int>(e[2]);
    event.cluster = static_cast<int>(e[3]);
    event.row = static_cast<Index>(e[4]);
    rec.events.push_back(event);
  }

  KMeansParams p;
  p.n_clusters = static_cast<int>(K);
  KMeans<T> km(p);
  km.set_centers(centres, std::move(rec));
  detail::restore_init_centres<T>(mf, prefix, km);
  return km;
}

// ---- Gaussian mixtures -------------------------------------------------------------------------

/// Adds a fitted GaussianMixture's sections (named `prefix` + attribute) to `mf`.
template <class T>
void add_sections(ModelFile& mf, const GaussianMixture<T>& gm, const std::string& prefix = "") {
  if (!gm.is_fitted())
    throw NotFittedError("save_model: this GaussianMixture instance is not fitted yet; call fit() first");
  const GmmParams& p = gm.params();
  detail::JsonObject params;
  params.add("n_components", p.n_components).add("covariance_type", to_string(p.covariance_type)).add("tol", p.tol)
      .add("reg_covar", p.reg_covar).add("max_iter", p.max_iter).add("n_init", p.n_init)
      .add("init_params", to_string(p.init)).add("random_state", static_cast<unsigned long long>(p.seed))
      .add("warm_start", p.warm_start).add("n_threads", p.n_threads);
  const GmmModel& m = gm.model();
  const Index K = m.n_components, D = m.n_features;
  detail::add_common(mf, prefix, params.str(), D);
  mf.add_text(prefix + "covariance_type", to_string(m.type));
  mf.add_array(prefix + "weights_", m.weights.data(), {detail::u64(K)});
  mf.add_array(prefix + "means_", m.means.data(), {detail::u64(K), detail::u64(D)});
  mf.add_array(prefix + "precisions_cholesky_", detail::gmm_parameter_values(m, 0),
               detail::gmm_parameter_shape(m.type, K, D));
  mf.add_scalar(prefix + "lower_bound_", gm.lower_bound());
  mf.add_scalar<std::int64_t>(prefix + "n_iter_", gm.n_iter());
  mf.add_scalar<std::int32_t>(prefix + "converged_", gm.converged() ? 1 : 0);
  mf.add_scalar<std::int64_t>(prefix + "best_restart_", gm.best_restart());
  std::vector<double> traces, entropy, it_seconds, r_lower, r_seconds;
  std::vector<std::int64_t> n_iter;
  std::vector<std::int32_t> r_converged;
  for (const GmmRun& run : gm.runs()) {
    n_iter.push_back(static_cast<std::int64_t>(run.trace.size()));
    r_lower.push_back(run.lower_bound);
    r_converged.push_back(run.converged ? 1 : 0);
    r_seconds.push_back(run.init_seconds);
    r_seconds.push_back(run.seconds);
    for (const GmmIteration& it : run.trace) {
      traces.push_back(it.lower_bound);
      traces.push_back(it.elbo_after_m);
      entropy.push_back(it.entropy);
      it_seconds.push_back(it.seconds);
    }
  }
  const std::uint64_t R = n_iter.size(), Tn = entropy.size();
  mf.add_array(prefix + "elbo_traces_", traces, {Tn, 2});
  mf.add_vector(prefix + "restart_n_iter_", n_iter);
  std::vector<std::int64_t> events;
  std::vector<double> values;
  for (const GmmEvent& e : gm.events()) {
    events.insert(events.end(), {static_cast<std::int64_t>(e.kind), e.restart,
                                 e.iteration, e.component, static_cast<std::int64_t>(e.row)});
    values.push_back(e.value);
  }
  mf.add_array(prefix + "events_", events, {values.size(), 5});
  mf.add_array(prefix + "events_value_", values, {values.size()});
  mf.add_array(prefix + "restart_lower_bound_", r_lower, {R});
  mf.add_array(prefix + "restart_converged_", r_converged, {R});
  mf.add_array(prefix + "restart_seconds_", r_seconds, {R, 2});
  mf.add_array(prefix + "trace_entropy_", entropy, {Tn});
  mf.add_array(prefix + "trace_seconds_", it_seconds, {Tn});
  detail::add_stream_sections(mf, prefix, gm.stream_state());
}

/// A GaussianMixture<T> from the sections named `prefix` + attribute (T is the data type; the
/// parameters are float64 in any case). Parameters: n_components and covariance_type from the file,
/// the rest default.
template <class T>
GaussianMixture<T> gaussian_mixture_from_sections(const ModelFile& mf, const std::string& prefix = "",
                                                  const char* where = "gaussian_mixture_from_sections") {
  const detail::SectionReader r{mf, prefix, where};
  detail::check_gmm_section_names(mf, prefix, where);
  const CovarianceType type = detail::parse_covariance_type(r.text("covariance_type"), where);
  const auto ms = r.shape("means_", DType::f64, 2);
  MIXTURA_EXPECTS(ms[0] >= 1 && ms[1] >= 1 && ms[0] <= static_cast<std::uint64_t>(INT32_MAX),
                  "%s: means_ has shape %s, expected at least one component and one feature", where,
                  detail::shape_string(ms).c_str());
  const Index K = static_cast<Index>(ms[0]), D = static_cast<Index>(ms[1]);
  const auto weights = r.get<double>("weights_", {ms[0]});
  const auto means = r.get<double>("means_", ms);
  const auto factors = r.get<double>("precisions_cholesky_", detail::gmm_parameter_shape(type, K, D));
  GmmModel model = detail::gmm_model_from_arrays(type, weights, means, factors, K, D, where);
  detail::check_gmm_usable(model, where);
  detail::check_n_features(r, D);

  std::vector<std::int64_t> n_iter;
  std::vector<std::uint64_t> offsets;
  std::uint64_t rows = 0;
  int best = 0;
  detail::read_restarts(r, "elbo_traces_", n_iter, offsets, rows, best);
  const std::uint64_t R = n_iter.size();
  const std::vector<double> traces = r.get<double>("elbo_traces_", {rows, 2});
  const double lower_bound = r.scalar<double>("lower_bound_");
  const bool converged = r.scalar<std::int32_t>("converged_") == 1;
  const auto r_lower = detail::optional_column<double>(r, "restart_lower_bound_", {R});
  const auto r_converged = detail::optional_column<std::int32_t>(r, "restart_converged_", {R});
  const auto r_seconds = detail::optional_column<double>(r, "restart_seconds_", {R, 2});
  const auto entropy = detail::optional_column<double>(r, "trace_entropy_", {rows});
  const auto it_seconds = detail::optional_column<double>(r, "trace_seconds_", {rows});
  std::vector<GmmRun> runs;
  for (std::size_t i = 0; i < R; ++i) {
    GmmRun run;
    run.n_iter = static_cast<int>(n_iter[i]);
    const bool is_best = static_cast<int>(i) == best;
    for (std::uint64_t t = offsets[i]; t < offsets[i] + static_cast<std::uint64_t>(n_iter[i]); ++t) {
      GmmIteration it;
      it.lower_bound = traces[2 * t];
      it.elbo_after_m = traces[2 * t + 1];
      if (!entropy.empty()) it.entropy = entropy[t];
      if (!it_seconds.empty()) it.seconds = it_seconds[t];
      run.trace.push_back(it);
    }
    // A restart's lower bound is its last L(theta_t); the kept one's is lower_bound_ itself.
    run.lower_bound = is_best ? lower_bound
                      : !r_lower.empty() ? r_lower[i]
                      : run.trace.empty() ? std::nan("") : run.trace.back().lower_bound;
    run.converged = is_best ? converged : !r_converged.empty() && r_converged[i] == 1;
    if (!r_seconds.empty()) {
      run.init_seconds = r_seconds[2 * i];
      run.seconds = r_seconds[2 * i + 1];
    }
    runs.push_back(std::move(run));
  }
  const auto es = r.shape("events_", DType::i64, 2);
  MIXTURA_EXPECTS(es[1] == 5, "%s: section '%s' has shape %s, expected (n, 5)", where, r.name("events_").c_str(),
                  detail::shape_string(es).c_str());
  const std::vector<std::int64_t> ev = r.get<std::int64_t>("events_", es);
  const std::vector<double> values = r.get<double>("events_value_", {es[0]});
  std::vector<GmmEvent> events;
  for (std::uint64_t i = 0; i < es[0]; ++i) {
    const std::int64_t* e = ev.data() + 5 * i;
    // component -1: the tied covariance; iteration -1: during initialisation.
    MIXTURA_EXPECTS(e[0] >= 0 && e[0] <= 3 && e[1] >= 0 && static_cast<std::uint64_t>(e[1]) < R && e[2] >= -1 &&
                        e[2] <= n_iter[static_cast<std::size_t>(e[1])] && e[3] >= -1 && e[3] < K && e[4] >= -1,
                    "%s: event %llu (kind %lld, restart %lld, iteration %lld, component %lld, row %lld) is out of range",
                    where, static_cast<unsigned long long>(i), static_cast<long long>(e[0]), static_cast<long long>(e[1]),
                    static_cast<long long>(e[2]), static_cast<long long>(e[3]), static_cast<long long>(e[4]));
    GmmEvent event;
    event.kind = static_cast<GmmEvent::Kind>(e[0]);  // codes: the enum's order (component_reseeded = 0, ...)
    event.restart = static_cast<int>(e[1]);
    event.iteration = static_cast<int>(e[2]);
    event.component = static_cast<int>(e[3]);
    event.row = static_cast<Index>(e[4]);
    event.value = values[i];
    events.push_back(event);
  }

  GmmStreamState stream = detail::read_stream_sections(r, type, K, D);
  GmmParams p;
  p.n_components = static_cast<int>(K);
  p.covariance_type = type;
  GaussianMixture<T> gm(p);
  gm.set_model(std::move(model), std::move(runs), std::move(events), best);
  gm.set_stream_state(std::move(stream));
  return gm;
}

// ---- Files ---------------------------------------------------------------------------------

namespace detail {
/// A model file of `kind` holding one fitted estimator (its add_sections overload, found at instantiation).
template <class Model>
ModelFile model_file_of(const char* kind, const Model& model) {
  ModelFile mf;
  mf.kind = kind;
  mf.add_text("mixtura_version", version());
  add_sections(mf, model);
  return mf;
}
}  // namespace detail

/// A model file holding one fitted estimator (kind "KMeans" or "GaussianMixture").
template <class T>
ModelFile to_model_file(const KMeans<T>& km) { return detail::model_file_of(kKMeansKind, km); }
template <class T>
ModelFile to_model_file(const GaussianMixture<T>& gm) { return detail::model_file_of(kGaussianMixtureKind, gm); }

/// Writes a fitted estimator to `path` (atomically).
template <class T>
void save_model(const std::string& path, const KMeans<T>& km) { write_model_file(path, to_model_file(km)); }
template <class T>
void save_model(const std::string& path, const GaussianMixture<T>& gm) { write_model_file(path, to_model_file(gm)); }

/// What a model file holds: its kind, the dtype of its fitted arrays, n_features_in_.
inline ModelFileInfo model_file_info(const ModelFile& mf, const std::string& prefix = "") {
  ModelFileInfo info;
  info.kind = mf.kind;
  const Section* c = mf.find(prefix + "cluster_centers_");
  info.dtype = c && c->dtype == DType::f32 ? "float32" : "float64";
  const Section* n = mf.find(prefix + "n_features_in_");
  if (n && n->dtype == DType::i64 && n->shape.empty()) info.n_features = mf.scalar<std::int64_t>(prefix + "n_features_in_");
  return info;
}
inline ModelFileInfo model_file_info(const std::string& path) { return model_file_info(read_model_file(path)); }

namespace detail {
inline void expect_kind(const ModelFile& mf, const char* kind, const char* where) {
  MIXTURA_EXPECTS(mf.kind == kind, "%s: the file holds a '%s' model, not a '%s'", where, mf.kind.c_str(), kind);
}
}  // namespace detail

/// A KMeans<T> from a model file; T must be the dtype of its centres (model_file_info says which).
template <class T>
KMeans<T> load_kmeans(const std::string& path) {
  const ModelFile mf = read_model_file(path);
  detail::expect_kind(mf, kKMeansKind, "load_kmeans");
  return kmeans_from_sections<T>(mf, "", "load_kmeans");
}
/// A GaussianMixture<T> from a model file (any T: the parameters are float64).
template <class T>
GaussianMixture<T> load_gaussian_mixture(const std::string& path) {
  const ModelFile mf = read_model_file(path);
  detail::expect_kind(mf, kGaussianMixtureKind, "load_gaussian_mixture");
  return gaussian_mixture_from_sections<T>(mf, "", "load_gaussian_mixture");
}

}  // namespace mixtura
