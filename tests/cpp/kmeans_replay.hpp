#pragma once
// The CUDA K-means assignment pass replayed on the host, for machines without a GPU: the labels by
// the kernels' distance (argmin_distance), the statistics with the very per-thread functions the
// fused kernel calls (mixtura/cuda/kmeans_reduce.hpp), thread by thread, block by block, and the
// block partials added in groups with a carry across streamed chunks, as the device does.
//
// KMeansReplayBackend runs the whole fit loop on that pass, with labels held away from the host
// array during a fit (the same bookkeeping as the CUDA context, resident_labels.hpp): after every
// kmeans_assign the host array holds wrong labels until kmeans_labels_to_host, so a fit loop that
// read or edited it without bringing the labels back would give another result than the CPU.
//
// Device-resident X (DeviceMatrixView) on the replayed passes: HostUnreadableCopy puts the data
// behind an address range the host cannot read (PROT_NONE) and tells the backend where the values
// really are; the backend's passes and its fetch_rows / first_non_finite translate the address, the
// way the device reads its memory. A fit loop that reads X on the host itself faults.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"
#include "mixtura/cuda/resident_labels.hpp"
#include "mixtura/kmeans.hpp"

namespace mixtura_test {

using namespace mixtura;

/// The labels of the assignment kernels: argmin over k of ||c_k||^2 + the fused multiply-add chain
/// of x . (-2 c_k) in T, ties to the lower index.
template <class T>
std::vector<std::int32_t> replay_labels(MatrixView<T> X, const RowMatrix<T>& C) {
  const Index K = C.rows(), D = C.cols();
  std::vector<T> ct(static_cast<std::size_t>(K * D)), norms(static_cast<std::size_t>(K));
  for (Index k = 0; k < K; ++k) {
    T s = 0;
    for (Index d = 0; d < D; ++d) {
      ct[static_cast<std::size_t>(d * K + k)] = T(-2) * C(k, d);
      // As the library's upload computes it, in feature order, product and sum rounded apart (volatile:
      // this program may be compiled to contract them into one fused multiply-add; the library is not).
      const volatile T product = C(k, d) * C(k, d);
      s += product;
    }
    norms[static_cast<std::size_t>(k)] = s;
  }
  std::vector<std::int32_t> labels(static_cast<std::size_t>(X.rows));
  for (Index i = 0; i < X.rows; ++i) {
    std::int32_t best = 0;
    T best_v = std::numeric_limits<T>::infinity();
    for (Index k = 0; k < K; ++k) {
      const T v = cuda::argmin_distance(X.row(i), ct.data(), norms.data(), K, D, k);
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

/// A host array standing in for a device buffer in HeldLabels.
struct HostLabelsBuffer {
  std::vector<std::int32_t> v;
  void reserve(std::size_t n) {
    if (v.size() < n) v.resize(n);
  }
  std::int32_t* data() { return v.data(); }
};

/// A backend whose kmeans_assign is the replayed CUDA pass and whose fit keeps its labels away from
/// the host array, as the CUDA backend does (the other passes are the CPU's).
struct KMeansReplayBackend {
  struct State {
    cuda::ScopeStack scopes;
    cuda::HeldLabels<HostLabelsBuffer> held;
    int n_to_host = 0;       ///< kmeans_labels_to_host calls that brought labels back
    int n_device_reads = 0;  ///< fetch_rows and first_non_finite calls on device views
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
  const double j = kmeans_predict(CpuBackend{be.n_threads}, X, w, C, labels);
  if (labels) be.state->held.release(labels);
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

// k-means++, the scale of tol and transform: the CPU's passes.
template <class T>
RowMatrix<T> kmeans_transform(const KMeansReplayBackend& be, MatrixView<T> X, const RowMatrix<T>& C) {
  return kmeans_transform(CpuBackend{be.n_threads}, X, C);
}
template <class T>
double kmeans_update_closest(const KMeansReplayBackend& be, MatrixView<T> X, VectorView<T> w, const T* c,
                             double* closest, bool reset) {
  return kmeans_update_closest(CpuBackend{be.n_threads}, X, w, c, closest, reset);
}
template <class T>
std::vector<double> kmeans_candidate_potentials(const KMeansReplayBackend& be, MatrixView<T> X, VectorView<T> w,
                                                const double* closest, const std::vector<Index>& candidates) {
  return kmeans_candidate_potentials(CpuBackend{be.n_threads}, X, w, closest, candidates);
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
  return fetch_rows(CpuBackend{}, on_host(be, X), rows);
}

}  // namespace mixtura_test
