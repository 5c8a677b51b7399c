#pragma once
/// Portable SIMD vectors through the GCC/Clang vector extension, sized for the target: 64 bytes
/// with AVX-512, 32 with AVX, 16 otherwise. Kernels written with them compile to the target's
/// instructions without intrinsics; other compilers use the scalar paths (MIXTURA_HAS_VECTOR_EXT = 0).
/// Defining MIXTURA_DISABLE_SIMD selects the scalar paths everywhere (define it for a whole program).

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "mixtura/core/matrix_view.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__AVX__) || defined(__AVX512F__))
#include <immintrin.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MIXTURA_HAS_VECTOR_EXT 1
#else
#define MIXTURA_HAS_VECTOR_EXT 0
#endif

#if defined(__AVX512F__)
#define MIXTURA_SIMD_BYTES 64
#elif defined(__AVX__)
#define MIXTURA_SIMD_BYTES 32
#else
#define MIXTURA_SIMD_BYTES 16
#endif

/// For per-block kernels: kept out of line so that the caller's code cannot crowd the kernel's
/// registers (inlined into a large caller, the whole K-means pass ran 20 % slower: GCC spilled the kernel's accumulators).
#if defined(__GNUC__) || defined(__clang__)
#define MIXTURA_NOINLINE __attribute__((noinline))
#else
#define MIXTURA_NOINLINE
#endif

namespace mixtura {
namespace detail {

#if MIXTURA_HAS_VECTOR_EXT
/// A vector of T filling one SIMD register, and the signed integer vector of the same lane count.
template <class T>
struct Simd {
  static constexpr int kBytes = MIXTURA_SIMD_BYTES;
  static constexpr int kLanes = kBytes / static_cast<int>(sizeof(T));
  using Int = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  typedef T Vec __attribute__((vector_size(kBytes)));
  typedef Int IVec __attribute__((vector_size(kBytes)));

  static Vec load(const T* p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, Vec v) { std::memcpy(p, &v, sizeof v); }
  static Vec broadcast(T x) { return x - Vec{}; }  // x - 0 folds to a plain broadcast (x + 0 would not: -0)
  static IVec ibroadcast(Int x) { return IVec{} + x; }
};

/// N = sizeof(DV) / sizeof(double) values of T at p (unaligned), widened to a vector of N doubles.
/// The one place with intrinsics: GCC 12 compiles __builtin_convertvector from float to double as
/// 2-lane conversions and shuffles (4 instructions for 8 lanes); the target's own conversion is one.
template <class DV, class T>
inline DV load_widened(const T* p) {
  constexpr int kN = static_cast<int>(sizeof(DV) / sizeof(double));
  DV out;
  if constexpr (std::is_same<T, double>::value) {
    std::memcpy(&out, p, sizeof out);
    return out;
  }
#if defined(__AVX512F__)
  else if constexpr (kN == 8) {
    const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(p));
    std::memcpy(&out, &v, sizeof out);
    return out;
  }
#endif
#if defined(__AVX__)
  else if constexpr (kN == 4) {
    const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(p));
    std::memcpy(&out, &v, sizeof out);
    return out;
  }
#endif
  else {
    typedef T TV __attribute__((vector_size(kN * sizeof(T))));
    TV v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, DV);
  }
}
#endif

#if MIXTURA_HAS_VECTOR_EXT
/// out[i][r] = in[r][i] for eight vectors of eight lanes (GCC/Clang vector extensions): three rounds
/// of two-vector shuffles, no arithmetic.
template <class V>
inline void transpose8(const V* in, V* out) {
  V t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(in[i], in[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(in[i], in[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int i = 0; i < 4; ++i) {
    out[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    out[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}
#endif

/// xt[d * ld + r] = x[r * stride + d] - shift[d] for r < rows, d < cols: a block of rows moved by
/// -shift and transposed, 8 x 8 (float) or 4 x 4 (double) tiles at a time in registers, the ragged
/// edges element by element (the same rounded differences on every path).
template <class T>
inline void transpose_rows(const T* x, Index stride, Index rows, Index cols, const T* shift, T* xt, Index ld) {
  Index r0 = 0, c0 = 0;
#if MIXTURA_HAS_VECTOR_EXT && !defined(MIXTURA_DISABLE_SIMD)
  constexpr int kTile = sizeof(T) == 4 ? 8 : 4;
  typedef T V __attribute__((vector_size(kTile * sizeof(T))));
  const Index full_rows = rows / kTile * kTile, full_cols = cols / kTile * kTile;
  for (Index r = 0; r < full_rows; r += kTile)
    for (Index c = 0; c < full_cols; c += kTile) {
      V in[kTile], out[kTile];
      // Unrolled, so that in[] and out[] live in registers: as loops, GCC 12 copies them through
      // the stack in 16-byte halves, and every 32-byte reload then waits on a failed store forward.
#pragma GCC unroll 8
      for (int i = 0; i < kTile; ++i) std::memcpy(&in[i], x + (r + i) * stride + c, sizeof(V));
      V sv;
      std::memcpy(&sv, shift + c, sizeof(V));
#pragma GCC unroll 8
      for (int i = 0; i < kTile; ++i) in[i] -= sv;
      if constexpr (kTile == 8) {
        transpose8(in, out);
      } else {
        const V t0 = __builtin_shufflevector(in[0], in[1], 0, 4, 2, 6);
        const V t1 = __builtin_shufflevector(in[0], in[1], 1, 5, 3, 7);
        const V t2 = __builtin_shufflevector(in[2], in[3], 0, 4, 2, 6);
        const V t3 = __builtin_shufflevector(in[2], in[3], 1, 5, 3, 7);
        out[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
        out[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
        out[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
        out[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
      }
#pragma GCC unroll 8
      for (int i = 0; i < kTile; ++i) std::memcpy(xt + (c + i) * ld + r, &out[i], sizeof(V));
    }
  // Edges: columns past the last full tile for the tiled rows, then the remaining rows.
  for (Index r = 0; r < full_rows; ++r)
    for (Index c = full_cols; c < cols; ++c) xt[c * ld + r] = x[r * stride + c] - shift[c];
  r0 = full_rows;
#endif
  for (Index r = r0; r < rows; ++r)
    for (Index c = c0; c < cols; ++c) xt[c * ld + r] = x[r * stride + c] - shift[c];
}

}  // namespace detail
}  // namespace mixtura
