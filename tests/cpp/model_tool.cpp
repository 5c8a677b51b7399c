// model_tool: the C++ side of the cross-language model-file tests (tests/python/test_model_files.py).
//
//   model_tool fit kmeans|minibatch|gmm|detector DATA.csv MODEL [--dtype float32|float64] [--k K]
//                 [--covariance TYPE] [--seed S] [--n-init N] [--method gmm|kmeans] [--batch-size B]
//                 [--with-test-data] [--init-first-rows]
//   model_tool score MODEL DATA.csv OUT.csv [--dtype float32|float64]
//   model_tool resave MODEL OUT
//   model_tool partial_fit MODEL DATA.csv OUT [--weights W.csv] [--batch-size B] [--reassignment-ratio R]
//                          [--dtype float32|float64] [--half-life H] [--reg-covar R]
//   model_tool info MODEL
//
// Data files are CSV, one row per line, numbers written with 17 significant digits so that they
// round-trip exactly. `partial_fit` loads a MiniBatchKMeans or a DensityAnomalyDetector, takes DATA
// as one more batch or chunk (the parameters a step reads other than the file's seed are the C++
// defaults unless given; a detector's chunk is read in --dtype) and saves it to OUT. `score` writes, per row: KMeans and MiniBatchKMeans "label,distance_0,...", GaussianMixture
// "log_density,label,proba_0,...", DensityAnomalyDetector
// "score,prediction,component,contribution_0,...", with 17 significant digits (detector --k 0:
// components by BIC). --with-test-data adds the data and
// the fitted model's own outputs as sections test.X, test.labels / test.score_samples (a loader
// ignores sections it does not know), which the fixture tests read back. --init-first-rows: K-means
// from the first K rows as given initial centres (init = given).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixtura/anomaly.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io.hpp"
#include "mixtura/kmeans.hpp"

namespace {

using mixtura::Index;
using mixtura::RowMatrix;

template <class T>
RowMatrix<T> read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<double> values;
  Index rows = 0, cols = -1;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    Index c = 0;
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      values.push_back(std::strtod(cell.c_str(), &end));
      if (end == cell.c_str()) throw std::runtime_error("not a number: '" + cell + "' in " + path);
      ++c;
    }
    if (cols >= 0 && c != cols) throw std::runtime_error("ragged rows in " + path);
    cols = c;
    ++rows;
  }
  if (rows == 0) throw std::runtime_error("no rows in " + path);
  RowMatrix<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(values[static_cast<std::size_t>(i)]);
  return x;
}

std::string arg(const std::vector<std::string>& a, const std::string& flag, const std::string& fallback) {
  for (std::size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag) return a[i + 1];
  return fallback;
}
bool has_flag(const std::vector<std::string>& a, const std::string& flag) {
  for (const auto& s : a)
    if (s == flag) return true;
  return false;
}

template <class T>
void add_test_data(mixtura::ModelFile& mf, const RowMatrix<T>& x) {
  mf.add_array("test.X", x.data(), {static_cast<std::uint64_t>(x.rows()), static_cast<std::uint64_t>(x.cols())});
}

template <class T>
int fit(const std::vector<std::string>& a) {
  const std::string what = a[2], data = a[3], out = a[4];
  const RowMatrix<T> x = read_csv<T>(data);
  const int k = std::atoi(arg(a, "--k", "3").c_str());
  const std::uint64_t seed = std::strtoull(arg(a, "--seed", "0").c_str(), nullptr, 10);
  const int n_init = std::atoi(arg(a, "--n-init", "1").c_str());
  mixtura::ModelFile mf;
  if (what == "kmeans") {
    mixtura::KMeansParams p;
    p.n_clusters = k;
    p.seed = seed;
    p.n_init = n_init;
    mixtura::KMeans<T> km(p);
    if (has_flag(a, "--init-first-rows")) {
      p.init = mixtura::KMeansInit::given;
      km.set_params(p);
      km.fit(x, {}, mixtura::MatrixView<T>(x.data(), k, x.cols()));
    } else {
      km.fit(x);
    }
    mf = mixtura::to_model_file(km);
    if (has_flag(a, "--with-test-data")) {
      add_test_data(mf, x);
      mf.add_vector("test.labels", km.predict(x));
    }
  } else if (what == "minibatch") {
    mixtura::MiniBatchKMeansParams p;
    p.n_clusters = k;
    p.seed = seed;
    p.n_init = n_init;
    p.batch_size = std::atoll(arg(a, "--batch-size", "1024").c_str());
    mixtura::MiniBatchKMeans<T> mb(p);
    if (has_flag(a, "--init-first-rows")) mb.fit(x, {}, mixtura::MatrixView<T>(x.data(), k, x.cols()));
    else mb.fit(x);
    mf = mixtura::to_model_file(mb);
    if (has_flag(a, "--with-test-data")) {
      add_test_data(mf, x);
      mf.add_vector("test.labels", mb.predict(x));
    }
  } else if (what == "gmm") {
    mixtura::GmmParams p;
    p.n_components = k;
    p.seed = seed;
    p.n_init = n_init;
    p.covariance_type = mixtura::detail::parse_covariance_type(arg(a, "--covariance", "full"), "model_tool");
    mixtura::GaussianMixture<T> gm(p);
    gm.fit(x);
    mf = mixtura::to_model_file(gm);
    if (has_flag(a, "--with-test-data")) {
      add_test_data(mf, x);
      const Eigen::VectorXd s = gm.score_samples(x);
      mf.add_array("test.score_samples", s.data(), {static_cast<std::uint64_t>(s.size())});
    }
  } else if (what == "detector") {
    mixtura::DetectorParams p;
    p.n_components = k;
    p.seed = seed;
    p.n_init = n_init;
    p.method = arg(a, "--method", "gmm") == "kmeans" ? mixtura::AnomalyMethod::kmeans : mixtura::AnomalyMethod::gmm;
    mixtura::DensityAnomalyDetector<T> det(p);
    det.fit(x);
    mf = mixtura::to_model_file(det);
    if (has_flag(a, "--with-test-data")) {
      add_test_data(mf, x);
      const Eigen::VectorXd s = det.score_samples(x);
      mf.add_array("test.score_samples", s.data(), {static_cast<std::uint64_t>(s.size())});
    }
  } else {
    throw std::runtime_error("fit: unknown model '" + what + "' (kmeans, minibatch, gmm or detector)");
  }
  mixtura::write_model_file(out, mf);
  return 0;
}

/// "label,distance_0,..." per row of x: a KMeans' or a MiniBatchKMeans' predict and transform.
template <class T, class Model>
void write_labels_and_distances(std::FILE* out, const Model& km, const RowMatrix<T>& x) {
  const auto labels = km.predict(x);
  const RowMatrix<T> d = km.transform(x);
  for (Index i = 0; i < x.rows(); ++i) {
    std::fprintf(out, "%d", labels[static_cast<std::size_t>(i)]);
    for (Index j = 0; j < d.cols(); ++j) std::fprintf(out, ",%.17g", static_cast<double>(d(i, j)));
    std::fprintf(out, "\n");
  }
}

template <class T>
int score(const mixtura::ModelFile& mf, const std::string& data, const std::string& out_path) {
  const RowMatrix<T> x = read_csv<T>(data);
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  if (!out) throw std::runtime_error("cannot create " + out_path);
  if (mf.kind == mixtura::kKMeansKind) {
    write_labels_and_distances(out, mixtura::kmeans_from_sections<T>(mf, "", "model_tool score"), x);
  } else if (mf.kind == mixtura::kMiniBatchKMeansKind) {
    write_labels_and_distances(out, mixtura::minibatch_kmeans_from_sections<T>(mf, "", "model_tool score"), x);
  } else if (mf.kind == mixtura::kDetectorKind) {
    const auto det = mixtura::detector_from_sections<T>(mf, "", "model_tool score");
    const Eigen::VectorXd s = det.score_samples(x);
    const auto flags = det.predict(x);
    const mixtura::AnomalyExplanation e = det.explain(x);
    for (Index i = 0; i < x.rows(); ++i) {
      std::fprintf(out, "%.17g,%d,%d", s[i], flags[static_cast<std::size_t>(i)], e.component[static_cast<std::size_t>(i)]);
      for (Index j = 0; j < e.contributions.cols(); ++j) std::fprintf(out, ",%.17g", e.contributions(i, j));
      std::fprintf(out, "\n");
    }
  } else {
    const auto gm = mixtura::gaussian_mixture_from_sections<T>(mf, "", "model_tool score");
    const Eigen::VectorXd s = gm.score_samples(x);
    const auto labels = gm.predict(x);
    const RowMatrix<double> p = gm.predict_proba(x);
    for (Index i = 0; i < x.rows(); ++i) {
      std::fprintf(out, "%.17g,%d", s[i], labels[static_cast<std::size_t>(i)]);
      for (Index j = 0; j < p.cols(); ++j) std::fprintf(out, ",%.17g", p(i, j));
      std::fprintf(out, "\n");
    }
  }
  std::fclose(out);
  return 0;
}

/// One more batch for a saved MiniBatchKMeans (its centres' dtype T), saved to a[4].
template <class T>
int partial_fit(const mixtura::ModelFile& mf, const std::vector<std::string>& a) {
  auto mb = mixtura::minibatch_kmeans_from_sections<T>(mf, "", "model_tool partial_fit");
  mixtura::MiniBatchKMeansParams p = mb.params();
  if (has_flag(a, "--batch-size")) p.batch_size = std::atoll(arg(a, "--batch-size", "").c_str());
  if (has_flag(a, "--reassignment-ratio")) p.reassignment_ratio = std::strtod(arg(a, "--reassignment-ratio", "").c_str(), nullptr);
  mb.set_params(p);
  const RowMatrix<T> x = read_csv<T>(a[3]);
  const std::string weights = arg(a, "--weights", "");
  const RowMatrix<T> w = weights.empty() ? RowMatrix<T>() : read_csv<T>(weights);
  mb.partial_fit(x, weights.empty() ? mixtura::VectorView<T>{} : mixtura::VectorView<T>(w.data(), w.size()));
  mixtura::save_model(a[4], mb);
  return 0;
}

/// One more chunk for a saved detector (method gmm), read in T, saved to a[4].
template <class T>
int detector_partial_fit(const mixtura::ModelFile& mf, const std::vector<std::string>& a) {
  auto det = mixtura::detector_from_sections<T>(mf, "", "model_tool partial_fit");
  mixtura::DetectorParams p = det.params();
  if (has_flag(a, "--half-life")) p.half_life = std::strtod(arg(a, "--half-life", "").c_str(), nullptr);
  if (has_flag(a, "--reg-covar")) p.reg_covar = std::strtod(arg(a, "--reg-covar", "").c_str(), nullptr);
  det.set_params(p);
  det.partial_fit(read_csv<T>(a[3]));
  mixtura::save_model(a[4], det);
  return 0;
}

int run(const std::vector<std::string>& a) {
  if (a.size() >= 5 && a[1] == "fit")
    return arg(a, "--dtype", "float64") == "float32" ? fit<float>(a) : fit<double>(a);
  if (a.size() >= 5 && a[1] == "score") {
    const mixtura::ModelFile mf = mixtura::read_model_file(a[2]);
    const bool detector = mf.kind == mixtura::kDetectorKind;
    const mixtura::ModelFileInfo info = mixtura::model_file_info(mf, detector ? "model." : "");
    // K-means (and a kmeans detector) scores in the dtype of its centres; a mixture in the dtype asked for.
    const bool centres = mf.kind == mixtura::kKMeansKind || mf.kind == mixtura::kMiniBatchKMeansKind ||
                         (detector && mf.has("model.cluster_centers_"));
    const std::string dtype = centres ? info.dtype : arg(a, "--dtype", "float64");
    return dtype == "float32" ? score<float>(mf, a[3], a[4]) : score<double>(mf, a[3], a[4]);
  }
  if (a.size() >= 4 && a[1] == "resave") {
    // Through the estimator, not the container: what C++ keeps of a model is what it writes back.
    const mixtura::ModelFile mf = mixtura::read_model_file(a[2]);
    const mixtura::ModelFileInfo info = mixtura::model_file_info(mf);
    if (mf.kind == mixtura::kDetectorKind) {
      if (mixtura::model_file_info(mf, "model.").dtype == "float32")
        mixtura::save_model(a[3], mixtura::detector_from_sections<float>(mf));
      else mixtura::save_model(a[3], mixtura::detector_from_sections<double>(mf));
    } else if (mf.kind == mixtura::kKMeansKind) {
      if (info.dtype == "float32") mixtura::save_model(a[3], mixtura::kmeans_from_sections<float>(mf));
      else mixtura::save_model(a[3], mixtura::kmeans_from_sections<double>(mf));
    } else if (mf.kind == mixtura::kMiniBatchKMeansKind) {
      if (info.dtype == "float32") mixtura::save_model(a[3], mixtura::minibatch_kmeans_from_sections<float>(mf));
      else mixtura::save_model(a[3], mixtura::minibatch_kmeans_from_sections<double>(mf));
    } else {
      mixtura::save_model(a[3], mixtura::gaussian_mixture_from_sections<double>(mf));
    }
    return 0;
  }
  if (a.size() >= 5 && a[1] == "partial_fit") {
    const mixtura::ModelFile mf = mixtura::read_model_file(a[2]);
    if (mf.kind == mixtura::kDetectorKind)
      return arg(a, "--dtype", "float64") == "float32" ? detector_partial_fit<float>(mf, a)
                                                       : detector_partial_fit<double>(mf, a);
    return mixtura::model_file_info(mf).dtype == "float32" ? partial_fit<float>(mf, a) : partial_fit<double>(mf, a);
  }
  if (a.size() >= 3 && a[1] == "info") {
    const mixtura::ModelFileInfo info = mixtura::model_file_info(a[2]);
    std::printf("%s %s %lld\n", info.kind.c_str(), info.dtype.c_str(), static_cast<long long>(info.n_features));
    return 0;
  }
  std::fprintf(stderr, "usage: model_tool fit kmeans|minibatch|gmm|detector DATA.csv MODEL [options] | score MODEL DATA.csv "
                       "OUT.csv | resave MODEL OUT | partial_fit MODEL DATA.csv OUT [options] | info MODEL\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_tool: %s\n", e.what());
    return 1;
  }
}
