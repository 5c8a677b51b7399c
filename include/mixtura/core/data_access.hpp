#pragma once
/// How a fit loop reaches the values of its data X, for X in host memory (MatrixView) or in device
/// memory (DeviceMatrixView): the input check and the few rows it copies (initial centres, k-means++
/// candidates, re-seeded rows) go through these functions, overloaded on the backend and the view.
/// For host views they read X directly, on any backend. For device views a backend provides
///   detail::NonFinite first_non_finite(const Backend&, DeviceMatrixView<T>)   (found by ADL)
///   RowMatrix<T> fetch_rows(const Backend&, DeviceMatrixView<T>, const std::vector<Index>&)
/// (kmeans/cuda_pass.hpp for CudaBackend), so that no host code dereferences a device pointer.

#include <algorithm>
#include <vector>

#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/validate.hpp"

namespace mixtura {

/// detail::check_data on host data (the CPU's check, on the backend's threads).
template <class Backend, class T>
void check_data_on(const Backend& be, const char* where, MatrixView<T> X) {
  detail::check_data(where, X, be.n_threads);
}

/// The same checks and messages for device data: the shape on the host, the values by the backend.
template <class Backend, class T>
void check_data_on(const Backend& be, const char* where, DeviceMatrixView<T> X) {
  detail::check_data_shape(where, X.data, X.rows, X.cols, X.stride);
  detail::expect_finite(where, first_non_finite(be, X));
}

/// Rows `rows` of host data, in that order (rows.size() x X.cols).
template <class Backend, class T>
RowMatrix<T> fetch_rows(const Backend&, MatrixView<T> X, const std::vector<Index>& rows) {
  RowMatrix<T> out(static_cast<Index>(rows.size()), X.cols);
  for (std::size_t j = 0; j < rows.size(); ++j)
    std::copy_n(X.row(rows[j]), X.cols, out.row(static_cast<Index>(j)).data());
  return out;
}

}  // namespace mixtura
