#pragma once
/// Input checks shared by every estimator: shapes, NaN/Inf, sample weights.

#include <cmath>
#include <limits>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"

namespace mixtura {
namespace detail {

/// Whether a data value is usable: finite and within kDataValueLimit (false for NaN).
template <class T>
inline bool usable_value(T v) {
  return std::abs(static_cast<double>(v)) <= kDataValueLimit;
}

/// First (lowest-index) row and column holding a value that is not usable (non-finite or beyond
/// kDataValueLimit), or row = -1.
struct FirstNonFinite {
  Index row = -1, col = -1;
  void merge(const FirstNonFinite& o) {
    if (row < 0 || (o.row >= 0 && o.row < row)) *this = o;
  }
};

template <class T>
FirstNonFinite find_non_finite(MatrixView<T> X, int n_threads) {
  return fold_rows(
      X.rows, 4096, n_threads, [] { return FirstNonFinite{}; }, [] { return NoScratch{}; },
      [&](FirstNonFinite& s, NoScratch&, Index begin, Index end) {
        if (s.row >= 0) return;  // an earlier row of this group already failed
        for (Index i = begin; i < end; ++i) {
          const T* x = X.row(i);
          bool ok = true;
          for (Index j = 0; j < X.cols; ++j) ok &= usable_value(x[j]);
          if (ok) continue;
          for (Index j = 0; j < X.cols; ++j)
            if (!usable_value(x[j])) {
              s.row = i;
              s.col = j;
              return;
            }
        }
      });
}

/// The shape checks of check_data: non-empty, stride >= cols (for data in any memory space).
template <class T>
void check_data_shape(const char* where, const T* data, Index rows, Index cols, Index stride) {
  MIXTURA_EXPECTS(data != nullptr && rows > 0, "%s: X is empty (n_samples = %lld); need at least one row", where,
                  static_cast<long long>(rows));
  MIXTURA_EXPECTS(cols > 0, "%s: X has n_features = %lld; need at least one column", where,
                  static_cast<long long>(cols));
  MIXTURA_EXPECTS(stride >= cols, "%s: row stride (%lld) < n_features (%lld)", where, static_cast<long long>(stride),
                  static_cast<long long>(cols));
}

/// The first non-finite value of a matrix (lowest row, then lowest column) and its value; row = -1: none.
struct NonFinite {
  Index row = -1, col = -1;
  double value = 0.0;
};

/// Throws check_data's error for `bad` (nothing if bad.row < 0).
inline void expect_finite(const char* where, const NonFinite& bad) {
  if (bad.row < 0) return;
  MIXTURA_EXPECTS(!std::isfinite(bad.value), "%s: X holds %g at row %lld, column %lld: values must be within +-%g "
                  "(beyond, their squares overflow double); rescale the data", where, bad.value,
                  static_cast<long long>(bad.row), static_cast<long long>(bad.col), kDataValueLimit);
  throw InvalidArgument(format("%s: X contains a non-finite value (%g) at row %lld, column %lld%s", where, bad.value,
                               static_cast<long long>(bad.row), static_cast<long long>(bad.col),
                               std::isnan(bad.value) ? "; missing values (NaN) are taken by GaussianMixture and "
                                                       "DensityAnomalyDetector (method gmm) on the CPU "
                                                       "(docs/missing-values.md)"
                                                     : ""));
}

/// Checks a data matrix: non-empty, finite, within kDataValueLimit.
template <class T>
void check_data(const char* where, MatrixView<T> X, int n_threads) {
  check_data_shape(where, X.data, X.rows, X.cols, X.stride);
  const auto bad = find_non_finite(X, n_threads);
  expect_finite(where, {bad.row, bad.col, bad.row < 0 ? 0.0 : static_cast<double>(X.row(bad.row)[bad.col])});
}

/// What check_weights needs to know of a weight vector: the first entry (lowest index) that is not
/// finite or is negative (index = -1: none) with its value, and (read only when none is) the sum of
/// the entries in double.
struct WeightCheck {
  Index index = -1;
  double value = 0.0;
  double total = 0.0;
};

/// The one-entry-per-row check of sample weights (for weights in any memory space).
inline void check_weights_size(const char* where, Index size, Index n_rows) {
  MIXTURA_EXPECTS(size == n_rows, "%s: sample_weight has %lld entries but X has %lld rows", where,
                  static_cast<long long>(size), static_cast<long long>(n_rows));
}

/// Throws check_weights' error for weights summarised by `c` (nothing if they are valid).
inline void expect_valid_weights(const char* where, const WeightCheck& c) {
  if (c.index >= 0) {
    MIXTURA_EXPECTS(std::isfinite(c.value), "%s: sample_weight[%lld] = %g is not finite", where,
                    static_cast<long long>(c.index), c.value);
    MIXTURA_EXPECTS(c.value >= 0, "%s: sample_weight[%lld] = %g is negative", where, static_cast<long long>(c.index),
                    c.value);
  }
  MIXTURA_EXPECTS(c.total > 0.0 && std::isfinite(c.total), "%s: sample_weight sums to %g; need a positive finite sum",
                  where, c.total);
}

/// Checks sample weights (if given): one per row, finite, >= 0, positive sum. Returns the sum.
template <class T>
double check_weights(const char* where, VectorView<T> w, Index n_rows) {
  if (w.empty()) return static_cast<double>(n_rows);
  check_weights_size(where, w.size, n_rows);
  WeightCheck c;
  for (Index i = 0; i < w.size; ++i) {
    if (!std::isfinite(w[i]) || !(w[i] >= 0)) {
      c.index = i;
      c.value = static_cast<double>(w[i]);
      break;
    }
    c.total += static_cast<double>(w[i]);
  }
  expect_valid_weights(where, c);
  return c.total;
}

/// Rows of positive weight (all rows when no weights are given).
template <class T>
Index count_positive(VectorView<T> w, Index n_rows) {
  if (w.empty()) return n_rows;
  Index positive = 0;
  for (Index i = 0; i < w.size; ++i) positive += w[i] > 0;
  return positive;
}

/// Checks that X has the feature count the model was fitted with.
inline void check_features(const char* where, Index got, Index fitted) {
  MIXTURA_EXPECTS(got == fitted, "%s: X has %lld features, but the model was fitted with %lld", where,
                  static_cast<long long>(got), static_cast<long long>(fitted));
}

}  // namespace detail
}  // namespace mixtura
