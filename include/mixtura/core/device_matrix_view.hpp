#pragma once
/// Views of a matrix and a vector the caller keeps in accelerator (CUDA device) memory. Distinct types
/// from MatrixView and VectorView, so that the memory space is in the argument type: they have no
/// row(), map() or operator[], and host code cannot read them by mistake. The fit loops reach their
/// values only through their backend's operations (check_data_on, check_weights_on, fetch_rows,
/// host_weights and the data passes; see core/data_access.hpp).

#include "mixtura/core/matrix_view.hpp"

namespace mixtura {

/// `rows` rows of `cols` values in device memory; row i starts at data + i * stride (elements,
/// stride >= cols), values within a row contiguous. The caller keeps the memory alive and unchanged
/// while a fit or pass uses it, and has finished writing it (its stream synchronised) before the call.
template <class T>
struct DeviceMatrixView {
  const T* data = nullptr;
  Index rows = 0;
  Index cols = 0;
  Index stride = 0;  ///< distance between row starts, in elements (>= cols)

  DeviceMatrixView() = default;
  DeviceMatrixView(const T* d, Index r, Index c) : data(d), rows(r), cols(c), stride(c) {}
  DeviceMatrixView(const T* d, Index r, Index c, Index s) : data(d), rows(r), cols(c), stride(s) {}

  bool empty() const { return rows == 0 || cols == 0; }
};

/// `size` contiguous values in device memory (sample weights next to a DeviceMatrixView), the
/// device counterpart of VectorView: an empty view means "all ones"; no operator[], so host code
/// cannot read it by mistake. The same rules as DeviceMatrixView (alive, unchanged, written).
template <class T>
struct DeviceVectorView {
  const T* data = nullptr;
  Index size = 0;

  DeviceVectorView() = default;
  DeviceVectorView(const T* d, Index n) : data(d), size(n) {}

  bool empty() const { return data == nullptr || size == 0; }
};

}  // namespace mixtura
