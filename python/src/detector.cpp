// mixtura._core's density anomaly detector: fit, score_samples and explain on host arrays (the
// passes on the backend `device` names), registered per float type (bindings.hpp).
#include <cstdint>
#include <string>
#include <utility>

#include "bindings.hpp"
#include "mixtura/anomaly.hpp"

namespace mixtura_py {
namespace {

mixtura::AnomalyMethod parse_method(const std::string& method) {
  if (method == "gmm") return mixtura::AnomalyMethod::gmm;
  if (method == "kmeans") return mixtura::AnomalyMethod::kmeans;
  throw mixtura::InvalidArgument("DensityAnomalyDetector: method must be 'gmm' or 'kmeans', got '" + method + "'");
}

mixtura::DetectorParams detector_params(const std::string& method, int n_components, int max_components,
                                        const std::string& covariance_type, double reg_covar,
                                        const std::string& scaling, double contamination, const std::string& threshold,
                                        double false_alarm_rate, double calibration_fraction, int n_init, int max_iter,
                                        double tol, std::uint64_t seed, int n_threads, double trim) {
  const char* where = "DensityAnomalyDetector";
  mixtura::DetectorParams p;
  p.method = parse_method(method);
  if (scaling == "standard") p.scaling = mixtura::FeatureScaling::standard;
  else if (scaling == "robust") p.scaling = mixtura::FeatureScaling::robust;
  else if (scaling == "none") p.scaling = mixtura::FeatureScaling::none;
  else throw mixtura::InvalidArgument(std::string(where) + ": scaling must be 'standard', 'robust' or None, got '" + scaling + "'");
  if (threshold == "calibrate") p.threshold = mixtura::ThresholdMethod::calibrate;
  else if (threshold == "model-tail") p.threshold = mixtura::ThresholdMethod::model_tail;
  else throw mixtura::InvalidArgument(std::string(where) + ": threshold must be 'calibrate' or 'model-tail', got '" + threshold + "'");
  set_mixture_params(p, n_components, covariance_type, reg_covar, tol, n_threads);
  p.max_components = max_components;
  p.contamination = contamination;
  p.false_alarm_rate = false_alarm_rate;
  p.calibration_fraction = calibration_fraction;
  p.n_init = n_init;
  p.max_iter = max_iter;
  p.seed = seed;
  p.trim = trim;
  return p;
}

template <class T>
py::dict detector_fit(const Array<T>& X, const std::string& method, int n_components, int max_components,
                      const std::string& covariance_type, double reg_covar, const std::string& scaling,
                      double contamination, const std::string& threshold, double false_alarm_rate,
                      double calibration_fraction, int n_init, int max_iter, double tol, std::uint64_t seed,
                      int n_threads, double trim, const std::string& device) {
  mixtura::DensityAnomalyDetector<T> det(detector_params(method, n_components, max_components, covariance_type,
                                                         reg_covar, scaling, contamination, threshold, false_alarm_rate,
                                                         calibration_fraction, n_init, max_iter, tol, seed, n_threads,
                                                         trim));
  const auto Xv = view(X, "X");
  det.set_callback([] {  // between iterations of the fits behind the density: Ctrl-C stops the fit
    py::gil_scoped_acquire acquire;
    return PyErr_CheckSignals() == 0;
  });
  run_interruptibly([&] { on_device(device, n_threads, [&](const auto& be) { det.fit_on(be, Xv); }); });
  py::dict out;
  out["center"] = vector_array(det.scaling().center);
  out["scale"] = vector_array(det.scaling().scale);
  out["offset"] = det.offset();
  out["score_median"] = det.score_median();
  out["n_components"] = det.n_components();
  py::list selection;
  for (const auto& c : det.selection()) selection.append(py::make_tuple(c.n_components, c.bic));
  out["selection"] = selection;
  out["n_trimmed"] = static_cast<long long>(det.n_trimmed());
  // The density in scaled units (kmeans: spherical components at the centres).
  const mixtura::GmmModel& m = det.model();
  out["weights"] = vector_array(m.weights);
  out["means"] = matrix_array(m.means);
  out["precisions_cholesky"] = factors_of(m);
  out["covariance_type"] = mixtura::to_string(m.type);
  out["model"] = method == "gmm" ? gmm_result(det.mixture()) : kmeans_result(det.kmeans());
  return out;
}

/// `what` (score_samples: on `device`; explain: (contributions, component), on the CPU) of X under a
/// fitted detector given by its arrays.
template <class T>
py::object detector_eval(const Array<T>& X, const std::string& method, const DArray& center, const DArray& scale,
                         const std::string& covariance_type, const DArray& weights, const DArray& means,
                         const DArray& factors, double offset, const std::string& what, int n_threads,
                         const std::string& device) {
  if (what != "score_samples" && what != "explain")
    throw mixtura::InvalidArgument("detector_eval: what must be 'score_samples' or 'explain', got '" + what + "'");
  mixtura::DetectorParams p;  // what scoring reads; the rest is the fit's
  p.method = parse_method(method);
  p.covariance_type = parse_covariance(covariance_type);
  p.n_threads = n_threads;
  mixtura::DensityAnomalyDetector<T> det(p);
  mixtura::ScalingFit sc{Eigen::Map<const Eigen::VectorXd>(center.data(), center.size()),
                         Eigen::Map<const Eigen::VectorXd>(scale.data(), scale.size())};
  det.set_fitted(std::move(sc), model_from(covariance_type, weights, means, factors), offset);
  const auto Xv = view(X, "X");
  if (what == "score_samples") {
    Eigen::VectorXd s;
    {
      py::gil_scoped_release release;
      on_device(device, n_threads, [&](const auto& be) { s = det.score_samples_on(be, Xv); });
    }
    return vector_array(s);
  }
  mixtura::AnomalyExplanation e;
  {
    py::gil_scoped_release release;
    e = det.explain_on(host_backend(n_threads), Xv);
  }
  return py::make_tuple(matrix_array(e.contributions), labels_array<std::int32_t>(e.component));
}

template <class T>
void bind_detector_types(py::module_& m) {
  m.def(typed_name<T>("detector_fit").c_str(), &detector_fit<T>, py::arg("X").noconvert(), py::arg("method"),
        py::arg("n_components"), py::arg("max_components"), py::arg("covariance_type"), py::arg("reg_covar"),
        py::arg("scaling"), py::arg("contamination"), py::arg("threshold"), py::arg("false_alarm_rate"),
        py::arg("calibration_fraction"), py::arg("n_init"), py::arg("max_iter"), py::arg("tol"), py::arg("seed"),
        py::arg("n_threads"), py::arg("trim"), py::arg("device"));
  m.def(typed_name<T>("detector_eval").c_str(), &detector_eval<T>, py::arg("X").noconvert(), py::arg("method"),
        py::arg("center"), py::arg("scale"), py::arg("covariance_type"), py::arg("weights"), py::arg("means"),
        py::arg("precisions_cholesky"), py::arg("offset"), py::arg("what"), py::arg("n_threads"), py::arg("device"));
}

}  // namespace

void bind_detector(py::module_& m) {
  bind_detector_types<float>(m);
  bind_detector_types<double>(m);
}

}  // namespace mixtura_py
