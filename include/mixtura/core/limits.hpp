#pragma once
/// Limits on parameters that every algorithm shares (no Eigen, so that the CUDA sources include it too).

namespace mixtura {

/// The most threads a pass may be asked for (n_threads in every params struct; 0 = OpenMP's default).
/// Far above any shared-memory machine's cores; beyond it libgomp gives up or the process runs out of
/// thread stacks (50,000 and 100,000 did).
inline constexpr int kMaxThreads = 1024;

/// The largest magnitude a data value may have: squares and sums of squares of values within it stay
/// finite in double (a fit or a score of larger values would turn into inf and NaN). Checked with the
/// non-finite values, at every entry point, on every backend.
inline constexpr double kDataValueLimit = 1e150;

}  // namespace mixtura
