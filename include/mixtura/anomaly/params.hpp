#pragma once
/// Parameters of the density-based anomaly detector and what its explanations hold.

#include <cstdint>
#include <vector>

#include "mixtura/core/matrix_view.hpp"
#include "mixtura/gmm/params.hpp"

namespace mixtura {

/// The density behind the scores.
enum class AnomalyMethod {
  gmm,     ///< Gaussian mixture: score = log p(x), the log-sum-exp over components
  kmeans,  ///< K-means centres with a per-cluster variance: score = max_k log(pi_k N(x | c_k, s_k I))
};

/// How features are put on a common scale before the density is fitted.
enum class FeatureScaling {
  none,      ///< raw features
  standard,  ///< (x - mean) / standard deviation
  robust,    ///< (x - median) / (IQR / 1.349), falling back to the standard deviation when the IQR is 0
};

/// Where the threshold (offset) between normal and anomalous scores comes from.
enum class ThresholdMethod {
  calibrate,   ///< false_alarm_rate quantile of the scores of held-out training rows
  model_tail,  ///< false_alarm_rate quantile of the scores of rows drawn from the fitted density itself
};

inline const char* to_string(AnomalyMethod m) { return m == AnomalyMethod::gmm ? "gmm" : "kmeans"; }
inline const char* to_string(FeatureScaling s) {
  switch (s) {
    case FeatureScaling::none: return "none";
    case FeatureScaling::standard: return "standard";
    case FeatureScaling::robust: return "robust";
  }
  return "unknown";
}
inline const char* to_string(ThresholdMethod t) { return t == ThresholdMethod::calibrate ? "calibrate" : "model-tail"; }

/// DetectorParams::trim: the share of training rows to set aside is chosen from the data.
constexpr double kTrimAuto = -1;
/// How far below the first quartile of the scores, in interquartile ranges, kTrimAuto's fence sits.
constexpr double kTrimFenceIqr = 3;
/// kTrimAuto without contamination: components of at most this weight do not vouch for their rows.
constexpr double kTrimAutoMinWeight = 0.02;

/// Parameters of DensityAnomalyDetector (Python: the same names).
struct DetectorParams {
  AnomalyMethod method = AnomalyMethod::gmm;
  int n_components = 0;        ///< components (clusters); 0 = chosen by BIC among 1..max_components
  int max_components = 8;      ///< largest count the BIC search tries
  CovarianceType covariance_type = CovarianceType::full;  ///< gmm only
  double reg_covar = 1e-3;     ///< added to every variance, in scaled units (>= 0)
  FeatureScaling scaling = FeatureScaling::robust;  ///< training outliers do not inflate the scale
  /// > 0: the offset is the contamination quantile of the training scores (scikit-learn's meaning:
  /// that fraction of the training rows is flagged). 0: the threshold method below decides.
  double contamination = 0;
  ThresholdMethod threshold = ThresholdMethod::calibrate;
  /// Trimmed fit, for training rows that are not clean: 0 = one plain fit. Otherwise a first fit
  /// scores the rows the density is fitted on (under its components heavier than the share to
  /// trim), those with the lowest scores are set aside and the density is fitted again on the rest
  /// (count, components and all): in (0, 0.5) = that share of the rows; kTrimAuto = the rows below
  /// Tukey's far-out fence of the scores (Q1 - 3 IQR), or the contamination share when
  /// contamination > 0. The held-out calibration rows are trimmed by the same rule under the final
  /// fit before the false_alarm_rate quantile is taken.
  double trim = 0;
  double false_alarm_rate = 0.01;      ///< target fraction of normal rows flagged (0 < rate < 1)
  double calibration_fraction = 0.2;   ///< calibrate: share of the training rows held out (0 < f < 1)
  int n_init = 1;                      ///< EM / K-means restarts per fit
  int max_iter = 100;                  ///< EM / Lloyd iterations per restart
  double tol = 1e-3;                   ///< EM tolerance (K-means: its own default, 1e-4)
  std::uint64_t seed = 0;              ///< key of the counter-based random numbers
  int n_threads = 0;                   ///< OpenMP threads; 0 = OpenMP's default
  /// partial_fit: rows after which a row's influence on the density halves (the mixture's online EM
  /// step 1 - 0.5^(rows / half_life)), and the recent scores behind the threshold (max(200,
  /// ceil(half_life)) rows); 0 = none (the decaying step, 10 000 recent scores).
  double half_life = 0;
};

/// Per-row explanation of a score: for the responsible component k with precision P (scaled
/// units), contributions(i, j) = (P (z_i - mu_k))_j / sqrt(P_jj), the standardised residual of
/// feature j given all the others (large |value| = that feature is off). Invariant to the scaling.
struct AnomalyExplanation {
  RowMatrix<double> contributions;      ///< n_samples x n_features
  std::vector<std::int32_t> component;  ///< n_samples, the responsible component
};

/// One row of the BIC search.
struct DetectorCandidate {
  int n_components = 0;
  double bic = 0;
};

}  // namespace mixtura
