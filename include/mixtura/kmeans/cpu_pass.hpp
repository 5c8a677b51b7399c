#pragma once
/// K-means data passes on the CPU: the only code here that touches all N rows.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mixtura/backend/cpu.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/simd.hpp"
#include "mixtura/kmeans/stats.hpp"

namespace mixtura {
namespace detail {

/// Rows per block of the assignment pass. Fixed (never derived from the thread count), so results
/// do not depend on it; 256 rows keep a block and its K distances in L2 for K up to a few hundred.
inline constexpr Index kKMeansBlock = 256;

/// Exact squared distance, accumulated in double (no cancellation of the expanded form). Eight
/// partial sums in a fixed order: vectorisable without -ffast-math, and the same bits every run.
template <class T>
inline double sq_dist(const T* x, const T* c, Index d) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  Index j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double t = static_cast<double>(x[j + l]) - static_cast<double>(c[j + l]);
      acc[l] += t * t;
    }
  for (int l = 0; j < d; ++j, ++l) {
    const double t = static_cast<double>(x[j]) - static_cast<double>(c[j]);
    acc[l] += t * t;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// sq_dist(x[m], c[m], d) for M pairs at once, each with sq_dist's arithmetic in sq_dist's order (the
/// same bits): M independent chains of additions instead of one, so that the pipes do not wait on
/// one chain's latency (k-means++'s passes call it per row; one sq_dist at a time ran at a tenth of the
/// machine's multiply-add rate). c: doubles (a centre or candidate converted once: the same values).
/// d must be a multiple of 8 (pairs_fit): sq_dist's scalar tail is fused into multiply-adds or not
/// as the compiler's vectoriser decides per level, which a vector tail cannot follow bit for bit.
template <int M, bool kSameX = false, class T>
inline void sq_dist_pairs(const T* const* x, const double* const* c, Index d, double* out) {
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
  assert(d % 8 == 0 && "sq_dist_pairs: d must be a multiple of 8 (pairs_fit)");
  // sq_dist's eight lanes as one vector per pair, kept in registers. kSameX: every x[m] is x[0]
  // (one row against several centres), converted once.
  typedef double V __attribute__((vector_size(64)));
  typedef T VT __attribute__((vector_size(8 * sizeof(T))));
  // 8 values of T at p, in double (a lambda returning V would be a call with a 64-byte vector
  // argument ABI below AVX-512: GCC warns, -Wpsabi).
  VT raw;
#define MIXTURA_LOAD8(out, p)        \
  std::memcpy(&raw, (p), sizeof raw); \
  const V out = __builtin_convertvector(raw, V)
  V acc[M];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) acc[m] = V{};
  Index j = 0;
  for (; j + 8 <= d; j += 8) {
    MIXTURA_LOAD8(x0, x[0] + j);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      V cv;
      std::memcpy(&cv, c[m] + j, sizeof cv);
      V t;
      if (kSameX || m == 0) {
        t = x0 - cv;
      } else {
        MIXTURA_LOAD8(xm, x[m] + j);
        t = xm - cv;
      }
      acc[m] += t * t;
    }
  }
  // sq_dist's sum of the lanes, ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), for all pairs at
  // once: the 8 x 8 block of lanes transposed (pairs past M are zeros), so that b[l][m] = acc[m][l],
  // then the same additions vector by vector.
  V a[8], b[8];
#pragma GCC unroll 8
  for (int m = 0; m < 8; ++m) a[m] = m < M ? acc[m] : V{};
  transpose8(a, b);
  const V sum = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m) out[m] = sum[m];
#undef MIXTURA_LOAD8
#else
  for (int m = 0; m < M; ++m) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Index j = 0;
    for (; j + 8 <= d; j += 8)
      for (int l = 0; l < 8; ++l) {
        const double t = static_cast<double>(x[m][j + l]) - c[m][j + l];
        acc[l] += t * t;
      }
    for (int l = 0; j < d; ++j, ++l) {
      const double t = static_cast<double>(x[m][j]) - c[m][j];
      acc[l] += t * t;
    }
    out[m] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
#endif
}

/// Whether sq_dist_pairs takes rows of d features (else the callers run sq_dist pair by pair).
inline constexpr bool pairs_fit(Index d) {
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
  return d % 8 == 0;
#else
  return d < 0;  // the scalar path: sq_dist itself
#endif
}

/// Pairs per sq_dist_pairs call: chains enough to cover the multiply-add latency, few enough that the
/// accumulators (M x 8 doubles) stay in registers.
inline constexpr int kDistPairs = MIXTURA_SIMD_BYTES >= 64 ? 8 : 4;

/// Calls f(M) with a compile-time M = kDistPairs for each full group of the `count` pairs and with the
/// remainder (1 .. kDistPairs - 1) for the last: f(std::integral_constant<int, M>{}, first).
template <class F>
inline void for_pair_groups(Index count, F&& f) {
  Index p = 0;
  for (; p + kDistPairs <= count; p += kDistPairs) f(std::integral_constant<int, kDistPairs>{}, p);
  switch (count - p) {
#define MIXTURA_PAIRS_CASE(n) \
  case n: if constexpr (n < kDistPairs) f(std::integral_constant<int, n>{}, p); break;
    MIXTURA_PAIRS_CASE(1) MIXTURA_PAIRS_CASE(2) MIXTURA_PAIRS_CASE(3) MIXTURA_PAIRS_CASE(4)
    MIXTURA_PAIRS_CASE(5) MIXTURA_PAIRS_CASE(6) MIXTURA_PAIRS_CASE(7)
#undef MIXTURA_PAIRS_CASE
    default: break;
  }
}

/// Calls f(std::integral_constant<int, D>{}) for 1 <= d <= 16 and f(std::integral_constant<int, 0>{})
/// otherwise, so that per-row loops over the features of low-dimensional (sensor) data are unrolled.
template <class F>
inline void dispatch_dim(Index d, F&& f) {
  switch (d) {
#define MIXTURA_DIM_CASE(n) \
  case n: return f(std::integral_constant<int, n>{});
    MIXTURA_DIM_CASE(1) MIXTURA_DIM_CASE(2) MIXTURA_DIM_CASE(3) MIXTURA_DIM_CASE(4)
    MIXTURA_DIM_CASE(5) MIXTURA_DIM_CASE(6) MIXTURA_DIM_CASE(7) MIXTURA_DIM_CASE(8)
    MIXTURA_DIM_CASE(9) MIXTURA_DIM_CASE(10) MIXTURA_DIM_CASE(11) MIXTURA_DIM_CASE(12)
    MIXTURA_DIM_CASE(13) MIXTURA_DIM_CASE(14) MIXTURA_DIM_CASE(15) MIXTURA_DIM_CASE(16)
#undef MIXTURA_DIM_CASE
    default: return f(std::integral_constant<int, 0>{});
  }
}

/// The per-row tail of the assignment pass, in double whatever T is: adds w * (x - c)^2 to the
/// distortion lanes (summed over rows lane-wise, so no per-row horizontal sum; reduce() adds the lanes
/// in a fixed order) and, when `sum` is given, w * x to the cluster's sum (kSums = false: distortion
/// only, for prediction and scoring). kN features at a time (4 with AVX, else 2).
template <bool kSums = true>
struct RowAccumulator {
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
  static constexpr int kN = MIXTURA_SIMD_BYTES >= 32 ? 4 : 2;
  typedef double DV __attribute__((vector_size(kN * sizeof(double))));
  DV lanes[2] = {DV{}, DV{}};

  template <class T>
  static DV load(const T* p) {
    return load_widened<DV>(p);
  }
#endif
  double rest[4] = {0, 0, 0, 0};

  template <class T>
  void add(const T* x, const T* c, double* sum, Index d, double w) {
    Index j = 0;
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
    const DV wv = w - DV{};
    DV l0 = lanes[0], l1 = lanes[1];  // in registers: an indexed lanes[] would live in memory
    auto chunk = [&](Index at, DV& lane) {
      const DV xv = load(x + at);
      const DV t = xv - load(c + at);
      lane += wv * (t * t);
      if constexpr (kSums) {
        DV s;
        std::memcpy(&s, sum + at, sizeof s);
        s += wv * xv;
        std::memcpy(sum + at, &s, sizeof s);
      }
    };
    for (; j + 2 * kN <= d; j += 2 * kN) {
      chunk(j, l0);
      chunk(j + kN, l1);
    }
    if (j + kN <= d) {
      chunk(j, l0);
      j += kN;
    }
    lanes[0] = l0;
    lanes[1] = l1;
#endif
    for (; j < d; ++j) {  // the last features (all of them on the scalar path)
      const double xj = static_cast<double>(x[j]);
      const double t = xj - static_cast<double>(c[j]);
      rest[j & 3] += w * (t * t);
      if constexpr (kSums) sum[j] += w * xj;
    }
  }
  double reduce() const {
    double total = (rest[0] + rest[1]) + (rest[2] + rest[3]);
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
    const DV v = lanes[0] + lanes[1];
    for (int l = 0; l < kN; ++l) total += v[l];
#endif
    return total;
  }
};

/// Centres prepared for the expanded distance ||c - s||^2 - 2 (x - s).(c - s) (used for the argmin
/// only), where s is the centres' mean: rows and centres far from the origin (a 1e5 offset in float)
/// would otherwise cancel ||x||^2 against 2 x.c and lose every digit the argmin needs.
/// -2 (C - s)^T stored D x K row-major, and ||c_k - s||^2.
template <class T>
struct PreparedCenters {
  Index n_clusters, n_features;
  std::vector<T> shift;         ///< [d] = mean_k c_k[d] (argmin_shift)
  std::vector<T> minus_two_ct;  ///< [d * K + k] = -2 (c_k[d] - shift[d])
  std::vector<T> sq_norms;      ///< [k] = ||c_k - shift||^2
  explicit PreparedCenters(const RowMatrix<T>& C)
      : n_clusters(C.rows()), n_features(C.cols()), shift(static_cast<std::size_t>(C.cols())),
        minus_two_ct(static_cast<std::size_t>(C.size())), sq_norms(static_cast<std::size_t>(C.rows())) {
    argmin_shift(C.data(), n_clusters, n_features, shift.data());
    for (Index k = 0; k < n_clusters; ++k) {
      T norm = 0;
      for (Index d = 0; d < n_features; ++d) {
        const T c = C(k, d) - shift[d];
        minus_two_ct[d * n_clusters + k] = T(-2) * c;
        norm += c * c;
      }
      sq_norms[k] = norm;
    }
#if !(MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD))
    // The scalar path's GEMM rounds a centre's column by its position: a repeated centre is left
    // out of the argmin, so that its tie with the first copy is exact (the first wins).
    std::unordered_map<std::string, Index> first;
    repeated.assign(static_cast<std::size_t>(n_clusters), 0);
    for (Index k = 0; k < n_clusters; ++k) {
      std::string key(reinterpret_cast<const char*>(C.row(k).data()), static_cast<std::size_t>(n_features) * sizeof(T));
      repeated[static_cast<std::size_t>(k)] = !first.emplace(std::move(key), k).second;
    }
#endif
  }
  std::vector<char> repeated;  ///< [k]: centre k equals an earlier one bit for bit (scalar path only)
};

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)

/// Row vectors per tile and centres per tile of the fused distance-argmin kernel: 2 x 12
/// accumulators fill AVX-512's 32 registers, 2 x 6 the 16 of AVX2/SSE (with two row vectors a
/// feature step is 2 + 6 loads for 12 FMAs, where 1 x 12 was 13 loads: load-bound on two load
/// ports; the measurement is in bench/RESULTS.md).
inline constexpr int kRowVecs = 2;
inline constexpr int kCenterTile = MIXTURA_SIMD_BYTES == 64 ? 12 : 6;

/// Working memory of the nearest-centre search: the block transposed (D x rows, padded to whole
/// tiles) and the winning index per row. The padding lanes hold zeros at first and later whatever
/// an earlier block of the same pass left there (a thread reuses its scratch): their distances are
/// computed lane by lane and never read. The row pitch `ld` is one tile longer than the
/// rows need: a pitch of 256 floats (1 KiB) would put a tile's D feature rows into 4 of the 64 L1
/// sets, where they evict each other and the centres.
template <class T>
struct NearestScratch {
  static constexpr Index kTileRows = kRowVecs * Simd<T>::kLanes;
  Index ld;
  std::vector<T> xt;
  std::vector<std::int32_t> arg;
  std::vector<T> best, second;  ///< with kSecond: each row's smallest and second smallest expanded distance
  NearestScratch(Index block, Index n_features)
      : ld((block + kTileRows - 1) / kTileRows * kTileRows + kTileRows),
        xt(static_cast<std::size_t>(ld * n_features), T(0)), arg(static_cast<std::size_t>(ld)),
        best(static_cast<std::size_t>(ld)), second(static_cast<std::size_t>(ld)) {}
};

/// Distances of one tile of rows to centres [k0, k0 + KT), folded into the running argmin.
/// Centres are visited in increasing order with a strict '<': ties go to the lowest index.
/// kSecond: also the running second smallest (a tie with the best makes it equal to the best).
template <class T, int KT, bool kSecond>
inline void nearest_tile(const T* xt, Index ld, Index D, const PreparedCenters<T>& pc, Index k0,
                         typename Simd<T>::Vec* best, typename Simd<T>::IVec* arg, typename Simd<T>::Vec* second) {
  using S = Simd<T>;
  using Vec = typename S::Vec;
  constexpr int L = S::kLanes;
  const Index K = pc.n_clusters;
  Vec acc[kRowVecs][KT];
  for (int v = 0; v < kRowVecs; ++v)
    for (int j = 0; j < KT; ++j) acc[v][j] = Vec{};
  for (Index d = 0; d < D; ++d) {
    Vec x[kRowVecs];
    for (int v = 0; v < kRowVecs; ++v) x[v] = S::load(xt + d * ld + v * L);
    const T* c = pc.minus_two_ct.data() + d * K + k0;
    for (int j = 0; j < KT; ++j) {
      const Vec cj = S::broadcast(c[j]);
      for (int v = 0; v < kRowVecs; ++v) acc[v][j] += x[v] * cj;
    }
  }
  for (int j = 0; j < KT; ++j) {
    const Vec norm = S::broadcast(pc.sq_norms[k0 + j]);
    const auto idx = S::ibroadcast(static_cast<typename S::Int>(k0 + j));
    for (int v = 0; v < kRowVecs; ++v) {
      const Vec dist = acc[v][j] + norm;
      const auto closer = dist < best[v];
      if constexpr (kSecond) second[v] = closer ? best[v] : (dist < second[v] ? dist : second[v]);
      best[v] = closer ? dist : best[v];
      arg[v] = closer ? idx : arg[v];
    }
  }
}

template <class T, bool kSecond, int KT = kCenterTile>
inline void nearest_tail(int kt, const T* xt, Index ld, Index D, const PreparedCenters<T>& pc, Index k0,
                         typename Simd<T>::Vec* best, typename Simd<T>::IVec* arg, typename Simd<T>::Vec* second) {
  if constexpr (KT > 1) {
    if (kt < KT) return nearest_tail<T, kSecond, KT - 1>(kt, xt, ld, D, pc, k0, best, arg, second);
  }
  nearest_tile<T, KT, kSecond>(xt, ld, D, pc, k0, best, arg, second);
}

/// For rows [begin, end): index of the nearest centre of each row (expanded distance, vectorised
/// across rows, centres streamed from L1), returned in s.arg[0 .. end - begin). kSecond: also the
/// smallest and second smallest expanded distance in s.best and s.second (the labels are the same).
template <class T, bool kSecond = false>
MIXTURA_NOINLINE const std::int32_t* nearest_centers_block(MatrixView<T> X, const PreparedCenters<T>& pc, NearestScratch<T>& s,
                                                 Index begin, Index end) {
  using S = Simd<T>;
  constexpr int L = S::kLanes;
  const Index rows = end - begin, D = X.cols, K = pc.n_clusters, ld = s.ld;
  transpose_rows(X.row(begin), X.stride, rows, D, pc.shift.data(), s.xt.data(), ld);
  for (Index r0 = 0; r0 < rows; r0 += NearestScratch<T>::kTileRows) {
    typename S::Vec best[kRowVecs], second[kRowVecs];
    typename S::IVec arg[kRowVecs];
    for (int v = 0; v < kRowVecs; ++v) {
      best[v] = second[v] = S::broadcast(std::numeric_limits<T>::infinity());
      arg[v] = S::ibroadcast(0);
    }
    const T* xt = s.xt.data() + r0;
    for (Index k0 = 0; k0 < K; k0 += kCenterTile)
      nearest_tail<T, kSecond>(static_cast<int>(std::min<Index>(kCenterTile, K - k0)), xt, ld, D, pc, k0, best, arg,
                               second);
    for (int v = 0; v < kRowVecs; ++v)
      for (int l = 0; l < L; ++l) {
        s.arg[r0 + v * L + l] = static_cast<std::int32_t>(arg[v][l]);
        if constexpr (kSecond) {
          s.best[r0 + v * L + l] = best[v][l];
          s.second[r0 + v * L + l] = second[v][l];
        }
      }
  }
  return s.arg.data();
}

#else  // scalar path: Eigen GEMM of the block against all centres, then a per-row argmin

template <class T>
struct NearestScratch {
  RowMatrix<T> moved, dots;  ///< the block's rows minus the shift; their products with -2 (C - s)^T
  std::vector<std::int32_t> arg;
  std::vector<T> best, second;  ///< as on the vector path (kSecond)
  NearestScratch(Index block, Index n_features)
      : moved(block, n_features), dots(block, 0), arg(static_cast<std::size_t>(block)),
        best(static_cast<std::size_t>(block)), second(static_cast<std::size_t>(block)) {}
};

template <class T, bool kSecond = false>
MIXTURA_NOINLINE const std::int32_t* nearest_centers_block(MatrixView<T> X, const PreparedCenters<T>& pc, NearestScratch<T>& s,
                                                 Index begin, Index end) {
  const Index rows = end - begin, K = pc.n_clusters;
  if (s.dots.cols() != K) s.dots.resize(s.dots.rows(), K);
  const Eigen::Map<const RowMatrix<T>> ct(pc.minus_two_ct.data(), pc.n_features, K);
  for (Index r = 0; r < rows; ++r)
    for (Index d = 0; d < pc.n_features; ++d) s.moved(r, d) = X.row(begin + r)[d] - pc.shift[d];
  s.dots.topRows(rows).noalias() = s.moved.topRows(rows) * ct;
  for (Index r = 0; r < rows; ++r) {
    Index best = 0;
    T best_v = std::numeric_limits<T>::infinity();
    for (Index k = 0; k < K; ++k) {
      if (pc.repeated[static_cast<std::size_t>(k)]) continue;
      const T v = pc.sq_norms[k] + s.dots(r, k);
      if (v < best_v) {
        best_v = v;
        best = k;
      }
    }
    s.arg[r] = static_cast<std::int32_t>(best);
    if constexpr (kSecond) {  // over every other centre, repeated ones too: they may part later
      T second_v = std::numeric_limits<T>::infinity();
      for (Index k = 0; k < K; ++k)
        if (k != best) second_v = std::min<T>(second_v, pc.sq_norms[k] + s.dots(r, k));
      s.best[r] = best_v;
      s.second[r] = second_v;
    }
  }
  return s.arg.data();
}

#endif

/// Folds rows whose nearest centre is known into the K-means statistics, row by row: each cluster's
/// sums receive its rows in row order. The distortion goes to four sets of lanes by row index mod 4,
/// so that consecutive rows do not wait on each other's addition (a fixed order: the same bits for
/// any thread count). Raw pointers and local copies only: nothing a store could alias.
/// DC > 0: the feature count as a compile-time constant. centers_d: the centres in double (K x D).
/// w == nullptr: unit weights (the cluster weights are then filled in from the counts by the caller).
template <int DC, class T>
MIXTURA_NOINLINE void fold_assigned_rows(const T* x, Index stride, const T* w, const std::int32_t* arg, Index rows,
                                     const double* centers_d, Index d_runtime, std::int32_t* labels, KMeansStats& s,
                                     Index prefetch_rows) {
  const Index d = DC > 0 ? Index{DC} : d_runtime;
  double* const weight = s.weight.data();
  Index* const count = s.count.data();
  double* const sums = s.sums.data();

  std::int32_t changed = 0;  // vectorisable: no branch, no per-row store to the statistics
  for (Index r = 0; r < rows; ++r) {
    changed += labels[r] != arg[r];
    labels[r] = arg[r];
  }
  s.n_changed += changed;

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
  constexpr int kN = MIXTURA_SIMD_BYTES / static_cast<int>(sizeof(double));
  typedef double DV __attribute__((vector_size(kN * sizeof(double))));
#else
  constexpr int kN = 1;
  typedef double DV;
#endif
  auto load_d = [](const double* p) {
    DV v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  auto load_x = [](const T* p) {
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
    return load_widened<DV>(p);
#else
    return static_cast<double>(*p);
#endif
  };
  constexpr int kSets = 4;
  DV dist[kSets] = {};
  double rest[kSets] = {};
  auto row = [&](Index r, DV& dl, double& rl) {
    const std::int32_t k = arg[r];
    const double wr = w ? static_cast<double>(w[r]) : 1.0;
    if (w) weight[k] += wr;
    ++count[k];
    const T* xr = x + r * stride;
#if defined(__GNUC__) || defined(__clang__)
    if (r < prefetch_rows)
      for (Index j = 0; j < d; j += 64 / Index{sizeof(T)}) __builtin_prefetch(xr + rows * stride + j);
#endif
    const double* ck = centers_d + k * d;
    double* sk = sums + k * d;
    const DV wv = wr - DV{};
    Index j = 0;
    for (; j + kN <= d; j += kN) {
      const DV xv = load_x(xr + j);
      const DV t = xv - load_d(ck + j);
      dl += wv * (t * t);
      DV sv = load_d(sk + j);
      sv += wv * xv;
      std::memcpy(sk + j, &sv, sizeof sv);
    }
    // The tail; none when D is fixed to a multiple of the width (GCC -O2 warns of the dead loop there).
    if constexpr (DC == 0 || DC % kN != 0)
      for (; j < d; ++j) {
        const double xj = static_cast<double>(xr[j]);
        const double t = xj - ck[j];
        rl += wr * (t * t);
        sk[j] += wr * xj;
      }
  };
  Index r = 0;
  for (; r + kSets <= rows; r += kSets)
    for (int q = 0; q < kSets; ++q) row(r + q, dist[q], rest[q]);
  for (int q = 0; r < rows; ++r, ++q) row(r, dist[q], rest[q]);
  double total = 0;
  for (int q = 0; q < kSets; ++q) {
    total += rest[q];
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
    for (int l = 0; l < kN; ++l) total += dist[q][l];
#else
    total += dist[q];
#endif
  }
  s.distortion += total;
}

/// Working memory of the assignment pass: the nearest-centre search's, and the statistics of the
/// block being folded (all zero between blocks), with the re-seeding candidates' (distance, row).
template <class T>
struct AssignScratch {
  NearestScratch<T> nearest;
  KMeansStats block;
  std::vector<std::pair<double, Index>> far;
  AssignScratch(Index K, Index D) : nearest(kKMeansBlock, D), block(K, D) {}
};

/// The rows of [begin, end) with positive weight farthest from their centre (arg: their clusters),
/// the first `keep` in KMeansFarRow order, into block.farthest (empty on entry), rows counted from begin.
template <class T>
void keep_farthest_rows(MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C, const std::int32_t* arg, Index begin,
                        Index end, Index keep, KMeansStats& block, std::vector<std::pair<double, Index>>& far) {
  const Index D = X.cols;
  far.clear();
  for (Index i = begin; i < end; ++i)
    if (row_weight(w, i) > 0) far.emplace_back(sq_dist(X.row(i), C.row(arg[i - begin]).data(), D), i - begin);
  const std::size_t m = std::min(far.size(), static_cast<std::size_t>(keep));
  std::partial_sort(far.begin(), far.begin() + static_cast<std::ptrdiff_t>(m), far.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (std::size_t e = 0; e < m; ++e) {
    const Index i = begin + far[e].second;
    KMeansFarRow f;
    f.distance = far[e].first;
    f.weight = row_weight(w, i);
    f.row = far[e].second;
    f.cluster = arg[far[e].second];
    f.values.resize(static_cast<std::size_t>(D));  // (a loop: GCC 12 sees a null memmove in assign)
    for (Index d = 0; d < D; ++d) f.values[d] = static_cast<double>(X.row(i)[d]);
    block.farthest.push_back(std::move(f));
  }
}

/// Adds one block's statistics to its group's and zeroes them for the next block. Only the clusters
/// the block touched are visited (the others would add exact zeros: the same bits).
inline void fold_block_into(KMeansStats& block, KMeansStats& group) {
  if (block.keep_farthest > 0 || group.keep_farthest > 0) {
    group.merge(block);
    block = KMeansStats(block.n_clusters, block.n_features);
    return;
  }
  const Index D = block.n_features;
  for (Index k = 0; k < block.n_clusters; ++k) {
    if (block.count[k] == 0) continue;
    group.weight[k] += block.weight[k];
    group.count[k] += block.count[k];
    block.weight[k] = 0;
    block.count[k] = 0;
    for (Index j = k * D; j < (k + 1) * D; ++j) {
      group.sums[j] += block.sums[j];
      block.sums[j] = 0;
    }
  }
  group.distortion += block.distortion;
  group.n_changed += block.n_changed;
  block.distortion = 0;
  block.n_changed = 0;
}

}  // namespace detail

namespace detail {
/// Folds rows [begin, end), labelled by arg (block-relative), into the block's statistics (labels
/// updated, changes counted): the tail of every assignment pass.
template <class T>
void fold_labelled_block(MatrixView<T> X, VectorView<T> w, const std::int32_t* arg, const RowMatrix<double>& centers_d,
                         std::int32_t* labels, Index begin, Index end, KMeansStats& block) {
  const Index D = X.cols;
  dispatch_dim(D, [&](auto dim) {
    fold_assigned_rows<decltype(dim)::value>(X.row(begin), X.stride, w.empty() ? nullptr : w.data + begin, arg,
                                             end - begin, centers_d.data(), D, labels + begin, block,
                                             std::min(end - begin, X.rows - end));
  });
}
/// Unit weights: a cluster's weight is its row count (exact in double).
inline void weights_from_counts(KMeansStats& s) {
  for (Index k = 0; k < s.n_clusters; ++k) s.weight[k] = static_cast<double>(s.count[k]);
}
}  // namespace detail

/// Assignment half-step fused with the statistics of the update half-step.
/// labels (n rows) holds the previous labels on entry (any value, e.g. -1, if none) and the new ones
/// on exit; the returned statistics count how many changed. keep_farthest > 0: the statistics also
/// keep that many re-seeding candidates (KMeansStats::farthest).
///
/// Each block of rows is folded into statistics of its own, which are then added to its reduction
/// group's: a group's statistics are the blocks' merged in order, so statistics computed chunk by
/// chunk (one chunk per reduction group, at most 64 blocks each) and merged in order have the bits of
/// one pass over all the rows.
template <class T>
KMeansStats kmeans_assign(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels, Index keep_farthest = 0) {
  const Index K = C.rows(), D = C.cols();
  const detail::PreparedCenters<T> pc(C);
  const RowMatrix<double> centers_d = C.template cast<double>();
  KMeansStats stats = detail::fold_rows(
      X.rows, detail::kKMeansBlock, be.n_threads, [&] { return KMeansStats(K, D, keep_farthest); },
      [&] { return detail::AssignScratch<T>(K, D); },
      [&](KMeansStats& s, detail::AssignScratch<T>& scratch, Index begin, Index end) {
        const std::int32_t* arg = detail::nearest_centers_block(X, pc, scratch.nearest, begin, end);
        detail::fold_labelled_block(X, w, arg, centers_d, labels, begin, end, scratch.block);
        if (keep_farthest > 0) {
          scratch.block.keep_farthest = keep_farthest;
          detail::keep_farthest_rows(X, w, C, arg, begin, end, keep_farthest, scratch.block, scratch.far);
        }
        detail::fold_block_into(scratch.block, s);
      });
  if (w.empty()) detail::weights_from_counts(stats);
  return stats;
}

namespace detail {

/// Hamerly's bounds (2010) of one fit on the CPU, per row: an upper bound on the distance to its
/// centre and a lower bound on the distance to every other centre (true distances, in double), valid
/// for `centers` (empty before the first pass). upper = inf: the row is searched next pass.
template <class T>
struct KMeansBounds {
  std::vector<double> upper, lower;
  RowMatrix<T> centers;
  std::int64_t n_searched = 0;  ///< rows the last pass searched all centres for
  void forget_row(Index i) {
    if (i < static_cast<Index>(upper.size())) upper[static_cast<std::size_t>(i)] = std::numeric_limits<double>::infinity();
  }
};

/// A bound m on the rounding error of the expanded distance e_k = ||c_k - s||^2 - 2 (x - s).(c_k - s)
/// as nearest_centers_block computes it in T (any summation order, fused or not):
/// |e_k - (||x - c_k||^2 - ||x - s||^2)| <= (D + 4) u (||x - s|| + ||c_k - s||)^2 to first order
/// (Higham, ch. 3), taken four times over to cover the double arithmetic of the bounds. r bounds
/// ||x - s|| + max_k ||c_k - s||.
template <class T>
inline double expanded_error(Index D, double r) {
  const double u = static_cast<double>(std::numeric_limits<T>::epsilon()) / 2;
  return 4.0 * (static_cast<double>(D) + 16.0) * u * r * r;
}

/// The rounding margins of the bounded searches (kmeans_assign_bounded, kmeans_assign_grouped): the
/// search's error on a row is at most err1 R^2 with R = ||x - s|| + cmax (expanded_error), and
/// ||x - s|| <= u + cmax for a row within u of its centre.
template <class T>
struct ExpandedMargin {
  double cmax = 0;  ///< max_k ||c_k - s||, rounded up
  double err1;
  ExpandedMargin(const RowMatrix<T>& C, const std::vector<T>& shift) : err1(expanded_error<T>(C.cols(), 1.0)) {
    for (Index k = 0; k < C.rows(); ++k)
      cmax = std::max(cmax, std::sqrt(sq_dist(C.row(k).data(), shift.data(), C.cols())));
    cmax *= 1 + 1e-12;
  }
  /// The error bound of a row at ||x - s||^2 = nx2.
  double at(double nx2) const {
    const double r = std::sqrt(nx2) + cmax;
    return err1 * r * r;
  }
  /// Twice the error bound of a row within up of its centre: the gap a lower bound must leave over up.
  double gap(double up) const {
    const double r = up + 2 * cmax;
    return 2 * err1 * r * r;
  }
};

/// How far each centre moved since the bounds were set (rounded up), and the two largest moves.
struct CenterMoves {
  std::vector<double> moved;
  double max1 = 0, max2 = 0;
  Index arg1 = -1;  ///< the centre that moved most
  explicit CenterMoves(Index K) : moved(static_cast<std::size_t>(K), 0.0) {}
};
template <class T>
CenterMoves center_moves(const RowMatrix<T>& C, const RowMatrix<T>& before) {
  CenterMoves out(C.rows());
  for (Index k = 0; k < C.rows(); ++k) {
    const double m = std::sqrt(sq_dist(C.row(k).data(), before.row(k).data(), C.cols())) * (1 + 1e-12);
    out.moved[static_cast<std::size_t>(k)] = m;
    if (m > out.max1) {
      out.max2 = out.max1;
      out.max1 = m;
      out.arg1 = k;
    } else if (m > out.max2) {
      out.max2 = m;
    }
  }
  return out;
}

/// The end of a bounded pass: unit weights from the counts, and the bounds' centres and rows searched.
template <class T, class Bounds>
KMeansStats finish_bounded_pass(KMeansStats stats, VectorView<T> w, const RowMatrix<T>& C,
                                const std::vector<std::int64_t>& searched_per_block, Bounds& b) {
  if (w.empty()) weights_from_counts(stats);
  b.centers = C;
  b.n_searched = 0;
  for (const std::int64_t m : searched_per_block) b.n_searched += m;
  return stats;
}

/// Half the distance from each centre to its nearest other centre, rounded down (Hamerly's s(c)): a
/// row within u of centre a is nearer to a than to any other centre once 2 s(a) - u clears u, since
/// ||x - c_k|| >= ||c_a - c_k|| - ||x - c_a||. K^2 D work: the caller decides when it pays.
template <class T>
std::vector<double> half_gaps(const RowMatrix<T>& C) {
  const Index K = C.rows(), D = C.cols();
  std::vector<double> s(static_cast<std::size_t>(K), std::numeric_limits<double>::infinity());
  for (Index k = 0; k < K; ++k)
    for (Index j = k + 1; j < K; ++j) {
      const double d = 0.5 * std::sqrt(sq_dist(C.row(k).data(), C.row(j).data(), D)) * (1 - 1e-12);
      s[static_cast<std::size_t>(k)] = std::min(s[static_cast<std::size_t>(k)], d);
      s[static_cast<std::size_t>(j)] = std::min(s[static_cast<std::size_t>(j)], d);
    }
  return s;
}

template <class T>
struct BoundedScratch {
  AssignScratch<T> base;
  RowMatrix<T> compact;  ///< the block's rows that are searched, packed
  std::vector<std::int32_t> arg;
  std::vector<Index> searched;
  BoundedScratch(Index K, Index D)
      : base(K, D), compact(kKMeansBlock, D), arg(static_cast<std::size_t>(kKMeansBlock)) {}
};

}  // namespace detail

/// kmeans_assign with Hamerly's bounds: the same labels and statistics, bit for bit. A row keeps its
/// label unsearched when its bounds, after the centres' moves, leave a gap l^2 - u^2 wider than twice
/// the search's rounding error (so the search would give that label too); else its upper bound is
/// tightened to the exact distance and tested again; else it is searched, packed with the block's
/// other searched rows, by the same kernel (whose per-row arithmetic does not depend on its
/// neighbours). Every row is folded into the statistics as kmeans_assign folds it.
template <class T>
KMeansStats kmeans_assign_bounded(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                                  std::int32_t* labels, detail::KMeansBounds<T>& b) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const Index K = C.rows(), D = C.cols(), n = X.rows;
  const detail::PreparedCenters<T> pc(C);
  const RowMatrix<double> centers_d = C.template cast<double>();
  const bool have = b.centers.rows() == K && b.centers.cols() == D && static_cast<Index>(b.upper.size()) == n;
  if (!have) {
    b.upper.assign(static_cast<std::size_t>(n), kInf);
    b.lower.assign(static_cast<std::size_t>(n), 0.0);
  }
  const detail::CenterMoves mv = have ? detail::center_moves(C, b.centers) : detail::CenterMoves(K);
  const std::vector<double>& moved = mv.moved;
  // The centres' own gaps where their K^2 D cost is small beside the pass's N D.
  const std::vector<double> gaps = have && K * K <= n ? detail::half_gaps(C) : std::vector<double>{};
  const double max1 = mv.max1, max2 = mv.max2;
  const Index arg1 = mv.arg1;
  const detail::ExpandedMargin<T> margin(C, pc.shift);
  std::vector<std::int64_t> searched_per_block(static_cast<std::size_t>((n + detail::kKMeansBlock - 1) / detail::kKMeansBlock));
  KMeansStats stats = detail::fold_rows(
      n, detail::kKMeansBlock, be.n_threads, [&] { return KMeansStats(K, D); },
      [&] { return detail::BoundedScratch<T>(K, D); },
      [&](KMeansStats& s, detail::BoundedScratch<T>& sc, Index begin, Index end) {
        const Index rows = end - begin;
        sc.searched.clear();
        for (Index r = 0; r < rows; ++r) {
          const Index i = begin + r;
          const std::int32_t a = labels[i];
          double& up = b.upper[static_cast<std::size_t>(i)];
          double& lo = b.lower[static_cast<std::size_t>(i)];
          bool keep = false;
          if (have && a >= 0 && up < kInf) {
            up += moved[static_cast<std::size_t>(a)];
            lo = std::max(0.0, lo - (a == arg1 ? max2 : max1));
            const double gap = gaps.empty() ? 0.0 : 2 * gaps[static_cast<std::size_t>(a)];
            const auto settled = [&] {
              const double l = std::max(lo, gap - up);
              return l * l - up * up > margin.gap(up);
            };
            keep = settled();
            if (!keep) {  // tighten the upper bound to the exact distance, test again
              up = std::sqrt(detail::sq_dist(X.row(i), C.row(a).data(), D)) * (1 + 1e-12);
              keep = settled();
            }
          }
          if (keep) sc.arg[static_cast<std::size_t>(r)] = a;
          else sc.searched.push_back(r);
        }
        const Index m = static_cast<Index>(sc.searched.size());
        if (m > 0) {
          auto& ns = sc.base.nearest;
          // A block searched whole (the first pass; the scalar path, whose GEMM may round a packed block
          // otherwise) is searched in place; else its searched rows are packed.
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
          const bool packed = m < rows;
#else
          const bool packed = false;
#endif
          if (packed) {
            for (Index j = 0; j < m; ++j)
              sc.compact.row(j) = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(
                  X.row(begin + sc.searched[static_cast<std::size_t>(j)]), D);
            detail::nearest_centers_block<T, true>(MatrixView<T>(sc.compact.data(), m, D), pc, ns, 0, m);
          } else {
            detail::nearest_centers_block<T, true>(X, pc, ns, begin, end);
          }
          for (Index j = 0; j < m; ++j) {
            const Index r = sc.searched[static_cast<std::size_t>(j)], i = begin + r;
            const std::size_t q = static_cast<std::size_t>(packed ? j : r);  // where the search wrote row r
            sc.arg[static_cast<std::size_t>(r)] = ns.arg[q];
            const double nx2 = detail::sq_dist(X.row(i), pc.shift.data(), D);  // ||x - s||^2
            const double err = margin.at(nx2);
            b.upper[static_cast<std::size_t>(i)] = std::sqrt(std::max(0.0, static_cast<double>(ns.best[q]) + nx2 + err));
            b.lower[static_cast<std::size_t>(i)] = std::sqrt(std::max(0.0, static_cast<double>(ns.second[q]) + nx2 - err));
          }
        }
        searched_per_block[static_cast<std::size_t>(begin / detail::kKMeansBlock)] = m;
        detail::fold_labelled_block(X, w, sc.arg.data(), centers_d, labels, begin, end, sc.base.block);
        detail::fold_block_into(sc.base.block, s);
      });
  return detail::finish_bounded_pass(std::move(stats), w, C, searched_per_block, b);
}

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
inline constexpr bool kCanGroupSearch = true;
#else
inline constexpr bool kCanGroupSearch = false;  // the scalar GEMM rounds a centre by its position
#endif

namespace detail {

/// A float <= x within 3e-7 of it (x >= 0, finite; branch-free, so loops of it vectorise): lower
/// bounds kept in float stay lower bounds. float(x) <= x (1 + 2^-24), and the product with
/// 1 - 2^-22 rounds to below x; values under 1e-30 (subnormal in float) become 0.
inline float float_below(double x) {
  const float f = static_cast<float>(x) * (1.0f - 0x1p-22f);
  return x < 1e-30 ? 0.0f : f;
}

/// Yinyang's groups (Ding et al. 2015): the centres split into G groups by a few Lloyd iterations on
/// the centres themselves (in double, from evenly spaced centres; ties to the lowest index), fixed for
/// a fit. order lists the centres group by group, each group in increasing index.
struct CenterGroups {
  Index n_groups = 0;
  std::vector<Index> order, start, group_of;  ///< order [K]; start [G + 1]; group_of [K]
};

template <class T>
CenterGroups group_centers(const RowMatrix<T>& C, Index G) {
  using std::size_t;
  const Index K = C.rows(), D = C.cols();
  G = std::max<Index>(1, std::min(G, K));
  const RowMatrix<double> c = C.template cast<double>();
  RowMatrix<double> g(G, D);
  for (Index j = 0; j < G; ++j) g.row(j) = c.row(j * K / G);
  std::vector<Index> of(static_cast<size_t>(K), 0);
  for (int it = 0; it < 5; ++it) {
    for (Index k = 0; k < K; ++k) {
      double best = std::numeric_limits<double>::infinity();
      for (Index j = 0; j < G; ++j) {
        const double d = sq_dist(c.row(k).data(), g.row(j).data(), D);
        if (d < best) {
          best = d;
          of[static_cast<size_t>(k)] = j;
        }
      }
    }
    RowMatrix<double> sums = RowMatrix<double>::Zero(G, D);
    std::vector<Index> n(static_cast<size_t>(G), 0);
    for (Index k = 0; k < K; ++k) {
      const Index j = of[static_cast<size_t>(k)];
      sums.row(j) += c.row(k);
      ++n[static_cast<size_t>(j)];
    }
    for (Index j = 0; j < G; ++j) {
      const Index nj = n[static_cast<size_t>(j)];
      if (nj > 0) g.row(j) = sums.row(j) / static_cast<double>(nj);
    }
  }
  CenterGroups out;  // empty groups are dropped
  std::vector<Index> renumber(static_cast<size_t>(G), -1);
  out.group_of.resize(static_cast<size_t>(K));
  for (Index k = 0; k < K; ++k) {
    Index& r = renumber[static_cast<size_t>(of[static_cast<size_t>(k)])];
    if (r < 0) r = out.n_groups++;
    out.group_of[static_cast<size_t>(k)] = r;
  }
  out.start.assign(static_cast<size_t>(out.n_groups + 1), 0);
  for (const Index j : out.group_of) ++out.start[static_cast<size_t>(j + 1)];
  for (size_t j = 1; j < out.start.size(); ++j) out.start[j] += out.start[j - 1];
  out.order.resize(static_cast<size_t>(K));
  std::vector<Index> fill(out.start.begin(), out.start.end() - 1);
  for (Index k = 0; k < K; ++k) {
    Index& at = fill[static_cast<size_t>(out.group_of[static_cast<size_t>(k)])];
    out.order[static_cast<size_t>(at++)] = k;
  }
  return out;
}

/// Centres per Yinyang group; 12 to 64 measured alike at K = 1024.
inline constexpr Index kYinyangGroupSize = 32;

/// Groups for K centres of D features: ceil(K / kYinyangGroupSize), at most D, so that the group
/// bounds (N x G floats) take no more memory than the data (N x D values).
inline Index yinyang_groups(Index K, Index D) {
  return std::max<Index>(1, std::min((K + kYinyangGroupSize - 1) / kYinyangGroupSize, D));
}

/// Passes between two refreshes of every row's Yinyang bounds (kmeans_assign_grouped).
inline constexpr std::int32_t kYinyangRefresh = 32;

/// Yinyang's bounds of one fit: per row an upper bound on the distance to its centre (as Hamerly's)
/// and per row and group a lower bound on the distance to the group's centres other than the row's
/// own. A row's group bounds hold as of pass stamp[i]; since then group g's centres moved by at most
/// drift[stamp[i] * G + g] (the sum of its largest moves, rounded up), so they are brought up to date
/// only when the row is looked at closely; `least` (their minimum then) less drift_max[stamp[i]]
/// settles most rows without reading them.
template <class T>
struct KMeansGroupBounds {
  std::vector<double> upper, least;  ///< [n]
  std::vector<float> lower;          ///< [n * G] row-major, rounded down
  std::vector<std::int32_t> stamp;          ///< [n]
  std::vector<double> drift, drift_max;     ///< [passes * G], [passes]
  std::int32_t pass = 0;                    ///< passes made with these bounds
  RowMatrix<T> centers;
  CenterGroups groups;
  std::int64_t n_searched = 0;  ///< rows the last pass searched at least one group for
  void forget_row(Index i) {
    if (i < static_cast<Index>(upper.size()))
      upper[static_cast<std::size_t>(i)] = std::numeric_limits<double>::infinity();
  }
};

#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)

/// For `rows` rows transposed in xt (pitch ld, whole tiles) and each centre range [k0, k1) of `ranges`:
/// the nearest and second nearest centre of the range, written at the range's offset `at` + row. The
/// same tiles and per-(row, centre) arithmetic as nearest_centers_block; a tile of rows meets every
/// range before the next tile (it stays in L1).
struct CenterRange {
  Index k0, k1, at;
};
template <class T>
void nearest_in_ranges(const T* xt, Index ld, Index rows, Index D, const PreparedCenters<T>& pc,
                       const std::vector<CenterRange>& ranges, T* best_out, T* second_out, std::int32_t* arg_out) {
  using S = Simd<T>;
  constexpr int L = S::kLanes;
  for (Index r0 = 0; r0 < rows; r0 += NearestScratch<T>::kTileRows)
    for (const CenterRange& rg : ranges) {
      typename S::Vec best[kRowVecs], second[kRowVecs];
      typename S::IVec arg[kRowVecs];
      for (int v = 0; v < kRowVecs; ++v) {
        best[v] = second[v] = S::broadcast(std::numeric_limits<T>::infinity());
        arg[v] = S::ibroadcast(0);
      }
      for (Index k = rg.k0; k < rg.k1; k += kCenterTile)
        nearest_tail<T, true>(static_cast<int>(std::min<Index>(kCenterTile, rg.k1 - k)), xt + r0, ld, D, pc, k, best,
                              arg, second);
      for (int v = 0; v < kRowVecs; ++v)
        for (int l = 0; l < L; ++l) {
          const Index r = r0 + v * L + l;
          if (r >= rows) break;
          best_out[rg.at + r] = best[v][l];
          second_out[rg.at + r] = second[v][l];
          arg_out[rg.at + r] = static_cast<std::int32_t>(arg[v][l]);
        }
    }
}

template <class T>
struct GroupScratch {
  AssignScratch<T> base;  ///< base.nearest.xt: the block's searched rows, transposed
  RowMatrix<T> compact;   ///< the block's searched rows, packed
  std::vector<std::int32_t> label;
  std::vector<Index> searched;       ///< the block's rows that search some group
  std::vector<char> need;            ///< [rows * G]: the row searches the group (rows in searched)
  std::vector<Index> tile_groups;    ///< the groups a tile of searched rows searches
  std::vector<CenterRange> ranges;   ///< their centre ranges, in group order
  std::vector<double> other;         ///< [G]: a row's new group bounds
  std::vector<char> tile_need;       ///< [G]: some row of the tile searches the group
  std::vector<T> g_best, g_second;   ///< [g * kKMeansBlock + j]: group g's two smallest for searched row j
  std::vector<std::int32_t> g_arg;   ///< [g * kKMeansBlock + j]: group g's nearest centre (place in group order)
  GroupScratch(Index K, Index D, Index G)
      : base(K, D), compact(kKMeansBlock, D), label(static_cast<std::size_t>(kKMeansBlock)),
        need(static_cast<std::size_t>(kKMeansBlock * G)),
        other(static_cast<std::size_t>(G)), tile_need(static_cast<std::size_t>(G)),
        g_best(static_cast<std::size_t>(kKMeansBlock * G)), g_second(g_best.size()), g_arg(g_best.size()) {}
};

#endif

}  // namespace detail

/// kmeans_assign with Yinyang's bounds (Ding et al. 2015): the same labels and statistics, bit for bit.
/// A row is settled when its group bounds all leave kmeans_assign_bounded's margin over its upper bound
/// (tightened to the exact distance if needed). Else it searches the groups whose bound does not, and
/// its own centre's group, with the full search's kernel (the same per-(row, centre) arithmetic); a
/// tile of searched rows searches the union of its rows' groups (extra exact distances change no
/// label). The groups' winners are merged by (distance, index), as the full search's strict '<' in
/// index order breaks ties (and, as it does, centre 0 when no distance is finite: float data whose
/// squares overflow). Vector path only (kCanGroupSearch).
template <class T>
KMeansStats kmeans_assign_grouped(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                                  std::int32_t* labels, detail::KMeansGroupBounds<T>& b) {
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
  constexpr double kInf = std::numeric_limits<double>::infinity();
  using std::size_t;
  const Index K = C.rows(), D = C.cols(), n = X.rows;
  const detail::PreparedCenters<T> pc(C);
  const bool have = b.centers.rows() == K && b.centers.cols() == D && static_cast<Index>(b.upper.size()) == n &&
                    static_cast<Index>(b.groups.order.size()) == K && b.pass > 0;
  if (!have) {
    b.groups = detail::group_centers(C, detail::yinyang_groups(K, D));
    b.upper.assign(static_cast<size_t>(n), kInf);
    b.lower.assign(static_cast<size_t>(n * b.groups.n_groups), 0.0f);
    b.least.assign(static_cast<size_t>(n), 0.0);
    b.stamp.assign(static_cast<size_t>(n), 0);
    b.drift.clear();
    b.drift_max.clear();
    b.pass = 0;
  }
  const detail::CenterGroups& grp = b.groups;
  const Index G = grp.n_groups;
  detail::PreparedCenters<T> pg = pc;  // the centres in group order (the same shift and values)
  for (Index p = 0; p < K; ++p) {
    const Index k = grp.order[static_cast<size_t>(p)];
    pg.sq_norms[static_cast<size_t>(p)] = pc.sq_norms[static_cast<size_t>(k)];
    for (Index d = 0; d < D; ++d)
      pg.minus_two_ct[static_cast<size_t>(d * K + p)] = pc.minus_two_ct[static_cast<size_t>(d * K + k)];
  }
  const RowMatrix<double> centers_d = C.template cast<double>();
  const detail::CenterMoves mv = have ? detail::center_moves(C, b.centers) : detail::CenterMoves(K);
  std::vector<double> group_move(static_cast<size_t>(G), 0.0);
  for (Index k = 0; k < K; ++k) {
    double& m = group_move[static_cast<size_t>(grp.group_of[static_cast<size_t>(k)])];
    m = std::max(m, mv.moved[static_cast<size_t>(k)]);
  }
  const std::int32_t now = b.pass++;
  for (std::int32_t t = 0; t < now; ++t) {  // the drift since each earlier pass, rounded up
    double most = 0;
    for (Index g = 0; g < G; ++g) {
      double& dr = b.drift[static_cast<size_t>(t * G + g)];
      dr = (dr + group_move[static_cast<size_t>(g)]) * (1 + 1e-15);
      most = std::max(most, dr);
    }
    b.drift_max[static_cast<size_t>(t)] = most;
  }
  b.drift.resize(static_cast<size_t>((now + 1) * G), 0.0);
  b.drift_max.push_back(0.0);
  // Every kYinyangRefresh passes every row's bounds are brought up to date and the drift history
  // starts again (stamps 0), so that it stays short: O(kYinyangRefresh G) per pass, however long the fit.
  const bool refresh = have && now >= detail::kYinyangRefresh;
  const std::int32_t stamp_now = refresh ? 0 : now;
  const detail::ExpandedMargin<T> margin(C, pc.shift);
  std::vector<std::int64_t> searched_per_block(
      static_cast<size_t>((n + detail::kKMeansBlock - 1) / detail::kKMeansBlock));
  KMeansStats stats = detail::fold_rows(
      n, detail::kKMeansBlock, be.n_threads, [&] { return KMeansStats(K, D); },
      [&] { return detail::GroupScratch<T>(K, D, G); },
      [&](KMeansStats& s, detail::GroupScratch<T>& sc, Index begin, Index end) {
        const Index rows = end - begin;
        sc.searched.clear();
        for (Index r = 0; r < rows; ++r) {  // which rows search which groups
          const Index i = begin + r;
          const std::int32_t a = labels[i];
          double& up = b.upper[static_cast<size_t>(i)];
          float* lo = b.lower.data() + static_cast<size_t>(i * G);
          char* need = sc.need.data() + static_cast<size_t>(r * G);
          sc.label[static_cast<size_t>(r)] = a;
          if (!(have && a >= 0 && up < kInf)) {
            std::fill(need, need + G, char(1));
            sc.searched.push_back(r);
            continue;
          }
          up += mv.moved[static_cast<size_t>(a)];
          // l clears the row when l^2 > u^2 + the margin of kmeans_assign_bounded
          double reach = up * up + margin.gap(up);
          const std::int32_t t = b.stamp[static_cast<size_t>(i)];
          const double* dr = b.drift.data() + static_cast<size_t>(t * G);
          const auto up_to_date = [&] {  // the group bounds as of this pass; their minimum
            double least = kInf;
            for (Index g = 0; g < G; ++g) {
              lo[g] = detail::float_below(std::max(0.0, static_cast<double>(lo[g]) - dr[g]));
              least = std::min(least, static_cast<double>(lo[g]));
            }
            b.stamp[static_cast<size_t>(i)] = stamp_now;
            b.least[static_cast<size_t>(i)] = least;
          };
          const double lmin = std::max(0.0, b.least[static_cast<size_t>(i)] - b.drift_max[static_cast<size_t>(t)]);
          bool settled = lmin * lmin > reach;
          if (!settled) {
            up = std::sqrt(detail::sq_dist(X.row(i), C.row(a).data(), D)) * (1 + 1e-12);
            reach = up * up + margin.gap(up);
            settled = lmin * lmin > reach;
          }
          if (settled) {
            if (refresh) up_to_date();
            continue;
          }
          up_to_date();
          char any = 0;
          for (Index g = 0; g < G; ++g) {
            need[g] = static_cast<double>(lo[g]) * static_cast<double>(lo[g]) <= reach;
            any |= need[g];
          }
          if (!any) continue;  // the groups' own bounds settle it
          need[grp.group_of[static_cast<size_t>(a)]] = 1;
          sc.searched.push_back(r);
        }
        const Index m = static_cast<Index>(sc.searched.size());
        searched_per_block[static_cast<size_t>(begin / detail::kKMeansBlock)] = m;
        if (m > 0) {
          // Searched rows sorted by their centre's group (then by row), so that a tile's rows share
          // most of the groups they search.
          const auto key = [&](Index r) {
            const std::int32_t a = sc.label[static_cast<size_t>(r)];
            return std::pair<Index, Index>(a < 0 ? Index{-1} : grp.group_of[static_cast<size_t>(a)], r);
          };
          std::sort(sc.searched.begin(), sc.searched.end(), [&](Index x, Index y) { return key(x) < key(y); });
          const Index ld = sc.base.nearest.ld;
          for (Index j = 0; j < m; ++j)
            sc.compact.row(j) = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(
                X.row(begin + sc.searched[static_cast<size_t>(j)]), D);
          detail::transpose_rows(sc.compact.data(), D, m, D, pc.shift.data(), sc.base.nearest.xt.data(), ld);
          constexpr Index kTile = detail::NearestScratch<T>::kTileRows;
          constexpr Index B = detail::kKMeansBlock;
          for (Index j0 = 0; j0 < m; j0 += kTile) {
            // A tile of searched rows searches every group one of its rows needs: the kernel's cost per
            // tile does not depend on how many of its rows need a group, and the extra exact distances
            // change no label but refresh those groups' bounds (measured: fewer rows searched later).
            const Index j1 = std::min(m, j0 + kTile);
            std::fill(sc.tile_need.begin(), sc.tile_need.end(), char(0));
            for (Index j = j0; j < j1; ++j) {
              const char* need = sc.need.data() + static_cast<size_t>(sc.searched[static_cast<size_t>(j)] * G);
              for (Index g = 0; g < G; ++g) sc.tile_need[static_cast<size_t>(g)] |= need[g];
            }
            sc.tile_groups.clear();
            sc.ranges.clear();
            for (Index g = 0; g < G; ++g)
              if (sc.tile_need[static_cast<size_t>(g)]) {
                sc.tile_groups.push_back(g);
                sc.ranges.push_back({grp.start[static_cast<size_t>(g)], grp.start[static_cast<size_t>(g + 1)], g * B});
              }
            detail::nearest_in_ranges(sc.base.nearest.xt.data() + j0, ld, j1 - j0, D, pg, sc.ranges,
                                      sc.g_best.data() + j0, sc.g_second.data() + j0, sc.g_arg.data() + j0);
            for (Index j = j0; j < j1; ++j) {
              const Index r = sc.searched[static_cast<size_t>(j)], i = begin + r;
              // the groups' winners by original index, merged by (distance, index) as the full search's
              // strict '<' in index order does
              T best = std::numeric_limits<T>::infinity();
              std::int32_t arg = 0;  // as the full search: centre 0 unless a distance is finite
              for (const Index g : sc.tile_groups) {
                const size_t q = static_cast<size_t>(g * B + j);
                const std::int32_t k = static_cast<std::int32_t>(grp.order[static_cast<size_t>(sc.g_arg[q])]);
                sc.g_arg[q] = k;
                if (sc.g_best[q] < best || (sc.g_best[q] == best && k < arg)) {
                  best = sc.g_best[q];
                  arg = k;
                }
              }
              sc.label[static_cast<size_t>(r)] = arg;
              const double nx2 = detail::sq_dist(X.row(i), pc.shift.data(), D);  // ||x - s||^2
              const double err = margin.at(nx2);
              b.upper[static_cast<size_t>(i)] = std::sqrt(std::max(0.0, static_cast<double>(best) + nx2 + err));
              const Index mine = grp.group_of[static_cast<size_t>(arg)];
              float* lo = b.lower.data() + static_cast<size_t>(i * G);
              const size_t ng = sc.tile_groups.size();
              for (size_t t = 0; t < ng; ++t) {  // gather, then a loop that vectorises, then scatter
                const Index g = sc.tile_groups[t];
                const size_t q = static_cast<size_t>(g * B + j);
                sc.other[t] = static_cast<double>(g == mine ? sc.g_second[q] : sc.g_best[q]);
              }
              for (size_t t = 0; t < ng; ++t) sc.other[t] = std::sqrt(std::max(0.0, sc.other[t] + nx2 - err));
              for (size_t t = 0; t < ng; ++t) lo[sc.tile_groups[t]] = detail::float_below(sc.other[t]);
              double least = kInf;
              for (Index g = 0; g < G; ++g) least = std::min(least, static_cast<double>(lo[g]));
              b.least[static_cast<size_t>(i)] = least;
              b.stamp[static_cast<size_t>(i)] = stamp_now;
            }
          }
        }
        detail::fold_labelled_block(X, w, sc.label.data(), centers_d, labels, begin, end, sc.base.block);
        detail::fold_block_into(sc.base.block, s);
      });
  if (refresh) {
    b.pass = 1;
    b.drift.assign(static_cast<size_t>(G), 0.0);
    b.drift_max.assign(1, 0.0);
  }
  return detail::finish_bounded_pass(std::move(stats), w, C, searched_per_block, b);
#else
  (void)be, (void)X, (void)w, (void)C, (void)labels, (void)b;
  throw std::logic_error("kmeans_assign_grouped: the vector path only (kCanGroupSearch)");
#endif
}

/// Labels only (prediction), plus the exact weighted distortion they give.
template <class T>
double kmeans_predict(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  const Index D = C.cols();
  const detail::PreparedCenters<T> pc(C);
  return detail::fold_rows(
             X.rows, detail::kKMeansBlock, be.n_threads, [] { return detail::SumStat{}; },
             [&] { return detail::NearestScratch<T>(detail::kKMeansBlock, D); },
             [&](detail::SumStat& s, detail::NearestScratch<T>& scratch, Index begin, Index end) {
               const std::int32_t* arg = detail::nearest_centers_block(X, pc, scratch, begin, end);
               detail::RowAccumulator</*kSums=*/false> dist;
               for (Index i = begin; i < end; ++i) {
                 if (labels) labels[i] = arg[i - begin];
                 dist.add(X.row(i), C.row(arg[i - begin]).data(), nullptr, D, detail::row_weight(w, i));
               }
               s.value += dist.reduce();
             })
      .value;
}

/// Exact squared distance of every row to its assigned centre (used to re-seed empty clusters).
template <class T>
std::vector<double> kmeans_distances_to_assigned(const CpuBackend& be, MatrixView<T> X, const RowMatrix<T>& C,
                                                 const std::int32_t* labels) {
  std::vector<double> out(static_cast<std::size_t>(X.rows));
  detail::for_blocks(X.rows, 4096, be.n_threads, [] { return detail::NoScratch{}; },
                     [&](detail::NoScratch&, Index begin, Index end) {
                       for (Index i = begin; i < end; ++i)
                         out[i] = detail::sq_dist(X.row(i), C.row(labels[i]).data(), X.cols);
                     });
  return out;
}

/// Euclidean distance of every row to every centre (n x K), computed directly (no cancellation).
template <class T>
RowMatrix<T> kmeans_transform(const CpuBackend& be, MatrixView<T> X, const RowMatrix<T>& C) {
  RowMatrix<T> out(X.rows, C.rows());
  const RowMatrix<double> cd = C.template cast<double>();  // the same values, converted once
  detail::for_blocks(X.rows, 1024, be.n_threads, [] { return detail::NoScratch{}; },
                     [&](detail::NoScratch&, Index begin, Index end) {
                       if (!detail::pairs_fit(X.cols)) {
                         for (Index i = begin; i < end; ++i)
                           for (Index k = 0; k < C.rows(); ++k)
                             out(i, k) = static_cast<T>(std::sqrt(detail::sq_dist(X.row(i), C.row(k).data(), X.cols)));
                         return;
                       }
                       for (Index i = begin; i < end; ++i) {
                         detail::for_pair_groups(C.rows(), [&](auto M, Index k0) {  // sq_dist's bits
                           const T* xs[M];
                           const double* cs[M];
                           double d[M];
                           for (int m = 0; m < M; ++m) {
                             xs[m] = X.row(i);
                             cs[m] = cd.row(k0 + m).data();
                           }
                           detail::sq_dist_pairs<M, true>(xs, cs, X.cols, d);
                           for (int m = 0; m < M; ++m) out(i, k0 + m) = static_cast<T>(std::sqrt(d[m]));
                         });
                       }
                     });
  return out;
}

/// closest[i] = min(closest[i], ||x_i - c||^2) (or = when `reset`); returns sum_i w_i closest[i].
template <class T>
double kmeans_update_closest(const CpuBackend& be, MatrixView<T> X, VectorView<T> w, const T* c, double* closest,
                             bool reset) {
  const std::vector<double> cd(c, c + X.cols);
  return detail::fold_rows(
             X.rows, 4096, be.n_threads, [] { return detail::SumStat{}; }, [] { return detail::NoScratch{}; },
             [&](detail::SumStat& s, detail::NoScratch&, Index begin, Index end) {
               if (!detail::pairs_fit(X.cols)) {
                 for (Index i = begin; i < end; ++i) {
                   const double d = detail::sq_dist(X.row(i), c, X.cols);
                   closest[i] = reset ? d : std::min(closest[i], d);
                   s.value += detail::row_weight(w, i) * closest[i];
                 }
                 return;
               }
               // kDistPairs rows at a time against c (sq_dist_pairs: sq_dist's bits); rows in order.
               detail::for_pair_groups(end - begin, [&](auto M, Index p) {
                 const T* xs[M];
                 const double* cs[M];
                 double d[M];
                 for (int m = 0; m < M; ++m) {
                   xs[m] = X.row(begin + p + m);
                   cs[m] = cd.data();
                 }
                 detail::sq_dist_pairs<M>(xs, cs, X.cols, d);
                 for (int m = 0; m < M; ++m) {
                   const Index i = begin + p + m;
                   closest[i] = reset ? d[m] : std::min(closest[i], d[m]);
                   s.value += detail::row_weight(w, i) * closest[i];
                 }
               });
             })
      .value;
}

/// For each candidate row c_j: sum_i w_i min(closest[i], ||x_i - c_j||^2), in one pass over X.
template <class T>
std::vector<double> kmeans_candidate_potentials(const CpuBackend& be, MatrixView<T> X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  struct Pots {
    std::vector<double> v;
    void merge(const Pots& o) {
      for (std::size_t j = 0; j < v.size(); ++j) v[j] += o.v[j];
    }
  };
  const std::size_t m = candidates.size();
  std::vector<std::vector<double>> cand(m);  // the candidates in double, converted once
  for (std::size_t j = 0; j < m; ++j) cand[j].assign(X.row(candidates[j]), X.row(candidates[j]) + X.cols);
  return detail::fold_rows(
             X.rows, 4096, be.n_threads, [&] { return Pots{std::vector<double>(m, 0.0)}; },
             [] { return detail::NoScratch{}; },
             [&](Pots& s, detail::NoScratch&, Index begin, Index end) {
               if (!detail::pairs_fit(X.cols)) {
                 for (Index i = begin; i < end; ++i) {
                   const double wi = detail::row_weight(w, i);
                   for (std::size_t j = 0; j < m; ++j)
                     s.v[j] += wi * std::min(closest[i], detail::sq_dist(X.row(i), X.row(candidates[j]), X.cols));
                 }
                 return;
               }
               for (Index i = begin; i < end; ++i) {
                 const double wi = detail::row_weight(w, i);
                 // kDistPairs candidates at a time (sq_dist_pairs: sq_dist's bits).
                 detail::for_pair_groups(static_cast<Index>(m), [&](auto M, Index p) {
                   const T* xs[M];
                   const double* cs[M];
                   double d[M];
                   for (int q = 0; q < M; ++q) {
                     xs[q] = X.row(i);
                     cs[q] = cand[static_cast<std::size_t>(p + q)].data();
                   }
                   detail::sq_dist_pairs<M, true>(xs, cs, X.cols, d);
                   for (int q = 0; q < M; ++q) s.v[static_cast<std::size_t>(p + q)] += wi * std::min(closest[i], d[q]);
                 });
               }
             })
      .v;
}

/// Mean over features of the (unweighted, population) variance: the scale of scikit-learn's tol.
template <class T>
double mean_feature_variance(const CpuBackend& be, MatrixView<T> X) {
  return detail::feature_variances(X, be.n_threads).mean();
}

}  // namespace mixtura
