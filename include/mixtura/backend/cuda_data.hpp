#pragma once
/// How the fit loops reach data on the CUDA backend (core/data_access.hpp's contract): the views as the
/// compiled passes take them, the non-finite and weight checks of device data as device passes, and
/// given rows by small copies. Shared by every algorithm's CUDA passes; link mixtura::cuda.

#include <cstdint>
#include <vector>

#include "mixtura/backend/cuda.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/cuda/device_data.hpp"
#include "mixtura/cuda/host_matrix.hpp"

namespace mixtura {
namespace detail {
/// A view as the compiled passes take it; the memory space goes along (HostMatrix::on_device).
template <class T>
cuda::HostMatrix<T> host_matrix(MatrixView<T> X) {
  return {X.data, X.rows, X.cols, X.stride};
}
template <class T>
cuda::HostMatrix<T> host_matrix(DeviceMatrixView<T> X) {
  return {X.data, X.rows, X.cols, X.stride, /*on_device=*/true};
}
/// Host weights as a pointer, nullptr for unit weights.
template <class T>
const T* weights_or_null(VectorView<T> w) {
  return w.empty() ? nullptr : w.data;
}
/// Weights as the compiled passes take them (nullptr: unit weights).
template <class T>
cuda::RowWeights<T> row_weights(VectorView<T> w) {
  return {w.empty() ? nullptr : w.data, false};
}
template <class T>
cuda::RowWeights<T> row_weights(DeviceVectorView<T> w) {
  return {w.empty() ? nullptr : w.data, true};
}
}  // namespace detail

/// The first non-finite value of device data (the loop's input check, core/data_access.hpp).
template <class T>
detail::NonFinite first_non_finite(const CudaBackend& be, DeviceMatrixView<T> X) {
  std::int64_t row = -1, col = -1;
  double value = 0.0;
  cuda::find_non_finite(be, detail::host_matrix(X), &row, &col, &value);
  return {static_cast<Index>(row), static_cast<Index>(col), value};
}

/// The checks of device sample weights (core/data_access.hpp's check_weights_on): one device pass.
template <class T>
detail::WeightCheck first_bad_weight(const CudaBackend& be, DeviceVectorView<T> w) {
  std::int64_t index = -1;
  double value = 0.0, total = 0.0;
  cuda::find_bad_weight(be, w.data, static_cast<std::int64_t>(w.size), &index, &value, &total);
  return {static_cast<Index>(index), value, total};
}

/// Rows `rows` of device data, copied to the host (rows.size() x X.cols).
template <class T>
RowMatrix<T> fetch_rows(const CudaBackend& be, DeviceMatrixView<T> X, const std::vector<Index>& rows) {
  RowMatrix<T> out(static_cast<Index>(rows.size()), X.cols);
  const std::vector<std::int64_t> at(rows.begin(), rows.end());
  cuda::copy_rows_to_host(be, detail::host_matrix(X), at.data(), static_cast<std::int64_t>(at.size()), out.data());
  return out;
}

/// Each row's hash (core/row_hash.hpp) of device data, by a device pass (the host reads none of X).
template <class T>
std::vector<detail::RowHash> row_hashes(const CudaBackend& be, DeviceMatrixView<T> X) {
  std::vector<std::uint64_t> h(2 * static_cast<std::size_t>(X.rows));
  cuda::row_hashes(be, detail::host_matrix(X), h.data());
  std::vector<detail::RowHash> out(static_cast<std::size_t>(X.rows));
  for (Index i = 0; i < X.rows; ++i) out[i] = {h[2 * i], h[2 * i + 1]};
  return out;
}

}  // namespace mixtura
