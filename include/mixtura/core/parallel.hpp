#pragma once
/// Deterministic blocked folds over rows, OpenMP-parallel.
///
/// The guarantee: rows are cut into blocks of a fixed size (chosen by the algorithm, never by the
/// thread count); consecutive blocks form at most kMaxGroups reduction groups whose boundaries depend
/// only on the number of rows; each group is folded in row order, and the group results are merged
/// in group order. Floating-point results are therefore bit-identical for any number of threads and
/// from run to run. No exception escapes the parallel region: the first one is rethrown after it.

#include <algorithm>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/matrix_view.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace mixtura {

/// Number of threads mixtura uses when a parameter says 0 ("all"): OpenMP's current maximum.
inline int default_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Whether this build runs data passes in parallel.
inline bool built_with_openmp() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

namespace detail {

inline constexpr Index kMaxGroups = 64;

inline int resolve_threads(int n_threads) { return n_threads > 0 ? n_threads : default_threads(); }

/// How n_rows are cut: blocks of block_rows (last one shorter), grouped into n_groups groups.
struct BlockPlan {
  Index n_rows = 0, block_rows = 1, n_blocks = 0, n_groups = 0;

  BlockPlan(Index rows, Index block) : n_rows(rows), block_rows(std::max<Index>(block, 1)) {
    n_blocks = (n_rows + block_rows - 1) / block_rows;
    n_groups = std::min(n_blocks, kMaxGroups);
  }
  Index block_begin(Index b) const { return b * block_rows; }
  Index block_end(Index b) const { return std::min(n_rows, (b + 1) * block_rows); }
  /// Blocks [group_first(g), group_first(g + 1)) belong to group g.
  Index group_first(Index g) const { return n_groups == 0 ? 0 : g * n_blocks / n_groups; }
};

/// Runs body(scratch, i) for every i in [0, n) on up to n_threads threads, each thread with its own
/// working memory made by make_scratch() at its first item and kept for the rest: a pass allocates
/// (and first touches) its scratch once per thread, not once per item, so that a fit's iterations do
/// not fault the same pages in again and again. Rethrows the first exception.
template <class MakeScratch, class Body>
void parallel_for_each_with(Index n, int n_threads, MakeScratch&& make_scratch, Body&& body) {
  MIXTURA_EXPECTS(n_threads >= 0 && n_threads <= kMaxThreads, "parallel pass: n_threads must be in [0, %d], got %d", kMaxThreads,
                  n_threads);
  using Scratch = decltype(make_scratch());
  std::exception_ptr error;
#if defined(_OPENMP)
#pragma omp parallel num_threads(resolve_threads(n_threads))
#else
  (void)n_threads;  // serial build: one thread whatever is asked
#endif
  {
    std::optional<Scratch> scratch;
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
    for (Index i = 0; i < n; ++i) {
      try {
        if (!scratch) scratch.emplace(make_scratch());
        body(*scratch, i);
      } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(mixtura_parallel_error)
#endif
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

/// A scratch for passes that need none.
struct NoScratch {};

/// Runs body(g) for every g in [0, n) on up to n_threads threads; rethrows the first exception.
template <class Body>
void parallel_for(Index n, int n_threads, Body&& body) {
  parallel_for_each_with(n, n_threads, [] { return NoScratch{}; }, [&](NoScratch&, Index i) { body(i); });
}

/// Folds rows [0, n_rows) into a Stats value, deterministically (see the file comment).
///
/// make_stats() -> Stats: an empty statistic. Stats::merge(const Stats&) adds another in.
/// make_scratch() -> Scratch: per-thread working memory, made once per thread and reused across its
/// groups (so fold_block must not rely on what an earlier block left in it).
/// fold_block(Stats&, Scratch&, Index begin, Index end): folds rows [begin, end) into the statistic.
template <class MakeStats, class MakeScratch, class FoldBlock>
auto fold_rows(Index n_rows, Index block_rows, int n_threads, MakeStats&& make_stats,
               MakeScratch&& make_scratch, FoldBlock&& fold_block) -> decltype(make_stats()) {
  using Stats = decltype(make_stats());
  const BlockPlan plan(n_rows, block_rows);
  if (plan.n_groups == 0) return make_stats();
  // Group results join the total in group order as soon as their predecessors have: a finished
  // group's memory goes back to the allocator within the pass (and is reused by the next group),
  // instead of all n_groups partials living until the end. Same order of merges as a final loop.
  std::vector<std::optional<Stats>> partial(static_cast<std::size_t>(plan.n_groups));
  std::optional<Stats> total;
  std::size_t merged = 0;  // partial[0, merged) are in total
  parallel_for_each_with(plan.n_groups, n_threads, make_scratch, [&](auto& scratch, Index g) {
    Stats stats = make_stats();
    for (Index b = plan.group_first(g); b < plan.group_first(g + 1); ++b)
      fold_block(stats, scratch, plan.block_begin(b), plan.block_end(b));
    std::exception_ptr error;
#if defined(_OPENMP)
#pragma omp critical(mixtura_fold_merge)
#endif
    {
      try {
        partial[static_cast<std::size_t>(g)].emplace(std::move(stats));
        for (; merged < partial.size() && partial[merged]; ++merged) {
          if (total) total->merge(*partial[merged]);
          else total.emplace(std::move(*partial[merged]));
          partial[merged].reset();
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  });
  return std::move(*total);
}

/// Runs body(scratch, begin, end) over blocks of rows in parallel, for passes that write per-row
/// results and reduce nothing (labels, scores).
template <class MakeScratch, class Body>
void for_blocks(Index n_rows, Index block_rows, int n_threads, MakeScratch&& make_scratch, Body&& body) {
  const BlockPlan plan(n_rows, block_rows);
  parallel_for_each_with(plan.n_groups, n_threads, make_scratch, [&](auto& scratch, Index g) {
    for (Index b = plan.group_first(g); b < plan.group_first(g + 1); ++b)
      body(scratch, plan.block_begin(b), plan.block_end(b));
  });
}

/// A scalar sum (double) as a mergeable statistic.
struct SumStat {
  double value = 0.0;
  void merge(const SumStat& o) { value += o.value; }
};

}  // namespace detail
}  // namespace mixtura
