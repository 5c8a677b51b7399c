#pragma once
/// Saving and loading DensityAnomalyDetector as a model file (kind "DensityAnomalyDetector"): its
/// scaling and threshold, and the fitted estimator behind it under the prefix "model." (a
/// GaussianMixture or a KMeans, with the sections of its own kind). docs/model-format.md.

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mixtura/anomaly/density_detector.hpp"
#include "mixtura/io/model_file.hpp"
#include "mixtura/io/models.hpp"

namespace mixtura {

constexpr const char* kDetectorKind = "DensityAnomalyDetector";

/// Adds a fitted detector's sections (named `prefix` + attribute) to `mf`.
template <class T>
void add_sections(ModelFile& mf, const DensityAnomalyDetector<T>& det, const std::string& prefix = "") {
  if (!det.is_fitted())
    throw NotFittedError("save_model: this DensityAnomalyDetector instance is not fitted yet; call fit() first");
  const DetectorParams& p = det.params();
  detail::JsonObject params;
  params.add("method", to_string(p.method));
  if (p.n_components == 0) params.add("n_components", "bic");
  else params.add("n_components", p.n_components);
  params.add("max_components", p.max_components).add("covariance_type", to_string(p.covariance_type))
      .add("reg_covar", p.reg_covar);
  if (p.scaling == FeatureScaling::none) params.add("scaling", nullptr);
  else params.add("scaling", to_string(p.scaling));
  if (p.contamination == 0) params.add("contamination", "auto");
  else params.add("contamination", p.contamination);
  params.add("threshold", to_string(p.threshold)).add("false_alarm_rate", p.false_alarm_rate)
      .add("calibration_fraction", p.calibration_fraction).add("n_init", p.n_init).add("max_iter", p.max_iter)
      .add("tol", p.tol).add("random_state", static_cast<unsigned long long>(p.seed)).add("n_threads", p.n_threads);
  if (p.trim == kTrimAuto) params.add("trim", "auto");
  else params.add("trim", p.trim);
  const ScalingFit& sc = det.scaling();
  const Index D = det.n_features_in();
  detail::add_common(mf, prefix, params.str(), D);
  mf.add_text(prefix + "method", to_string(p.method));
  mf.add_array(prefix + "center_", sc.center.data(), {detail::u64(D)});
  mf.add_array(prefix + "scale_", sc.scale.data(), {detail::u64(D)});
  mf.add_scalar(prefix + "offset_", det.offset());
  if (std::isfinite(det.score_median())) mf.add_scalar(prefix + "score_median_", det.score_median());
  std::vector<double> bic;
  for (const DetectorCandidate& c : det.selection()) bic.insert(bic.end(), {static_cast<double>(c.n_components), c.bic});
  mf.add_array(prefix + "bic_", bic, {det.selection().size(), 2});
  if (det.n_trimmed() > 0) mf.add_scalar(prefix + "n_trimmed_", static_cast<std::int64_t>(det.n_trimmed()));
  if (det.n_steps() > 0) {  // a streaming detector's state (partial_fit)
    mf.add_scalar(prefix + "stream_n_steps_", det.n_steps());
    mf.add_array(prefix + "stream_recent_scores_", det.stream_recent_scores(), {det.stream_recent_scores().size()});
  }
  if (p.method == AnomalyMethod::gmm) {
    add_sections(mf, det.mixture(), prefix + "model.");
    return;
  }
  // kmeans: the spherical density that scores, and the K-means fit it comes from.
  const GmmModel& m = det.model();
  const Index K = m.n_components;
  mf.add_array(prefix + "density_weights_", m.weights.data(), {detail::u64(K)});
  mf.add_array(prefix + "density_means_", m.means.data(), {detail::u64(K), detail::u64(D)});
  mf.add_array(prefix + "density_precisions_cholesky_", detail::gmm_parameter_values(m, 0), {detail::u64(K)});
  add_sections(mf, det.kmeans(), prefix + "model.");
}

/// A DensityAnomalyDetector<T> from the sections named `prefix` + attribute, checked: method known,
/// scaling finite with positive scales, offset finite, the inner model valid and of the same
/// feature count. T must be the data type of a kmeans detector's centres (a gmm detector loads as any T).
template <class T>
DensityAnomalyDetector<T> detector_from_sections(const ModelFile& mf, const std::string& prefix = "",
                                                 const char* where = "detector_from_sections") {
  const detail::SectionReader r{mf, prefix, where};
  const std::string method = r.text("method");
  if (method == "kmeans")
    detail::check_section_names(mf, prefix, kDetectorKind,
                                {"params", "n_features_in_", "feature_names_in_", "method", "center_", "scale_",
                                 "offset_", "bic_", "density_weights_", "density_means_", "density_precisions_cholesky_",
                                 "score_median_", "n_trimmed_"},
                                "model.", where);
  else
    detail::check_section_names(mf, prefix, kDetectorKind,
                                {"params", "n_features_in_", "feature_names_in_", "method", "center_", "scale_",
                                 "offset_", "bic_", "score_median_", "stream_n_steps_", "stream_recent_scores_",
                                 "n_trimmed_"},
                                "model.", where);
  DetectorParams p;
  if (method == "gmm") p.method = AnomalyMethod::gmm;
  else if (method == "kmeans") p.method = AnomalyMethod::kmeans;
  else throw InvalidArgument(detail::format("%s: section '%s' is '%s', expected 'gmm' or 'kmeans'", where,
                                            r.name("method").c_str(), method.substr(0, 64).c_str()));
  const auto cs = r.shape("center_", DType::f64, 1);
  MIXTURA_EXPECTS(cs[0] >= 1, "%s: center_ is empty", where);
  const Index D = static_cast<Index>(cs[0]);
  const std::vector<double> center = r.get<double>("center_", cs), scale = r.get<double>("scale_", cs);
  r.all_finite("center_", center);
  r.all_finite("scale_", scale);
  // The scaling divides by scale_: a subnormal scale would turn finite data into infinities.
  for (std::size_t j = 0; j < scale.size(); ++j)
    MIXTURA_EXPECTS(scale[j] >= detail::kMinScale && scale[j] <= detail::kMaxScale,
                    "%s: scale_[%zu] = %g, expected in [%g, %g]", where, j, scale[j], detail::kMinScale,
                    detail::kMaxScale);
  for (std::size_t j = 0; j < center.size(); ++j)
    MIXTURA_EXPECTS(std::abs(center[j]) <= kModelValueLimit, "%s: center_[%zu] = %g, expected within +-%g", where, j,
                    center[j], kModelValueLimit);
  const double offset = r.scalar<double>("offset_");
  MIXTURA_EXPECTS(std::isfinite(offset), "%s: offset_ = %g is not finite", where, offset);
  // Optional (files before it lack it): where the threshold sits within the normal rows' scores.
  const double score_median = r.has("score_median_") ? r.scalar<double>("score_median_") : std::nan("");
  MIXTURA_EXPECTS(!r.has("score_median_") || std::isfinite(score_median), "%s: score_median_ = %g is not finite",
                  where, score_median);
  // Optional (files before it lack it; written when > 0): training rows a trimmed fit set aside.
  const std::int64_t n_trimmed = r.has("n_trimmed_") ? r.scalar<std::int64_t>("n_trimmed_") : 0;
  MIXTURA_EXPECTS(n_trimmed >= 0, "%s: n_trimmed_ = %lld is negative", where, static_cast<long long>(n_trimmed));
  // A streaming detector's state (partial_fit), both sections or neither.
  std::int64_t n_steps = 0;
  std::vector<double> recent;
  if (r.has("stream_n_steps_") || r.has("stream_recent_scores_")) {
    n_steps = r.scalar<std::int64_t>("stream_n_steps_");
    MIXTURA_EXPECTS(p.method == AnomalyMethod::gmm && n_steps >= 1, "%s: stream_n_steps_ must be >= 1 (method gmm)",
                    where);
    const auto ss = r.shape("stream_recent_scores_", DType::f64, 1);
    recent = r.get<double>("stream_recent_scores_", ss);
    r.all_finite("stream_recent_scores_", recent);
  }
  detail::check_n_features(r, D);
  const auto bs = r.shape("bic_", DType::f64, 2);
  MIXTURA_EXPECTS(bs[1] == 2, "%s: bic_ has shape %s, expected (n, 2)", where, detail::shape_string(bs).c_str());
  const std::vector<double> bic = r.get<double>("bic_", bs);
  std::vector<DetectorCandidate> selection;
  for (std::uint64_t i = 0; i < bs[0]; ++i) {
    // Checked before the conversion: a double outside int's range does not convert.
    const double count = bic[2 * i];
    MIXTURA_EXPECTS(count >= 1 && count <= INT32_MAX && count == std::floor(count),
                    "%s: bic_[%llu, 0] = %g is not a component count", where, static_cast<unsigned long long>(i), count);
    selection.push_back({static_cast<int>(count), bic[2 * i + 1]});
  }

  ScalingFit sc{Eigen::Map<const Eigen::VectorXd>(center.data(), D), Eigen::Map<const Eigen::VectorXd>(scale.data(), D)};
  const std::string inner = prefix + "model.";
  DensityAnomalyDetector<T> det(p);
  if (p.method == AnomalyMethod::gmm) {
    GaussianMixture<T> gm = gaussian_mixture_from_sections<T>(mf, inner, where);
    MIXTURA_EXPECTS(gm.model().n_features == D, "%s: the mixture has %lld features, the scaling %lld", where,
                    static_cast<long long>(gm.model().n_features), static_cast<long long>(D));
    det.set_fitted(std::move(sc), std::move(gm), offset, std::move(selection), KMeans<T>(), score_median,
                   static_cast<Index>(n_trimmed));
    det.set_stream_state(n_steps, std::move(recent));
    return det;
  }
  KMeans<T> km = kmeans_from_sections<T>(mf, inner, where);
  const Index K = km.cluster_centers().rows();
  MIXTURA_EXPECTS(km.cluster_centers().cols() == D, "%s: the K-means centres have %lld features, the scaling %lld",
                  where, static_cast<long long>(km.cluster_centers().cols()), static_cast<long long>(D));
  const auto weights = r.get<double>("density_weights_", {detail::u64(K)});
  const auto means = r.get<double>("density_means_", {detail::u64(K), detail::u64(D)});
  const auto factors = r.get<double>("density_precisions_cholesky_", {detail::u64(K)});
  GmmModel model = detail::gmm_model_from_arrays(CovarianceType::spherical, weights, means, factors, K, D, where);
  detail::check_gmm_usable(model, where);
  GaussianMixture<T> density(GmmParams{});
  density.set_model(std::move(model));
  det.set_fitted(std::move(sc), std::move(density), offset, std::move(selection), std::move(km), score_median,
                 static_cast<Index>(n_trimmed));
  return det;
}

/// A model file holding one fitted detector.
template <class T>
ModelFile to_model_file(const DensityAnomalyDetector<T>& det) { return detail::model_file_of(kDetectorKind, det); }

/// Writes a fitted detector to `path` (atomically).
template <class T>
void save_model(const std::string& path, const DensityAnomalyDetector<T>& det) {
  write_model_file(path, to_model_file(det));
}

/// A DensityAnomalyDetector<T> from a model file (kmeans detectors: T = the dtype of the centres,
/// which model_file_info(path, "model.") tells).
template <class T>
DensityAnomalyDetector<T> load_density_detector(const std::string& path) {
  const ModelFile mf = read_model_file(path);
  detail::expect_kind(mf, kDetectorKind, "load_density_detector");
  return detector_from_sections<T>(mf, "", "load_density_detector");
}

}  // namespace mixtura
