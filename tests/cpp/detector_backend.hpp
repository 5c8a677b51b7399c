#pragma once
// DensityAnomalyDetector on a backend other than the CPU (the host replay of the CUDA kernels,
// gmm_replay.hpp, or a GPU), checked two ways:
// - against the CPU detector: the same choices (component count, covariance type, BIC table) and the
//   scores, offsets and BICs within the tolerance the CUDA backend is held to (1e-5 relative for
//   float, 1e-10 for double), for methods gmm and kmeans and every threshold, and partial_fit's steps
//   on a stream with faults;
// - against the backend's own passes, bit for bit: the detector's density is GaussianMixture::fit_on
//   (or select_gaussian_mixture_on, or KMeans::fit_on) on the scaled rows, its scores are the
//   backend's scores of the scaled rows minus the log-Jacobian. Where the backend's arithmetic differs
//   from the CPU's (float, full covariance), a pass left on the CPU shows here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gmm_replay.hpp"
#include "mixtura/anomaly.hpp"

namespace mixtura_test {

/// Three blobs in three features of very different units (the scaling matters), n rows.
template <class T>
RowMatrix<T> detector_data(Index n, std::uint32_t seed) {
  RowMatrix<T> x = gmm_blobs<T>(n, 3, seed, 0.0, 6.0);
  for (Index i = 0; i < n; ++i) {
    x(i, 1) = static_cast<T>(200 + 50 * static_cast<double>(x(i, 1)));
    x(i, 2) = static_cast<T>(0.01 * static_cast<double>(x(i, 2)));
  }
  return x;
}

/// New rows to score: data like the training rows, every 10th pushed 30 standard deviations out in
/// one feature.
template <class T>
RowMatrix<T> detector_queries(Index n) {
  RowMatrix<T> y = detector_data<T>(n, 99);
  const double sd[] = {1.0, 50 * 1.3, 0.01 * 1.6};  // of the noise in each feature (gmm_blobs, detector_data)
  for (Index i = 0; i < n; i += 10) y(i, i % 3) = static_cast<T>(static_cast<double>(y(i, i % 3)) + 30 * sd[i % 3]);
  return y;
}

struct DetectorCase {
  AnomalyMethod method;
  ThresholdMethod threshold;
  double contamination;
  int n_components;  // 0 = by BIC
  CovarianceType covariance_type;
  const char* name;
};
inline const DetectorCase kDetectorCases[] = {
    {AnomalyMethod::gmm, ThresholdMethod::calibrate, 0, 0, CovarianceType::full, "gmm full calibrate bic"},
    {AnomalyMethod::gmm, ThresholdMethod::model_tail, 0, 0, CovarianceType::full, "gmm full model-tail bic"},
    {AnomalyMethod::gmm, ThresholdMethod::calibrate, 0, 0, CovarianceType::diag, "gmm diag calibrate bic"},
    {AnomalyMethod::gmm, ThresholdMethod::calibrate, 0.05, 3, CovarianceType::full, "gmm full contamination k=3"},
    {AnomalyMethod::kmeans, ThresholdMethod::calibrate, 0, 0, CovarianceType::full, "kmeans calibrate bic"},
    {AnomalyMethod::kmeans, ThresholdMethod::model_tail, 0, 0, CovarianceType::full, "kmeans model-tail bic"},
    {AnomalyMethod::kmeans, ThresholdMethod::calibrate, 0.05, 3, CovarianceType::full, "kmeans contamination k=3"},
};

inline DetectorParams params_of(const DetectorCase& c) {
  DetectorParams p;
  p.method = c.method;
  p.threshold = c.threshold;
  p.contamination = c.contamination;
  p.n_components = c.n_components;
  p.covariance_type = c.covariance_type;
  p.max_components = 5;  // 1..5 for three blobs: the minimum is inside the range
  p.seed = 7;
  return p;
}

/// The detector on `be` against the CPU detector (see the top of the file), every case.
template <class T, class Backend>
void expect_detector_follows_the_cpu(const Backend& be) {
  const double rel = trace_tolerance<T>();
  const RowMatrix<T> x = detector_data<T>(3000, 11), y = detector_queries<T>(1000);
  for (const DetectorCase& c : kDetectorCases) {
    DensityAnomalyDetector<T> cpu(params_of(c)), dev(params_of(c));
    cpu.fit(MatrixView<T>(x));
    dev.fit_on(be, MatrixView<T>(x));
    const std::string at = c.name;
    EXPECT_EQ(dev.n_components(), cpu.n_components()) << at;
    EXPECT_EQ(dev.model().type, cpu.model().type) << at;
    ASSERT_EQ(dev.selection().size(), cpu.selection().size()) << at;
    for (std::size_t i = 0; i < cpu.selection().size(); ++i) {
      EXPECT_EQ(dev.selection()[i].n_components, cpu.selection()[i].n_components) << at;
      EXPECT_NEAR(dev.selection()[i].bic, cpu.selection()[i].bic, 10 * rel * std::abs(cpu.selection()[i].bic))
          << at << " count " << cpu.selection()[i].n_components;
    }
    const Eigen::VectorXd a = cpu.score_samples(MatrixView<T>(y)), b = dev.score_samples_on(be, MatrixView<T>(y));
    const double scale = std::max(1.0, a.cwiseAbs().maxCoeff());
    EXPECT_LE((a - b).cwiseAbs().maxCoeff(), 10 * rel * scale) << at;
    EXPECT_NEAR(dev.offset(), cpu.offset(), 10 * rel * scale) << at;
    // The flags are the CPU's except for rows within round-off of the threshold.
    const Eigen::VectorXd da = cpu.decision_function(MatrixView<T>(y)), db = dev.decision_function_on(be, MatrixView<T>(y));
    const std::vector<std::int32_t> fa = cpu.predict(MatrixView<T>(y)), fb = dev.predict_on(be, MatrixView<T>(y));
    int flagged = 0;
    for (Index i = 0; i < y.rows(); ++i) {
      EXPECT_EQ(fb[static_cast<std::size_t>(i)], db[i] < 0 ? -1 : 1) << at << " row " << i;
      if (std::abs(da[i]) > 100 * rel * scale) {
        EXPECT_EQ(fb[static_cast<std::size_t>(i)], fa[static_cast<std::size_t>(i)]) << at << " row " << i;
      }
      if (i % 10 == 0) flagged += fb[static_cast<std::size_t>(i)] < 0;
    }
    EXPECT_EQ(flagged, (y.rows() + 9) / 10) << at << ": every pushed-out row is flagged";
  }
}

/// The rows of X scaled by the detector's scaling.
template <class T>
RowMatrix<T> scaled(const DensityAnomalyDetector<T>& det, const RowMatrix<T>& x) {
  RowMatrix<T> z(x.rows(), x.cols());
  scale_rows(MatrixView<T>(x), det.scaling(), 0, z);
  return z;
}

/// The detector on `be` is the backend's passes on the scaled rows, bit for bit (threshold model-tail:
/// the density is fitted on all rows).
template <class T, class Backend>
void expect_detector_is_the_backends_passes(const Backend& be) {
  const RowMatrix<T> x = detector_data<T>(3000, 11), y = detector_queries<T>(1000);
  for (const int k : {3, 0}) {
    for (const AnomalyMethod method : {AnomalyMethod::gmm, AnomalyMethod::kmeans}) {
      DetectorCase c{method, ThresholdMethod::model_tail, 0, k, CovarianceType::full, ""};
      const DetectorParams p = params_of(c);
      DensityAnomalyDetector<T> det(p);
      det.fit_on(be, MatrixView<T>(x));
      const std::string at = std::string(to_string(method)) + (k ? " k=3" : " bic");
      const RowMatrix<T> z = scaled(det, x), zy = scaled(det, y);
      const double log_jacobian = det.scaling().log_jacobian();
      Eigen::VectorXd expected(y.rows());
      if (method == AnomalyMethod::gmm) {
        if (k) {
          GaussianMixture<T> gm(det.density_params(k));
          gm.fit_on(be, MatrixView<T>(z));
          expect_same_fit(gm, det.mixture());
        } else {
          std::vector<int> counts{1, 2, 3, 4, 5};
          const GmmSelection<T> sel =
              select_gaussian_mixture_on(be, MatrixView<T>(z), counts, {p.covariance_type}, det.density_params(1));
          expect_same_fit(sel.model, det.mixture());
          ASSERT_EQ(det.selection().size(), sel.table.size()) << at;
          for (std::size_t i = 0; i < sel.table.size(); ++i)
            EXPECT_TRUE(same_bits(det.selection()[i].bic, sel.table[i].bic)) << at << " count " << i + 1;
        }
        expected = det.mixture().score_samples_on(be, MatrixView<T>(zy));
      } else {
        if (k) {
          KMeans<T> km(det.kmeans_params(k));
          km.fit_on(be, MatrixView<T>(z));
          EXPECT_TRUE(km.cluster_centers() == det.kmeans().cluster_centers()) << at;
          EXPECT_EQ(km.labels(), det.kmeans().labels()) << at;
        }
        gmm_weighted_log_prob(be, MatrixView<T>(zy), det.model(), [&](Index begin, Index rows, auto& s) {
          expected.segment(begin, rows) = s.lp.topRows(rows).rowwise().maxCoeff();
        });
      }
      const Eigen::VectorXd got = det.score_samples_on(be, MatrixView<T>(y));
      expected.array() -= log_jacobian;
      Index differ = 0;
      for (Index i = 0; i < y.rows(); ++i) differ += !same_bits(got[i], expected[i]);
      EXPECT_EQ(differ, 0) << at << ": rows whose score is not the backend's";
    }
  }
}

/// partial_fit on `be` against partial_fit on the CPU, chunk after chunk of a stream whose every 10th
/// row is a fault: the same steps, the faults flagged (not learnt), the threshold and the scores within
/// the backend's tolerance.
template <class T, class Backend>
void expect_detector_stream_follows_the_cpu(const Backend& be) {
  const double rel = trace_tolerance<T>();
  DetectorParams p = params_of(kDetectorCases[0]);
  p.half_life = 400;
  DensityAnomalyDetector<T> cpu(p), dev(p);
  const RowMatrix<T> x = detector_data<T>(2000, 11), y = detector_queries<T>(500);
  cpu.fit(MatrixView<T>(x));
  dev.fit_on(be, MatrixView<T>(x));
  const double sd[] = {1.0, 50 * 1.3, 0.01 * 1.6};
  for (std::uint32_t c = 0; c < 4; ++c) {
    RowMatrix<T> chunk = detector_data<T>(300, 20 + c);
    for (Index i = 0; i < chunk.rows(); i += 10)
      chunk(i, i % 3) = static_cast<T>(static_cast<double>(chunk(i, i % 3)) + 30 * sd[i % 3]);
    const double offset_before = dev.offset();
    cpu.partial_fit(MatrixView<T>(chunk));
    dev.partial_fit_on(be, MatrixView<T>(chunk));
    const std::string at = "chunk " + std::to_string(c);
    EXPECT_EQ(dev.n_steps(), cpu.n_steps()) << at;
    EXPECT_EQ(dev.mixture().stream_state().n_steps, cpu.mixture().stream_state().n_steps) << at;
    const Eigen::VectorXd a = cpu.score_samples(MatrixView<T>(y)), b = dev.score_samples_on(be, MatrixView<T>(y));
    const double scale = std::max(1.0, a.cwiseAbs().maxCoeff());
    EXPECT_LE((a - b).cwiseAbs().maxCoeff(), 10 * rel * scale) << at;
    EXPECT_NEAR(dev.offset(), cpu.offset(), 10 * rel * scale) << at;
    ASSERT_EQ(dev.stream_recent_scores().size(), cpu.stream_recent_scores().size()) << at;
    // Each fault was flagged: its recent score is the threshold it fell below (it taught nothing).
    const std::vector<double>& recent = dev.stream_recent_scores();
    for (Index i = 0; i < chunk.rows(); i += 10)
      EXPECT_EQ(recent[recent.size() - 300 + static_cast<std::size_t>(i)], offset_before) << at << " row " << i;
  }
}

}  // namespace mixtura_test
