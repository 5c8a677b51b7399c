#pragma once
/// 64-bit hashes of a row's values, the key of the order in which k-means++ walks the rows
/// (kmeans/draw.hpp): they depend on the values alone, not on where the row is. Two of them: `coarse`
/// of the values rounded to float, then `exact` of the values themselves (as doubles), so that float
/// data and the same data in double give the same order except among rows equal to float precision.
/// Zeros (of either sign) add nothing and the columns may come in any order, so a dense row and the
/// same row in CSR form hash alike. Plain C++ (MIXTURA_HD: the CUDA backend hashes device rows with
/// these very functions).

#include <cstdint>
#include <cstring>

#include "mixtura/cuda/plan.hpp"  // MIXTURA_HD

namespace mixtura {
namespace detail {

/// A row's two hashes, ordered by coarse, then exact.
struct RowHash {
  std::uint64_t coarse = 0, exact = 0;
  MIXTURA_HD bool operator<(const RowHash& o) const { return coarse < o.coarse || (coarse == o.coarse && exact < o.exact); }
  MIXTURA_HD bool operator==(const RowHash& o) const { return coarse == o.coarse && exact == o.exact; }
};

/// splitmix64's finaliser: a bijection of 64-bit words that spreads every input bit.
MIXTURA_HD inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Column col's key: what its values are mixed with.
MIXTURA_HD inline std::uint64_t column_key(std::int64_t col) {
  return mix64(static_cast<std::uint64_t>(col) + 0x9e3779b97f4a7c15ULL);
}

/// The term of value v under a column's key (0 for v == 0). A row's hash mixes the sum of its terms,
/// so the order of its columns does not matter.
MIXTURA_HD inline std::uint64_t row_hash_term(std::uint64_t key, double v) {
  if (v == 0.0) return 0;
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return mix64(bits ^ key);
}

/// Sums of the terms of a row, value by value.
struct RowHashSums {
  std::uint64_t coarse = 0, exact = 0;
  MIXTURA_HD void add(std::uint64_t key, double v) {
    const double f = static_cast<double>(static_cast<float>(v));
    const std::uint64_t t = row_hash_term(key, f);
    coarse += t;
    exact += f == v ? t : row_hash_term(key, v);  // float data: always the same term
  }
  MIXTURA_HD RowHash hash() const {
    return {mix64(coarse + 0x6a09e667f3bcc908ULL), mix64(exact + 0xbb67ae8584caa73bULL)};
  }
};

/// The hashes of a dense row of `cols` values (keys: the columns' keys, computed once for many rows).
template <class T>
inline RowHash dense_row_hash(const T* x, const std::uint64_t* keys, std::int64_t cols) {
  RowHashSums s;
  for (std::int64_t j = 0; j < cols; ++j) s.add(keys[j], static_cast<double>(x[j]));
  return s.hash();
}
template <class T>
MIXTURA_HD inline RowHash dense_row_hash(const T* x, std::int64_t cols) {
  RowHashSums s;
  for (std::int64_t j = 0; j < cols; ++j) s.add(column_key(j), static_cast<double>(x[j]));
  return s.hash();
}

/// The hashes of a sparse row: `count` stored values at distinct columns, in any order.
template <class T, class I>
MIXTURA_HD inline RowHash sparse_row_hash(const T* values, const I* columns, std::int64_t count) {
  RowHashSums s;
  for (std::int64_t p = 0; p < count; ++p)
    s.add(column_key(static_cast<std::int64_t>(columns[p])), static_cast<double>(values[p]));
  return s.hash();
}

}  // namespace detail
}  // namespace mixtura
