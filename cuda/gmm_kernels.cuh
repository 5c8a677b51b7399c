#pragma once
// Gaussian-mixture kernels, templated on the scalar type; instantiated by gmm_float.cu and
// gmm_double.cu through gmm_passes.cuh. The per-thread arithmetic and its order are defined once in
// mixtura/cuda/gmm_reduce.hpp (tested on the host); what reproduces and why:
// - log_density_full_kernel: each y_kj is one fused multiply-add chain over the features in order
//   (the tiling changes where operands come from, never the order); the squared norm adds groups of
//   four columns in column order. A row's values depend on that row alone.
// - normalise_kernel: one thread per row; the tile's row sums by a fixed tree (tile_tree_sum); the
//   lowest log-likelihoods of the tile by a bitonic sort of (value, row), a total order.
// - score_rows_kernel (scoring): one thread per row, score_row (the row's log-sum-exp and argmax).
// - init_resp_kernel (initialisation passes): given responsibilities (init_resp_row), one thread per
//   row; the tile's weight by the same tree.
// - gram_kernel, diag_moments_kernel: each thread owns its outputs and walks the tile's rows in order.
// - gram_labels_kernel, diag_labels_kernel (the statistics of hard labels): the block sorts the tile's
//   rows by label (a counting sort, integer work, stable); each thread owns its outputs of one
//   component and walks that component's rows in row order (gram_label_walk, diag_label_moments):
//   the additions of gram_kernel / diag_moments_kernel on one-hot rows without the zero terms, so the
//   same bits in N D^2 (N D) work instead of N K D^2 (N K D).
// Every tile's partial is written with plain stores, then added to the totals in tile order
// (accumulate_partials). No floating-point atomics anywhere.
#include <cuda_runtime.h>

#include <cstdint>

#include "mixtura/cuda/gmm_reduce.hpp"

namespace mixtura {
namespace cuda {
namespace gmm_kernels {

// ---- log-densities, full and tied -------------------------------------------------------------

// A block: kBM rows x the padded columns of kGroup components, kBN columns ("a page") at a time and
// kBK features at a time; 16 x 16 threads, each kTM rows x kTN columns in registers. kTN = 4 and
// D4 a multiple of 4: a thread's columns belong to one component.
inline constexpr int kBM = 128, kBN = 64, kTM = 8, kTN = 4, kThreads = 256, kGroup = 8;
__device__ inline std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

template <class T>
struct Depth {
  static constexpr int kBK = 16;
};
template <>
struct Depth<double> {
  static constexpr int kBK = 8;
};

/// lp[row * rs + k * ks] = constant_k - sq / 2 (full_log_density_reference) for rows [0, rows) of x
/// (dense, D features) and components [blockIdx.y kGroup, + kGroup). factors: D x (K D4); offset:
/// K D4 (double); c: D.
template <class T>
__global__ void __launch_bounds__(kThreads)
    log_density_full_kernel(const T* __restrict__ x, std::int64_t rows, int D, int K, const T* __restrict__ c,
                            const T* __restrict__ factors, const double* __restrict__ offset,
                            const double* __restrict__ constant, double* __restrict__ lp, std::int64_t rs,
                            std::int64_t ks) {
  constexpr int kBK = Depth<T>::kBK;
  __shared__ T xs[kBK][kBM + 1];  // transposed, centred rows; +1 spreads the stores over the banks
  __shared__ T fs[kBK][kBN];
  __shared__ double part[kBM][kBN / kTN];  // per thread column: its rows' group sums
  __shared__ double sq[kBM][kGroup];
  const int tid = static_cast<int>(threadIdx.x), tx = tid % 16, ty = tid / 16;
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * kBM;
  const int d4 = padded4(D);
  const std::int64_t ld = static_cast<std::int64_t>(K) * d4;
  const int k_first = static_cast<int>(blockIdx.y) * kGroup;
  const int k_end = min(K, k_first + kGroup);
  const std::int64_t col_begin = static_cast<std::int64_t>(k_first) * d4, col_end = static_cast<std::int64_t>(k_end) * d4;
  for (int e = tid; e < kBM * kGroup; e += kThreads) sq[e / kGroup][e % kGroup] = 0.0;

  for (std::int64_t page = col_begin; page < col_end; page += kBN) {
    T acc[kTM][kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = T(0);
    for (int a0 = 0; a0 < D; a0 += kBK) {
      __syncthreads();  // the previous tile has been read
      for (int e = tid; e < kBM * kBK; e += kThreads) {
        const int r = e / kBK, kk = e % kBK, a = a0 + kk;
        const std::int64_t row = row0 + r;
        xs[kk][r] = (row < rows && a < D) ? static_cast<T>(x[row * D + a] - c[a]) : T(0);
      }
      for (int e = tid; e < kBK * kBN; e += kThreads) {
        const int kk = e / kBN, n = e % kBN, a = a0 + kk;
        const std::int64_t col = page + n;
        fs[kk][n] = (a < D && col < col_end) ? factors[a * ld + col] : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kBK; ++kk) {
        T av[kTM], bv[kTN];
#pragma unroll
        for (int i = 0; i < kTM; ++i) av[i] = xs[kk][ty * kTM + i];
#pragma unroll
        for (int j = 0; j < kTN; ++j) bv[j] = fs[kk][tx * kTN + j];
        // Zero padding past D adds fma(0, 0, acc) = acc: the chain over the real features is unchanged.
#pragma unroll
        for (int i = 0; i < kTM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] = fused(av[i], bv[j], acc[i][j]);
      }
    }
    // This thread's four columns are columns g .. g + 3 of one component: one group sum per row.
    const std::int64_t col0 = page + tx * kTN;
    __syncthreads();  // the previous page's sums have been read
#pragma unroll
    for (int i = 0; i < kTM; ++i) {
      double g = 0;
      if (col0 < col_end) {
#pragma unroll
        for (int j = 0; j < kTN; ++j) {
          const double t = static_cast<double>(acc[i][j]) - offset[col0 + j];
          g = fused(t, t, g);
        }
      }
      part[ty * kTM + i][tx] = g;
    }
    __syncthreads();
    // Each (row, component) adds its groups of this page in column order.
    for (int e = tid; e < kBM * kGroup; e += kThreads) {
      const int r = e / kGroup, kl = e % kGroup, k = k_first + kl;
      if (k >= k_end) continue;
      const std::int64_t lo = static_cast<std::int64_t>(k) * d4, hi = lo + d4;
      const int t_lo = lo > page ? static_cast<int>((lo - page) / kTN) : 0;
      const std::int64_t t_hi64 = (hi - page) / kTN;
      const int t_hi = t_hi64 < kBN / kTN ? static_cast<int>(t_hi64) : kBN / kTN;
      double s = sq[r][kl];
      for (int t = t_lo; t < t_hi; ++t) s += part[r][t];
      sq[r][kl] = s;
    }
  }
  __syncthreads();
  // Consecutive threads take consecutive rows of one component (coalesced for the E-step's layout).
  for (int e = tid; e < kBM * kGroup; e += kThreads) {
    const int kl = e / kBM, r = e % kBM, k = k_first + kl;
    const std::int64_t row = row0 + r;
    if (k < k_end && row < rows) lp[row * rs + k * ks] = constant[k] - 0.5 * sq[r][kl];
  }
}

// ---- log-densities, diagonal and spherical ----------------------------------------------------

/// One thread per row, all components (diag_log_density). means: K x D; scale: K x D (diag) or K.
template <class T>
__global__ void log_density_diag_kernel(const T* __restrict__ x, std::int64_t rows, int D, int K, bool spherical,
                                        const double* __restrict__ means, const double* __restrict__ scale,
                                        const double* __restrict__ constant, double* __restrict__ lp, std::int64_t rs,
                                        std::int64_t ks) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  const T* xr = x + row * D;
  for (int k = 0; k < K; ++k)
    lp[row * rs + k * ks] = diag_log_density(xr, means + static_cast<std::int64_t>(k) * D,
                                             scale + static_cast<std::int64_t>(k) * (spherical ? 1 : D), spherical, D,
                                             constant[k]);
}

// ---- normalisation, row sums, lowest log-likelihoods ------------------------------------------

inline constexpr int kNormThreads = static_cast<int>(kGmmTileRows);

/// Block b = tile b of the group: turns lp (layout [k][row], ld) into w r in place; writes the
/// tile's sums of w log p, w H and w into partial[b * width + 0, 1, 2]; if n_low > 0, the n_low
/// lowest (log p, row) of rows with w > 0 into low_key/low_row[b * n_low ...] (+inf: none).
/// first_row: index of the group's row 0 in the data.
template <class T>
__global__ void __launch_bounds__(kNormThreads)
    normalise_kernel(double* __restrict__ lp, std::int64_t ld, std::int64_t rows, int K, const T* __restrict__ w,
                     double* __restrict__ partial, std::int64_t width, int n_low, std::int64_t first_row,
                     double* __restrict__ low_key, std::int64_t* __restrict__ low_row) {
  __shared__ double v[kNormThreads];
  __shared__ std::int64_t vi[kNormThreads];
  const int t = static_cast<int>(threadIdx.x);
  const std::int64_t b = blockIdx.x, row = b * kGmmTileRows + t;
  const bool valid = row < rows;
  double log_p = 0, entropy = 0, wr = 0;
  if (valid) {
    wr = w ? static_cast<double>(w[row]) : 1.0;
    normalise_row(lp + row, ld, K, wr, &log_p, &entropy);
  }
  const double values[3] = {valid ? wr * log_p : 0.0, valid ? wr * entropy : 0.0, wr};
  for (int q = 0; q < 3; ++q) {
    __syncthreads();
    v[t] = values[q];
    for (int s = kNormThreads / 2; s > 0; s /= 2) {  // tile_tree_sum
      __syncthreads();
      if (t < s) v[t] += v[t + s];
    }
    if (t == 0) partial[b * width + q] = v[0];
  }
  if (n_low <= 0) return;
  __syncthreads();
  v[t] = valid && wr > 0 ? log_p : __longlong_as_double(0x7ff0000000000000LL);
  vi[t] = first_row + row;
  for (int k = 2; k <= kNormThreads; k *= 2)
    for (int j = k / 2; j > 0; j /= 2) {
      __syncthreads();
      bitonic_step(v, vi, t, j, k);
    }
  __syncthreads();
  if (t < n_low) {
    low_key[b * n_low + t] = v[t];
    low_row[b * n_low + t] = vi[t];
  }
}

// ---- scoring: log p(x) and the most probable component per row --------------------------------

/// One thread per row of the group: score_row on lp (layout [k][row], ld) into log_p[row] and
/// labels[row] (either nullptr). Templated on the data's scalar type only to be instantiated with
/// its pass, once per .cu.
template <class T>
__global__ void score_rows_kernel(const double* __restrict__ lp, std::int64_t ld, std::int64_t rows, int K,
                                  double* __restrict__ log_p, std::int32_t* __restrict__ labels) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  score_row(lp + row, ld, K, log_p ? log_p + row : nullptr, labels ? labels + row : nullptr);
}

// ---- given responsibilities (initialisation passes) -------------------------------------------

/// Block b = tile b of the group: lp (layout [k][row], ld) = each row's given responsibilities times its
/// weight (init_resp_row: ones or random by the row's index in the data, first_row + row); the tile's
/// sum of w into partial[b * width + kWeight] by normalise_kernel's tree, 0 for its log-likelihood and
/// entropy. lp = nullptr: the tile's weight alone (hard labels, whose moments the label kernels take).
template <class T>
__global__ void __launch_bounds__(kNormThreads)
    init_resp_kernel(double* __restrict__ lp, std::int64_t ld, std::int64_t rows, int K, const T* __restrict__ w,
                     GmmRespSource src, std::int64_t first_row, double* __restrict__ partial,
                     std::int64_t width) {
  __shared__ double v[kNormThreads];
  const int t = static_cast<int>(threadIdx.x);
  const std::int64_t b = blockIdx.x, row = b * kGmmTileRows + t;
  double wr = 0;
  if (row < rows) {
    wr = w ? static_cast<double>(w[row]) : 1.0;
    if (lp) init_resp_row(src, 0, first_row + row, K, wr, lp + row, ld);
  }
  v[t] = wr;
  for (int s = kNormThreads / 2; s > 0; s /= 2) {  // tile_tree_sum
    __syncthreads();
    if (t < s) v[t] += v[t + s];
  }
  if (t == 0) {
    partial[b * width + GmmPartialLayout::kLogLikelihood] = 0.0;
    partial[b * width + GmmPartialLayout::kEntropy] = 0.0;
    partial[b * width + GmmPartialLayout::kWeight] = v[0];
  }
}

// ---- moments ----------------------------------------------------------------------------------

/// A Gram kernel thread's item (GramLayout::item_of; mine: whether it has one) and its sums: acc in T
/// over a run of rows, total in double.
template <class T>
struct GramThread {
  int k, kl, p, ba = 0, bb = 0;  // declared before mine, whose initialiser writes k, kl, p
  bool mine;
  T acc[16];
  double total[16];
  __device__ GramThread(const GramLayout& g, std::int64_t b, int t) : mine(g.item_of(b, t, &k, &kl, &p)) {
    if (mine) g.pair(p, &ba, &bb);
#pragma unroll
    for (int q = 0; q < 16; ++q) {
      acc[q] = T(0);
      total[q] = 0.0;
    }
  }
  /// The totals into a tile's partial `out`, if the thread has an item.
  __device__ void store(const GramLayout& g, const GmmPartialLayout& l, double* out) const {
    if (!mine) return;
    const std::int64_t item = static_cast<std::int64_t>(k) * g.n_pairs + p;
#pragma unroll
    for (int q = 0; q < 16; ++q) out[l.gram_at(item, q)] = total[q];
  }
};

/// Block (blockIdx.x, tile blockIdx.y): the Gram blocks of its items over the tile's rows, staged
/// g.row_chunk rows at a time, each run added in T (gram_accumulate) and then to double.
/// R: the group's w r (layout [k][row], ld); results at partial[tile * width + gram_at(item, q)].
template <class T>
__global__ void __launch_bounds__(GramLayout::kThreads)
    gram_kernel(const T* __restrict__ x, std::int64_t rows, const T* __restrict__ c, const double* __restrict__ R,
                std::int64_t ld, GramLayout g, GmmPartialLayout l, double* __restrict__ partial) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* z = reinterpret_cast<T*>(shared_raw);
  T* r = z + g.row_chunk * g.E4;
  const int t = static_cast<int>(threadIdx.x), D = g.D;
  const std::int64_t b = blockIdx.x, tile = blockIdx.y;
  const std::int64_t row_begin = tile * kGmmTileRows;
  const std::int64_t tile_rows = min64(kGmmTileRows, rows - row_begin);
  GramThread<T> my(g, b, t);
  const int k_first = g.first_component(b);
  for (std::int64_t r0 = 0; r0 < tile_rows; r0 += g.row_chunk) {
    const int n = static_cast<int>(min64(g.row_chunk, tile_rows - r0));
    __syncthreads();  // the previous run has been read
    for (int e = t; e < g.row_chunk * g.E4; e += GramLayout::kThreads) {
      const int i = e / g.E4, a = e % g.E4;
      const std::int64_t row = row_begin + r0 + i;
      T v = T(0);
      if (i < n) v = a < D ? static_cast<T>(x[row * D + a] - c[a]) : (a == D ? T(1) : T(0));
      z[e] = v;
    }
    for (int e = t; e < g.row_chunk * g.kb; e += GramLayout::kThreads) {
      const int i = e / g.kb, kk = k_first + e % g.kb;
      r[e] = (i < n && kk < g.K) ? static_cast<T>(R[kk * ld + row_begin + r0 + i]) : T(0);
    }
    __syncthreads();
    if (my.mine) {
      gram_accumulate(z, g.E4, r, g.kb, my.kl, n, my.ba, my.bb, my.acc);
      gram_flush(my.acc, my.total);
    }
  }
  my.store(g, l, partial + tile * l.width());
}

/// Item k (D + 1) + j of the diagonal moments into a tile's partial `out`: N_k (j = D), else s1 and s2.
__device__ inline void store_diag_item(double* out, const GmmPartialLayout& l, int k, int j, int D, double s1,
                                       double s2) {
  if (j == D) {
    out[l.nk_at(k)] = s1;
  } else {
    out[l.s1_at(k, j)] = s1;
    out[l.s2_at(k, j)] = s2;
  }
}

/// Tile blockIdx.x; thread e = blockIdx.y blockDim.x + threadIdx.x takes item e = k (D + 1) + j
/// (diag_moments around mean_k); results at partial[tile * width + s1_at / s2_at / nk_at].
template <class T>
__global__ void diag_moments_kernel(const T* __restrict__ x, std::int64_t rows, int D, int K,
                                    const double* __restrict__ means, const double* __restrict__ R, std::int64_t ld,
                                    GmmPartialLayout l, double* __restrict__ partial) {
  const std::int64_t tile = blockIdx.x;
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::int64_t>(K) * (D + 1)) return;
  const int k = static_cast<int>(e / (D + 1)), j = static_cast<int>(e % (D + 1));
  const std::int64_t row_begin = tile * kGmmTileRows;
  const std::int64_t n = min64(kGmmTileRows, rows - row_begin);
  double s1, s2;
  diag_moments(x + row_begin * D, D, R + k * ld + row_begin, n, j,
               j < D ? means[static_cast<std::int64_t>(k) * D + j] : 0.0, &s1, &s2);
  store_diag_item(partial + tile * l.width(), l, k, j, D, s1, s2);
}

// ---- moments of hard labels (the statistics of K-means labels) ---------------------------------

inline constexpr int kLabelThreads = 256;       // diag_labels_kernel (gram_labels_kernel: GramLayout::kThreads)
inline constexpr int kMaxGramLabelKeys = 32;    // GramLayout::kb <= 32 components a thread block
inline constexpr int kMaxDiagLabelKeys = 129;   // components of 256 consecutive items k (D + 1) + j, D >= 1
static_assert(kGmmTileRows == 32 * 32, "the label sort takes a tile as 32 chunks of 32 rows");
static_assert(GramLayout::kThreads % 32 == 0 && kLabelThreads / 2 + 1 <= kMaxDiagLabelKeys, "label sort sizes");

/// A tile's rows of the components [k_first, k_first + nc), sorted by label and stably:
/// order[start[j] .. start[j + 1]) are the tile's rows of component k_first + j, increasing.
template <int kMaxKeys>
struct LabelSort {
  int count[kMaxKeys][32];  ///< per label and chunk of 32 rows: its rows, then those in earlier chunks
  int start[kMaxKeys + 1];
  std::int16_t order[kGmmTileRows];
};

/// The block's counting sort of a tile (labels: the tile's, tile_rows of them) by label_key, integer
/// work only: the warps count each label in chunks of 32 rows (__match_any_sync), one thread per label
/// scans its chunk counts, thread 0 the labels' totals; a row's place is then its label's start, the
/// label's rows in earlier chunks and the lanes before it in its chunk with the same label.
template <int kMaxKeys>
__device__ inline void sort_tile_by_label(LabelSort<kMaxKeys>& s, const std::int32_t* __restrict__ labels,
                                          std::int64_t tile_rows, int k_first, int nc) {
  const int t = static_cast<int>(threadIdx.x), lane = t % 32, n_warps = static_cast<int>(blockDim.x) / 32;
  for (int e = t; e < nc * 32; e += static_cast<int>(blockDim.x)) s.count[e / 32][e % 32] = 0;
  __syncthreads();
  for (int c = t / 32; c < 32; c += n_warps) {
    const int row = c * 32 + lane;
    const int key = label_key(row < tile_rows ? labels[row] : -1, k_first, nc);
    const unsigned same = __match_any_sync(0xffffffffu, key);
    if (key < nc && lane == __ffs(same) - 1) s.count[key][c] = __popc(same);
  }
  __syncthreads();
  if (t < nc) {
    int sum = 0;
    for (int c = 0; c < 32; ++c) {
      const int n = s.count[t][c];
      s.count[t][c] = sum;
      sum += n;
    }
    s.start[t + 1] = sum;
  }
  __syncthreads();
  if (t == 0) {
    s.start[0] = 0;
    for (int j = 0; j < nc; ++j) s.start[j + 1] += s.start[j];
  }
  __syncthreads();
  for (int c = t / 32; c < 32; c += n_warps) {
    const int row = c * 32 + lane;
    const int key = label_key(row < tile_rows ? labels[row] : -1, k_first, nc);
    const unsigned same = __match_any_sync(0xffffffffu, key);
    if (key < nc) s.order[s.start[key] + s.count[key][c] + __popc(same & ((1u << lane) - 1u))] = static_cast<std::int16_t>(row);
  }
  __syncthreads();
}

/// gram_kernel's moments for one-hot responsibilities of `labels` (the group's; w the group's weights
/// or nullptr), N D^2 work: block (blockIdx.x, tile blockIdx.y) sorts the tile's rows of its kb
/// components by label, then stages st.per_component rows of each component a round and every thread
/// walks its own component's rows (gram_label_walk: the Gram kernel's order, the same bits). Results
/// at partial[tile * width + gram_at(item, q)], every item of the block's threads.
template <class T>
__global__ void __launch_bounds__(GramLayout::kThreads)
    gram_labels_kernel(const T* __restrict__ x, std::int64_t rows, const T* __restrict__ c,
                       const std::int32_t* __restrict__ labels, const T* __restrict__ w, GramLayout g,
                       GramLabelStaging st, GmmPartialLayout l, double* __restrict__ partial) {
  __shared__ LabelSort<kMaxGramLabelKeys> sorted;
  __shared__ int most;  // rows of the block's most frequent component
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int Q = st.per_component, slots = g.kb * Q;
  T* z = reinterpret_cast<T*>(shared_raw);
  T* wt = z + slots * g.E4;
  std::int16_t* tile_row = reinterpret_cast<std::int16_t*>(wt + slots);
  const int t = static_cast<int>(threadIdx.x), D = g.D;
  const std::int64_t b = blockIdx.x, tile = blockIdx.y, row_begin = tile * kGmmTileRows;
  const std::int64_t tile_rows = min64(kGmmTileRows, rows - row_begin);
  const int k_first = g.first_component(b), nc = min(g.kb, g.K - k_first);
  sort_tile_by_label(sorted, labels + row_begin, tile_rows, k_first, nc);
  if (t == 0) {
    int m = 0;
    for (int j = 0; j < nc; ++j) m = max(m, sorted.start[j + 1] - sorted.start[j]);
    most = m;
  }
  __syncthreads();
  GramThread<T> my(g, b, t);
  const int n_mine = my.mine ? sorted.start[my.kl + 1] - sorted.start[my.kl] : 0;
  int window = -1;
  for (int done = 0; done < most; done += Q) {
    __syncthreads();  // the previous round has been read
    for (int e = t; e < slots; e += GramLayout::kThreads) {
      const int j = e / Q, i = done + e % Q;
      const bool valid = j < nc && i < sorted.start[j + 1] - sorted.start[j];
      const int r = valid ? sorted.order[sorted.start[j] + i] : 0;  // an unused slot stages row 0, never walked
      tile_row[e] = static_cast<std::int16_t>(r);
      wt[e] = valid ? (w ? w[row_begin + r] : T(1)) : T(0);
    }
    __syncthreads();
    for (int e = t; e < slots * g.E4; e += GramLayout::kThreads) {
      const int s = e / g.E4, a = e % g.E4;
      const std::int64_t row = row_begin + tile_row[s];
      z[e] = a < D ? static_cast<T>(x[row * D + a] - c[a]) : (a == D ? T(1) : T(0));
    }
    __syncthreads();
    const int n = min(Q, n_mine - done);
    if (n > 0)
      gram_label_walk(z + my.kl * Q * g.E4, g.E4, wt + my.kl * Q, tile_row + my.kl * Q, n, g.row_chunk, my.ba, my.bb,
                      my.acc, my.total, &window);
  }
  if (!my.mine) return;
  gram_flush(my.acc, my.total);
  my.store(g, l, partial + tile * l.width());
}

/// diag_moments_kernel's moments for one-hot responsibilities of `labels` (the group's; w the group's
/// weights or nullptr), N D work: tile blockIdx.x, items e = blockIdx.y blockDim.x + threadIdx.x as
/// there; the block sorts the tile's rows of its items' components by label and thread (k, j) walks
/// component k's rows in row order (diag_label_moments: the same bits as diag_moments).
template <class T>
__global__ void __launch_bounds__(kLabelThreads)
    diag_labels_kernel(const T* __restrict__ x, std::int64_t rows, int D, int K, const double* __restrict__ means,
                       const std::int32_t* __restrict__ labels, const T* __restrict__ w, GmmPartialLayout l,
                       double* __restrict__ partial) {
  __shared__ LabelSort<kMaxDiagLabelKeys> sorted;
  const std::int64_t tile = blockIdx.x, row_begin = tile * kGmmTileRows;
  const std::int64_t tile_rows = min64(kGmmTileRows, rows - row_begin);
  const std::int64_t n_items = static_cast<std::int64_t>(K) * (D + 1);
  const std::int64_t e0 = static_cast<std::int64_t>(blockIdx.y) * blockDim.x, e = e0 + threadIdx.x;
  const int k_first = static_cast<int>(e0 / (D + 1));
  const int nc = static_cast<int>((min64(n_items, e0 + blockDim.x) - 1) / (D + 1)) - k_first + 1;
  sort_tile_by_label(sorted, labels + row_begin, tile_rows, k_first, nc);
  if (e >= n_items) return;
  const int k = static_cast<int>(e / (D + 1)), j = static_cast<int>(e % (D + 1)), kl = k - k_first;
  double s1, s2;
  diag_label_moments(x + row_begin * D, D, w ? w + row_begin : nullptr, sorted.order + sorted.start[kl],
                     sorted.start[kl + 1] - sorted.start[kl], j,
                     j < D ? means[static_cast<std::int64_t>(k) * D + j] : 0.0, &s1, &s2);
  store_diag_item(partial + tile * l.width(), l, k, j, D, s1, s2);
}

}  // namespace gmm_kernels
}  // namespace cuda
}  // namespace mixtura
