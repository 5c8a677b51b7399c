#pragma once
/// The dispatched CPU backend: the CPU data passes compiled into libmixtura_dispatched once per
/// x86-64 level (baseline, avx2, avx512; baseline alone elsewhere), one level chosen at first use from
/// what the CPU reports, at most MIXTURA_ISA when that is set. Link mixtura::dispatched and fit with
/// the `_on` forms: `KMeans<float>(p).fit_on(DispatchedCpuBackend{}, X)`. The fit loops compile in
/// the caller's translation unit with the caller's flags; only the data passes (distances, folds,
/// E-step, scoring) are dispatched. Dense host views only: CSR rows take the header's CPU passes.
///
/// The passes cross the library boundary as C++ objects (Eigen matrices among them), allocated on one
/// side and freed on the other, so every side allocates Eigen memory alike: mixtura::dispatched sets
/// EIGEN_MALLOC_ALREADY_ALIGNED=0 (Eigen's own aligned allocator, whatever the level) and
/// EIGEN_MAX_ALIGN_BYTES=16 (the same object layouts) for its users, as the library is built.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/build_info.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/gmm/cpu_pass.hpp"
#include "mixtura/gmm/init.hpp"
#include "mixtura/kmeans/lloyd.hpp"

#if !defined(EIGEN_MAX_ALIGN_BYTES) || EIGEN_MAX_ALIGN_BYTES != 16 || !defined(EIGEN_MALLOC_ALREADY_ALIGNED) || \
    EIGEN_MALLOC_ALREADY_ALIGNED != 0
#error "mixtura/backend/dispatched.hpp: compile with EIGEN_MALLOC_ALREADY_ALIGNED=0 and EIGEN_MAX_ALIGN_BYTES=16 (link mixtura::dispatched, which sets them)"
#endif

namespace mixtura {
namespace detail {

/// A consumer of gmm_weighted_log_prob's blocks, across the library boundary: call(ctx, begin, rows, s).
struct BlockSink {
  void* ctx;
  void (*call)(void* ctx, Index begin, Index rows, GmmScratch& s);
};

/// The CPU passes of one scalar type at one level; each takes the thread count first (0 = OpenMP's
/// default) and is the CpuBackend pass of the same name.
template <class T>
struct DispatchedPasses {
  KMeansStats (*kmeans_assign)(int, MatrixView<T>, VectorView<T>, const RowMatrix<T>&, std::int32_t*, Index);
  KMeansStats (*kmeans_assign_bounded)(int, MatrixView<T>, VectorView<T>, const RowMatrix<T>&, std::int32_t*,
                                       KMeansBounds<T>&);
  KMeansStats (*kmeans_assign_grouped)(int, MatrixView<T>, VectorView<T>, const RowMatrix<T>&, std::int32_t*,
                                       KMeansGroupBounds<T>&);
  double (*kmeans_predict)(int, MatrixView<T>, VectorView<T>, const RowMatrix<T>&, std::int32_t*);
  std::vector<double> (*kmeans_distances_to_assigned)(int, MatrixView<T>, const RowMatrix<T>&, const std::int32_t*);
  RowMatrix<T> (*kmeans_transform)(int, MatrixView<T>, const RowMatrix<T>&);
  double (*kmeans_update_closest)(int, MatrixView<T>, VectorView<T>, const T*, double*, bool);
  std::vector<double> (*kmeans_candidate_potentials)(int, MatrixView<T>, VectorView<T>, const double*,
                                                     const std::vector<Index>&);
  double (*mean_feature_variance)(int, MatrixView<T>);
  GmmStats (*gmm_e_step)(int, MatrixView<T>, VectorView<T>, const GmmModel&, std::size_t, bool);
  GmmStats (*gmm_label_stats)(int, MatrixView<T>, VectorView<T>, const std::int32_t*, CovarianceType,
                              const RowMatrix<double>&);
  GmmStats (*random_resp_stats)(int, MatrixView<T>, VectorView<T>, CovarianceType, Index, const CounterRng&,
                                const RowMatrix<double>&);
  FeatureMoments (*gmm_feature_moments)(int, MatrixView<T>);
  Eigen::RowVectorXd (*gmm_data_mean)(int, MatrixView<T>, const FeatureMoments&);
  void (*gmm_score_rows)(int, MatrixView<T>, const GmmModel&, double*, std::int32_t*, bool);
  void (*gmm_weighted_log_prob)(int, MatrixView<T>, const GmmModel&, BlockSink, bool);
};

/// Bumped whenever DispatchedPasses or a type it passes changes: a library built from other headers
/// is refused instead of called.
inline constexpr std::uint32_t kDispatchedAbi = 1;

/// What one level's library provides. `abi` and `size` stay the first two fields, so that headers of
/// any version can read them and refuse a table they do not match.
struct DispatchedTable {
  std::uint32_t abi;             ///< kDispatchedAbi of the headers it was built from
  std::uint32_t size;            ///< sizeof(DispatchedTable) there
  const char* level;             ///< "baseline", "avx2" or "avx512"
  const char* compiler;          ///< compiler_name() there
  bool openmp;                   ///< its passes run in parallel
  DispatchedPasses<float> f32;
  DispatchedPasses<double> f64;
};

}  // namespace detail
}  // namespace mixtura

extern "C" {
/// The table of the level in use: the highest this CPU supports and the library holds, at most
/// MIXTURA_ISA; chosen at the first call (InvalidArgument for an unknown MIXTURA_ISA or a CPU below
/// the baseline level, again at the next call).
const mixtura::detail::DispatchedTable* mixtura_dispatched_table();
/// The table of one named level (InvalidArgument when it is not compiled in or this CPU lacks it).
const mixtura::detail::DispatchedTable* mixtura_dispatched_table_at(const char* level);
/// The levels compiled into the library, lowest first, separated by spaces.
const char* mixtura_dispatched_levels();
}

namespace mixtura {

/// Data passes on the CPU, compiled per x86-64 level into libmixtura_dispatched (see the file comment).
/// `table` = nullptr: the level chosen for this process (MIXTURA_ISA, the CPU); otherwise one level's
/// table, for tests and for comparing levels in one process (dispatched_backend(n_threads, level)).
struct DispatchedCpuBackend {
  int n_threads = 0;  ///< threads for data passes; 0 = OpenMP's default
  const detail::DispatchedTable* table = nullptr;
};

namespace detail {

inline const DispatchedTable& checked_table(const DispatchedTable* t) {
  if (t->abi != kDispatchedAbi || t->size != sizeof(DispatchedTable))
    throw InvalidArgument(format("mixtura::DispatchedCpuBackend: libmixtura_dispatched was built from other headers "
                                 "(interface %u, %u bytes; these headers: %u, %zu bytes): rebuild or reinstall it",
                                 t->abi, t->size, kDispatchedAbi, sizeof(DispatchedTable)));
  return *t;
}
inline const DispatchedTable& table_of(const DispatchedCpuBackend& be) {
  return checked_table(be.table ? be.table : mixtura_dispatched_table());
}
template <class T>
const DispatchedPasses<T>& passes_of(const DispatchedCpuBackend& be) {
  if constexpr (std::is_same<T, float>::value) return table_of(be).f32;
  else return table_of(be).f64;
}

/// The bounded searches (Hamerly, Yinyang) and the fused re-seeding candidates run on this backend too.
template <>
struct is_host_cpu_backend<DispatchedCpuBackend> : std::true_type {};

}  // namespace detail

/// The dispatched backend at one named level ("baseline", "avx2", "avx512"; nullptr or "" = the
/// process's level): InvalidArgument when the library lacks it or this CPU cannot run it.
inline DispatchedCpuBackend dispatched_backend(int n_threads = 0, const char* level = nullptr) {
  DispatchedCpuBackend be;
  be.n_threads = n_threads;
  be.table = &detail::checked_table(level && *level ? mixtura_dispatched_table_at(level) : mixtura_dispatched_table());
  return be;
}

/// The levels compiled into libmixtura_dispatched, lowest first.
inline std::vector<std::string> dispatched_levels() {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = mixtura_dispatched_levels(); *p; ++p) {
    if (*p == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

/// What the dispatched library runs here: `isa` is the level its passes run at (the backend's, or the
/// process's), `isa_compiled` the levels the library holds, `compiler` and `openmp` the library's; the
/// rest as build_info().
inline BuildInfo build_info(const DispatchedCpuBackend& be) {
  const detail::DispatchedTable& t = detail::table_of(be);
  BuildInfo b = build_info();
  b.isa = t.level;
  b.isa_compiled = dispatched_levels();
  b.compiler = t.compiler;
  b.openmp = t.openmp;
  return b;
}

inline NoDataScope data_scope(const DispatchedCpuBackend&) { return {}; }
inline void kmeans_labels_to_host(const DispatchedCpuBackend&, std::int32_t*, Index) {}

// The contract's passes (backend/contract.hpp) on dense host views, through the level's table.
template <class T>
KMeansStats kmeans_assign(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels, Index keep_farthest = 0) {
  return detail::passes_of<T>(be).kmeans_assign(be.n_threads, X, w, C, labels, keep_farthest);
}
template <class T>
KMeansStats kmeans_assign_bounded(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w,
                                  const RowMatrix<T>& C, std::int32_t* labels, detail::KMeansBounds<T>& b) {
  return detail::passes_of<T>(be).kmeans_assign_bounded(be.n_threads, X, w, C, labels, b);
}
template <class T>
KMeansStats kmeans_assign_grouped(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w,
                                  const RowMatrix<T>& C, std::int32_t* labels, detail::KMeansGroupBounds<T>& b) {
  return detail::passes_of<T>(be).kmeans_assign_grouped(be.n_threads, X, w, C, labels, b);
}
template <class T>
double kmeans_predict(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  return detail::passes_of<T>(be).kmeans_predict(be.n_threads, X, w, C, labels);
}
template <class T>
std::vector<double> kmeans_distances_to_assigned(const DispatchedCpuBackend& be, MatrixView<T> X,
                                                 const RowMatrix<T>& C, const std::int32_t* labels) {
  return detail::passes_of<T>(be).kmeans_distances_to_assigned(be.n_threads, X, C, labels);
}
template <class T>
RowMatrix<T> kmeans_transform(const DispatchedCpuBackend& be, MatrixView<T> X, const RowMatrix<T>& C) {
  return detail::passes_of<T>(be).kmeans_transform(be.n_threads, X, C);
}
template <class T>
double kmeans_update_closest(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w, const T* c,
                             double* closest, bool reset) {
  return detail::passes_of<T>(be).kmeans_update_closest(be.n_threads, X, w, c, closest, reset);
}
template <class T>
std::vector<double> kmeans_candidate_potentials(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  return detail::passes_of<T>(be).kmeans_candidate_potentials(be.n_threads, X, w, closest, candidates);
}
template <class T>
double mean_feature_variance(const DispatchedCpuBackend& be, MatrixView<T> X) {
  return detail::passes_of<T>(be).mean_feature_variance(be.n_threads, X);
}
template <class T>
GmmStats gmm_e_step(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w, const GmmModel& m,
                    std::size_t n_worst, bool gaps = false) {
  return detail::passes_of<T>(be).gmm_e_step(be.n_threads, X, w, m, n_worst, gaps);
}
template <class T>
GmmStats gmm_label_stats(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w, const std::int32_t* labels,
                         CovarianceType type, const RowMatrix<double>& shift) {
  return detail::passes_of<T>(be).gmm_label_stats(be.n_threads, X, w, labels, type, shift);
}
template <class T>
GmmStats random_resp_stats(const DispatchedCpuBackend& be, MatrixView<T> X, VectorView<T> w, CovarianceType type,
                           Index K, const CounterRng& rng, const RowMatrix<double>& shift) {
  return detail::passes_of<T>(be).random_resp_stats(be.n_threads, X, w, type, K, rng, shift);
}
template <class T>
detail::FeatureMoments gmm_feature_moments(const DispatchedCpuBackend& be, MatrixView<T> X) {
  return detail::passes_of<T>(be).gmm_feature_moments(be.n_threads, X);
}
template <class T>
Eigen::RowVectorXd gmm_data_mean(const DispatchedCpuBackend& be, MatrixView<T> X, const detail::FeatureMoments& fm) {
  return detail::passes_of<T>(be).gmm_data_mean(be.n_threads, X, fm);
}
template <class T>
void gmm_score_rows(const DispatchedCpuBackend& be, MatrixView<T> X, const GmmModel& m, double* log_p,
                    std::int32_t* labels, bool gaps = false) {
  detail::passes_of<T>(be).gmm_score_rows(be.n_threads, X, m, log_p, labels, gaps);
}
template <class T, class Out>
void gmm_weighted_log_prob(const DispatchedCpuBackend& be, MatrixView<T> X, const GmmModel& m, Out&& out,
                           bool gaps = false) {
  using O = std::remove_reference_t<Out>;
  detail::BlockSink sink{const_cast<void*>(static_cast<const void*>(&out)),
                         [](void* ctx, Index begin, Index rows, detail::GmmScratch& s) {
                           (*static_cast<O*>(ctx))(begin, rows, s);
                         }};
  detail::passes_of<T>(be).gmm_weighted_log_prob(be.n_threads, X, m, sink, gaps);
}

// Sparse rows: the header's CPU passes, compiled with the caller's flags.
template <class T, class... A>
KMeansStats kmeans_assign(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X, A&&... a) {
  return kmeans_assign(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T, class... A>
KMeansStats kmeans_assign_bounded(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X, A&&... a) {
  return kmeans_assign_bounded(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T, class... A>
double kmeans_predict(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X, A&&... a) {
  return kmeans_predict(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T, class... A>
std::vector<double> kmeans_distances_to_assigned(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X,
                                                 A&&... a) {
  return kmeans_distances_to_assigned(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T, class... A>
RowMatrix<T> kmeans_transform(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X, A&&... a) {
  return kmeans_transform(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T, class... A>
double kmeans_update_closest(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X, A&&... a) {
  return kmeans_update_closest(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T, class... A>
std::vector<double> kmeans_candidate_potentials(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X, A&&... a) {
  return kmeans_candidate_potentials(CpuBackend{be.n_threads}, X, std::forward<A>(a)...);
}
template <class T>
double mean_feature_variance(const DispatchedCpuBackend& be, const CsrMatrixView<T>& X) {
  return mean_feature_variance(CpuBackend{be.n_threads}, X);
}

}  // namespace mixtura
