#pragma once
/// Counter-based random numbers (Philox4x32-10), keyed by the seed.
///
/// A value is a pure function of (seed, stream, counter): no hidden state, so the same numbers come
/// out whatever the number of threads or the backend. Streams separate independent uses (restart r
/// of K-means draws from its own stream), counters index the draws within a stream.

#include <array>
#include <cstdint>

namespace mixtura {
namespace detail {

inline std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> ctr,
                                                  std::array<std::uint32_t, 2> key) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * ctr[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * ctr[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return ctr;
}

}  // namespace detail

/// Random numbers addressed by (stream, counter) under a 64-bit seed.
class CounterRng {
 public:
  explicit CounterRng(std::uint64_t seed, std::uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  /// 64 random bits at position `counter` of this stream.
  std::uint64_t bits_at(std::uint64_t counter) const {
    const auto out = detail::philox4x32_10(
        {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
         static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
        {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
    return (static_cast<std::uint64_t>(out[0]) << 32) | out[1];
  }
  /// Uniform double in [0, 1) at position `counter` (53 random bits).
  double uniform_at(std::uint64_t counter) const {
    return static_cast<double>(bits_at(counter) >> 11) * 0x1.0p-53;
  }
  /// Uniform double in (0, 1]: safe under log().
  double uniform_open_at(std::uint64_t counter) const {
    return (static_cast<double>(bits_at(counter) >> 11) + 1.0) * 0x1.0p-53;
  }
  /// The next uniform in [0, 1) of a sequential walk through this stream.
  double next_uniform() { return uniform_at(next_++); }

  std::uint64_t seed() const { return seed_; }
  std::uint64_t stream() const { return stream_; }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t next_ = 0;
};

}  // namespace mixtura
