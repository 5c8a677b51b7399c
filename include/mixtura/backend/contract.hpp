#pragma once
/// The backend contract: every function a backend provides for the fit loops, which are written once
/// over the backend type (kmeans/lloyd.hpp, kmeans/init.hpp, gmm/gaussian_mixture.hpp). A backend is
/// a tag type (CpuBackend, CudaBackend, DispatchedCpuBackend in backend/dispatched.hpp) plus free
/// functions overloaded on it and found by argument lookup; X is a MatrixView<T> or DeviceMatrixView<T>
/// (the CPU's K-means passes also take a CsrMatrixView<T>, kmeans/sparse_pass.hpp), w a VectorView<T>
/// or DeviceVectorView<T>.
///
///   data access (core/data_access.hpp for host views; the backend's own for device views):
///     data_scope(be)                                    -> RAII object held for a whole fit
///     fetch_rows(be, X, const std::vector<Index>& rows) -> RowMatrix<T>
///     row_hashes(be, X) -> std::vector<detail::RowHash>   (core/row_hash.hpp: k-means++'s order of rows)
///     first_non_finite(be, X), first_bad_weight(be, w)  (device views only)
///   K-means passes (kmeans/cpu_pass.hpp, kmeans/cuda_pass.hpp):
///     kmeans_assign(be, X, w, centers, int32_t* labels)                   -> KMeansStats
///     kmeans_labels_to_host(be, int32_t* labels, Index n)
///     kmeans_predict(be, X, w, centers, int32_t* labels or nullptr)      -> double (distortion)
///     kmeans_distances_to_assigned(be, X, centers, const int32_t* labels) -> std::vector<double>
///     kmeans_transform(be, X, centers)                                   -> RowMatrix<T>
///     kmeans_update_closest(be, X, w, const T* c, double* closest, bool reset) -> double
///     kmeans_candidate_potentials(be, X, w, const double* closest, rows)  -> std::vector<double>
///     kmeans_draw_rows(be, const DrawOrder&, w, const double* closest, us, std::vector<Index>& out) -> bool
///     mean_feature_variance(be, X)                                       -> double
///   Gaussian-mixture passes (gmm/cpu_pass.hpp, gmm/init.hpp, gmm/cuda_pass.hpp):
///     gmm_e_step(be, X, w, const GmmModel&, std::size_t n_worst)          -> GmmStats
///     gmm_label_stats(be, X, w, const int32_t* labels, CovarianceType, shift) -> GmmStats
///     random_resp_stats(be, X, w, CovarianceType, Index K, const CounterRng&, shift) -> GmmStats
///     gmm_feature_moments(be, X)                                         -> detail::FeatureMoments
///     gmm_data_mean(be, X, const detail::FeatureMoments&)                -> Eigen::RowVectorXd
///     gmm_score_rows(be, X, const GmmModel&, double* log_p, int32_t* labels)
///     gmm_weighted_log_prob(be, X, const GmmModel&, out)  out(begin, rows, block) per block of rows
///   optional: rows with gaps (NaN = a missing value, gmm/gaps.hpp), where a backend takes them (the CPU
///   on host views): the same three passes with a last argument `bool gaps`; without it, X with a NaN
///   is refused with a message that says so (detail::takes_gaps).
///
/// Each algorithm's entry points check their backend here at compile time, so that a missing or
/// misspelt pass is reported once, by name, at the call into the algorithm rather than deep inside
/// its loop. A new pass: one line above, one check below, one overload per backend.

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "mixtura/core/csr_matrix_view.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/gmm/model.hpp"
#include "mixtura/gmm/params.hpp"
#include "mixtura/gmm/stats.hpp"
#include "mixtura/kmeans/draw.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {

namespace detail {
namespace contract {

/// Whether a view type is a host view (MatrixView, VectorView) or a device one.
template <class V>
struct is_device_view : std::false_type {};
template <class T>
struct is_device_view<DeviceMatrixView<T>> : std::true_type {};
template <class T>
struct is_device_view<DeviceVectorView<T>> : std::true_type {};

/// A stand-in for the consumers of gmm_weighted_log_prob (they take any block with lp, log_p, entropy).
struct AnyBlockSink {
  template <class Block>
  void operator()(Index, Index, Block&) const {}
};

template <class B>
const B& be();  // declared only: the calls below are unevaluated operands
template <class V>
V val();

/// provides<R, Call, Args...>(): whether Call<Args...> (a call spelt out below) resolves, and its result
/// converts to R (R = void: any result).
template <class AlwaysVoid, template <class...> class Call, class... Args>
struct detect : std::false_type {
  using type = void;
};
template <template <class...> class Call, class... Args>
struct detect<std::void_t<Call<Args...>>, Call, Args...> : std::true_type {
  using type = Call<Args...>;
};
template <class R, template <class...> class Call, class... Args>
constexpr bool provides() {
  using D = detect<void, Call, Args...>;
  if constexpr (!D::value) return false;
  else if constexpr (std::is_void<R>::value) return true;
  else return std::is_convertible<typename D::type, R>::value;
}

// Each function of the contract as a call with the argument types the loops use (B: the backend, T: the
// scalar, X and W: the views of the data and of the weights).
template <class B>
using data_scope_call = decltype(data_scope(be<B>()));
template <class B, class X>
using fetch_rows_call = decltype(fetch_rows(be<B>(), val<X>(), val<const std::vector<Index>&>()));
template <class B, class X>
using row_hashes_call = decltype(row_hashes(be<B>(), val<X>()));
template <class B, class X>
using first_non_finite_call = decltype(first_non_finite(be<B>(), val<X>()));
template <class B, class W>
using first_bad_weight_call = decltype(first_bad_weight(be<B>(), val<W>()));

template <class B, class T, class X, class W>
using kmeans_assign_call =
    decltype(kmeans_assign(be<B>(), val<X>(), val<W>(), val<const RowMatrix<T>&>(), val<std::int32_t*>()));
template <class B>
using kmeans_labels_to_host_call = decltype(kmeans_labels_to_host(be<B>(), val<std::int32_t*>(), val<Index>()));
template <class B, class T, class X, class W>
using kmeans_predict_call =
    decltype(kmeans_predict(be<B>(), val<X>(), val<W>(), val<const RowMatrix<T>&>(), val<std::int32_t*>()));
template <class B, class T, class X>
using kmeans_distances_to_assigned_call =
    decltype(kmeans_distances_to_assigned(be<B>(), val<X>(), val<const RowMatrix<T>&>(), val<const std::int32_t*>()));
template <class B, class T, class X>
using kmeans_transform_call = decltype(kmeans_transform(be<B>(), val<X>(), val<const RowMatrix<T>&>()));
template <class B, class T, class X, class W>
using kmeans_update_closest_call =
    decltype(kmeans_update_closest(be<B>(), val<X>(), val<W>(), val<const T*>(), val<double*>(), val<bool>()));
template <class B, class X, class W>
using kmeans_candidate_potentials_call = decltype(kmeans_candidate_potentials(
    be<B>(), val<X>(), val<W>(), val<const double*>(), val<const std::vector<Index>&>()));
template <class B, class W>
using kmeans_draw_rows_call =
    decltype(kmeans_draw_rows(be<B>(), val<const DrawOrder&>(), val<W>(), val<const double*>(),
                              val<const std::vector<double>&>(), val<std::vector<Index>&>()));
template <class B, class X>
using mean_feature_variance_call = decltype(mean_feature_variance(be<B>(), val<X>()));

template <class B, class X, class W>
using gmm_e_step_call = decltype(gmm_e_step(be<B>(), val<X>(), val<W>(), val<const GmmModel&>(), val<std::size_t>()));
template <class B, class X, class W>
using gmm_label_stats_call = decltype(gmm_label_stats(be<B>(), val<X>(), val<W>(), val<const std::int32_t*>(),
                                                      val<CovarianceType>(), val<const RowMatrix<double>&>()));
template <class B, class X, class W>
using random_resp_stats_call =
    decltype(random_resp_stats(be<B>(), val<X>(), val<W>(), val<CovarianceType>(), val<Index>(),
                               val<const CounterRng&>(), val<const RowMatrix<double>&>()));
template <class B, class X>
using gmm_feature_moments_call = decltype(gmm_feature_moments(be<B>(), val<X>()));
template <class B, class X>
using gmm_data_mean_call = decltype(gmm_data_mean(be<B>(), val<X>(), val<const FeatureMoments&>()));
template <class B, class X>
using gmm_score_rows_call =
    decltype(gmm_score_rows(be<B>(), val<X>(), val<const GmmModel&>(), val<double*>(), val<std::int32_t*>()));
template <class B, class X>
using gmm_weighted_log_prob_call =
    decltype(gmm_weighted_log_prob(be<B>(), val<X>(), val<const GmmModel&>(), AnyBlockSink{}));

template <class B, class X, class W>
using gmm_e_step_gaps_call =
    decltype(gmm_e_step(be<B>(), val<X>(), val<W>(), val<const GmmModel&>(), val<std::size_t>(), val<bool>()));
template <class B, class X>
using gmm_score_rows_gaps_call = decltype(gmm_score_rows(be<B>(), val<X>(), val<const GmmModel&>(), val<double*>(),
                                                         val<std::int32_t*>(), val<bool>()));
template <class B, class X>
using gmm_weighted_log_prob_gaps_call =
    decltype(gmm_weighted_log_prob(be<B>(), val<X>(), val<const GmmModel&>(), AnyBlockSink{}, val<bool>()));

}  // namespace contract

/// Whether Backend's Gaussian-mixture passes take rows with gaps (NaN) in a view X (weights W).
template <class Backend, class X, class W>
constexpr bool takes_gaps() {
  return contract::provides<GmmStats, contract::gmm_e_step_gaps_call, Backend, X, W>() &&
         contract::provides<void, contract::gmm_score_rows_gaps_call, Backend, X>() &&
         contract::provides<void, contract::gmm_weighted_log_prob_gaps_call, Backend, X>();
}

/// Data access for views X and W on Backend (every algorithm needs it).
template <class Backend, class T, class X, class W>
constexpr bool satisfies_data_contract() {
  static_assert(std::is_same<X, MatrixView<T>>::value || std::is_same<X, DeviceMatrixView<T>>::value ||
                    std::is_same<X, CsrMatrixView<T>>::value,
                "mixtura backend contract: X must be a MatrixView<T> (host memory), a DeviceMatrixView<T> "
                "(device memory) or a CsrMatrixView<T> (sparse, host memory) of the algorithm's scalar type");
  static_assert(std::is_same<W, VectorView<T>>::value || std::is_same<W, DeviceVectorView<T>>::value,
                "mixtura backend contract: sample weights must be a VectorView<T> or a DeviceVectorView<T> of "
                "the algorithm's scalar type");
  static_assert(!contract::is_device_view<W>::value || contract::is_device_view<X>::value,
                "mixtura backend contract: sample weights in device memory need X in device memory too");
  static_assert(contract::provides<void, contract::data_scope_call, Backend>(),
                "mixtura backend contract (backend/contract.hpp): this backend has no data_scope(be)");
  static_assert(contract::provides<RowMatrix<T>, contract::fetch_rows_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): this backend cannot fetch_rows(be, X, rows) "
                "of this view (device memory needs a device backend)");
  static_assert(contract::provides<std::vector<RowHash>, contract::row_hashes_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): this backend cannot give the row_hashes(be, X) "
                "of this view (device memory needs a device backend)");
  static_assert(!contract::is_device_view<X>::value || contract::provides<void, contract::first_non_finite_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): this backend has no first_non_finite(be, X) "
                "for X in device memory");
  static_assert(!contract::is_device_view<W>::value || contract::provides<void, contract::first_bad_weight_call, Backend, W>(),
                "mixtura backend contract (backend/contract.hpp): this backend has no first_bad_weight(be, w) "
                "for weights in device memory");
  return true;
}

/// The K-means passes (and data access) for views X and W on Backend.
template <class Backend, class T, class X, class W>
constexpr bool satisfies_kmeans_contract() {
  static_assert(satisfies_data_contract<Backend, T, X, W>(), "");
  static_assert(contract::provides<KMeansStats, contract::kmeans_assign_call, Backend, T, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_assign(be, X, w, centers, labels) "
                "-> KMeansStats for this backend and these views");
  static_assert(contract::provides<void, contract::kmeans_labels_to_host_call, Backend>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_labels_to_host(be, labels, n)");
  static_assert(contract::provides<double, contract::kmeans_predict_call, Backend, T, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_predict(be, X, w, centers, labels) "
                "-> double for this backend and these views");
  static_assert(contract::provides<std::vector<double>, contract::kmeans_distances_to_assigned_call, Backend, T, X>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_distances_to_assigned(be, X, "
                "centers, labels) -> std::vector<double>");
  static_assert(contract::provides<RowMatrix<T>, contract::kmeans_transform_call, Backend, T, X>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_transform(be, X, centers) -> "
                "RowMatrix<T>");
  static_assert(contract::provides<double, contract::kmeans_update_closest_call, Backend, T, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_update_closest(be, X, w, c, "
                "closest, reset) -> double");
  static_assert(contract::provides<std::vector<double>, contract::kmeans_candidate_potentials_call, Backend, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_candidate_potentials(be, X, w, "
                "closest, rows) -> std::vector<double>");
  static_assert(contract::provides<bool, contract::kmeans_draw_rows_call, Backend, W>(),
                "mixtura backend contract (backend/contract.hpp): no kmeans_draw_rows(be, order, w, closest, "
                "us, out) -> bool");
  static_assert(contract::provides<double, contract::mean_feature_variance_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): no mean_feature_variance(be, X) -> double");
  return true;
}

/// The Gaussian-mixture passes for views X and W on Backend (a fit also runs K-means: init = kmeans).
template <class Backend, class T, class X, class W>
constexpr bool satisfies_gmm_contract() {
  static_assert(satisfies_kmeans_contract<Backend, T, X, W>(), "");
  static_assert(contract::provides<GmmStats, contract::gmm_e_step_call, Backend, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no gmm_e_step(be, X, w, model, n_worst) -> "
                "GmmStats for this backend and these views");
  static_assert(contract::provides<GmmStats, contract::gmm_label_stats_call, Backend, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no gmm_label_stats(be, X, w, labels, type, "
                "shift) -> GmmStats");
  static_assert(contract::provides<GmmStats, contract::random_resp_stats_call, Backend, X, W>(),
                "mixtura backend contract (backend/contract.hpp): no random_resp_stats(be, X, w, type, K, rng, "
                "shift) -> GmmStats");
  static_assert(contract::provides<FeatureMoments, contract::gmm_feature_moments_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): no gmm_feature_moments(be, X) -> "
                "FeatureMoments");
  static_assert(contract::provides<Eigen::RowVectorXd, contract::gmm_data_mean_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): no gmm_data_mean(be, X, moments) -> "
                "Eigen::RowVectorXd");
  return true;
}

/// The Gaussian-mixture scoring passes for a view X on Backend.
template <class Backend, class T, class X>
constexpr bool satisfies_gmm_scoring_contract() {
  static_assert(satisfies_data_contract<Backend, T, X, VectorView<T>>(), "");
  static_assert(contract::provides<void, contract::gmm_score_rows_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): no gmm_score_rows(be, X, model, log_p, labels)");
  static_assert(contract::provides<void, contract::gmm_weighted_log_prob_call, Backend, X>(),
                "mixtura backend contract (backend/contract.hpp): no gmm_weighted_log_prob(be, X, model, out)");
  return true;
}

}  // namespace detail
}  // namespace mixtura
