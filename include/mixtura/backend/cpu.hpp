#pragma once
/// The CPU backend tag. Algorithms overload their data passes on the backend type; the fit loops
/// are templates written once over it.

namespace mixtura {

/// Data passes on the CPU: Eigen products, OpenMP over row blocks, deterministic folds.
struct CpuBackend {
  int n_threads = 0;  ///< threads for data passes; 0 = OpenMP's default
};

}  // namespace mixtura
