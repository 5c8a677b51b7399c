#pragma once
/// What the CUDA Gaussian-mixture passes compute per thread and the order they add things up in,
/// written once for the kernels (cuda/gmm_kernels.cuh) and for the host tests that check them on
/// machines without a GPU (plain C++, no CUDA header, no Eigen).
///
/// The E-step pass cuts the rows into tiles of kGmmTileRows (counted from row 0 of the data, so that
/// chunks, which are whole reduction segments, are whole tiles). Each tile yields one partial of
/// `GmmPartialLayout::width()` doubles, written by plain stores in a fixed order; the partials are
/// added to the running totals in tile order (accumulate_partials, context.cuh). No floating-point
/// atomics: the same bits on every run, resident or streamed.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "mixtura/core/rng.hpp"
#include "mixtura/cuda/plan.hpp"

namespace mixtura {
namespace cuda {

/// Rows per tile of the E-step's reductions (one block of the normalisation kernel).
inline constexpr std::int64_t kGmmTileRows = 1024;
static_assert(kSegmentRows % kGmmTileRows == 0, "a reduction segment must be whole tiles");

/// Covariance shapes, in the order of mixtura::CovarianceType.
enum class GmmShape : int { full = 0, tied = 1, diag = 2, spherical = 3 };

/// Columns of one component's factor padded to a multiple of 4 (zeros past D).
MIXTURA_HD inline int padded4(int d) { return (d + 3) / 4 * 4; }

// ---- log-densities -----------------------------------------------------------------------------

/// Full and tied covariances. With xc = x - c (c the centre, in T) and F_k = C_k padded to D4
/// columns, y_kj = sum_a xc_a F_k(a, j) is one fused multiply-add chain in T over a = 0 .. D - 1 from
/// 0, and the squared norm sums t_j = y_kj - offset_kj (in double) in groups of four columns:
///   sq = ((0 + g_0) + g_1) + ...,  g = fma(t_3, t_3, fma(t_2, t_2, fma(t_1, t_1, fma(t_0, t_0, 0)))).
/// log pi_k N(x | k) = constant_k - sq / 2. The kernel tiles this without changing the order; this
/// is the reference the host tests compute. factors: D x (K D4) row-major; offset: K D4.
template <class T>
inline double full_log_density_reference(const T* x, const T* c, const T* factors, const double* offset,
                                         double constant, int D, int K, int k) {
  const int d4 = padded4(D);
  const std::int64_t ld = static_cast<std::int64_t>(K) * d4;
  double sq = 0;
  for (int g = 0; g < d4; g += 4) {
    double part = 0;
    for (int q = 0; q < 4; ++q) {
      const std::int64_t col = static_cast<std::int64_t>(k) * d4 + g + q;
      T y = 0;
      for (int a = 0; a < D; ++a) y = fused(static_cast<T>(x[a] - c[a]), factors[a * ld + col], y);
      const double t = static_cast<double>(y) - offset[col];
      part = fused(t, t, part);
    }
    sq += part;
  }
  return constant - 0.5 * sq;
}

/// Diagonal and spherical covariances, in double (cheap: D operations per component):
/// diag: sq = sum_j ((x_j - mu_j) s_j)^2; spherical: sq = (sum_j (x_j - mu_j)^2) s^2, as the CPU.
template <class T>
MIXTURA_HD inline double diag_log_density(const T* x, const double* mean, const double* scale, bool spherical, int D,
                                          double constant) {
  double sq = 0;
  if (spherical) {
    for (int j = 0; j < D; ++j) {
      const double d = static_cast<double>(x[j]) - mean[j];
      sq += d * d;
    }
    sq *= scale[0] * scale[0];
  } else {
    for (int j = 0; j < D; ++j) {
      const double t = (static_cast<double>(x[j]) - mean[j]) * scale[j];
      sq += t * t;
    }
  }
  return constant - 0.5 * sq;
}

// ---- one row: log-sum-exp, responsibilities, entropy ------------------------------------------

/// The log-sum-exp of one row lp[0], lp[stride], ..., lp[(K - 1) stride] (log pi_k N(x | k)) as the
/// CPU takes it: m = max_k lp_k by a running maximum from lp_0 that a later value replaces only when
/// greater, so `argmax` is the first index of the maximum (Eigen's maxCoeff, the CPU's predict);
/// s = sum_k exp(lp_k - m) in component order (0 below -700: normalise_block's flush).
struct RowLogSumExp {
  double max = 0, sum = 0;
  int argmax = 0;
};
MIXTURA_HD inline RowLogSumExp row_log_sum_exp(const double* lp, std::int64_t stride, int K) {
  RowLogSumExp l;
  l.max = lp[0];
  for (int k = 1; k < K; ++k)
    if (lp[k * stride] > l.max) {
      l.max = lp[k * stride];
      l.argmax = k;
    }
  for (int k = 0; k < K; ++k) {
    const double a = lp[k * stride] - l.max;
    l.sum += a < -700.0 ? 0.0 : ::exp(a);
  }
  return l;
}

/// What scoring needs of one row (lp as in row_log_sum_exp), without the responsibilities:
/// log p(x) = m + log s into *log_p and the most probable component into *label, each if not null.
MIXTURA_HD inline void score_row(const double* lp, std::int64_t stride, int K, double* log_p, std::int32_t* label) {
  const RowLogSumExp l = row_log_sum_exp(lp, stride, K);
  if (log_p) *log_p = l.max + ::log(l.sum);
  if (label) *label = l.argmax;
}

/// Turns lp[0], lp[stride], ..., lp[(K - 1) stride] (log pi_k N(x | k)) into w r_k in place, as the
/// CPU's normalise_block does: m and s of row_log_sum_exp, r_k = exp(lp_k - m) / s,
/// log p(x) = m + log s, H(q) = log s - sum_{r_k > 0} r_k (lp_k - m).
MIXTURA_HD inline void normalise_row(double* lp, std::int64_t stride, int K, double w, double* log_p, double* entropy) {
  const RowLogSumExp l = row_log_sum_exp(lp, stride, K);
  const double m = l.max, s = l.sum;
  double r_dot = 0;
  for (int k = 0; k < K; ++k) {
    const double a = lp[k * stride] - m;
    const double r = (a < -700.0 ? 0.0 : ::exp(a)) / s;
    if (r > 0) r_dot += r * a;
    lp[k * stride] = r * w;
  }
  const double log_s = ::log(s);
  *log_p = m + log_s;
  *entropy = log_s - r_dot;
}

/// Ascending (key, index) order; the selection of the lowest log-likelihoods.
MIXTURA_HD inline bool key_less(double ka, std::int64_t ia, double kb, std::int64_t ib) {
  return ka < kb || (ka == kb && ia < ib);
}

/// One compare-exchange of the bitonic sorting network over n = 2^p entries, stage (k, j), by the
/// thread of entry t (the others of the stage run concurrently; a barrier separates stages):
/// for k = 2, 4, ..., n and j = k / 2, ..., 1. Ascending overall.
MIXTURA_HD inline void bitonic_step(double* key, std::int64_t* idx, int t, int j, int k) {
  const int u = t ^ j;
  if (u <= t) return;
  const bool up = (t & k) == 0;
  const bool swap = up ? key_less(key[u], idx[u], key[t], idx[t]) : key_less(key[t], idx[t], key[u], idx[u]);
  if (swap) {
    const double kt = key[t];
    key[t] = key[u];
    key[u] = kt;
    const std::int64_t it = idx[t];
    idx[t] = idx[u];
    idx[u] = it;
  }
}

/// The fixed tree every block of the normalisation kernel adds its kGmmTileRows per-row values with:
/// v[t] += v[t + s] for s = n / 2, ..., 1 (a barrier between steps); returns v[0].
inline double tile_tree_sum(double* v, int n) {
  for (int s = n / 2; s > 0; s /= 2)
    for (int t = 0; t < s; ++t) v[t] += v[t + s];
  return v[0];
}

// ---- given responsibilities: the initialisation passes ----------------------------------------

/// Where an initialisation pass takes its rows' responsibilities from, in place of the E-step's
/// posteriors: unit responsibility to one component (K = 1, the data's own moments), the one-hot
/// rows of given labels, or uniform random numbers from the counter-based generator (counter i K + k
/// of stream `stream` under `seed` for row i, component k: the CPU's random_resp_stats draws them).
struct GmmRespSource {
  enum class Kind : int { ones = 0, labels = 1, random = 2 };
  Kind kind = Kind::ones;
  const std::int32_t* labels = nullptr;  ///< kind labels: one per row of the data, each in [0, K)
  std::uint64_t seed = 0, stream = 0;    ///< kind random
};

/// Row `row`'s responsibilities times its weight w into r[0], r[stride], ..., r[(K - 1) stride]:
/// ones: w; labels: w for the row's label, else 0 (label: labels[row], read by the caller);
/// random: u_k = uniform(row K + k), r_k = w (u_k / sum_k u_k), the sum in component order.
MIXTURA_HD inline void init_resp_row(const GmmRespSource& src, std::int32_t label, std::int64_t row, int K, double w,
                                     double* r, std::int64_t stride) {
  if (src.kind == GmmRespSource::Kind::random) {
    const CounterRng rng(src.seed, src.stream);
    double s = 0;
    for (int k = 0; k < K; ++k) {
      const double u = rng.uniform_at(static_cast<std::uint64_t>(row * K + k));
      r[k * stride] = u;
      s += u;
    }
    for (int k = 0; k < K; ++k) r[k * stride] = w * (r[k * stride] / s);
    return;
  }
  for (int k = 0; k < K; ++k) r[k * stride] = (src.kind == GmmRespSource::Kind::ones || k == label) ? w : 0.0;
}

// ---- moments: full and tied -------------------------------------------------------------------

/// The weighted Gram matrices of the augmented centred rows z = (x - c, 1) (E = D + 1 entries):
/// G_k = sum_i w_i r_ik z_i z_i^T holds S2_k (the D x D block), S1_k (the last column) and N_k (the
/// corner), all around c. Threads own 4 x 4 blocks (ba, bb), ba <= bb, of one G_k: "items"
/// k * n_pairs + p, p the row-major index of (ba, bb) in the upper triangle of blocks.
struct GramLayout {
  int K = 0, D = 0;
  int E4 = 0;              ///< augmented width padded to 4
  int nb = 0;              ///< 4-blocks per side
  int n_pairs = 0;         ///< nb (nb + 1) / 2 block pairs per component
  int pairs_per_block = 0; ///< block pairs one thread block covers for one component
  int kb = 0;              ///< components per thread block
  int pair_blocks = 0;     ///< thread blocks per component group
  int row_chunk = 0;       ///< rows staged in shared memory at a time (the float runs: flushed to double after each)
  std::size_t shared_bytes = 0;

  static constexpr int kThreads = 256;

  MIXTURA_HD std::int64_t n_items() const { return static_cast<std::int64_t>(K) * n_pairs; }
  std::int64_t n_blocks() const { return static_cast<std::int64_t>((K + kb - 1) / kb) * pair_blocks; }
  /// Block pair (ba, bb) of index p.
  MIXTURA_HD void pair(int p, int* ba, int* bb) const {
    int a = 0;
    while (p >= nb - a) {
      p -= nb - a;
      ++a;
    }
    *ba = a;
    *bb = a + p;
  }
  /// The item of thread t of thread block b (false if it has none).
  MIXTURA_HD bool item_of(std::int64_t b, int t, int* k, int* kl, int* p) const {
    const std::int64_t group = b / pair_blocks;
    const int pb = static_cast<int>(b % pair_blocks);
    *kl = t / pairs_per_block;
    *p = pb * pairs_per_block + t % pairs_per_block;
    *k = static_cast<int>(group * kb + *kl);
    return *kl < kb && *k < K && *p < n_pairs;
  }
  /// First component of thread block b.
  MIXTURA_HD int first_component(std::int64_t b) const { return static_cast<int>(b / pair_blocks) * kb; }
};

/// The layout for K components of D features, scalar size `scalar_bytes`, within `shared_limit`
/// bytes of shared memory.
inline GramLayout gram_layout(int K, int D, std::size_t scalar_bytes, std::size_t shared_limit = 32 * 1024) {
  GramLayout g;
  g.K = K;
  g.D = D;
  g.E4 = padded4(D + 1);
  g.nb = g.E4 / 4;
  g.n_pairs = g.nb * (g.nb + 1) / 2;
  g.pairs_per_block = g.n_pairs < GramLayout::kThreads ? g.n_pairs : GramLayout::kThreads;
  g.kb = GramLayout::kThreads / g.pairs_per_block;
  if (g.kb > 32) g.kb = 32;
  if (g.kb > K) g.kb = K;
  g.pair_blocks = (g.n_pairs + g.pairs_per_block - 1) / g.pairs_per_block;
  const std::size_t per_row = static_cast<std::size_t>(g.E4 + g.kb) * scalar_bytes;
  std::size_t rows = shared_limit / per_row;
  if (rows < 1) rows = 1;
  if (rows > 32) rows = 32;
  g.row_chunk = static_cast<int>(rows);
  g.shared_bytes = per_row * rows;
  return g;
}

/// Adds one row (z: its E4 entries, rr: its w r in T) to a thread's 4 x 4 block (ba, bb) of G_k:
/// acc[4 i + j] = fma(rr z_a, z_b, acc[4 i + j]), a = 4 ba + i, b = 4 bb + j.
template <class T>
MIXTURA_HD inline void gram_add_row(T rr, const T* zr, int ba, int bb, T* acc) {
  T a[4], b[4];
  for (int i = 0; i < 4; ++i) {
    a[i] = rr * zr[4 * ba + i];
    b[i] = zr[4 * bb + i];
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[4 * i + j] = fused(a[i], b[j], acc[4 * i + j]);
}

/// Adds rows [0, rows) of a staged chunk to one thread's 4 x 4 block (ba, bb) of G_k:
/// acc[4 i + j] = fma(r z_a, z_b, acc[4 i + j]) row by row, a = 4 ba + i, b = 4 bb + j.
/// z: rows x E4 (row-major, ld E4); r: rows x kb (ld kb), column kl.
template <class T>
MIXTURA_HD inline void gram_accumulate(const T* z, int E4, const T* r, int kb, int kl, int rows, int ba, int bb,
                                       T* acc) {
  for (int row = 0; row < rows; ++row) gram_add_row(r[row * kb + kl], z + row * E4, ba, bb, acc);
}

/// The end of a run: total[q] += acc[q] (in double), acc[q] = 0.
template <class T>
MIXTURA_HD inline void gram_flush(T* acc, double* total) {
  for (int q = 0; q < 16; ++q) {
    total[q] += static_cast<double>(acc[q]);
    acc[q] = T(0);
  }
}

// ---- moments of hard labels: full and tied ----------------------------------------------------

/// The statistics of labels (one-hot responsibilities) walk, per component, only the tile's rows of
/// that component: N D^2 work instead of the Gram kernel's N K D^2. The order of additions is the
/// Gram kernel's on one-hot rows, so the bits are the same: for G_k, the tile's rows are cut into
/// windows of `window_rows` rows (GramLayout::row_chunk, counted from the tile's first row); within a
/// window the rows labelled k are added in row order by gram_add_row in T (r = w_i), and each window's
/// sum is added to the double total in window order (gram_flush). The rows of other components
/// would add fma(0, z, acc) = acc there, and their windows 0.0 to a total that is never -0.

/// Which of the components [k_first, k_first + nc) a thread block of the label kernels works for a
/// label is: its index there, or nc (none of them; also for rows past the tile's end, label -1).
MIXTURA_HD inline int label_key(std::int32_t label, int k_first, int nc) {
  return label >= k_first && label < k_first + nc ? label - k_first : nc;
}

/// Slots of staged rows per component of a thread block of gram_labels_kernel (at least 1), and the
/// dynamic shared memory they take (z rows of E4 values in T, then a weight in T, then the row's
/// index in the tile as int16 per slot), within `shared_limit` bytes.
struct GramLabelStaging {
  int per_component = 1;
  std::size_t shared_bytes = 0;
};
inline GramLabelStaging gram_label_staging(const GramLayout& g, std::size_t scalar_bytes,
                                           std::size_t shared_limit = 32 * 1024) {
  GramLabelStaging s;
  const std::size_t per_slot = static_cast<std::size_t>(g.E4 + 1) * scalar_bytes + sizeof(std::int16_t);
  std::size_t n = shared_limit / (per_slot * static_cast<std::size_t>(g.kb));
  if (n < 1) n = 1;
  if (n > 64) n = 64;
  s.per_component = static_cast<int>(n);
  s.shared_bytes = per_slot * n * static_cast<std::size_t>(g.kb);
  return s;
}

/// One thread's walk over n staged rows of its component (z: n x E4, ld E4; wt: their weights;
/// tile_row: their indices in the tile, increasing): the order above, with *window the window of the
/// run in acc (-1 before the first row). The caller ends the tile with gram_flush.
template <class T>
MIXTURA_HD inline void gram_label_walk(const T* z, int E4, const T* wt, const std::int16_t* tile_row, int n,
                                       int window_rows, int ba, int bb, T* acc, double* total, int* window) {
  for (int i = 0; i < n; ++i) {
    const int at = tile_row[i] / window_rows;
    if (at != *window) {
      if (*window >= 0) gram_flush(acc, total);
      *window = at;
    }
    gram_add_row(wt[i], z + i * E4, ba, bb, acc);
  }
}

// ---- moments: diagonal and spherical ----------------------------------------------------------

/// One row's share of diag_moments: j < D: a = fma(r, d, a), b = fma(r, d^2, b) (d = x_j - mean);
/// j = D: a += r. The fused multiply-adds are written out so that no compiler's contraction (nvcc's,
/// or the host's under -march=native) changes the bits between the kernels and their host replay.
template <class T>
MIXTURA_HD inline void diag_moment_add(const T* xr, int D, double r, int j, double mean, double* a, double* b) {
  if (j == D) {
    *a += r;
    return;
  }
  const double d = static_cast<double>(xr[j]) - mean;
  *a = fused(r, d, *a);
  *b = fused(r, d * d, *b);
}

/// Over rows [0, rows) of a tile in order, in double: feature j < D of component k gives
/// s1 = sum_i r_i (x_ij - mu_j) and s2 = sum_i r_i (x_ij - mu_j)^2; j = D gives s1 = N_k = sum_i r_i
/// (r: the tile's w r_ik, stride r_stride).
template <class T>
MIXTURA_HD inline void diag_moments(const T* x, int D, const double* r, std::int64_t rows, int j, double mean,
                                    double* s1, double* s2) {
  double a = 0, b = 0;
  for (std::int64_t i = 0; i < rows; ++i) diag_moment_add(x + i * D, D, r[i], j, mean, &a, &b);
  *s1 = a;
  *s2 = b;
}

/// diag_moments of hard labels: only the n rows of component k (tile_row: their indices in the tile,
/// increasing; x: the tile's rows), r = w_i (w: the tile's weights, nullptr: 1), in row order. The
/// other rows would add 0 r d = 0 there (to sums that are never -0): the same bits in N D work
/// instead of N K D.
template <class T>
MIXTURA_HD inline void diag_label_moments(const T* x, int D, const T* w, const std::int16_t* tile_row, int n, int j,
                                          double mean, double* s1, double* s2) {
  double a = 0, b = 0;
  for (int i = 0; i < n; ++i) {
    const std::int64_t row = tile_row[i];
    diag_moment_add(x + row * D, D, w ? static_cast<double>(w[row]) : 1.0, j, mean, &a, &b);
  }
  *s1 = a;
  *s2 = b;
}

// ---- where everything sits in a tile's partial -------------------------------------------------

/// A tile's partial (and the running totals): the row sums, then the Gram blocks (full/tied: 16 per
/// item) or s1 [K x D], s2 [K x D], N [K] (diag/spherical).
struct GmmPartialLayout {
  bool gram = true;
  std::int64_t K = 0, D = 0, n_items = 0;
  static constexpr int kLogLikelihood = 0, kEntropy = 1, kWeight = 2, kHead = 3;
  MIXTURA_HD std::int64_t gram_at(std::int64_t item, int q) const { return kHead + item * 16 + q; }
  MIXTURA_HD std::int64_t s1_at(std::int64_t k, std::int64_t j) const { return kHead + k * D + j; }
  MIXTURA_HD std::int64_t s2_at(std::int64_t k, std::int64_t j) const { return kHead + K * D + k * D + j; }
  MIXTURA_HD std::int64_t nk_at(std::int64_t k) const { return kHead + 2 * K * D + k; }
  MIXTURA_HD std::int64_t width() const { return kHead + (gram ? n_items * 16 : 2 * K * D + K); }
};

inline GmmPartialLayout partial_layout(GmmShape shape, int K, int D, const GramLayout& g) {
  GmmPartialLayout l;
  l.gram = shape == GmmShape::full || shape == GmmShape::tied;
  l.K = K;
  l.D = D;
  l.n_items = l.gram ? g.n_items() : 0;
  return l;
}

/// Moves the totals into nk [K], s1 [K x D] and s2: full/tied K symmetric D x D matrices (row-major,
/// both triangles), diag/spherical K x D.
inline void unpack_totals(const double* totals, const GmmPartialLayout& l, const GramLayout& g, double* nk, double* s1,
                          double* s2) {
  const std::int64_t K = l.K, D = l.D;
  if (!l.gram) {
    for (std::int64_t k = 0; k < K; ++k) {
      nk[k] = totals[l.nk_at(k)];
      for (std::int64_t j = 0; j < D; ++j) {
        s1[k * D + j] = totals[l.s1_at(k, j)];
        s2[k * D + j] = totals[l.s2_at(k, j)];
      }
    }
    return;
  }
  for (std::int64_t k = 0; k < K; ++k)
    for (int p = 0; p < g.n_pairs; ++p) {
      int ba, bb;
      g.pair(p, &ba, &bb);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          const std::int64_t a = 4 * ba + i, b = 4 * bb + j;
          if (a > b || b > D) continue;  // the lower half of diagonal blocks, and padding
          const double v = totals[l.gram_at(k * g.n_pairs + p, 4 * i + j)];
          if (b < D) {
            s2[(k * D + a) * D + b] = v;
            s2[(k * D + b) * D + a] = v;
          } else if (a < D) {
            s1[k * D + a] = v;
          } else {
            nk[k] = v;
          }
        }
    }
}

/// Tiles per group: the rows a pass hands to its kernels at once (a chunk is cut into groups), so that
/// the group's log-densities (K doubles per row) and partials (width doubles per tile) stay within
/// `budget_bytes`. At least one tile.
inline std::int64_t group_tiles(std::int64_t K, std::int64_t width, std::size_t budget_bytes) {
  const std::size_t per_tile = static_cast<std::size_t>(kGmmTileRows * K + width) * sizeof(double);
  const std::int64_t n = static_cast<std::int64_t>(budget_bytes / per_tile);
  return n < 1 ? 1 : (n > 65535 ? 65535 : n);
}

/// Tiles of `rows` rows.
MIXTURA_HD inline std::int64_t tile_count(std::int64_t rows) { return (rows + kGmmTileRows - 1) / kGmmTileRows; }

}  // namespace cuda
}  // namespace mixtura
