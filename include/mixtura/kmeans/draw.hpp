#pragma once
/// The draws of k-means++: rows drawn with probability proportional to a mass m_i (w_i times the
/// squared distance to the closest centre chosen so far, or w_i alone), by inverting the cumulative
/// mass. Written once for the CPU and for the CUDA backend, whose kernel adds the block sums in this
/// very order (plain C++; MIXTURA_HD marks what the kernels call).
///
/// The cumulative mass is blocked: rows in fixed blocks of kDrawBlock (counted from row 0), each
/// block's masses added in row order, the block sums added in block order. A draw finds the block
/// where u * total falls from the block sums alone and then walks that block's rows only, so a
/// backend that keeps the masses elsewhere (the GPU) hands over n / kDrawBlock sums and one block
/// per draw instead of n values. The same for any thread count.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mixtura/cuda/plan.hpp"  // MIXTURA_HD and fused: the multiply-add every backend rounds once

namespace mixtura {
namespace detail {

/// Rows per block of the cumulative mass.
inline constexpr std::int64_t kDrawBlock = 4096;

/// acc + m_i with m_i = w_i closest_i, the product and the sum rounded once (w == nullptr: unit
/// weights, acc + closest_i; closest == nullptr: the weights alone, acc + w_i).
template <class T>
MIXTURA_HD inline double add_mass(const T* w, const double* closest, std::int64_t i, double acc) {
  if (!closest) return acc + (w ? static_cast<double>(w[i]) : 1.0);
  if (!w) return acc + closest[i];
  return cuda::fused(static_cast<double>(w[i]), closest[i], acc);
}

/// m_i itself, rounded (whether row i can be drawn: m_i > 0).
template <class T>
MIXTURA_HD inline double mass_of(const T* w, const double* closest, std::int64_t i) {
  const double wi = w ? static_cast<double>(w[i]) : 1.0;
  return closest ? wi * closest[i] : wi;
}

/// The masses of rows [begin, end) added in row order from 0: one block's sum.
template <class T>
MIXTURA_HD inline double mass_block_sum(const T* w, const double* closest, std::int64_t begin, std::int64_t end) {
  double s = 0.0;
  for (std::int64_t i = begin; i < end; ++i) s = add_mass(w, closest, i, s);
  return s;
}

/// The inputs of one block's masses, indexed from the block's first row (nullptr as in add_mass).
template <class T>
struct MassBlock {
  const T* w = nullptr;
  const double* closest = nullptr;
};

/// Rows of block b of n rows.
inline std::int64_t draw_block_rows(std::int64_t n, std::int64_t b) {
  const std::int64_t begin = b * kDrawBlock;
  return n - begin < kDrawBlock ? n - begin : kDrawBlock;
}

/// One row per u in us (each in [0, 1)), drawn with probability m_i / total: the first row of positive
/// mass whose cumulative mass exceeds u * total (round-off at the very end: the last row of positive
/// mass). block_sum: the blocks' sums (mass_block_sum), total their sum in block order (> 0).
/// block(b) returns block b's MassBlock; it is asked only for the blocks the draws fall in. Writes
/// the rows into out (cleared first).
template <class T, class Block, class IndexVector>
void draw_from_blocks(std::int64_t n, const std::vector<double>& block_sum, double total,
                      const std::vector<double>& us, Block&& block, IndexVector& out) {
  const std::int64_t n_blocks = static_cast<std::int64_t>(block_sum.size());
  out.clear();
  for (const double u : us) {
    const double target = u * total;
    double acc = 0.0;
    std::int64_t b = 0;
    while (b + 1 < n_blocks && acc + block_sum[static_cast<std::size_t>(b)] <= target)
      acc += block_sum[static_cast<std::size_t>(b++)];
    std::int64_t pick = -1;
    const MassBlock<T> v = block(b);
    const std::int64_t rows = draw_block_rows(n, b);
    for (std::int64_t i = 0; i < rows && pick < 0; ++i) {
      const double m = mass_of(v.w, v.closest, i);
      acc = add_mass(v.w, v.closest, i, acc);
      if (acc > target && m > 0) pick = b * kDrawBlock + i;
    }
    // Round-off at the very end: the last row of positive mass, in the last block of positive sum (a
    // sum of masses >= 0 is positive exactly when one of them is).
    for (std::int64_t last = n_blocks - 1; last >= 0 && pick < 0; --last) {
      if (!(block_sum[static_cast<std::size_t>(last)] > 0)) continue;
      const MassBlock<T> lv = block(last);
      for (std::int64_t i = draw_block_rows(n, last) - 1; i >= 0 && pick < 0; --i)
        if (mass_of(lv.w, lv.closest, i) > 0) pick = last * kDrawBlock + i;
    }
    out.push_back(pick);
  }
}

}  // namespace detail
}  // namespace mixtura
