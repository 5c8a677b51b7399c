#pragma once
/// The draws of k-means++: rows drawn with probability proportional to a mass m_i (w_i times the
/// squared distance to the closest centre chosen so far, or w_i alone), by inverting the cumulative
/// mass in an order of the rows that depends on their values alone: by the rows' hashes
/// (core/row_hash.hpp: of the values rounded to float, then of the values), equal hashes by row
/// index. So the draws do not depend on the order of the rows, a row of integer weight w is drawn as
/// w copies of it of unit weight would be (scikit-learn's sample-weight equivalence), up to round-off
/// in the sums, and float data draw the rows the same data in double draw (scikit-learn's float
/// precision test), except among rows equal to float precision. Distinct rows share both hashes with
/// probability 2^-128 a pair; only then does their order (by index) depend on where they are.
///
/// The order is held as 2^kDrawBucketBits buckets (the coarse hash's top bits), each bucket's rows
/// sorted by (hash, index). A draw adds the masses into their buckets in row order, finds the bucket
/// where u * total falls from the bucket sums and walks only that bucket's rows, in the order. The same for
/// any thread count, and on every backend: the host walks the masses it is given (the CUDA backend
/// copies its distances back for each round of draws).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/row_hash.hpp"
#include "mixtura/cuda/plan.hpp"  // fused: the multiply-add every backend rounds once

namespace mixtura {
namespace detail {

/// acc + m_i with m_i = w_i closest_i, the product and the sum rounded once (w == nullptr: unit
/// weights, acc + closest_i; closest == nullptr: the weights alone, acc + w_i).
template <class T>
inline double add_mass(const T* w, const double* closest, std::int64_t i, double acc) {
  if (!closest) return acc + (w ? static_cast<double>(w[i]) : 1.0);
  if (!w) return acc + closest[i];
  return cuda::fused(static_cast<double>(w[i]), closest[i], acc);
}

/// m_i itself, rounded (whether row i can be drawn: m_i > 0).
template <class T>
inline double mass_of(const T* w, const double* closest, std::int64_t i) {
  const double wi = w ? static_cast<double>(w[i]) : 1.0;
  return closest ? wi * closest[i] : wi;
}

/// Bits of the hash that name a row's bucket, and the number of buckets.
inline constexpr int kDrawBucketBits = 12;
inline constexpr std::int64_t kDrawBuckets = std::int64_t{1} << kDrawBucketBits;
static_assert(kDrawBucketBits <= 16, "DrawOrder keeps a row's bucket in 16 bits");

/// The order in which k-means++ walks n rows (see the file comment), built from their hashes.
struct DrawOrder {
  std::vector<std::uint16_t> bucket;  ///< per row: its bucket (the top kDrawBucketBits bits of its coarse hash)
  std::vector<Index> start;           ///< bucket b's rows are rows[start[b], start[b + 1])
  std::vector<Index> rows;            ///< the rows, bucket by bucket, each bucket by (hash, index)

  DrawOrder() = default;
  /// From the rows' hashes (row_hashes(be, X)); the buckets' sorts on n_threads threads.
  DrawOrder(const std::vector<RowHash>& hash, int n_threads)
      : bucket(hash.size()), start(static_cast<std::size_t>(kDrawBuckets) + 1, 0), rows(hash.size()) {
    // Sorted by 2^16 finer buckets (16 of them to a bucket): a few rows each to sort.
    constexpr int kFineBits = 16;
    constexpr Index kFine = Index{1} << kFineBits, kPerBucket = kFine / kDrawBuckets;
    const Index n = static_cast<Index>(hash.size());
    std::vector<Index> fine(static_cast<std::size_t>(kFine) + 1, 0);
    for (Index i = 0; i < n; ++i) ++fine[(hash[i].coarse >> (64 - kFineBits)) + 1];
    for (Index f = 0; f < kFine; ++f) fine[f + 1] += fine[f];
    std::vector<Index> next(fine.begin(), fine.end() - 1);
    for (Index i = 0; i < n; ++i) {
      rows[next[hash[i].coarse >> (64 - kFineBits)]++] = i;  // by index within a fine bucket
      bucket[i] = static_cast<std::uint16_t>(hash[i].coarse >> (64 - kDrawBucketBits));
    }
    for (Index b = 0; b <= kDrawBuckets; ++b) start[b] = fine[b * kPerBucket];
    parallel_for(kDrawBuckets / 64, n_threads, [&](Index g) {
      for (Index f = g * 64 * kPerBucket; f < (g + 1) * 64 * kPerBucket; ++f)
        std::stable_sort(rows.begin() + fine[f], rows.begin() + fine[f + 1],
                         [&](Index r, Index s) { return hash[r] < hash[s]; });
    });
  }
  Index size() const { return static_cast<Index>(bucket.size()); }
};

/// One row per u in us (each in [0, 1)), drawn with probability m_i / total in `order`: the first row
/// of positive mass there whose cumulative mass exceeds u * total. The buckets' sums add their rows in
/// row order; a walk through a bucket that ends below the target by round-off takes the bucket's last
/// row of positive mass. Returns false, and leaves `out` empty, if no row has positive mass. w, closest:
/// host arrays of order.size() values, or nullptr as in add_mass.
template <class T>
bool draw_in_order(const DrawOrder& order, const T* w, const double* closest, const std::vector<double>& us,
                   std::vector<Index>& out) {
  const Index n = order.size();
  std::vector<double> cum(static_cast<std::size_t>(kDrawBuckets), 0.0);
  for (Index i = 0; i < n; ++i) {
    double& s = cum[order.bucket[i]];
    s = add_mass(w, closest, i, s);
  }
  for (Index b = 1; b < kDrawBuckets; ++b) cum[b] += cum[b - 1];  // now the cumulative sums
  const double total = cum.back();
  out.clear();
  // The last row of positive mass in bucket b, or -1.
  auto last_positive = [&](Index b) {
    for (Index p = order.start[b + 1] - 1; p >= order.start[b]; --p)
      if (mass_of(w, closest, order.rows[p]) > 0) return order.rows[p];
    return Index{-1};
  };
  Index fallback = -1;  // round-off at the very end: the last row of positive mass in the order
  for (Index b = kDrawBuckets - 1; b >= 0 && fallback < 0; --b) fallback = last_positive(b);
  if (!(total > 0.0) || fallback < 0) return false;
  for (const double u : us) {
    const double target = u * total;
    const Index b = std::upper_bound(cum.begin(), cum.end(), target) - cum.begin();
    Index pick = -1;
    if (b < kDrawBuckets) {
      double acc = b > 0 ? cum[b - 1] : 0.0;
      for (Index p = order.start[b]; p < order.start[b + 1] && pick < 0; ++p) {
        const Index i = order.rows[p];
        acc = add_mass(w, closest, i, acc);
        if (acc > target && mass_of(w, closest, i) > 0) pick = i;
      }
      if (pick < 0) pick = last_positive(b);
    }
    out.push_back(pick >= 0 ? pick : fallback);
  }
  return true;
}

}  // namespace detail
}  // namespace mixtura
