#pragma once
/// Initial centres: greedy k-means++ and weighted random rows, from the counter-based generator.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "mixtura/core/data_access.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/kmeans/cpu_pass.hpp"

namespace mixtura {
namespace detail {

/// Draws one index per u in `us` with probability proportional to mass(i) >= 0, by inverting the
/// cumulative sum. The cumulative sum is blocked (fixed 4096-row blocks summed in order), so the draws
/// are the same for any thread count. Returns false (and leaves `out` empty) if the total mass is zero.
template <class Mass>
bool draw_by_mass(Index n, int n_threads, Mass&& mass, const std::vector<double>& us, std::vector<Index>& out) {
  constexpr Index kBlock = 4096;
  const Index n_blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> block_sum(static_cast<std::size_t>(n_blocks), 0.0);
  parallel_for(n_blocks, n_threads, [&](Index b) {
    double s = 0.0;
    for (Index i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) s += mass(i);
    block_sum[b] = s;
  });
  double total = 0.0;
  for (double s : block_sum) total += s;
  out.clear();
  if (!(total > 0.0)) return false;
  for (double u : us) {
    const double target = u * total;
    double acc = 0.0;
    Index b = 0;
    while (b + 1 < n_blocks && acc + block_sum[b] <= target) acc += block_sum[b++];
    Index pick = -1;
    for (Index i = b * kBlock; i < std::min(n, (b + 1) * kBlock) && pick < 0; ++i) {
      const double m = mass(i);
      acc += m;
      if (acc > target && m > 0) pick = i;
    }
    for (Index i = n - 1; i >= 0 && pick < 0; --i)  // round-off at the very end: last row with mass
      if (mass(i) > 0) pick = i;
    out.push_back(pick);
  }
  return true;
}

}  // namespace detail

/// Greedy k-means++ (Arthur & Vassilvitskii, with scikit-learn's local trials): the first centre is a
/// row drawn by weight; each next one is the best of n_local_trials rows drawn with probability
/// proportional to w_i D(x_i)^2, "best" meaning the lowest resulting potential.
/// Random numbers: stream `stream` of the seed, drawn in order. Returns the chosen row indices.
/// X: MatrixView or DeviceMatrixView; a chosen row reaches the passes as a copy (fetch_rows).
template <class Backend, template <class> class View, class T>
std::vector<Index> kmeans_plusplus_rows(const Backend& be, View<T> X, VectorView<T> w, int n_clusters,
                                        int n_local_trials, CounterRng rng) {
  const Index n = X.rows;
  const int n_threads = be.n_threads;
  if (n_local_trials <= 0) n_local_trials = 2 + static_cast<int>(std::log(static_cast<double>(n_clusters)));
  std::vector<Index> rows;
  rows.reserve(static_cast<std::size_t>(n_clusters));
  std::vector<Index> picked;
  auto weight_of = [&](Index i) { return detail::row_weight(w, i); };

  detail::draw_by_mass(n, n_threads, weight_of, {rng.next_uniform()}, picked);
  rows.push_back(picked.at(0));
  std::vector<double> closest(static_cast<std::size_t>(n));
  kmeans_update_closest(be, X, w, fetch_rows(be, X, {rows[0]}).data(), closest.data(), /*reset=*/true);

  std::vector<double> us(static_cast<std::size_t>(n_local_trials));
  for (int c = 1; c < n_clusters; ++c) {
    for (auto& u : us) u = rng.next_uniform();
    auto mass = [&](Index i) { return weight_of(i) * closest[i]; };
    if (!detail::draw_by_mass(n, n_threads, mass, us, picked)) {
      // Every row sits on a chosen centre (duplicates, k above the distinct rows): draw by weight.
      detail::draw_by_mass(n, n_threads, weight_of, us, picked);
    }
    const auto pots = kmeans_candidate_potentials(be, X, w, closest.data(), picked);
    const std::size_t best = static_cast<std::size_t>(std::min_element(pots.begin(), pots.end()) - pots.begin());
    rows.push_back(picked[best]);
    kmeans_update_closest(be, X, w, fetch_rows(be, X, {picked[best]}).data(), closest.data(), /*reset=*/false);
  }
  return rows;
}

/// n_clusters distinct rows drawn without replacement with probability proportional to their weight
/// (Efraimidis-Spirakis keys log(u_i) / w_i, u_i from the counter of row i). Rows of zero weight are
/// never drawn; the caller checks there are enough with positive weight. Reads X's shape only (any view).
template <template <class> class View, class T>
std::vector<Index> random_rows(View<T> X, VectorView<T> w, int n_clusters, CounterRng rng, int n_threads) {
  const Index n = X.rows;
  std::vector<double> key(static_cast<std::size_t>(n));
  detail::for_blocks(n, 4096, n_threads, [] { return detail::NoScratch{}; },
                     [&](detail::NoScratch&, Index begin, Index end) {
                       for (Index i = begin; i < end; ++i) {
                         const double wi = detail::row_weight(w, i);
                         key[i] = wi > 0 ? std::log(rng.uniform_open_at(static_cast<std::uint64_t>(i))) / wi
                                         : -std::numeric_limits<double>::infinity();
                       }
                     });
  std::vector<Index> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), Index{0});
  auto higher = [&](Index a, Index b) { return key[a] > key[b] || (key[a] == key[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + n_clusters, idx.end(), higher);
  idx.resize(static_cast<std::size_t>(n_clusters));
  return idx;
}

}  // namespace mixtura
