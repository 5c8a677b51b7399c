#pragma once
/// The K-means data passes of the CUDA backend, compiled in mixtura::cuda (cuda/kmeans_*.cu) for
/// float and double. Plain pointers, no Eigen: kmeans/cuda_pass.hpp wraps them as the overloads the
/// generic fit loop calls. Centres are K x D row-major host arrays; labels, closest and outputs are
/// host arrays of n_samples entries; weights (RowWeights) are host or device memory, nullptr for unit
/// weights (device weights go with device X: HostMatrix::on_device). Every function returns after its
/// results are in host memory, except, inside a data scope (CudaDataScope), the labels of
/// kmeans_assign (on the device until kmeans_labels_to_host) and the distances of
/// kmeans_update_closest (on the device for the scope): see mixtura/cuda/resident_labels.hpp.

#include <cstdint>

#include "mixtura/backend/cuda.hpp"
#include "mixtura/cuda/host_matrix.hpp"

namespace mixtura {
namespace cuda {

/// Assignment half-step with the statistics of the update half-step, in one read of X. labels holds
/// the previous labels on entry (any value if none) and the new ones on exit. Writes weight[K],
/// count[K], sums[K * D] (sum of w x), the exact distortion and the number of changed labels.
/// Inside a data scope the labels stay on the device, held for the host array `labels`: later passes
/// read that copy, the host array is stale until kmeans_labels_to_host(be, labels, n) (or
/// kmeans_predict into it), and must not be edited before. Outside a scope they are copied back.
template <class T>
void kmeans_assign(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const T* centers, std::int64_t K,
                   std::int32_t* labels, double* weight, std::int64_t* count, double* sums, double* distortion,
                   std::int64_t* n_changed);

/// Nearest centre of each row (into the host array labels, unless nullptr; a copy held for it on the
/// device is let go); returns the exact weighted distortion.
template <class T>
double kmeans_predict(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const T* centers, std::int64_t K,
                      std::int32_t* labels);

/// out[i] = exact ||x_i - c_{labels[i]}||^2 (labels: the copy held on the device, if there is one).
template <class T>
void kmeans_distances_to_assigned(const CudaBackend& be, HostMatrix<T> X, const T* centers, std::int64_t K,
                                  const std::int32_t* labels, double* out);

/// Copies the labels held on the device for the host array `labels` (rows entries, by kmeans_assign in
/// a data scope) into it and lets go of them; nothing if none are held.
void kmeans_labels_to_host(const CudaBackend& be, std::int32_t* labels, std::int64_t rows);

/// out[i * K + k] = ||x_i - c_k|| (computed directly in double, then rounded to T).
template <class T>
void kmeans_transform(const CudaBackend& be, HostMatrix<T> X, const T* centers, std::int64_t K, T* out);

/// closest[i] = min(closest[i], ||x_i - c||^2) (= when reset); returns sum_i w_i closest[i]. Inside a
/// data scope the distances stay on the device, held for the host array `closest` (n entries): later
/// passes and draws read that copy and the host array is not written (the fit loop never reads it).
/// Outside a scope they are copied back.
template <class T>
double kmeans_update_closest(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const T* c, double* closest,
                             bool reset);

/// out[j] = sum_i w_i min(closest[i], ||x_i - cand_j||^2) for the m candidate rows cand (m x D)
/// (closest: the copy held on the device, if there is one).
template <class T>
void kmeans_candidate_potentials(const CudaBackend& be, HostMatrix<T> X, RowWeights<T> w, const double* closest,
                                 const T* candidates, std::int64_t m, double* out);

/// What the host needs for a round of k-means++'s draws (mixtura/kmeans/draw.hpp): the n distances into
/// closest_out (if closest is given: the copy held on the device for this host array, else the host
/// array) and, for device weights, the n weights into w_out.
template <class T>
void kmeans_fetch_masses(const CudaBackend& be, RowWeights<T> w, std::int64_t n, const double* closest, T* w_out,
                         double* closest_out);

/// Mean over features of the unweighted population variance (moments around the first row).
template <class T>
double mean_feature_variance(const CudaBackend& be, HostMatrix<T> X);

}  // namespace cuda
}  // namespace mixtura
