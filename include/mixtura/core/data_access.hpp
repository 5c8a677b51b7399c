#pragma once
/// How a fit loop reaches the values of its data X and its sample weights w, in host memory
/// (MatrixView, VectorView) or in device memory (DeviceMatrixView, DeviceVectorView): the input checks
/// and the values it copies (initial centres, k-means++ candidates, re-seeded rows; the weights where
/// the loop reads them all) go through these functions, overloaded on the backend and the view. For
/// host views they read directly, on any backend. For device views a backend provides
///   detail::NonFinite first_non_finite(const Backend&, DeviceMatrixView<T>)   (found by ADL)
///   detail::WeightCheck first_bad_weight(const Backend&, DeviceVectorView<T>)
///   RowMatrix<T> fetch_rows(const Backend&, DeviceMatrixView<T>, const std::vector<Index>&)
///   std::vector<detail::RowHash> row_hashes(const Backend&, DeviceMatrixView<T>)
/// (backend/cuda_data.hpp for CudaBackend), so that no host code dereferences a device pointer.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "mixtura/core/csr_matrix_view.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/row_hash.hpp"
#include "mixtura/core/validate.hpp"

namespace mixtura {

namespace detail {
/// The view an algorithm's entry point takes an argument as: a device view (and a CSR view) stays
/// itself; anything else (MatrixView<T>, RowMatrix<T>; VectorView<T>, an Eigen vector) is host memory,
/// as the host view.
template <class Host, class Device, class V>
using host_or_device_t = std::conditional_t<std::is_same<std::decay_t<V>, Device>::value, Device, Host>;
template <class T, class V>
using data_view_t = std::conditional_t<std::is_same<std::decay_t<V>, CsrMatrixView<T>>::value, CsrMatrixView<T>,
                                       host_or_device_t<MatrixView<T>, DeviceMatrixView<T>, V>>;
template <class T, class V>
using weights_view_t = host_or_device_t<VectorView<T>, DeviceVectorView<T>, V>;
}  // namespace detail

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

/// detail::check_csr on host CSR data (structure and values).
template <class Backend, class T>
void check_data_on(const Backend& be, const char* where, const CsrMatrixView<T>& X) {
  detail::check_csr(where, X, be.n_threads);
}

/// Rows `rows` of host CSR data, dense and in that order (rows.size() x X.cols).
template <class Backend, class T>
RowMatrix<T> fetch_rows(const Backend&, const CsrMatrixView<T>& X, const std::vector<Index>& rows) {
  RowMatrix<T> out = RowMatrix<T>::Zero(static_cast<Index>(rows.size()), X.cols);
  for (std::size_t j = 0; j < rows.size(); ++j)
    for (Index p = X.row_begin(rows[j]); p < X.row_begin(rows[j] + 1); ++p)
      out(static_cast<Index>(j), X.indices[p]) = X.values[p];
  return out;
}

/// Rows `rows` of host data, in that order (rows.size() x X.cols).
template <class Backend, class T>
RowMatrix<T> fetch_rows(const Backend&, MatrixView<T> X, const std::vector<Index>& rows) {
  RowMatrix<T> out(static_cast<Index>(rows.size()), X.cols);
  for (std::size_t j = 0; j < rows.size(); ++j)
    std::copy_n(X.row(rows[j]), X.cols, out.row(static_cast<Index>(j)).data());
  return out;
}

/// Each row's hash (core/row_hash.hpp), in blocks of 4096 rows on the backend's threads.
template <class Backend, class T>
std::vector<detail::RowHash> row_hashes(const Backend& be, MatrixView<T> X) {
  std::vector<detail::RowHash> h(static_cast<std::size_t>(X.rows));
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(X.cols));
  for (Index j = 0; j < X.cols; ++j) keys[j] = detail::column_key(j);
  detail::parallel_for((X.rows + 4095) / 4096, be.n_threads, [&](Index b) {
    for (Index i = b * 4096; i < std::min(X.rows, (b + 1) * 4096); ++i)
      h[i] = detail::dense_row_hash(X.row(i), keys.data(), X.cols);
  });
  return h;
}
template <class Backend, class T>
std::vector<detail::RowHash> row_hashes(const Backend& be, const CsrMatrixView<T>& X) {
  std::vector<detail::RowHash> h(static_cast<std::size_t>(X.rows));
  detail::parallel_for((X.rows + 4095) / 4096, be.n_threads, [&](Index b) {
    for (Index i = b * 4096; i < std::min(X.rows, (b + 1) * 4096); ++i) {
      const Index p = X.row_begin(i);
      h[i] = detail::sparse_row_hash(X.values + p, X.indices + p, X.row_begin(i + 1) - p);
    }
  });
  return h;
}

/// detail::check_weights on host weights (n_rows entries, finite, >= 0, a positive finite sum).
template <class Backend, class T>
void check_weights_on(const Backend&, const char* where, VectorView<T> w, Index n_rows) {
  detail::check_weights(where, w, n_rows);
}

/// The same checks and messages for device weights: the size on the host, the values by the backend.
template <class Backend, class T>
void check_weights_on(const Backend& be, const char* where, DeviceVectorView<T> w, Index n_rows) {
  if (w.empty()) return;
  detail::check_weights_size(where, w.size, n_rows);
  detail::expect_valid_weights(where, first_bad_weight(be, w));
}

/// Weights the host can read, for the loop's few reads of every weight (random init; the choice of
/// re-seeded rows among rows of positive weight): host weights as they are; device weights copied
/// into `storage` (one copy of w.size values; the backend's fetch_rows on a one-row view).
template <class Backend, class T>
VectorView<T> host_weights(const Backend&, VectorView<T> w, std::vector<T>&) {
  return w;
}
template <class Backend, class T>
VectorView<T> host_weights(const Backend& be, DeviceVectorView<T> w, std::vector<T>& storage) {
  if (w.empty()) return {};
  const RowMatrix<T> v = fetch_rows(be, DeviceMatrixView<T>(w.data, 1, w.size), std::vector<Index>{0});
  storage.assign(v.data(), v.data() + w.size);
  return {storage.data(), w.size};
}

}  // namespace mixtura
