#pragma once
/// Non-owning views over caller memory: rows of float or double, used without a copy.

// mixtura parallelises its own data passes (deterministically); Eigen's products inside them must
// stay single-threaded. Include mixtura before Eigen, or define this yourself (the CMake target does).
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>
#include <cstddef>
#include <cstdint>

namespace mixtura {

using Index = Eigen::Index;

/// Row-major dense matrix owned by mixtura (results: centres, distances, ...).
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A read-only view of `rows` rows of `cols` values each; row i starts at data + i * stride.
/// Elements within a row are contiguous. The caller keeps the memory alive while the view is used.
template <class T>
struct MatrixView {
  const T* data = nullptr;
  Index rows = 0;
  Index cols = 0;
  Index stride = 0;  ///< distance between row starts, in elements (>= cols)

  MatrixView() = default;
  MatrixView(const T* d, Index r, Index c) : data(d), rows(r), cols(c), stride(c) {}
  MatrixView(const T* d, Index r, Index c, Index s) : data(d), rows(r), cols(c), stride(s) {}
  /// View of an Eigen row-major matrix (no copy).
  MatrixView(const RowMatrix<T>& m)  // NOLINT(google-explicit-constructor): a view is a cheap handle
      : data(m.data()), rows(m.rows()), cols(m.cols()), stride(m.cols()) {}

  const T* row(Index i) const { return data + i * stride; }
  bool empty() const { return rows == 0 || cols == 0; }
  /// Rows [begin, end) as a view.
  MatrixView slice(Index begin, Index end) const { return {data + begin * stride, end - begin, cols, stride}; }
  /// Eigen map of the whole view (row-major with outer stride).
  Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>> map() const {
    return {data, rows, cols, Eigen::OuterStride<>(stride)};
  }
};

/// A read-only view of a contiguous vector (sample weights). An empty view means "all ones".
template <class T>
struct VectorView {
  const T* data = nullptr;
  Index size = 0;

  VectorView() = default;
  VectorView(const T* d, Index n) : data(d), size(n) {}
  VectorView(const Eigen::Matrix<T, Eigen::Dynamic, 1>& v)  // NOLINT(google-explicit-constructor)
      : data(v.data()), size(v.size()) {}

  bool empty() const { return data == nullptr || size == 0; }
  T operator[](Index i) const { return data[i]; }
};

namespace detail {
/// w_i, or 1 when no weights were given.
template <class T>
inline double row_weight(VectorView<T> w, Index i) {
  return w.empty() ? 1.0 : static_cast<double>(w[i]);
}
}  // namespace detail

}  // namespace mixtura
