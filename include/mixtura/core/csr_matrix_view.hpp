#pragma once
/// A non-owning view of a sparse matrix in compressed sparse row form (SciPy's CSR), and its checks.

#include <cstdint>
#include <vector>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/validate.hpp"

namespace mixtura {

/// Row i holds values[p] at column indices[p] for p in [indptr[i], indptr[i + 1]); every other entry
/// is zero. indptr has rows + 1 entries, 32-bit (indptr32) or 64-bit (indptr64: more than 2^31 stored
/// values); exactly one of the two is set. Column indices need not be sorted, but a row may not name
/// a column twice (SciPy: X.sum_duplicates()). The caller keeps the memory alive while the view is used.
template <class T>
struct CsrMatrixView {
  const T* values = nullptr;
  const std::int32_t* indices = nullptr;
  const std::int32_t* indptr32 = nullptr;
  const std::int64_t* indptr64 = nullptr;
  Index rows = 0;
  Index cols = 0;

  CsrMatrixView() = default;
  CsrMatrixView(const T* v, const std::int32_t* idx, const std::int32_t* ptr, Index r, Index c)
      : values(v), indices(idx), indptr32(ptr), rows(r), cols(c) {}
  CsrMatrixView(const T* v, const std::int32_t* idx, const std::int64_t* ptr, Index r, Index c)
      : values(v), indices(idx), indptr64(ptr), rows(r), cols(c) {}

  /// Where row i's stored values begin (row_begin(i + 1): where they end).
  Index row_begin(Index i) const { return indptr64 ? static_cast<Index>(indptr64[i]) : static_cast<Index>(indptr32[i]); }
  /// Stored values (explicit zeros included).
  Index nnz() const { return rows > 0 && (indptr32 || indptr64) ? row_begin(rows) : 0; }
  bool empty() const { return rows == 0 || cols == 0; }
};

/// A CSR matrix owned by mixtura (a mini-batch of sparse rows), 64-bit indptr.
template <class T>
struct CsrRows {
  std::vector<T> values;
  std::vector<std::int32_t> indices;
  std::vector<std::int64_t> indptr{0};
  Index cols = 0;

  CsrMatrixView<T> view() const {
    return {values.data(), indices.data(), indptr.data(), static_cast<Index>(indptr.size()) - 1, cols};
  }
  /// Replaces the contents by rows `rows` of X, in that order (a row may come more than once).
  void assign_rows(const CsrMatrixView<T>& X, const std::vector<Index>& rows) {
    values.clear();
    indices.clear();
    indptr.assign(1, 0);
    cols = X.cols;
    for (const Index r : rows) {
      const Index b = X.row_begin(r), e = X.row_begin(r + 1);
      values.insert(values.end(), X.values + b, X.values + e);
      indices.insert(indices.end(), X.indices + b, X.indices + e);
      indptr.push_back(static_cast<std::int64_t>(values.size()));
    }
  }
};

namespace detail {

/// Whether a view type is a CSR view (the sparse passes take it; dense-only code refuses it).
template <class V>
struct is_csr_view : std::false_type {};
template <class T>
struct is_csr_view<CsrMatrixView<T>> : std::true_type {};

/// Checks a CSR matrix as check_data checks a dense one, and its structure: indptr starts at 0 and never
/// decreases, every index is in [0, cols) and appears once per row, every value is usable (finite,
/// within kDataValueLimit). Errors name the row, the column and the value.
template <class T>
void check_csr(const char* where, const CsrMatrixView<T>& X, int n_threads) {
  MIXTURA_EXPECTS(X.rows > 0, "%s: X is empty (n_samples = %lld); need at least one row", where,
                  static_cast<long long>(X.rows));
  MIXTURA_EXPECTS(X.cols > 0, "%s: X has n_features = %lld; need at least one column", where,
                  static_cast<long long>(X.cols));
  MIXTURA_EXPECTS((X.indptr32 != nullptr) != (X.indptr64 != nullptr),
                  "%s: a CSR view needs exactly one of indptr32 and indptr64", where);
  MIXTURA_EXPECTS(X.row_begin(0) == 0, "%s: CSR indptr[0] is %lld, expected 0", where,
                  static_cast<long long>(X.row_begin(0)));
  for (Index i = 0; i < X.rows; ++i)
    MIXTURA_EXPECTS(X.row_begin(i + 1) >= X.row_begin(i), "%s: CSR indptr decreases at row %lld (%lld, then %lld)",
                    where, static_cast<long long>(i), static_cast<long long>(X.row_begin(i)),
                    static_cast<long long>(X.row_begin(i + 1)));
  MIXTURA_EXPECTS(X.nnz() == 0 || (X.values != nullptr && X.indices != nullptr),
                  "%s: CSR matrix with %lld stored values but no values or indices", where,
                  static_cast<long long>(X.nnz()));
  struct FirstBad {
    Index row = -1, col = -1, kind = 0;  // kind: 1 index out of range, 2 repeated index, 3 unusable value
    double value = 0;
    void merge(const FirstBad& o) {
      if (row < 0 || (o.row >= 0 && o.row < row)) *this = o;
    }
  };
  struct Seen {  // the last row that named each column: a repeat within a row is found in O(nnz)
    std::vector<Index> row;
  };
  const FirstBad bad = fold_rows(
      X.rows, 4096, n_threads, [] { return FirstBad{}; },
      [&] { return Seen{std::vector<Index>(static_cast<std::size_t>(X.cols), -1)}; },
      [&](FirstBad& s, Seen& seen, Index begin, Index end) {
        if (s.row >= 0) return;
        for (Index i = begin; i < end; ++i)
          for (Index p = X.row_begin(i); p < X.row_begin(i + 1); ++p) {
            const std::int32_t j = X.indices[p];
            FirstBad f;
            f.row = i;
            f.col = j;
            if (j < 0 || j >= X.cols) f.kind = 1;
            else if (seen.row[static_cast<std::size_t>(j)] == i) f.kind = 2;
            else if (!usable_value(X.values[p])) f.kind = 3, f.value = static_cast<double>(X.values[p]);
            if (f.kind) {
              s = f;
              return;
            }
            seen.row[static_cast<std::size_t>(j)] = i;
          }
      });
  if (bad.row < 0) return;
  MIXTURA_EXPECTS(bad.kind != 1, "%s: CSR column index %lld in row %lld is outside [0, n_features = %lld)", where,
                  static_cast<long long>(bad.col), static_cast<long long>(bad.row), static_cast<long long>(X.cols));
  MIXTURA_EXPECTS(bad.kind != 2,
                  "%s: CSR row %lld stores column %lld twice; sum the duplicates first (SciPy: X.sum_duplicates())",
                  where, static_cast<long long>(bad.row), static_cast<long long>(bad.col));
  expect_finite(where, {bad.row, bad.col, bad.value});
}

}  // namespace detail
}  // namespace mixtura
