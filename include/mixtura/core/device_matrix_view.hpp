#pragma once
/// A view of a matrix the caller keeps in accelerator (CUDA device) memory. A distinct type from
/// MatrixView, so that the memory space is in the argument type: it has no row() and no map(), and
/// host code cannot read it by mistake. The fit loops reach its values only through their backend's
/// operations (check_data_on, fetch_rows and the data passes; see core/data_access.hpp).

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

}  // namespace mixtura
