#pragma once
/// The CPU backend tag. Algorithms overload their data passes on the backend type; the fit loops
/// are templates written once over it.

#include <type_traits>

namespace mixtura {

/// Data passes on the CPU: Eigen products, OpenMP over row blocks, deterministic folds.
struct CpuBackend {
  int n_threads = 0;  ///< threads for data passes; 0 = OpenMP's default
};

/// What a fit holds on its backend while it runs (`const auto scope = data_scope(be);`): nothing on
/// the CPU; on CUDA the device copy of the data (backend/cuda.hpp).
struct NoDataScope {
  ~NoDataScope() {}  // user-provided, like the CUDA scope's: holding one is not an "unused variable"
};
inline NoDataScope data_scope(const CpuBackend&) { return {}; }

namespace detail {

/// Whether a backend runs the CPU's passes on host views, with the CPU's extras: the bounded searches
/// (kmeans_assign_bounded, kmeans_assign_grouped) and the fused tracking of re-seeding candidates
/// (kmeans_assign's keep_farthest). The header's backend, and the dispatched one (backend/dispatched.hpp).
template <class Backend>
struct is_host_cpu_backend : std::is_same<Backend, CpuBackend> {};

}  // namespace detail

}  // namespace mixtura
