// mixtura._core's mini-batch K-means: fit and partial_fit on host arrays, registered per float type
// (bindings.hpp). Stateless: partial_fit takes the state the last call returned (what
// mixtura.MiniBatchKMeans stores) and returns the next one.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "mixtura/kmeans/minibatch.hpp"

namespace mixtura_py {
namespace {

/// The parameters of a mini-batch fit as Python passes them (init: "k-means++" or "random"; given
/// centres are passed separately).
struct MiniBatchArgs {
  int n_clusters;
  std::string init;
  int max_iter;
  std::int64_t batch_size;
  double tol;
  int max_no_improvement;
  std::int64_t init_size;
  int n_init;
  double reassignment_ratio;
  std::uint64_t seed;
  bool compute_labels;
  int n_threads;
  int verbose;
};

template <class T>
mixtura::MiniBatchKMeans<T> make_minibatch(const MiniBatchArgs& a, bool given) {
  mixtura::MiniBatchKMeansParams p;
  p.n_clusters = a.n_clusters;
  if (given) p.init = mixtura::KMeansInit::given;
  else if (a.init == "k-means++") p.init = mixtura::KMeansInit::kmeans_plusplus;
  else if (a.init == "random") p.init = mixtura::KMeansInit::random;
  else throw mixtura::InvalidArgument("MiniBatchKMeans: init must be 'k-means++', 'random' or an array of centres, got '" + a.init + "'");
  p.max_iter = a.max_iter;
  p.batch_size = a.batch_size;
  p.tol = a.tol;
  p.max_no_improvement = a.max_no_improvement;
  p.init_size = a.init_size;
  p.n_init = a.n_init;
  p.reassignment_ratio = a.reassignment_ratio;
  p.seed = a.seed;
  p.compute_labels = a.compute_labels;
  p.n_threads = a.n_threads;
  mixtura::MiniBatchKMeans<T> mb(p);
  const int verbose = a.verbose;
  mb.set_callback([verbose](std::int64_t step, const mixtura::MiniBatchStep& s) {
    py::gil_scoped_acquire acquire;
    if (verbose)
      py::print(py::str("Mini-batch step {}: J batch {:.6g} -> {:.6g}, centre shift {:.3g}, {} reassigned, {:.3f} ms")
                    .format(step + 1, s.distortion_assign, s.distortion_update, s.center_shift, s.n_reassigned,
                            s.seconds * 1e3));
    return PyErr_CheckSignals() == 0;
  });
  return mb;
}

/// What the estimator stores: the state partial_fit resumes from, labels and inertia (None when not
/// computed), this call's steps as a (steps, 2) trace [J before, J after] with their centre shifts and
/// reassignment counts, and its events.
template <class T>
py::dict minibatch_result(const mixtura::MiniBatchKMeans<T>& mb) {
  const auto& st = mb.state();
  py::dict out;
  out["cluster_centers"] = matrix_array(st.centers);
  py::array_t<double> counts(static_cast<py::ssize_t>(st.counts.size()));
  std::copy(st.counts.begin(), st.counts.end(), counts.mutable_data());
  out["counts"] = counts;
  out["n_steps"] = st.n_steps;
  out["n_since_reassign"] = st.n_since_reassign;
  out["n_iter"] = mb.n_iter();
  const bool labelled = !mb.labels().empty();
  out["labels"] = labelled ? py::object(labels_array<std::int32_t>(mb.labels())) : py::none();
  out["inertia"] = mb.inertia();
  const auto& trace = mb.trace();
  const auto n = static_cast<py::ssize_t>(trace.size());
  py::array_t<double> t({n, py::ssize_t{2}}), shift(n);
  py::array_t<std::int32_t> reassigned(n);
  for (py::ssize_t i = 0; i < n; ++i) {
    t.mutable_at(i, 0) = trace[static_cast<std::size_t>(i)].distortion_assign;
    t.mutable_at(i, 1) = trace[static_cast<std::size_t>(i)].distortion_update;
    shift.mutable_at(i) = trace[static_cast<std::size_t>(i)].center_shift;
    reassigned.mutable_at(i) = trace[static_cast<std::size_t>(i)].n_reassigned;
  }
  out["trace"] = t;
  out["center_shift"] = shift;
  out["n_reassigned"] = reassigned;
  py::list events;
  for (const auto& e : mb.events())
    events.append(py::dict(py::arg("kind") = "reassigned", py::arg("step") = e.step, py::arg("cluster") = e.cluster,
                           py::arg("row") = e.row));
  out["events"] = events;
  return out;
}

/// X: a dense array or a CSR matrix's tuple (with_rows).
template <class T>
py::dict minibatch_fit(const py::object& X, const std::optional<Array<T>>& sample_weight,
                       const std::optional<Array<T>>& init_centers, const MiniBatchArgs& args) {
  auto mb = make_minibatch<T>(args, init_centers.has_value());
  const auto wv = weights_view(sample_weight);
  const auto Cv = init_centers ? view(*init_centers, "init") : mixtura::MatrixView<T>{};
  const auto be = host_backend(mb.params().n_threads);
  with_rows<T>(X, "MiniBatchKMeans.fit", [&](const auto& Xv) { run_interruptibly([&] { mb.fit_on(be, Xv, wv, Cv); }); });
  return minibatch_result(mb);
}

/// state: None (the first call: initialise from X or init_centers) or the dict the last call returned.
template <class T>
py::dict minibatch_partial_fit(const py::object& X, const std::optional<Array<T>>& sample_weight,
                               const std::optional<Array<T>>& init_centers, const std::optional<py::dict>& state,
                               const MiniBatchArgs& args) {
  auto mb = make_minibatch<T>(args, init_centers.has_value());
  if (state) {
    mixtura::MiniBatchKMeansState<T> s;
    s.centers = view(Array<T>::ensure((*state)["cluster_centers"]), "cluster_centers").map();
    const auto counts = DArray::ensure((*state)["counts"]);
    if (!counts) throw mixtura::InvalidArgument("MiniBatchKMeans.partial_fit: counts_ must be an array of numbers");
    s.counts.assign(counts.data(), counts.data() + counts.size());
    s.n_steps = (*state)["n_steps"].cast<std::int64_t>();
    s.n_since_reassign = (*state)["n_since_reassign"].cast<std::int64_t>();
    mb.set_state(std::move(s));
  }
  const auto wv = weights_view(sample_weight);
  const auto Cv = init_centers ? view(*init_centers, "init") : mixtura::MatrixView<T>{};
  const auto be = host_backend(mb.params().n_threads);
  with_rows<T>(X, "MiniBatchKMeans.partial_fit",
               [&](const auto& Xv) { run_interruptibly([&] { mb.partial_fit_on(be, Xv, wv, Cv); }); });
  return minibatch_result(mb);
}

#define MIXTURA_MINIBATCH_ARGS                                                                                   \
  py::arg("n_clusters"), py::arg("init"), py::arg("max_iter"), py::arg("batch_size"), py::arg("tol"),          \
      py::arg("max_no_improvement"), py::arg("init_size"), py::arg("n_init"), py::arg("reassignment_ratio"),     \
      py::arg("seed"), py::arg("compute_labels"), py::arg("n_threads"), py::arg("verbose")

template <class T>
void bind_minibatch_types(py::module_& m) {
  m.def(typed_name<T>("minibatch_fit").c_str(),
        [](const py::object& X, const std::optional<Array<T>>& w, const std::optional<Array<T>>& init, int n_clusters,
           const std::string& init_name, int max_iter, std::int64_t batch_size, double tol, int max_no_improvement,
           std::int64_t init_size, int n_init, double ratio, std::uint64_t seed, bool compute_labels, int n_threads,
           int verbose) {
          return minibatch_fit<T>(X, w, init,
                                  {n_clusters, init_name, max_iter, batch_size, tol, max_no_improvement, init_size,
                                   n_init, ratio, seed, compute_labels, n_threads, verbose});
        },
        py::arg("X"), py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(),
        MIXTURA_MINIBATCH_ARGS);
  m.def(typed_name<T>("minibatch_partial_fit").c_str(),
        [](const py::object& X, const std::optional<Array<T>>& w, const std::optional<Array<T>>& init,
           const std::optional<py::dict>& state, int n_clusters, const std::string& init_name, int max_iter,
           std::int64_t batch_size, double tol, int max_no_improvement, std::int64_t init_size, int n_init,
           double ratio, std::uint64_t seed, bool compute_labels, int n_threads, int verbose) {
          return minibatch_partial_fit<T>(X, w, init, state,
                                          {n_clusters, init_name, max_iter, batch_size, tol, max_no_improvement,
                                           init_size, n_init, ratio, seed, compute_labels, n_threads, verbose});
        },
        py::arg("X"), py::arg("sample_weight").noconvert(), py::arg("init_centers").noconvert(),
        py::arg("state"), MIXTURA_MINIBATCH_ARGS);
}

#undef MIXTURA_MINIBATCH_ARGS

}  // namespace

void bind_minibatch(py::module_& m) {
  bind_minibatch_types<float>(m);
  bind_minibatch_types<double>(m);
}

}  // namespace mixtura_py
