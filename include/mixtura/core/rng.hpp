#pragma once
/// Counter-based random numbers (Philox4x32-10), keyed by the seed.
///
/// A value is a pure function of (seed, stream, counter): no hidden state, so the same numbers come
/// out whatever the number of threads or the backend. Streams separate independent uses (restart r
/// of K-means draws from its own stream), counters index the draws within a stream.

#include <array>
#include <cstdint>

// Host and device (the CUDA passes draw initial responsibilities with this generator too).
#if defined(__CUDACC__)
#define MIXTURA_RNG_HD __host__ __device__
#else
#define MIXTURA_RNG_HD
#endif

namespace mixtura {
namespace detail {

/// Philox4x32-10 of the counter ctr[0..3] under the key (key0, key1), in place. Plain arrays, so that
/// CUDA kernels draw the very same numbers (MIXTURA_RNG_HD).
MIXTURA_RNG_HD inline void philox4x32_10_in_place(std::uint32_t* ctr, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * ctr[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * ctr[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t c0 = hi1 ^ ctr[1] ^ key0, c2 = hi0 ^ ctr[3] ^ key1;
    ctr[0] = c0;
    ctr[1] = lo1;
    ctr[2] = c2;
    ctr[3] = lo0;
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
}

inline std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr,
                                                  std::array<std::uint32_t, 2> key) {
  philox4x32_10_in_place(ctr.data(), key[0], key[1]);
  return ctr;
}

}  // namespace detail

/// Random numbers addressed by (stream, counter) under a 64-bit seed.
class CounterRng {
 public:
  MIXTURA_RNG_HD explicit CounterRng(std::uint64_t seed, std::uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  /// 64 random bits at position `counter` of this stream.
  MIXTURA_RNG_HD std::uint64_t bits_at(std::uint64_t counter) const {
    std::uint32_t out[4] = {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                            static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)};
    detail::philox4x32_10_in_place(out, static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32));
    return (static_cast<std::uint64_t>(out[0]) << 32) | out[1];
  }
  /// Uniform double in [0, 1) at position `counter` (53 random bits).
  MIXTURA_RNG_HD double uniform_at(std::uint64_t counter) const {
    return static_cast<double>(bits_at(counter) >> 11) * 0x1.0p-53;
  }
  /// Uniform double in (0, 1]: safe under log().
  MIXTURA_RNG_HD double uniform_open_at(std::uint64_t counter) const {
    return (static_cast<double>(bits_at(counter) >> 11) + 1.0) * 0x1.0p-53;
  }
  /// The next uniform in [0, 1) of a sequential walk through this stream.
  double next_uniform() { return uniform_at(next_++); }

  MIXTURA_RNG_HD std::uint64_t seed() const { return seed_; }
  MIXTURA_RNG_HD std::uint64_t stream() const { return stream_; }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t next_ = 0;
};

}  // namespace mixtura
