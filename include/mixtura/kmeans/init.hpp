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
#include "mixtura/kmeans/draw.hpp"

namespace mixtura {
/// k-means++'s draws (draw.hpp): one row per u in us with probability proportional to w_i closest_i
/// (closest == nullptr: to w_i), in the rows' order `order`. Returns false (out empty) if every mass is
/// zero. For every backend whose distances are the host array (the CPU's); the CUDA backend overloads
/// it (kmeans/cuda_pass.hpp) to bring the distances it keeps on the device back first.
template <class Backend, class T>
bool kmeans_draw_rows(const Backend&, const detail::DrawOrder& order, VectorView<T> w, const double* closest,
                      const std::vector<double>& us, std::vector<Index>& out) {
  return detail::draw_in_order(order, w.empty() ? nullptr : w.data, closest, us, out);
}

/// Greedy k-means++ (Arthur & Vassilvitskii, with scikit-learn's local trials): the first centre is a
/// row drawn by weight; each next one is the best of n_local_trials rows drawn with probability
/// proportional to w_i D(x_i)^2, "best" meaning the lowest resulting potential.
/// Random numbers: stream `stream` of the seed, drawn in order. The draws walk the rows in an order
/// of their values (draw.hpp): the centres do not depend on the order of the rows, and integer weights
/// draw as repeated rows do. Returns the chosen row indices.
/// X: MatrixView or DeviceMatrixView; a chosen row reaches the passes as a copy (fetch_rows). w:
/// VectorView or DeviceVectorView. The distances to the closest centre are the host array `closest`
/// as far as this loop knows: it reads them only through the backend (the passes and
/// kmeans_draw_rows), so a backend may keep them elsewhere for the whole call (the CUDA backend keeps
/// them on the device, in the data scope opened here).
template <class Backend, template <class> class View, template <class> class WView, class T>
std::vector<Index> kmeans_plusplus_rows(const Backend& be, View<T> X, WView<T> w, int n_clusters,
                                        int n_local_trials, CounterRng rng) {
  const Index n = X.rows;
  if (n_local_trials <= 0) n_local_trials = 2 + static_cast<int>(std::log(static_cast<double>(n_clusters)));
  const auto scope = data_scope(be);  // CUDA: X and the distances stay on the device for every step
  const detail::DrawOrder order(row_hashes(be, X), be.n_threads);
  std::vector<Index> rows;
  rows.reserve(static_cast<std::size_t>(n_clusters));
  std::vector<Index> picked;

  kmeans_draw_rows(be, order, w, nullptr, std::vector<double>{rng.next_uniform()}, picked);
  rows.push_back(picked.at(0));
  std::vector<double> closest(static_cast<std::size_t>(n));
  kmeans_update_closest(be, X, w, fetch_rows(be, X, {rows[0]}).data(), closest.data(), /*reset=*/true);

  std::vector<double> us(static_cast<std::size_t>(n_local_trials));
  for (int c = 1; c < n_clusters; ++c) {
    for (auto& u : us) u = rng.next_uniform();
    if (!kmeans_draw_rows(be, order, w, closest.data(), us, picked)) {
      // Every row sits on a chosen centre (duplicates, k above the distinct rows): draw by weight.
      kmeans_draw_rows(be, order, w, nullptr, us, picked);
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
