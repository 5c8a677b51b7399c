#pragma once
/// K-means data passes on the CUDA backend: the same functions as kmeans/cpu_pass.hpp, overloaded on
/// CudaBackend, so that the fit loop (lloyd.hpp, init.hpp, kmeans.hpp) runs unchanged on the GPU.
/// They wrap the compiled passes of mixtura::cuda (cuda/kmeans_pass.hpp); link mixtura::cuda.
///
/// X stays on the device for a fit (the fit's data scope). So do the fit's labels: kmeans_assign leaves
/// them there and kmeans_distances_to_assigned reads them there; the loop calls kmeans_labels_to_host
/// before it reads or edits them on the host (lloyd.hpp), so they cross PCIe once per restart each
/// way and when clusters are re-seeded, not every iteration. k-means++'s closest distances (8 bytes a
/// row) are still copied to the device at each call and back after it.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "mixtura/backend/cuda.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/cuda/kmeans_pass.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {
namespace detail {
template <class T>
cuda::HostMatrix<T> host_matrix(MatrixView<T> X) {
  return {X.data, X.rows, X.cols, X.stride};
}
template <class T>
const T* weights_or_null(VectorView<T> w) {
  return w.empty() ? nullptr : w.data;
}
}  // namespace detail

/// Assignment half-step fused with the statistics of the update half-step (see cpu_pass.hpp).
template <class T>
KMeansStats kmeans_assign(const CudaBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels) {
  KMeansStats s(C.rows(), C.cols());
  std::vector<std::int64_t> count(static_cast<std::size_t>(C.rows()));
  std::int64_t changed = 0;
  cuda::kmeans_assign(be, detail::host_matrix(X), detail::weights_or_null(w), C.data(), C.rows(), labels,
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
template <class T>
double kmeans_predict(const CudaBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  return cuda::kmeans_predict(be, detail::host_matrix(X), detail::weights_or_null(w), C.data(), C.rows(), labels);
}

/// Exact squared distance of every row to its assigned centre.
template <class T>
std::vector<double> kmeans_distances_to_assigned(const CudaBackend& be, MatrixView<T> X, const RowMatrix<T>& C,
                                                 const std::int32_t* labels) {
  std::vector<double> out(static_cast<std::size_t>(X.rows));
  cuda::kmeans_distances_to_assigned(be, detail::host_matrix(X), C.data(), C.rows(), labels, out.data());
  return out;
}

/// Euclidean distance of every row to every centre (n x K), computed directly (no cancellation).
template <class T>
RowMatrix<T> kmeans_transform(const CudaBackend& be, MatrixView<T> X, const RowMatrix<T>& C) {
  RowMatrix<T> out(X.rows, C.rows());
  cuda::kmeans_transform(be, detail::host_matrix(X), C.data(), C.rows(), out.data());
  return out;
}

/// closest[i] = min(closest[i], ||x_i - c||^2) (or = when `reset`); returns sum_i w_i closest[i].
template <class T>
double kmeans_update_closest(const CudaBackend& be, MatrixView<T> X, VectorView<T> w, const T* c, double* closest,
                             bool reset) {
  return cuda::kmeans_update_closest(be, detail::host_matrix(X), detail::weights_or_null(w), c, closest, reset);
}

/// For each candidate row c_j: sum_i w_i min(closest[i], ||x_i - c_j||^2), in one pass per candidate.
template <class T>
std::vector<double> kmeans_candidate_potentials(const CudaBackend& be, MatrixView<T> X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  const std::size_t m = candidates.size();
  std::vector<T> rows(m * static_cast<std::size_t>(X.cols));
  for (std::size_t j = 0; j < m; ++j)
    std::copy_n(X.row(candidates[j]), X.cols, rows.begin() + static_cast<std::ptrdiff_t>(j * X.cols));
  std::vector<double> out(m);
  cuda::kmeans_candidate_potentials(be, detail::host_matrix(X), detail::weights_or_null(w), closest, rows.data(),
                                    static_cast<std::int64_t>(m), out.data());
  return out;
}

/// Mean over features of the (unweighted, population) variance: the scale of scikit-learn's tol.
template <class T>
double mean_feature_variance(const CudaBackend& be, MatrixView<T> X) {
  return cuda::mean_feature_variance(be, detail::host_matrix(X));
}

}  // namespace mixtura
