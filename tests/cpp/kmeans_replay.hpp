#pragma once
// The CUDA K-means assignment pass replayed on the host, for machines without a GPU: the labels by
// the kernels' distance (argmin_distance), the statistics with the very per-thread functions the
// fused kernel calls (mixtura/cuda/kmeans_reduce.hpp), thread by thread, block by block, and the
// block partials added in groups with a carry across streamed chunks, as the device does.
//
// The prediction pass (labels and distortion in one read of X) is replayed the same way
// (replay_predict, predict_row_fold), and so are k-means++'s draws (block sums from the "device"
// distances, then only the blocks the draws fall in brought to the host; replay_draw_rows), with the
// distances held away from their host array during the call as the CUDA backend holds them.
//
// KMeansReplayBackend runs the whole fit loop on these passes, with labels held away from the host
// array during a fit (the same bookkeeping as the CUDA context, resident_labels.hpp): after every
// kmeans_assign the host array holds wrong labels until kmeans_labels_to_host, so a fit loop that
// read or edited it without bringing the labels back would give another result than the CPU.
//
// Device-resident X and weights (DeviceMatrixView, DeviceVectorView) on the replayed passes:
// HostUnreadableCopy puts the data behind an address range the host cannot read (PROT_NONE) and tells
// the backend where the values really are; the backend's passes and its fetch_rows /
// first_non_finite / first_bad_weight translate the address, the way the device reads its memory. A
// fit loop that reads X or the weights on the host itself faults.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"
#include "mixtura/cuda/resident_labels.hpp"
#include "mixtura/kmeans.hpp"
#include "test_util.hpp"

namespace mixtura_test {

using namespace mixtura;

/// The labels of the assignment kernels: argmin over k of ||c_k - s||^2 + the fused multiply-add chain
/// of (x - s) . (-2 (c_k - s)) in T (s: the centres' mean, as argmin_centers uploads them), ties to the
/// lower index.
template <class T>
std::vector<std::int32_t> replay_labels(MatrixView<T> X, const RowMatrix<T>& C) {
  const Index K = C.rows(), D = C.cols();
  std::vector<T> shift(static_cast<std::size_t>(D)), ct(static_cast<std::size_t>(K * D)), norms(static_cast<std::size_t>(K));
  cuda::argmin_centers(C.data(), K, D, shift.data(), ct.data(), norms.data());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows));
  for (Index i = 0; i < X.rows; ++i) {
    std::int32_t best = 0;
    T best_v = std::numeric_limits<T>::infinity();
    for (Index k = 0; k < K; ++k) {
      const T v = cuda::argmin_distance(X.row(i), shift.data(), ct.data(), norms.data(), K, D, k);
      if (v < best_v) {
        best_v = v;
        best = static_cast<std::int32_t>(k);
      }
    }
    labels[static_cast<std::size_t>(i)] = best;
  }
  return labels;
}

/// The totals of the fused assignment pass (FusedTiling's layout) for given labels, exactly as the
/// device adds them up when the data comes in chunks of `chunk_rows` rows (a multiple of
/// kSegmentRows, as the streaming plan makes them; >= n: resident). X must be dense.
template <class T>
std::vector<double> replay_fused_stats(const RowMatrix<T>& X, const T* w, const std::vector<std::int32_t>& labels,
                                       const RowMatrix<T>& C, Index chunk_rows) {
  using namespace mixtura::cuda;
  const Index n = X.rows(), D = X.cols();
  const FusedTiling tl = fused_tiling(C.rows(), D, sizeof(T));
  const Index width = tl.width(), total_blocks = (n + tl.block_rows - 1) / tl.block_rows;
  const RowMatrix<double> cd = C.template cast<double>();
  std::vector<double> totals(static_cast<std::size_t>(width), 0.0);
  // A carry read before it is written would poison the totals: NaN makes that loud.
  std::vector<double> carry(static_cast<std::size_t>(width), std::numeric_limits<double>::quiet_NaN());
  for (Index first = 0; first < n; first += chunk_rows) {
    const Index rows = std::min(chunk_rows, n - first);
    const Index n_blocks = (rows + tl.block_rows - 1) / tl.block_rows;
    std::vector<double> part(static_cast<std::size_t>(n_blocks * width));
    for (Index b = 0; b < n_blocks; ++b) {  // fused_assign_kernel, one block
      const Index r0 = first + b * tl.block_rows, r1 = std::min(first + rows, r0 + tl.block_rows);
      std::vector<double> cells(static_cast<std::size_t>(tl.tr * tl.cells()), 0.0);
      std::vector<double> distortion(kReduceThreads, 0.0);
      for (Index t0 = r0; t0 < r1; t0 += kAssignTileRows) {
        const Index m = std::min<Index>(kAssignTileRows, r1 - t0);
        for (int tid = 0; tid < kReduceThreads; ++tid)
          fused_lane_fold(X.data() + t0 * D, w ? w + t0 : nullptr, labels.data() + t0, m, cd.data(), tl, tid,
                          cells.data(), &distortion[static_cast<std::size_t>(tid)]);
      }
      double* out = part.data() + b * width;
      for (Index i = 0; i < tl.cells(); ++i) {
        out[i] = fused_lane_sum(cells.data(), tl, i);
        // One copy: the kernel may keep the cells in the partial itself (no final sum) and must get
        // the same bits (a cell is never -0: it starts at +0 and w >= 0).
        if (tl.tr == 1 && std::memcmp(&out[i], &cells[static_cast<std::size_t>(i)], sizeof(double)) != 0)
          ADD_FAILURE() << "cell " << i << ": the lane sum of one copy changes its bits";
      }
      out[tl.distortion_at()] = tree_sum(distortion.data(), kReduceThreads);
    }
    const ChunkGroups cg(first / tl.block_rows, n_blocks, total_blocks);  // accumulate_groups
    std::vector<double> group_sums(static_cast<std::size_t>(cg.n_groups * width));
    for (Index i = 0; i < cg.n_groups; ++i) {
      Index begin = 0, end = 0;
      cg.blocks_of(i, &begin, &end);
      for (Index c = 0; c < width; ++c)
        group_sums[static_cast<std::size_t>(i * width + c)] =
            group_column_sum(part.data(), width, c, begin, end, cg.from_carry(i) ? carry[c] : 0.0);
    }
    for (Index c = 0; c < width; ++c)
      fold_group_column(group_sums.data(), cg.n_groups, cg.last_complete, width, c, totals.data(), carry.data());
  }
  return totals;
}

/// The prediction pass (fused_predict_kernel) replayed: the labels by the kernels' argmin, the
/// distortion with the kernel's per-thread function (predict_row_fold), thread by thread and step by
/// step, each segment's threads added by tree_sum and the segments in order (streamed chunks are
/// whole segments: the same sum). X must be dense. Returns the distortion; labels receives the labels.
template <class T>
double replay_predict(const RowMatrix<T>& X, const T* w, const RowMatrix<T>& C, std::vector<std::int32_t>& labels) {
  using namespace mixtura::cuda;
  const Index n = X.rows(), D = X.cols();
  labels = replay_labels(MatrixView<T>(X), C);
  double total = 0.0;
  for (Index r0 = 0; r0 < n; r0 += kSegmentRows) {  // one block per segment
    const Index r1 = std::min(n, r0 + kSegmentRows);
    std::vector<double> distortion(kReduceThreads, 0.0);
    for (Index s0 = r0; s0 < r1; s0 += kPredictStepRows)
      for (int tid = 0; tid < kReduceThreads; ++tid)
        predict_row_fold(X.data() + s0 * D, w ? w + s0 : nullptr, labels.data() + s0,
                         std::min<Index>(kPredictStepRows, r1 - s0), C.data(), D, tid,
                         &distortion[static_cast<std::size_t>(tid)]);
    total += tree_sum(distortion.data(), kReduceThreads);  // accumulate_partials: segment order
  }
  return total;
}

/// The replayed totals as the statistics kmeans_assign returns.
inline KMeansStats stats_of_totals(const std::vector<double>& t, Index K, Index D, std::size_t elem_bytes) {
  const cuda::FusedTiling tl = cuda::fused_tiling(K, D, elem_bytes);
  KMeansStats s(K, D);
  for (Index k = 0; k < K; ++k) {
    for (Index d = 0; d < D; ++d)
      s.sums[static_cast<std::size_t>(k * D + d)] = t[static_cast<std::size_t>(tl.sum_at(k, d))];
    s.weight[static_cast<std::size_t>(k)] = t[static_cast<std::size_t>(tl.weight_at(k))];
    s.count[static_cast<std::size_t>(k)] = static_cast<Index>(t[static_cast<std::size_t>(tl.count_at(k))]);
  }
  s.distortion = t[static_cast<std::size_t>(tl.distortion_at())];
  return s;
}

/// A host array standing in for a device buffer in HeldArrays.
template <class E>
struct HostBuffer {
  std::vector<E> v;
  void reserve(std::size_t n) {
    if (v.size() < n) v.resize(n);
  }
  E* data() { return v.data(); }
};
using HostLabelsBuffer = HostBuffer<std::int32_t>;

/// A backend whose kmeans_assign and kmeans_predict are the replayed CUDA passes, whose fit keeps its
/// labels away from the host array and whose k-means++ keeps its distances away from theirs, as the
/// CUDA backend does (the other passes are the CPU's), and whose draws are the CUDA backend's.
struct KMeansReplayBackend {
  struct State {
    cuda::ScopeStack scopes;
    cuda::HeldLabels<HostLabelsBuffer> held;
    cuda::HeldDistances<HostBuffer<double>> held_distances;
    int n_to_host = 0;       ///< kmeans_labels_to_host calls that brought labels back
    int n_device_reads = 0;  ///< fetch_rows, row_hashes and first_non_finite calls on device views
    std::int64_t n_fetched_values = 0;  ///< values the fetch_rows calls copied to the host
    int n_draws = 0;                   ///< draws made from the "device" distances or weights
    std::int64_t n_draw_values = 0;    ///< values those draws copied to the host (distances, weights)
  };
  int n_threads = 1;
  std::shared_ptr<State> state = std::make_shared<State>();
  /// Address ranges standing for "device memory": [fake, fake + bytes) holds the values at real.
  struct FakeDevice {
    const unsigned char* fake = nullptr;
    const unsigned char* real = nullptr;
    std::size_t bytes = 0;
  };
  std::shared_ptr<std::vector<FakeDevice>> devices = std::make_shared<std::vector<FakeDevice>>();
};

/// A "device" copy of X for KMeansReplayBackend: a view at an address the host cannot read (an
/// anonymous PROT_NONE mapping of X's size), registered with the backend, whose passes read X
/// through it. Any read of the view's address by host code is a segmentation fault.
template <class T>
class HostUnreadableCopy {
 public:
  HostUnreadableCopy(const KMeansReplayBackend& be, MatrixView<T> X) : be_(be), real_(X) {
    bytes_ = static_cast<std::size_t>((X.rows - 1) * X.stride + X.cols) * sizeof(T);
    void* p = mmap(nullptr, bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("HostUnreadableCopy: mmap failed");
    fake_ = static_cast<const T*>(p);
    be_.devices->push_back({reinterpret_cast<const unsigned char*>(fake_),
                            reinterpret_cast<const unsigned char*>(X.data), bytes_});
  }
  ~HostUnreadableCopy() {
    auto& d = *be_.devices;
    d.erase(std::remove_if(d.begin(), d.end(),
                           [&](const KMeansReplayBackend::FakeDevice& f) {
                             return f.fake == reinterpret_cast<const unsigned char*>(fake_);
                           }),
            d.end());
    munmap(const_cast<T*>(fake_), bytes_);
  }
  HostUnreadableCopy(const HostUnreadableCopy&) = delete;
  HostUnreadableCopy& operator=(const HostUnreadableCopy&) = delete;

  DeviceMatrixView<T> view() const { return {fake_, real_.rows, real_.cols, real_.stride}; }
  /// For a copy made of a one-column view (sample weights): the "device" vector.
  DeviceVectorView<T> vector() const { return {fake_, real_.rows}; }

 private:
  KMeansReplayBackend be_;
  MatrixView<T> real_;
  const T* fake_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Where the replayed passes find the values of a "device" view (the device reading its memory).
template <class T>
MatrixView<T> on_host(const KMeansReplayBackend& be, DeviceMatrixView<T> X) {
  const auto* p = reinterpret_cast<const unsigned char*>(X.data);
  for (const auto& d : *be.devices)
    if (p >= d.fake && p < d.fake + d.bytes)
      return {reinterpret_cast<const T*>(d.real + (p - d.fake)), X.rows, X.cols, X.stride};
  ADD_FAILURE() << "a DeviceMatrixView at an address no HostUnreadableCopy made";
  throw std::logic_error("unknown device view");
}

/// Where the replayed passes find the values of "device" weights.
template <class T>
VectorView<T> on_host(const KMeansReplayBackend& be, DeviceVectorView<T> w) {
  if (w.empty()) return {};
  return {on_host(be, DeviceMatrixView<T>(w.data, w.size, 1)).data, w.size};
}

/// What a pass opens: a scope of its own, so that scopes.outer() is the fit's.
struct ReplayScope {
  std::shared_ptr<KMeansReplayBackend::State> state;
  explicit ReplayScope(const KMeansReplayBackend& be) : state(be.state) { state->scopes.enter(); }
  ~ReplayScope() { state->scopes.leave(); }
  ReplayScope(const ReplayScope&) = delete;
  ReplayScope& operator=(const ReplayScope&) = delete;
};
inline std::unique_ptr<ReplayScope> data_scope(const KMeansReplayBackend& be) {
  return std::make_unique<ReplayScope>(be);
}

/// The labels' "device" copy for a pass, as cuda/kmeans_passes.cuh's device_labels finds or makes it.
inline std::int32_t* replay_device_labels(const KMeansReplayBackend& be, std::vector<std::int32_t>& scratch,
                                          const std::int32_t* labels, Index n, bool hold) {
  auto& st = *be.state;
  if (HostLabelsBuffer* b = st.held.find(labels, n, st.scopes)) return b->data();
  const std::uint64_t fit = st.scopes.outer();
  std::int32_t* d = nullptr;
  if (hold && fit) {
    d = st.held.hold(labels, n, fit, st.scopes).data();
  } else {
    scratch.resize(static_cast<std::size_t>(n));
    d = scratch.data();
  }
  std::copy_n(labels, n, d);
  return d;
}

template <class T>
KMeansStats kmeans_assign(const KMeansReplayBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels) {
  ReplayScope pass(be);
  const Index n = X.rows, K = C.rows();
  std::vector<std::int32_t> scratch;
  std::int32_t* dev = replay_device_labels(be, scratch, labels, n, /*hold=*/true);
  const std::vector<std::int32_t> next = replay_labels(X, C);
  std::int64_t changed = 0;
  for (Index i = 0; i < n; ++i) changed += dev[i] != next[static_cast<std::size_t>(i)];
  std::copy(next.begin(), next.end(), dev);
  const RowMatrix<T> dense = Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>(X.data, X.rows, X.cols,
                                                                                     Eigen::OuterStride<>(X.stride));
  const auto totals = replay_fused_stats(dense, w.empty() ? nullptr : w.data, next, C, n);
  KMeansStats s = stats_of_totals(totals, K, C.cols(), sizeof(T));
  s.n_changed = changed;
  if (dev == scratch.data()) {
    std::copy_n(dev, n, labels);  // outside a fit the labels come back at once
  } else {
    for (Index i = 0; i < n; ++i)  // the host array is stale: make reading it give wrong answers
      labels[i] = static_cast<std::int32_t>((next[static_cast<std::size_t>(i)] + 1) % K);
  }
  return s;
}

template <class T>
std::vector<double> kmeans_distances_to_assigned(const KMeansReplayBackend& be, MatrixView<T> X, const RowMatrix<T>& C,
                                                 const std::int32_t* labels) {
  ReplayScope pass(be);
  std::vector<std::int32_t> scratch;
  const std::int32_t* dev = replay_device_labels(be, scratch, labels, X.rows, /*hold=*/false);
  return kmeans_distances_to_assigned(CpuBackend{be.n_threads}, X, C, dev);
}

template <class T>
double kmeans_predict(const KMeansReplayBackend& be, MatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  ReplayScope pass(be);
  const RowMatrix<T> dense = Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>(X.data, X.rows, X.cols,
                                                                                     Eigen::OuterStride<>(X.stride));
  std::vector<std::int32_t> next;
  const double j = replay_predict(dense, w.empty() ? nullptr : w.data, C, next);
  if (labels) {
    std::copy(next.begin(), next.end(), labels);
    be.state->held.release(labels);
  }
  return j;
}

inline void kmeans_labels_to_host(const KMeansReplayBackend& be, std::int32_t* labels, Index rows) {
  ReplayScope pass(be);
  auto& st = *be.state;
  HostLabelsBuffer* b = st.held.find(labels, rows, st.scopes);
  if (!b) return;
  std::copy_n(b->data(), rows, labels);
  st.held.release(labels);
  ++st.n_to_host;
}

// The scale of tol and transform: the CPU's passes.
template <class T>
RowMatrix<T> kmeans_transform(const KMeansReplayBackend& be, MatrixView<T> X, const RowMatrix<T>& C) {
  return kmeans_transform(CpuBackend{be.n_threads}, X, C);
}

/// k-means++'s distances for a pass, as cuda/kmeans_passes.cuh's device_distances finds or makes them:
/// the copy held for the host array, else (hold, in a fit's scope) a new one held, else scratch; a new
/// copy receives the host array's values unless fresh.
inline double* replay_device_distances(const KMeansReplayBackend& be, std::vector<double>& scratch,
                                       const double* closest, Index n, bool hold, bool fresh) {
  auto& st = *be.state;
  if (HostBuffer<double>* b = st.held_distances.find(closest, n, st.scopes)) return b->data();
  const std::uint64_t fit = st.scopes.outer();
  double* d = nullptr;
  if (hold && fit) {
    d = st.held_distances.hold(closest, n, fit, st.scopes).data();
  } else {
    scratch.resize(static_cast<std::size_t>(n));
    d = scratch.data();
  }
  if (!fresh) std::copy_n(closest, n, d);
  return d;
}

// k-means++: the CPU's passes on the distances' "device" copy. While it is held the host array holds
// NaN: a loop that read it (a draw, a pass) would pick other rows.
template <class T>
double kmeans_update_closest(const KMeansReplayBackend& be, MatrixView<T> X, VectorView<T> w, const T* c,
                             double* closest, bool reset) {
  ReplayScope pass(be);
  std::vector<double> scratch;
  double* dev = replay_device_distances(be, scratch, closest, X.rows, /*hold=*/true, /*fresh=*/reset);
  const double total = kmeans_update_closest(CpuBackend{be.n_threads}, X, w, c, dev, reset);
  if (dev == scratch.data())
    std::copy_n(dev, X.rows, closest);  // outside a scope the distances come back at once
  else
    std::fill_n(closest, X.rows, std::numeric_limits<double>::quiet_NaN());
  return total;
}
template <class T>
std::vector<double> kmeans_candidate_potentials(const KMeansReplayBackend& be, MatrixView<T> X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  ReplayScope pass(be);
  std::vector<double> scratch;
  const double* dev = replay_device_distances(be, scratch, closest, X.rows, false, false);
  return kmeans_candidate_potentials(CpuBackend{be.n_threads}, X, w, dev, candidates);
}

/// k-means++'s draws as the CUDA backend makes them (kmeans/cuda_pass.hpp): the "device" distances
/// (and device weights) copied to the host, then the host's walk in the rows' order; n_draw_values
/// counts what the host receives. w: the weights where the device reads them (nullptr: unit),
/// w_on_device: whether the host must copy them too (else it reads its own array).
template <class T>
bool replay_draw_rows(const KMeansReplayBackend& be, const detail::DrawOrder& order, const T* w, bool w_on_device,
                      const double* closest, const std::vector<double>& us, std::vector<Index>& out) {
  ReplayScope pass(be);
  auto& st = *be.state;
  const Index n = order.size();
  std::vector<double> scratch;
  const double* dev = closest ? replay_device_distances(be, scratch, closest, n, false, false) : nullptr;
  std::vector<double> c(dev ? dev : nullptr, dev ? dev + n : nullptr);
  std::vector<T> wc(w && w_on_device ? w : nullptr, w && w_on_device ? w + n : nullptr);
  st.n_draw_values += static_cast<std::int64_t>(c.size() + wc.size());
  ++st.n_draws;
  return detail::draw_in_order(order, w_on_device ? (w ? wc.data() : nullptr) : w, dev ? c.data() : nullptr, us, out);
}
template <class T>
bool kmeans_draw_rows(const KMeansReplayBackend& be, const detail::DrawOrder& order, VectorView<T> w,
                      const double* closest, const std::vector<double>& us, std::vector<Index>& out) {
  const T* wp = w.empty() ? nullptr : w.data;
  if (!closest) return detail::draw_in_order(order, wp, closest, us, out);  // as the CUDA backend
  return replay_draw_rows(be, order, wp, false, closest, us, out);
}
template <class T>
double mean_feature_variance(const KMeansReplayBackend& be, MatrixView<T> X) {
  return mean_feature_variance(CpuBackend{be.n_threads}, X);
}

// The same passes on a device view: the address translated, as the device reads its own memory.
template <class T>
KMeansStats kmeans_assign(const KMeansReplayBackend& be, DeviceMatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                          std::int32_t* labels) {
  return kmeans_assign(be, on_host(be, X), w, C, labels);
}
template <class T>
std::vector<double> kmeans_distances_to_assigned(const KMeansReplayBackend& be, DeviceMatrixView<T> X,
                                                 const RowMatrix<T>& C, const std::int32_t* labels) {
  return kmeans_distances_to_assigned(be, on_host(be, X), C, labels);
}
template <class T>
double kmeans_predict(const KMeansReplayBackend& be, DeviceMatrixView<T> X, VectorView<T> w, const RowMatrix<T>& C,
                      std::int32_t* labels) {
  return kmeans_predict(be, on_host(be, X), w, C, labels);
}
template <class T>
RowMatrix<T> kmeans_transform(const KMeansReplayBackend& be, DeviceMatrixView<T> X, const RowMatrix<T>& C) {
  return kmeans_transform(CpuBackend{be.n_threads}, on_host(be, X), C);
}
template <class T>
double kmeans_update_closest(const KMeansReplayBackend& be, DeviceMatrixView<T> X, VectorView<T> w, const T* c,
                             double* closest, bool reset) {
  return kmeans_update_closest(be, on_host(be, X), w, c, closest, reset);
}
template <class T>
std::vector<double> kmeans_candidate_potentials(const KMeansReplayBackend& be, DeviceMatrixView<T> X,
                                                VectorView<T> w, const double* closest,
                                                const std::vector<Index>& candidates) {
  return kmeans_candidate_potentials(be, on_host(be, X), w, closest, candidates);
}
template <class T>
double mean_feature_variance(const KMeansReplayBackend& be, DeviceMatrixView<T> X) {
  return mean_feature_variance(be, on_host(be, X));
}
// ... and with the weights on the "device" too.
template <class T>
KMeansStats kmeans_assign(const KMeansReplayBackend& be, DeviceMatrixView<T> X, DeviceVectorView<T> w,
                          const RowMatrix<T>& C, std::int32_t* labels) {
  return kmeans_assign(be, on_host(be, X), on_host(be, w), C, labels);
}
template <class T>
double kmeans_predict(const KMeansReplayBackend& be, DeviceMatrixView<T> X, DeviceVectorView<T> w,
                      const RowMatrix<T>& C, std::int32_t* labels) {
  return kmeans_predict(be, on_host(be, X), on_host(be, w), C, labels);
}
template <class T>
double kmeans_update_closest(const KMeansReplayBackend& be, DeviceMatrixView<T> X, DeviceVectorView<T> w, const T* c,
                             double* closest, bool reset) {
  return kmeans_update_closest(be, on_host(be, X), on_host(be, w), c, closest, reset);
}
template <class T>
std::vector<double> kmeans_candidate_potentials(const KMeansReplayBackend& be, DeviceMatrixView<T> X,
                                                DeviceVectorView<T> w, const double* closest,
                                                const std::vector<Index>& candidates) {
  return kmeans_candidate_potentials(be, on_host(be, X), on_host(be, w), closest, candidates);
}
template <class T>
bool kmeans_draw_rows(const KMeansReplayBackend& be, const detail::DrawOrder& order, DeviceVectorView<T> w,
                      const double* closest, const std::vector<double>& us, std::vector<Index>& out) {
  if (!closest && w.empty()) return detail::draw_in_order(order, static_cast<const T*>(nullptr), closest, us, out);
  const VectorView<T> h = on_host(be, w);
  return replay_draw_rows(be, order, h.empty() ? nullptr : h.data, true, closest, us, out);
}
// What the loop asks of device data instead of reading it (core/data_access.hpp).
template <class T>
detail::NonFinite first_non_finite(const KMeansReplayBackend& be, DeviceMatrixView<T> X) {
  ++be.state->n_device_reads;
  const MatrixView<T> h = on_host(be, X);
  const auto bad = detail::find_non_finite(h, be.n_threads);
  return {bad.row, bad.col, bad.row < 0 ? 0.0 : static_cast<double>(h.row(bad.row)[bad.col])};
}
template <class T>
RowMatrix<T> fetch_rows(const KMeansReplayBackend& be, DeviceMatrixView<T> X, const std::vector<Index>& rows) {
  ++be.state->n_device_reads;
  be.state->n_fetched_values += static_cast<std::int64_t>(rows.size()) * X.cols;
  return fetch_rows(CpuBackend{}, on_host(be, X), rows);
}
/// The rows' hashes by a "device" pass: the kernel's function on each row.
template <class T>
std::vector<detail::RowHash> row_hashes(const KMeansReplayBackend& be, DeviceMatrixView<T> X) {
  ++be.state->n_device_reads;
  const MatrixView<T> h = on_host(be, X);
  std::vector<detail::RowHash> out(static_cast<std::size_t>(X.rows));
  for (Index i = 0; i < X.rows; ++i) out[i] = detail::dense_row_hash(h.row(i), X.cols);
  return out;
}
/// The device pass of the weight checks: the first bad weight, its value, and the sum (in another
/// order than the CPU's; only its sign and finiteness decide, and all-zero weights sum to 0 in any order).
template <class T>
detail::WeightCheck first_bad_weight(const KMeansReplayBackend& be, DeviceVectorView<T> w) {
  ++be.state->n_device_reads;
  const VectorView<T> h = on_host(be, w);
  detail::WeightCheck c;
  for (Index i = h.size - 1; i >= 0; --i) {  // backwards: nothing may rely on the CPU's order of the sum
    if (!std::isfinite(h[i]) || !(h[i] >= 0)) {
      c.index = i;
      c.value = static_cast<double>(h[i]);
    } else {
      c.total += static_cast<double>(h[i]);
    }
  }
  return c;
}

/// The checks of device weights give the CPU's messages, word for word (the first bad index, which
/// check failed, its value; the sum when all are zero): for each bad set of weights written into w
/// (ones elsewhere; the "device" copy of w sees them), cpu() and device() must throw the same
/// InvalidArgument. w is left all ones.
template <class T, class Cpu, class Device>
void expect_bad_weights_give_the_cpu_errors(Eigen::Matrix<T, Eigen::Dynamic, 1>& w, Cpu&& cpu, Device&& device) {
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  struct Bad {
    std::vector<std::pair<Index, T>> set;
    const char* expect;
  };
  for (const Bad& b : {Bad{{{37, nan}}, "sample_weight[37] = nan is not finite"},
                       Bad{{{30, inf}, {12, T(-0.5)}}, "sample_weight[12] = -0.5 is negative"},
                       Bad{{{12, -inf}, {30, T(-0.5)}}, "sample_weight[12] = -inf is not finite"},
                       Bad{{{0, T(-1e-30)}}, "is negative"},
                       Bad{{}, "sample_weight sums to 0; need a positive finite sum"}}) {
    if (b.set.empty()) {
      w.setZero();
      w[3] = T(-0.0);  // not negative: counts as zero
    } else {
      w.setOnes();
    }
    for (const auto& e : b.set) w[e.first] = e.second;
    const std::string expected = invalid_argument_message(cpu);
    ASSERT_NE(expected.find(b.expect), std::string::npos) << expected;
    EXPECT_EQ(invalid_argument_message(device), expected);
  }
  w.setOnes();
}

}  // namespace mixtura_test
