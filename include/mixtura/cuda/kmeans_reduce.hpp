#pragma once
/// The order in which the CUDA K-means passes add things up, written once for the kernels and for the
/// host tests that check it on machines without a GPU (plain C++, no CUDA header).
///
/// Per-cluster statistics of a reduction segment (plan.hpp: kSegmentRows rows) are folded by one
/// thread block per (segment, cluster tile, feature tile). Thread t = rl * td + fl is "row lane" rl
/// and "feature lane" fl: it walks the segment's rows rl, rl + tr, ... in order and, for a row whose
/// cluster is in the tile, adds its features fl, fl + td, ... into its own shared-memory cells. The
/// lanes' cells are then added in lane order, giving the segment's partial; partials are added to the
/// running totals in segment order. No floating-point atomics: the same bits on every run.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "mixtura/cuda/plan.hpp"

namespace mixtura {
namespace cuda {

/// Threads per block of the K-means statistics and row-reduction kernels.
inline constexpr int kReduceThreads = 256;

/// Exact squared distance in double with eight partial sums, feature j into sum j mod 8, summed as
/// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)): the order of the CPU backend's sq_dist.
template <class T, class U>
MIXTURA_HD inline double sq_dist8(const T* x, const U* c, std::int64_t d) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int l = 0; l < 8; ++l) {
      const double t = static_cast<double>(x[j + l]) - static_cast<double>(c[j + l]);
      s[l] += t * t;
    }
  }
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int l = 0; l < 8; ++l) {
    if (j + l < d) {
      const double t = static_cast<double>(x[j + l]) - static_cast<double>(c[j + l]);
      s[l] += t * t;
    }
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/// How the statistics kernel cuts clusters and features into tiles for a block.
struct StatsTiling {
  int td = 1;            ///< feature lanes (a power of two, at most 32)
  int tr = 1;            ///< row lanes (kReduceThreads / td)
  int dc = 1;            ///< features per feature tile
  int kc = 1;            ///< clusters per cluster tile
  int n_ftiles = 1;      ///< feature tiles
  int n_ktiles = 1;      ///< cluster tiles
  std::size_t shared_bytes = 0;  ///< tr * kc * (dc + 2) doubles of lane cells

  /// Doubles per cluster in one lane's cells: dc sums, the weight, the count.
  int cells_per_cluster() const { return dc + 2; }
};

/// The tiling for K clusters of D features within `shared_limit` bytes of shared memory per block.
inline StatsTiling stats_tiling(std::int64_t K, std::int64_t D, std::size_t shared_limit = 46 * 1024) {
  StatsTiling t;
  while (t.td < 32 && t.td < D) t.td *= 2;
  t.tr = kReduceThreads / t.td;
  t.dc = static_cast<int>(D < 4 * t.td ? D : 4 * t.td);
  const std::size_t per_cluster = static_cast<std::size_t>(t.tr) * static_cast<std::size_t>(t.dc + 2) * sizeof(double);
  const std::int64_t fit = static_cast<std::int64_t>(shared_limit / per_cluster);
  t.kc = static_cast<int>(fit < 1 ? 1 : (fit < K ? fit : K));
  t.n_ftiles = static_cast<int>((D + t.dc - 1) / t.dc);
  t.n_ktiles = static_cast<int>((K + t.kc - 1) / t.kc);
  t.shared_bytes = per_cluster * static_cast<std::size_t>(t.kc);
  return t;
}

/// Where each statistic sits in a segment's partial (and in the running totals): sums [K x D],
/// weights [K], counts [K] (as doubles: exact below 2^53), then one distortion piece per block of the
/// segment (cluster tile x feature tile), added up in piece order at the end.
struct StatsLayout {
  std::int64_t K = 0, D = 0, n_pieces = 0;
  MIXTURA_HD std::int64_t sum_at(std::int64_t k, std::int64_t d) const { return k * D + d; }
  MIXTURA_HD std::int64_t weight_at(std::int64_t k) const { return K * D + k; }
  MIXTURA_HD std::int64_t count_at(std::int64_t k) const { return K * D + K + k; }
  MIXTURA_HD std::int64_t distortion_at(std::int64_t piece) const { return K * D + 2 * K + piece; }
  MIXTURA_HD std::int64_t size() const { return K * D + 2 * K + n_pieces; }
};

/// One thread's share of a statistics block: rows rl, rl + tr, ... of the segment (x: rows x D dense,
/// w: weights or nullptr, labels: the segment's labels), clusters [k0, k0 + kc), features
/// [d0, d0 + dc) of which fl, fl + td, .... Adds w x into the lane's sums and, if `weight_lane`, w
/// and 1 into its weight and count cells; returns the lane's sum of w (x - c)^2 over those features
/// (centers_d: K x D in double). `cells` is the block's [tr][kc][dc + 2] array.
template <class T>
MIXTURA_HD inline double stats_lane_fold(const T* x, const T* w, const std::int32_t* labels, std::int64_t rows,
                                         std::int64_t D, const double* centers_d, int k0, int kc, int d0, int dc,
                                         int rl, int tr, int fl, int td, bool weight_lane, double* cells) {
  double distortion = 0;
  const int stride = dc + 2;
  for (std::int64_t r = rl; r < rows; r += tr) {
    const int k = labels[r] - k0;
    if (k < 0 || k >= kc) continue;
    const double wr = w ? static_cast<double>(w[r]) : 1.0;
    double* cell = cells + (static_cast<std::int64_t>(rl) * kc + k) * stride;
    const T* xr = x + r * D + d0;
    const double* c = centers_d + static_cast<std::int64_t>(k0 + k) * D + d0;
    for (int f = fl; f < dc; f += td) {
      const double xv = static_cast<double>(xr[f]);
      cell[f] += wr * xv;
      const double t = xv - c[f];
      distortion += wr * (t * t);
    }
    if (weight_lane) {
      cell[dc] += wr;
      cell[dc + 1] += 1.0;
    }
  }
  return distortion;
}

/// Cell (k, f) of the block (f in [0, dc + 2)) summed over the row lanes in lane order.
MIXTURA_HD inline double stats_lane_sum(const double* cells, int tr, int kc, int dc, int k, int f) {
  const int stride = dc + 2;
  double s = 0;
  for (int rl = 0; rl < tr; ++rl) s += cells[(static_cast<std::int64_t>(rl) * kc + k) * stride + f];
  return s;
}

/// The fixed tree the blocks use to add kReduceThreads per-thread values: v[t] += v[t + s] for
/// s = n / 2, n / 4, ..., 1 (n a power of two); returns v[0]. The kernels run the same steps with a
/// barrier between them; this host form is what the tests compare with.
inline double tree_sum(double* v, int n) {
  for (int s = n / 2; s > 0; s /= 2)
    for (int t = 0; t < s; ++t) v[t] += v[t + s];
  return v[0];
}

/// The distance used for the argmin (not for any reported value): ||c_k||^2 plus the fused
/// multiply-add chain over the features in order, acc = fma(x_d, -2 c_kd, acc) from acc = 0.
/// minus_two_ct is D x K. The assignment kernel tiles this without changing its order.
template <class T>
inline T argmin_distance(const T* x, const T* minus_two_ct, const T* sq_norms, std::int64_t K, std::int64_t D,
                         std::int64_t k) {
  T acc = 0;
  for (std::int64_t d = 0; d < D; ++d) acc = std::fma(x[d], minus_two_ct[d * K + k], acc);
  return acc + sq_norms[k];
}

}  // namespace cuda
}  // namespace mixtura
