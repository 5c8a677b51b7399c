#pragma once
/// Saving and loading MiniBatchKMeans as a model file (kind "MiniBatchKMeans"): the centres, the
/// state partial_fit resumes from (counts, steps, reassignment counter, seed) and the fit's record
/// (trace, events, labels). A loaded estimator's next partial_fit is the saved one's, bit for bit.
/// docs/model-format.md lists the sections.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mixtura/io/model_file.hpp"
#include "mixtura/io/models.hpp"
#include "mixtura/kmeans/minibatch.hpp"

namespace mixtura {

constexpr const char* kMiniBatchKMeansKind = "MiniBatchKMeans";

namespace detail {

inline void check_minibatch_section_names(const ModelFile& mf, const std::string& prefix, const char* where) {
  check_section_names(mf, prefix, "MiniBatchKMeans",
                      {"params", "n_features_in_", "feature_names_in_", "cluster_centers_", "counts_", "n_steps_",
                       "n_since_reassign_", "seed_", "n_iter_", "inertia_", "labels_", "distortion_trace_", "events_",
                       "trace_center_shift_", "trace_seconds_"},
                      nullptr, where);
}

/// The seed is a u64; its section an i64 of the same bits.
inline std::int64_t seed_bits(std::uint64_t seed) {
  std::int64_t v;
  std::memcpy(&v, &seed, sizeof v);
  return v;
}
inline std::uint64_t seed_of_bits(std::int64_t v) {
  std::uint64_t seed;
  std::memcpy(&seed, &v, sizeof seed);
  return seed;
}

}  // namespace detail

/// Adds a fitted MiniBatchKMeans' sections (named `prefix` + attribute) to `mf`.
template <class T>
void add_sections(ModelFile& mf, const MiniBatchKMeans<T>& mb, const std::string& prefix = "") {
  if (!mb.is_fitted())
    throw NotFittedError("save_model: this MiniBatchKMeans instance is not fitted yet; call fit() or partial_fit() first");
  const MiniBatchKMeansParams& p = mb.params();
  detail::JsonObject params;
  params.add("n_clusters", p.n_clusters);
  detail::add_init(params, p.init, mb.initial_centers());
  params.add("max_iter", p.max_iter)
      .add("batch_size", static_cast<long long>(p.batch_size)).add("compute_labels", p.compute_labels)
      .add("random_state", static_cast<unsigned long long>(p.seed)).add("tol", p.tol);
  if (p.max_no_improvement < 0) params.add("max_no_improvement", nullptr);
  else params.add("max_no_improvement", p.max_no_improvement);
  if (p.init_size == 0) params.add("init_size", nullptr);
  else params.add("init_size", static_cast<long long>(p.init_size));
  params.add("n_init", p.n_init).add("reassignment_ratio", p.reassignment_ratio).add("n_threads", p.n_threads);
  const MiniBatchKMeansState<T>& st = mb.state();
  const Index K = st.centers.rows(), D = st.centers.cols();
  detail::add_common(mf, prefix, params.str(), D);
  detail::add_init_centres(mf, prefix, mb.initial_centers());
  mf.add_array(prefix + "cluster_centers_", st.centers.data(), {detail::u64(K), detail::u64(D)});
  mf.add_vector(prefix + "counts_", st.counts);
  mf.add_scalar<std::int64_t>(prefix + "n_steps_", st.n_steps);
  mf.add_scalar<std::int64_t>(prefix + "n_since_reassign_", st.n_since_reassign);
  mf.add_scalar<std::int64_t>(prefix + "seed_", detail::seed_bits(p.seed));
  mf.add_scalar<std::int64_t>(prefix + "n_iter_", mb.n_iter());
  mf.add_scalar(prefix + "inertia_", mb.inertia());
  if (!mb.labels().empty()) mf.add_vector(prefix + "labels_", mb.labels());
  std::vector<double> trace, shift, seconds;
  for (const MiniBatchStep& s : mb.trace()) {
    trace.insert(trace.end(), {s.distortion_assign, s.distortion_update});
    shift.push_back(s.center_shift);
    seconds.push_back(s.seconds);
  }
  mf.add_array(prefix + "distortion_trace_", trace, {shift.size(), 2});
  std::vector<std::int64_t> events;
  for (const MiniBatchEvent& e : mb.events())
    events.insert(events.end(), {e.step, static_cast<std::int64_t>(e.cluster), static_cast<std::int64_t>(e.row)});
  mf.add_array(prefix + "events_", events, {mb.events().size(), 3});
  mf.add_vector(prefix + "trace_center_shift_", shift);
  mf.add_vector(prefix + "trace_seconds_", seconds);
}

/// A MiniBatchKMeans<T> from the sections named `prefix` + attribute; the centres must be of type T.
/// Parameters: n_clusters from the centres and seed from seed_ (what partial_fit's random numbers
/// are keyed by), the rest default (C++ does not parse "params"): to resume bit for bit, set the
/// batch_size and reassignment_ratio the state was reached with (set_params keeps the state).
template <class T>
MiniBatchKMeans<T> minibatch_kmeans_from_sections(const ModelFile& mf, const std::string& prefix = "",
                                                  const char* where = "minibatch_kmeans_from_sections") {
  const detail::SectionReader r{mf, prefix, where};
  detail::check_minibatch_section_names(mf, prefix, where);
  MiniBatchKMeansState<T> st;
  st.centers = detail::read_cluster_centers<T>(r);
  const Index K = st.centers.rows();
  const std::uint64_t k = detail::u64(K);
  st.counts = r.get<double>("counts_", {k});
  // Bounded as centres are: count * centre, the next step's numerator, stays finite.
  for (std::size_t i = 0; i < st.counts.size(); ++i)
    MIXTURA_EXPECTS(std::isfinite(st.counts[i]) && st.counts[i] >= 0 && st.counts[i] <= kModelValueLimit,
                    "%s: counts_[%zu] = %g must be finite and in [0, %g]", where, i, st.counts[i], kModelValueLimit);
  st.n_steps = r.scalar<std::int64_t>("n_steps_");
  MIXTURA_EXPECTS(st.n_steps >= 0, "%s: n_steps_ = %lld, expected >= 0", where, static_cast<long long>(st.n_steps));
  st.n_since_reassign = r.scalar<std::int64_t>("n_since_reassign_");
  MIXTURA_EXPECTS(st.n_since_reassign >= 0, "%s: n_since_reassign_ = %lld, expected >= 0", where,
                  static_cast<long long>(st.n_since_reassign));

  MiniBatchKMeansRecord rec;
  if (r.has("n_iter_")) {
    const std::int64_t n_iter = r.scalar<std::int64_t>("n_iter_");
    MIXTURA_EXPECTS(n_iter >= 0 && n_iter <= INT32_MAX, "%s: n_iter_ = %lld, expected in [0, 2^31 - 1]", where,
                    static_cast<long long>(n_iter));
    rec.n_iter = static_cast<int>(n_iter);
  }
  if (r.has("inertia_")) {
    rec.inertia = r.scalar<double>("inertia_");
    MIXTURA_EXPECTS(std::isfinite(rec.inertia) && rec.inertia >= 0, "%s: inertia_ = %g must be finite and >= 0", where,
                    rec.inertia);
  }
  rec.labels = detail::read_labels(r, K);
  // The trace is the record of the last `rows` steps: all of them after fit and partial_fit calls,
  // fewer after a C++ set_state without a record.
  const auto ts = r.shape("distortion_trace_", DType::f64, 2);
  MIXTURA_EXPECTS(ts[1] == 2 && ts[0] <= static_cast<std::uint64_t>(st.n_steps),
                  "%s: section '%s' has shape %s, expected (n, 2) with n <= n_steps_ = %lld", where,
                  r.name("distortion_trace_").c_str(), detail::shape_string(ts).c_str(),
                  static_cast<long long>(st.n_steps));
  const std::vector<double> trace = r.get<double>("distortion_trace_", ts);
  for (std::size_t i = 0; i < trace.size(); ++i)
    MIXTURA_EXPECTS(std::isfinite(trace[i]) && trace[i] >= 0,
                    "%s: section '%s' holds %g at flat index %zu, expected finite and >= 0", where,
                    r.name("distortion_trace_").c_str(), trace[i], i);
  const auto shift = detail::optional_column<double>(r, "trace_center_shift_", {ts[0]});
  const auto seconds = detail::optional_column<double>(r, "trace_seconds_", {ts[0]});
  for (std::uint64_t i = 0; i < ts[0]; ++i) {
    MiniBatchStep s;
    s.distortion_assign = trace[2 * i];
    s.distortion_update = trace[2 * i + 1];
    if (!shift.empty()) s.center_shift = shift[i];
    if (!seconds.empty()) s.seconds = seconds[i];
    rec.trace.push_back(s);
  }
  const auto es = r.shape("events_", DType::i64, 2);
  MIXTURA_EXPECTS(es[1] == 3, "%s: section '%s' has shape %s, expected (n, 3)", where, r.name("events_").c_str(),
                  detail::shape_string(es).c_str());
  const std::vector<std::int64_t> ev = r.get<std::int64_t>("events_", es);
  const std::int64_t first = st.n_steps - static_cast<std::int64_t>(ts[0]);
  for (std::uint64_t i = 0; i < es[0]; ++i) {
    const std::int64_t* e = ev.data() + 3 * i;
    MIXTURA_EXPECTS(e[0] >= first && e[0] < st.n_steps && e[1] >= 0 && e[1] < K && e[2] >= 0,
                    "%s: event %llu (step %lld, cluster %lld, row %lld) is out of range: steps [%lld, n_steps_ = %lld) "
                    "of the trace, clusters [0, %lld), rows >= 0", where, static_cast<unsigned long long>(i),
                    static_cast<long long>(e[0]), static_cast<long long>(e[1]), static_cast<long long>(e[2]),
                    static_cast<long long>(first), static_cast<long long>(st.n_steps), static_cast<long long>(K));
    rec.events.push_back({e[0], static_cast<int>(e[1]), static_cast<Index>(e[2])});
    ++rec.trace[static_cast<std::size_t>(e[0] - first)].n_reassigned;
  }

  MiniBatchKMeansParams p;
  p.n_clusters = static_cast<int>(K);
  p.seed = detail::seed_of_bits(r.scalar<std::int64_t>("seed_"));
  MiniBatchKMeans<T> mb(p);
  mb.set_state(std::move(st), std::move(rec));
  detail::restore_init_centres<T>(mf, prefix, mb);
  return mb;
}

/// A model file holding a fitted MiniBatchKMeans (kind "MiniBatchKMeans").
template <class T>
ModelFile to_model_file(const MiniBatchKMeans<T>& mb) { return detail::model_file_of(kMiniBatchKMeansKind, mb); }

/// Writes a fitted MiniBatchKMeans to `path` (atomically).
template <class T>
void save_model(const std::string& path, const MiniBatchKMeans<T>& mb) { write_model_file(path, to_model_file(mb)); }

/// A MiniBatchKMeans<T> from a model file; T must be the dtype of its centres (model_file_info says which).
template <class T>
MiniBatchKMeans<T> load_minibatch_kmeans(const std::string& path) {
  const ModelFile mf = read_model_file(path);
  detail::expect_kind(mf, kMiniBatchKMeansKind, "load_minibatch_kmeans");
  return minibatch_kmeans_from_sections<T>(mf, "", "load_minibatch_kmeans");
}

}  // namespace mixtura
