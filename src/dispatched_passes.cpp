// One level's copy of the CPU data passes (backend/dispatched.hpp): compiled once per x86-64 level
// with that level's flags into its own shared library, whose only exported symbol is the entry
// below (passes.map): the header code inlined here stays local, so no level's copy can stand in for
// another's at load time.
#include <cstdint>
#include <string>
#include <vector>

#include "mixtura/backend/dispatched.hpp"

#ifndef MIXTURA_DISPATCH_LEVEL
#error "compile with MIXTURA_DISPATCH_LEVEL=<level> (src/CMakeLists.txt)"
#endif
#define MIXTURA_STR2(x) #x
#define MIXTURA_STR(x) MIXTURA_STR2(x)
#define MIXTURA_CAT2(a, b) a##b
#define MIXTURA_CAT(a, b) MIXTURA_CAT2(a, b)

namespace {

using namespace mixtura;

template <class T>
detail::DispatchedPasses<T> passes() {
  using detail::FeatureMoments;
  using detail::GmmScratch;
  detail::DispatchedPasses<T> p;
  p.kmeans_assign = [](int n, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C, std::int32_t* labels,
                       Index keep) { return kmeans_assign(CpuBackend{n}, X, w, C, labels, keep); };
  p.kmeans_assign_bounded = [](int n, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C, std::int32_t* labels,
                               detail::KMeansBounds<T>& b) {
    return kmeans_assign_bounded(CpuBackend{n}, X, w, C, labels, b);
  };
  p.kmeans_assign_grouped = [](int n, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C, std::int32_t* labels,
                               detail::KMeansGroupBounds<T>& b) {
    return kmeans_assign_grouped(CpuBackend{n}, X, w, C, labels, b);
  };
  p.kmeans_predict = [](int n, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C, std::int32_t* labels) {
    return kmeans_predict(CpuBackend{n}, X, w, C, labels);
  };
  p.kmeans_distances_to_assigned = [](int n, MatrixView<T> X, const RowMatrix<T>& C, const std::int32_t* labels) {
    return kmeans_distances_to_assigned(CpuBackend{n}, X, C, labels);
  };
  p.kmeans_transform = [](int n, MatrixView<T> X, const RowMatrix<T>& C) { return kmeans_transform(CpuBackend{n}, X, C); };
  p.kmeans_update_closest = [](int n, MatrixView<T> X, VectorView<T> w, const T* c, double* closest, bool reset) {
    return kmeans_update_closest(CpuBackend{n}, X, w, c, closest, reset);
  };
  p.kmeans_candidate_potentials = [](int n, MatrixView<T> X, VectorView<T> w, const double* closest,
                                     const std::vector<Index>& rows) {
    return kmeans_candidate_potentials(CpuBackend{n}, X, w, closest, rows);
  };
  p.mean_feature_variance = [](int n, MatrixView<T> X) { return mean_feature_variance(CpuBackend{n}, X); };
  p.gmm_e_step = [](int n, MatrixView<T> X, VectorView<T> w, const GmmModel& m, std::size_t n_worst, bool gaps) {
    return gmm_e_step(CpuBackend{n}, X, w, m, n_worst, gaps);
  };
  p.gmm_label_stats = [](int n, MatrixView<T> X, VectorView<T> w, const std::int32_t* labels, CovarianceType type,
                         const RowMatrix<double>& shift) {
    return gmm_label_stats(CpuBackend{n}, X, w, labels, type, shift);
  };
  p.random_resp_stats = [](int n, MatrixView<T> X, VectorView<T> w, CovarianceType type, Index K,
                           const CounterRng& rng, const RowMatrix<double>& shift) {
    return random_resp_stats(CpuBackend{n}, X, w, type, K, rng, shift);
  };
  p.gmm_feature_moments = [](int n, MatrixView<T> X) { return gmm_feature_moments(CpuBackend{n}, X); };
  p.gmm_data_mean = [](int n, MatrixView<T> X, const FeatureMoments& fm) {
    return gmm_data_mean(CpuBackend{n}, X, fm);
  };
  p.gmm_score_rows = [](int n, MatrixView<T> X, const GmmModel& m, double* log_p, std::int32_t* labels, bool gaps) {
    gmm_score_rows(CpuBackend{n}, X, m, log_p, labels, gaps);
  };
  p.gmm_weighted_log_prob = [](int n, MatrixView<T> X, const GmmModel& m, detail::BlockSink sink, bool gaps) {
    gmm_weighted_log_prob(
        CpuBackend{n}, X, m, [sink](Index begin, Index rows, GmmScratch& s) { sink.call(sink.ctx, begin, rows, s); },
        gaps);
  };
  return p;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const mixtura::detail::DispatchedTable*
MIXTURA_CAT(mixtura_dispatched_passes_, MIXTURA_DISPATCH_LEVEL)() {
  // Built at the first call, never at load: a level this CPU lacks is loaded but none of its code runs.
  static const std::string compiler = mixtura::compiler_name();
  static const mixtura::detail::DispatchedTable table{mixtura::detail::kDispatchedAbi,
                                                      sizeof(mixtura::detail::DispatchedTable),
                                                      MIXTURA_STR(MIXTURA_DISPATCH_LEVEL),
                                                      compiler.c_str(),
                                                      mixtura::built_with_openmp(),
                                                      passes<float>(),
                                                      passes<double>()};
  return &table;
}
