#pragma once
/// What the host needs to know of data the caller keeps in device memory (a DeviceMatrixView, passed as
/// HostMatrix with on_device, and a DeviceVectorView of sample weights), without reading it on the
/// host: its first non-finite value, the weights' first bad value and sum, given rows and the rows' hashes. Compiled in
/// mixtura::cuda (cuda/device_data.cu) for float and double.

#include <cstdint>

#include "mixtura/backend/cuda.hpp"
#include "mixtura/cuda/host_matrix.hpp"

namespace mixtura {
namespace cuda {

/// The first non-finite value of device data X in row-major order (lowest row, then lowest column):
/// *row, *col and its *value (the very bits, widened to double), or *row = -1 when X is finite. One
/// pass over X on the device. Throws InvalidArgument if X.data is not device memory of be's device.
template <class T>
void find_non_finite(const CudaBackend& be, HostMatrix<T> X, std::int64_t* row, std::int64_t* col, double* value);

/// The checks of sample weights in device memory (w.data: n values): *index receives the lowest i
/// with w_i not finite or negative (-1: none) and *value that w_i (its bits, widened to double);
/// *total the sum of the weights in double (in segment order: the same bits every run). One pass over
/// w on the device. Throws InvalidArgument if w.data is not device memory of be's device.
template <class T>
void find_bad_weight(const CudaBackend& be, const T* w, std::int64_t n, std::int64_t* index, double* value,
                     double* total);

/// Rows rows[0], ..., rows[m - 1] of device data X into the host array out (m x X.cols, row-major),
/// one small device-to-host copy per row.
template <class T>
void copy_rows_to_host(const CudaBackend& be, HostMatrix<T> X, const std::int64_t* rows, std::int64_t m, T* out);

/// out[2i], out[2i + 1] = the coarse and exact hashes of row i of device data X (core/row_hash.hpp's
/// dense_row_hash), one thread a row.
template <class T>
void row_hashes(const CudaBackend& be, HostMatrix<T> X, std::uint64_t* out);

}  // namespace cuda
}  // namespace mixtura
