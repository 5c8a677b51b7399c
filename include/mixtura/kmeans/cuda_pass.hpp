#pragma once
/// K-means data passes on the CUDA backend: the same functions as kmeans/cpu_pass.hpp, overloaded on
/// CudaBackend, so that the fit loop (lloyd.hpp, init.hpp, kmeans.hpp) runs unchanged on the GPU.
/// They wrap the compiled passes of mixtura::cuda (cuda/kmeans_pass.hpp); link mixtura::cuda.
///
/// X stays on the device for a fit (the fit's data scope). So do the fit's labels: kmeans_assign leaves
/// them there and kmeans_distances_to_assigned reads them there; the loop calls kmeans_labels_to_host
/// before it reads or edits them on the host (lloyd.hpp), so they cross PCIe once per restart each
/// way and when clusters are re-seeded, not every iteration. So do k-means++'s distances to the
/// closest centre: kmeans_update_closest keeps them on the device and the candidates' potentials read
/// them there; each round of draws copies them back once, for the host's walk in the rows' order
/// (kmeans_draw_rows, kmeans/draw.hpp).
///
/// X is a MatrixView (host memory: uploaded once per fit) or a DeviceMatrixView (device memory: used
/// in place, core/device_matrix_view.hpp); the weights a VectorView (uploaded beside X) or, with
/// device X, a DeviceVectorView (used in place). The loop's other reads of device data (checks, given
/// rows) are the backend's, in backend/cuda_data.hpp.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "mixtura/backend/cuda.hpp"
#include "mixtura/backend/cuda_data.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/cuda/kmeans_pass.hpp"
#include "mixtura/kmeans/draw.hpp"
#include "mixtura/kmeans/init.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {

/// Assignment half-step fused with the statistics of the update half-step (see cpu_pass.hpp).
template <template <class> class View, template <class> class WView, class T>
KMeansStats kmeans_assign(const CudaBackend& be, View<T> X, WView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels) {
  KMeansStats s(C.rows(), C.cols());
  std::vector<std::int64_t> count(static_cast<std::size_t>(C.rows()));
  std::int64_t changed = 0;
  cuda::kmeans_assign(be, detail::host_matrix(X), detail::row_weights(w), C.data(), C.rows(), labels,
                      s.weight.data(), count.data(), s.sums.data(), &s.distortion, &changed);
  for (std::size_t k = 0; k < count.size(); ++k) s.count[k] = static_cast<Index>(count[k]);
  s.n_changed = changed;
  return s;
}

/// The fit's labels from the device into the host array (see lloyd.hpp); nothing if none are held.
inline void kmeans_labels_to_host(const CudaBackend& be, std::int32_t* labels, Index rows) {
  cuda::kmeans_labels_to_host(be, labels, static_cast<std::int64_t>(rows));
}

/// Labels only (prediction; labels may be nullptr), plus the exact weighted distortion they give.
template <template <class> class View, template <class> class WView, class T>
double kmeans_predict(const CudaBackend& be, View<T> X, WView<T> w, const RowMatrix<T>& C, std::int32_t* labels) {
  return cuda::kmeans_predict(be, detail::host_matrix(X), detail::row_weights(w), C.data(), C.rows(), labels);
}

/// Exact squared distance of every row to its assigned centre.
template <template <class> class View, class T>
std::vector<double> kmeans_distances_to_assigned(const CudaBackend& be, View<T> X, const RowMatrix<T>& C,
                                                 const std::int32_t* labels) {
  std::vector<double> out(static_cast<std::size_t>(X.rows));
  cuda::kmeans_distances_to_assigned(be, detail::host_matrix(X), C.data(), C.rows(), labels, out.data());
  return out;
}

/// Euclidean distance of every row to every centre (n x K), computed directly (no cancellation).
template <template <class> class View, class T>
RowMatrix<T> kmeans_transform(const CudaBackend& be, View<T> X, const RowMatrix<T>& C) {
  RowMatrix<T> out(X.rows, C.rows());
  cuda::kmeans_transform(be, detail::host_matrix(X), C.data(), C.rows(), out.data());
  return out;
}

/// closest[i] = min(closest[i], ||x_i - c||^2) (or = when `reset`); returns sum_i w_i closest[i].
template <template <class> class View, template <class> class WView, class T>
double kmeans_update_closest(const CudaBackend& be, View<T> X, WView<T> w, const T* c, double* closest,
                             bool reset) {
  return cuda::kmeans_update_closest(be, detail::host_matrix(X), detail::row_weights(w), c, closest, reset);
}

/// For each candidate row c_j: sum_i w_i min(closest[i], ||x_i - c_j||^2), in one pass per candidate.
template <template <class> class View, template <class> class WView, class T>
std::vector<double> kmeans_candidate_potentials(const CudaBackend& be, View<T> X, WView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  const std::size_t m = candidates.size();
  const RowMatrix<T> rows = fetch_rows(be, X, candidates);  // host X: a copy; device X: a small download
  std::vector<double> out(m);
  cuda::kmeans_candidate_potentials(be, detail::host_matrix(X), detail::row_weights(w), closest, rows.data(),
                                    static_cast<std::int64_t>(m), out.data());
  return out;
}

namespace detail {
/// k-means++'s draws with the distances on the device (kmeans/draw.hpp): the distances (and device
/// weights) copied back, then the host's walk in the rows' order, so the rows are the CPU's.
template <class T>
bool draw_rows_on_device(const CudaBackend& be, const DrawOrder& order, cuda::RowWeights<T> w,
                         const double* closest, const std::vector<double>& us, std::vector<Index>& out) {
  const Index n = order.size();
  std::vector<double> c(closest ? static_cast<std::size_t>(n) : 0);
  std::vector<T> wd(w.data && w.on_device ? static_cast<std::size_t>(n) : 0);
  cuda::kmeans_fetch_masses(be, w, static_cast<std::int64_t>(n), closest, wd.data(), c.data());
  const T* wp = !w.data ? nullptr : (w.on_device ? wd.data() : w.data);
  return draw_in_order(order, wp, closest ? c.data() : nullptr, us, out);
}
}  // namespace detail

/// k-means++'s draws (init.hpp) on the GPU: the masses from the distances held on the device. Host
/// weights alone (the first centre) are drawn on the host, from the host array.
template <class T>
bool kmeans_draw_rows(const CudaBackend& be, const detail::DrawOrder& order, VectorView<T> w, const double* closest,
                      const std::vector<double>& us, std::vector<Index>& out) {
  if (!closest) return detail::draw_in_order(order, detail::weights_or_null(w), closest, us, out);
  return detail::draw_rows_on_device(be, order, detail::row_weights(w), closest, us, out);
}
/// The same with the weights in device memory (read there and copied back with the distances).
template <class T>
bool kmeans_draw_rows(const CudaBackend& be, const detail::DrawOrder& order, DeviceVectorView<T> w,
                      const double* closest, const std::vector<double>& us, std::vector<Index>& out) {
  if (!closest && w.empty()) return detail::draw_in_order(order, static_cast<const T*>(nullptr), closest, us, out);
  return detail::draw_rows_on_device(be, order, detail::row_weights(w), closest, us, out);
}

/// Mean over features of the (unweighted, population) variance: the scale of scikit-learn's tol.
template <template <class> class View, class T>
double mean_feature_variance(const CudaBackend& be, View<T> X) {
  return cuda::mean_feature_variance(be, detail::host_matrix(X));
}

}  // namespace mixtura
