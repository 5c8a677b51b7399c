#pragma once
/// The order in which the CUDA K-means passes add things up, written once for the kernels and for the
/// host tests that check it on machines without a GPU (plain C++, no CUDA header).
///
/// The assignment pass is one kernel (one read of X): a block takes `block_rows` consecutive rows
/// (counted from row 0 of the data), tile after tile of kAssignTileRows rows; for each tile it finds
/// the labels, then folds the tile's rows into its statistics cells in the fixed order of
/// fused_lane_fold (FusedTiling says which thread owns which cell). The block's partial (its cells
/// added over row lanes, its distortion by tree_sum) joins the running totals in groups of
/// kGroupBlocks blocks (group_column_sum, then fold_group_column in group order), a group's running
/// sum carried across streamed chunks. No floating-point atomics: the same bits on every run and in
/// any chunking (chunks are whole segments, and segments whole blocks).
///
/// The prediction pass is one kernel too: a block takes a segment, two tiles at a time; it finds the
/// tiles' labels, then each thread adds the distortion of one of their rows (predict_row_fold), so
/// that thread t takes the segment's rows t, t + 256, ... in order, as the other row reductions do.
///
/// The row reductions (prediction's distortion, k-means++, feature moments) fold segments of
/// kSegmentRows rows (plan.hpp) and add the segment partials in segment order.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "mixtura/cuda/plan.hpp"
#include "mixtura/kmeans/stats.hpp"

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

/// Rows per tile of the assignment kernel: the distances of a tile's rows to all centres are taken
/// together, then the tile's rows are folded into the statistics.
inline constexpr int kAssignTileRows = 128;

/// Shared memory that the row lanes' copies of the statistics cells may take (below it, more row
/// lanes; a single copy may be larger, see FusedTiling).
inline constexpr std::size_t kLaneCellsBytes = std::size_t{40} * 1024;

/// Block partials join the running totals in groups of kGroupBlocks consecutive blocks, counted from
/// row 0 of the data (group_column_sum, fold_group_column).
inline constexpr std::int64_t kGroupBlocks = 64;

/// How the fused assignment-and-statistics kernel (one pass over X per Lloyd iteration) shares the
/// statistics of its rows among the kReduceThreads threads of a block, how many rows a block takes,
/// and where each statistic sits in a block's partial.
///
/// Thread t is feature lane fl = t mod td, cluster group g = (t / td) mod groups and row lane
/// rl = t / (td * groups). Of the block's rows, row lane rl takes rl, rl + tr, rl + 2 tr, ... in order
/// (tr divides the tile, so tiles do not change this), and among those the rows whose label is
/// congruent to g modulo `groups`; it adds w x_d for its features d = fl, fl + td, ... into its own
/// copy of the cells, and feature lane 0 adds w and 1 to the cluster's weight and count. Every cell
/// of a copy has one owner thread: no atomics. At the end of the block the copies are added in row
/// lane order, and the threads' distortions by tree_sum. Cells of cluster k: [sums (D), weight,
/// count], cluster after cluster; then the distortion: width() doubles in a partial.
struct FusedTiling {
  std::int64_t K = 0, D = 0;
  int td = 1;                    ///< feature lanes (a power of two, at most 32)
  int tr = 1;                    ///< row lanes, each with its own copy of the cells (power of two)
  int groups = 1;                ///< cluster groups (kReduceThreads / (td * tr), so a power of two)
  std::int64_t block_rows = 0;   ///< rows per block: a power of two in [kAssignTileRows, kSegmentRows]

  /// Doubles of one copy of the cells: K x (D + 2).
  MIXTURA_HD std::int64_t cells() const { return K * (D + 2); }
  /// Doubles of a block's partial: the cells and the distortion.
  MIXTURA_HD std::int64_t width() const { return cells() + 1; }
  MIXTURA_HD std::int64_t sum_at(std::int64_t k, std::int64_t d) const { return k * (D + 2) + d; }
  MIXTURA_HD std::int64_t weight_at(std::int64_t k) const { return k * (D + 2) + D; }
  MIXTURA_HD std::int64_t count_at(std::int64_t k) const { return k * (D + 2) + D + 1; }
  MIXTURA_HD std::int64_t distortion_at() const { return cells(); }
  /// Bytes of the row lanes' copies, when they are kept in shared memory.
  std::size_t shared_bytes() const {
    return static_cast<std::size_t>(tr) * static_cast<std::size_t>(cells()) * sizeof(double);
  }
};

/// The tiling for K clusters of D features of elem_bytes each. Feature lanes cover min(D, 32)
/// features; row lanes double while their copies fit kLaneCellsBytes (at least one copy, however
/// large: the kernel then keeps it in shared memory if the device allows, else in the block's partial
/// in global memory, with the same order of additions). A block takes the fewest rows (from one tile
/// up to a segment) whose X is at least 16 times its partial, so that partials add at most about
/// 1/16 to the bytes read.
inline FusedTiling fused_tiling(std::int64_t K, std::int64_t D, std::size_t elem_bytes) {
  FusedTiling t;
  t.K = K;
  t.D = D;
  while (t.td < 32 && t.td < D) t.td *= 2;
  const std::size_t copy = static_cast<std::size_t>(t.cells()) * sizeof(double);
  while (t.td * t.tr * 2 <= kReduceThreads && t.tr * 2 <= kAssignTileRows &&
         static_cast<std::size_t>(t.tr) * 2 * copy <= kLaneCellsBytes)
    t.tr *= 2;
  t.groups = kReduceThreads / (t.td * t.tr);
  const double partial_bytes = static_cast<double>(t.width()) * sizeof(double);
  t.block_rows = kAssignTileRows;
  while (t.block_rows < kSegmentRows &&
         static_cast<double>(t.block_rows) * static_cast<double>(D) * static_cast<double>(elem_bytes) <
             16.0 * partial_bytes)
    t.block_rows *= 2;
  return t;
}

/// Thread `tid`'s share of one tile of a block (FusedTiling): the tile's `rows` rows x (dense, D
/// features), their weights w (nullptr: 1) and labels. Adds into the thread's cells of the row
/// lanes' copies `cells` ([tr][cells()]) and into *distortion the sum of w (x_d - c_d)^2 over its
/// features (centers_d: K x D in double). Every multiply-add is one `fused` operation, on the device
/// and in host replays alike.
template <class T>
MIXTURA_HD inline void fused_lane_fold(const T* x, const T* w, const std::int32_t* labels, std::int64_t rows,
                                       const double* centers_d, const FusedTiling& tl, int tid,
                                       double* cells, double* distortion) {
  const int fl = tid % tl.td, g = (tid / tl.td) % tl.groups, rl = tid / (tl.td * tl.groups);
  const std::int64_t D = tl.D, stride = D + 2;
  double* copy = cells + static_cast<std::int64_t>(rl) * tl.cells();
  double dist = *distortion;
  // The block's rows rl, rl + tr, ...: in every tile the same, since tr divides kAssignTileRows.
  for (std::int64_t r = rl; r < rows; r += tl.tr) {
    const std::int32_t k = labels[r];
    if ((k & (tl.groups - 1)) != g) continue;  // k mod groups (a power of two; no division per row)
    const double wr = w ? static_cast<double>(w[r]) : 1.0;
    double* cell = copy + static_cast<std::int64_t>(k) * stride;
    const T* xr = x + r * D;
    const double* c = centers_d + static_cast<std::int64_t>(k) * D;
    for (std::int64_t f = fl; f < D; f += tl.td) {
      const double xv = static_cast<double>(xr[f]);
      cell[f] = fused(wr, xv, cell[f]);
      const double t = xv - c[f];
      dist = fused(wr, t * t, dist);
    }
    if (fl == 0) {
      cell[D] += wr;
      cell[D + 1] += 1.0;
    }
  }
  *distortion = dist;
}

/// Rows of the prediction kernel's step: two assignment tiles, one row per thread for the distortion.
inline constexpr int kPredictStepRows = 2 * kAssignTileRows;
static_assert(kPredictStepRows == kReduceThreads, "one distortion row per thread and step");
static_assert(kSegmentRows % kPredictStepRows == 0, "a segment is whole prediction steps");

/// Thread `tid`'s share of one step of the prediction kernel (a segment is one block; a step is
/// kPredictStepRows rows of it, two tiles whose labels are known): *distortion += w_r ||x_r -
/// c_{label}||^2 for the step's row tid (if tid < rows), as one fused multiply-add of the exact
/// distance in double (sq_dist8). So thread t adds its rows t, t + 256, ... of the segment in order:
/// the order of the segment reductions (then tree_sum, then segments in order). x: the step's first
/// row (dense, D features); w: its weights or nullptr; labels: the step's labels; centers: K x D.
template <class T>
MIXTURA_HD inline void predict_row_fold(const T* x, const T* w, const std::int32_t* labels, std::int64_t rows,
                                        const T* centers, std::int64_t D, int tid, double* distortion) {
  if (tid >= rows) return;
  const std::int64_t r = tid;
  const double d = sq_dist8(x + r * D, centers + static_cast<std::int64_t>(labels[r]) * D, D);
  *distortion = fused(w ? static_cast<double>(w[tid]) : 1.0, d, *distortion);
}

/// Value i of the block's partial (i < cells()): the row lanes' copies added in row lane order.
MIXTURA_HD inline double fused_lane_sum(const double* cells, const FusedTiling& tl, std::int64_t i) {
  double s = 0;
  for (int rl = 0; rl < tl.tr; ++rl) s += cells[static_cast<std::int64_t>(rl) * tl.cells() + i];
  return s;
}

/// Column c of a group's sum: start + part[first][c] + ... + part[last - 1][c] in that order (part:
/// consecutive block partials of `width` doubles). start is 0 for a group that begins here, else the
/// running sum carried over from the chunk before.
MIXTURA_HD inline double group_column_sum(const double* part, std::int64_t width, std::int64_t c, std::int64_t first,
                                          std::int64_t last, double start) {
  double acc = start;
  for (std::int64_t p = first; p < last; ++p) acc += part[p * width + c];
  return acc;
}

/// Column c of the running totals after a chunk: the chunk's group sums (groups: n_groups x width)
/// added in group order, except the last one when it is not complete (the next chunk continues it):
/// that one becomes the carry.
MIXTURA_HD inline void fold_group_column(const double* groups, std::int64_t n_groups, bool last_complete,
                                         std::int64_t width, std::int64_t c, double* totals, double* carry) {
  double acc = totals[c];
  for (std::int64_t g = 0; g < n_groups; ++g) {
    const double v = groups[g * width + c];
    if (g + 1 < n_groups || last_complete)
      acc += v;
    else
      carry[c] = v;
  }
  totals[c] = acc;
}

/// The groups a chunk of the data touches: its blocks are [first_block, first_block + n_blocks) of
/// the data's total_blocks.
struct ChunkGroups {
  std::int64_t first_block = 0, n_blocks = 0;
  std::int64_t first_group = 0, n_groups = 0;
  bool starts_inside = false;  ///< its first group began in an earlier chunk (start from the carry)
  bool last_complete = true;   ///< its last group ends in this chunk (else it becomes the carry)

  ChunkGroups(std::int64_t first, std::int64_t n, std::int64_t total_blocks) : first_block(first), n_blocks(n) {
    if (n <= 0) return;
    const std::int64_t end = first + n;
    first_group = first / kGroupBlocks;
    n_groups = (end - 1) / kGroupBlocks - first_group + 1;
    starts_inside = first % kGroupBlocks != 0;
    last_complete = end % kGroupBlocks == 0 || end == total_blocks;
  }
  /// The chunk's blocks of its group i (0 <= i < n_groups), relative to its first block: [*begin, *end).
  MIXTURA_HD void blocks_of(std::int64_t i, std::int64_t* begin, std::int64_t* end) const {
    const std::int64_t g0 = (first_group + i) * kGroupBlocks, g1 = g0 + kGroupBlocks, e = first_block + n_blocks;
    *begin = (g0 > first_block ? g0 : first_block) - first_block;
    *end = (g1 < e ? g1 : e) - first_block;
  }
  /// Where column sums of group i start: the carry for a group that began in an earlier chunk.
  MIXTURA_HD bool from_carry(std::int64_t i) const { return i == 0 && starts_inside; }
};

/// The fixed tree the blocks use to add kReduceThreads per-thread values: v[t] += v[t + s] for
/// s = n / 2, n / 4, ..., 1 (n a power of two); returns v[0]. The kernels run the same steps with a
/// barrier between them; this host form is what the tests compare with.
inline double tree_sum(double* v, int n) {
  for (int s = n / 2; s > 0; s /= 2)
    for (int t = 0; t < s; ++t) v[t] += v[t + s];
  return v[0];
}

/// The centres (K x D) as the argmin wants them, measured from s = shift (the centres' mean,
/// detail::argmin_shift, D values): minus_two_ct[d * K + k] = -2 (c_kd - s_d) and sq_norms[k] =
/// ||c_k - s||^2 accumulated in T in feature order, product and sum rounded apart.
template <class T>
inline void argmin_centers(const T* C, std::int64_t K, std::int64_t D, T* shift, T* minus_two_ct, T* sq_norms) {
  mixtura::detail::argmin_shift(C, K, D, shift);
  for (std::int64_t k = 0; k < K; ++k) {
    T norm = 0;
    for (std::int64_t d = 0; d < D; ++d) {
      const T c = C[k * D + d] - shift[d];
      minus_two_ct[d * K + k] = T(-2) * c;
      const volatile T product = c * c;  // volatile: never contracted into a fused multiply-add
      norm += product;
    }
    sq_norms[k] = norm;
  }
}

/// The distance used for the argmin (not for any reported value): ||c_k - s||^2 plus the fused
/// multiply-add chain over the features in order, acc = fma(x_d - s_d, -2 (c_kd - s_d), acc) from
/// acc = 0 (argmin_centers). The assignment kernel tiles this without changing its order.
template <class T>
inline T argmin_distance(const T* x, const T* shift, const T* minus_two_ct, const T* sq_norms, std::int64_t K,
                         std::int64_t D, std::int64_t k) {
  T acc = 0;
  for (std::int64_t d = 0; d < D; ++d) acc = std::fma(x[d] - shift[d], minus_two_ct[d * K + k], acc);
  return acc + sq_norms[k];
}

}  // namespace cuda
}  // namespace mixtura
