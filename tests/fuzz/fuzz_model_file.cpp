// libFuzzer target: the model-file container and the four model loaders on arbitrary bytes
// (tests/fuzz.sh builds and runs it from tests/fuzz/corpus).
//
// What must hold for any input: no crash, no sanitizer report, and the only exception is
// InvalidArgument (anything else escapes and libFuzzer reports it). For input the container
// accepts: writing it again gives the same bytes (the encoding is canonical). For a model a loader
// accepts: it scores a small fixed data set without NaN, and a KMeans, MiniBatchKMeans or
// GaussianMixture saves and loads again (a MiniBatchKMeans also takes one more step from its state).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mixtura/anomaly.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io.hpp"
#include "mixtura/kmeans.hpp"

namespace {

using mixtura::Index;
using mixtura::ModelFile;
using mixtura::RowMatrix;

// Scoring cost grows with K * D^2: larger models are loaded and checked, but not scored.
constexpr Index kMaxScoredSize = 4096;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_model_file: %s\n", what);
  std::abort();
}

template <class T>
RowMatrix<T> probe(Index d) {
  RowMatrix<T> x(5, d);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(std::sin(0.7 * static_cast<double>(i)) * 3);
  return x;
}

template <class V>
void expect_no_nan(const V& v, const char* who) {
  for (Index i = 0; i < static_cast<Index>(v.size()); ++i)
    if (std::isnan(static_cast<double>(v[i]))) fail(who);
}

template <class T>
void kmeans(const ModelFile& mf) {
  const auto km = mixtura::kmeans_from_sections<T>(mf, "", "fuzz");
  const auto& c = km.cluster_centers();
  if (c.size() <= kMaxScoredSize) {
    const RowMatrix<T> x = probe<T>(c.cols());
    for (std::int32_t l : km.predict(x))
      if (l < 0 || l >= c.rows()) fail("KMeans::predict: a label out of range");
    if (std::isnan(km.score(x))) fail("KMeans::score: NaN");
  }
  const ModelFile again = mixtura::from_bytes(mixtura::to_bytes(mixtura::to_model_file(km)));
  mixtura::kmeans_from_sections<T>(again, "", "fuzz (saved again)");
}

template <class T>
void minibatch_kmeans(const ModelFile& mf) {
  auto mb = mixtura::minibatch_kmeans_from_sections<T>(mf, "", "fuzz");
  const auto& c = mb.cluster_centers();
  if (c.size() <= kMaxScoredSize) {
    const RowMatrix<T> x = probe<T>(c.cols());
    for (std::int32_t l : mb.predict(x))
      if (l < 0 || l >= c.rows()) fail("MiniBatchKMeans::predict: a label out of range");
    if (std::isnan(mb.score(x))) fail("MiniBatchKMeans::score: NaN");
    mb.partial_fit(x);  // a step from the loaded state
    if (!mb.cluster_centers().allFinite()) fail("MiniBatchKMeans::partial_fit: non-finite centres");
  }
  const ModelFile again = mixtura::from_bytes(mixtura::to_bytes(mixtura::to_model_file(mb)));
  mixtura::minibatch_kmeans_from_sections<T>(again, "", "fuzz (saved again)");
}

template <class T>
void gaussian_mixture(const ModelFile& mf) {
  const auto gm = mixtura::gaussian_mixture_from_sections<T>(mf, "", "fuzz");
  const auto& m = gm.model();
  if (m.n_components * m.n_features * m.n_features <= kMaxScoredSize) {
    const RowMatrix<T> x = probe<T>(m.n_features);
    expect_no_nan(gm.score_samples(x), "GaussianMixture::score_samples: NaN");
    expect_no_nan(gm.predict_proba(x).reshaped(), "GaussianMixture::predict_proba: NaN");
  }
  const ModelFile again = mixtura::from_bytes(mixtura::to_bytes(mixtura::to_model_file(gm)));
  mixtura::gaussian_mixture_from_sections<T>(again, "", "fuzz (saved again)");
}

template <class T>
void detector(const ModelFile& mf) {
  auto det = mixtura::detector_from_sections<T>(mf, "", "fuzz");
  const auto& m = det.model();
  if (m.n_components * m.n_features * m.n_features <= kMaxScoredSize) {
    const RowMatrix<T> x = probe<T>(m.n_features);
    expect_no_nan(det.score_samples(x), "DensityAnomalyDetector::score_samples: NaN");
    det.predict(x);
    if (det.params().method == mixtura::AnomalyMethod::gmm) {
      det.partial_fit(x);  // a step from the loaded streaming state
      if (!std::isfinite(det.offset())) fail("DensityAnomalyDetector::partial_fit: non-finite offset");
      expect_no_nan(det.score_samples(x), "DensityAnomalyDetector::partial_fit: NaN scores after the step");
    }
  }
  const ModelFile again = mixtura::from_bytes(mixtura::to_bytes(mixtura::to_model_file(det)));
  mixtura::detector_from_sections<T>(again, "", "fuzz (saved again)");
}

void load(const ModelFile& mf) {
  const mixtura::Section* c = mf.find("cluster_centers_");
  const mixtura::Section* inner = mf.find("model.cluster_centers_");
  if (mf.kind == mixtura::kKMeansKind) {
    if (c && c->dtype == mixtura::DType::f32) kmeans<float>(mf);
    else kmeans<double>(mf);
  } else if (mf.kind == mixtura::kMiniBatchKMeansKind) {
    if (c && c->dtype == mixtura::DType::f32) minibatch_kmeans<float>(mf);
    else minibatch_kmeans<double>(mf);
  } else if (mf.kind == mixtura::kGaussianMixtureKind) {
    gaussian_mixture<double>(mf);
  } else if (mf.kind == mixtura::kDetectorKind) {
    if (inner && inner->dtype == mixtura::DType::f32) detector<float>(mf);
    else detector<double>(mf);
  }
}

void run(const std::uint8_t* data, std::size_t size) {
  ModelFile mf;
  try {
    mf = mixtura::from_bytes(data, size);
  } catch (const mixtura::InvalidArgument&) {
    return;
  }
  const std::vector<std::uint8_t> again = mixtura::to_bytes(mf);
  if (again.size() != size || !std::equal(again.begin(), again.end(), data))
    fail("from_bytes then to_bytes changed the bytes");
  try {
    load(mf);
  } catch (const mixtura::InvalidArgument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size);
  // Again with the declared size and the checksum made right, as a hostile writer would: almost
  // every mutation would otherwise stop at the checksum, never reaching the sections or loaders.
  if (size >= mixtura::kModelFileHeaderSize + 4) {
    std::vector<std::uint8_t> b(data, data + size);
    for (int i = 0; i < 8; ++i) b[16 + i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(size) >> (8 * i));
    const std::uint32_t crc = mixtura::crc32(b.data(), size - 4);
    for (int i = 0; i < 4; ++i) b[size - 4 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    run(b.data(), b.size());
  }
  return 0;
}
