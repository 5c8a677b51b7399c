#pragma once
/// Host-side arithmetic of the CUDA backend that decides what the device does: whether the data stays
/// resident or is streamed, and how rows are cut into chunks and reduction segments. Plain C++ (no
/// CUDA header), so that it is tested on machines without a GPU; MIXTURA_HD marks functions that the
/// kernels call too (and `fused`, the one multiply-add every kernel and its host replay use).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define MIXTURA_HD __host__ __device__
#else
#define MIXTURA_HD
#endif

namespace mixtura {
namespace cuda {

/// a * b + c rounded once, on the device and in host replays of the kernels alike.
MIXTURA_HD inline float fused(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
MIXTURA_HD inline double fused(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

/// Rows per reduction segment. Every pass that reduces over rows folds each segment of
/// kSegmentRows consecutive rows (counted from row 0 of the data, not of a chunk) into one partial,
/// in a fixed order, and adds the partials to its running totals in segment order. Chunks are whole
/// segments, so results are bit-identical whether the data is resident or streamed in any chunking.
inline constexpr std::int64_t kSegmentRows = 8192;

/// Largest staging slot (pinned host and device, each of two) when no memory cap is given.
inline constexpr std::size_t kDefaultSlotBytes = std::size_t{256} << 20;

/// How a pass walks over n rows: at once from a resident device copy, or in chunks.
struct ChunkPlan {
  bool resident = true;          ///< the whole data fits the budget: one chunk, uploaded once
  std::int64_t chunk_rows = 0;   ///< rows per chunk (a multiple of kSegmentRows when streaming)
  std::int64_t n_chunks = 0;     ///< chunks (0 for no rows)
  std::size_t slot_bytes = 0;    ///< bytes of one staging slot when streaming (else 0)
};

/// Plans `rows` rows of `row_bytes` bytes each (features and weight together) under `budget_bytes`
/// of device memory for the data. Resident when everything fits; else two staging slots of whole
/// segments, each at most half the budget and at most max_slot_bytes, and never less than one segment.
inline ChunkPlan plan_chunks(std::int64_t rows, std::size_t row_bytes, std::size_t budget_bytes,
                             std::size_t max_slot_bytes = kDefaultSlotBytes) {
  ChunkPlan p;
  if (rows <= 0 || row_bytes == 0) return p;
  const std::size_t total = static_cast<std::size_t>(rows) * row_bytes;
  if (total <= budget_bytes) {
    p.chunk_rows = rows;
    p.n_chunks = 1;
    return p;
  }
  p.resident = false;
  const std::size_t slot = std::min(budget_bytes / 2, max_slot_bytes);
  const std::int64_t fit_rows = static_cast<std::int64_t>(slot / row_bytes);
  const std::int64_t segments_needed = (rows + kSegmentRows - 1) / kSegmentRows;
  const std::int64_t segments = std::min(std::max<std::int64_t>(fit_rows / kSegmentRows, 1), segments_needed);
  p.chunk_rows = segments * kSegmentRows;
  p.n_chunks = (rows + p.chunk_rows - 1) / p.chunk_rows;
  p.slot_bytes = static_cast<std::size_t>(p.chunk_rows) * row_bytes;
  return p;
}

/// Device bytes the data may take: the cap if one is given, else what is free less a reserve for the
/// passes' own buffers (a tenth of the card and 512 MiB).
inline std::size_t residency_budget(std::size_t max_device_bytes, std::size_t free_bytes, std::size_t total_bytes) {
  if (max_device_bytes > 0) return max_device_bytes;
  const std::size_t reserve = total_bytes / 10 + (std::size_t{512} << 20);
  return free_bytes > reserve ? free_bytes - reserve : 0;
}

/// Number of reduction segments of n rows.
MIXTURA_HD inline std::int64_t segment_count(std::int64_t rows) { return (rows + kSegmentRows - 1) / kSegmentRows; }

}  // namespace cuda
}  // namespace mixtura
