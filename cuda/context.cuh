#pragma once
// The CUDA backend's device state, shared by every algorithm's passes: RAII for device and pinned
// memory, streams and events; the context that keeps a fit's data resident on the device (uploaded
// once, found again by host pointer, shape, stride and type) or streams it from host memory through
// two pinned staging slots, the copy of chunk c + 1 overlapping the kernels of chunk c. Data the
// caller already has in device memory (HostMatrix::on_device) is registered as the resident copy:
// used in place when its rows are dense, else compacted once on the device; never streamed.
//
// A pass: locks the context (ContextLock), opens a DataScope, walks the data with for_each_chunk,
// enqueuing its kernels on ctx.stream(), and synchronises before returning host results.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "check.cuh"
#include "mixtura/backend/cuda.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/cuda/host_matrix.hpp"
#include "mixtura/cuda/kmeans_reduce.hpp"
#include "mixtura/cuda/plan.hpp"
#include "mixtura/cuda/resident_labels.hpp"

// Checks the launch just made (bad configuration, missing kernel image); `name` names the kernel.
#define MIXTURA_CUDA_CHECK_LAUNCH(name) \
  ::mixtura::cuda::detail::check(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)

namespace mixtura {
namespace cuda {

namespace detail {
struct DeviceMemory {
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    MIXTURA_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
  static void release(void* p) noexcept { cudaFree(p); }  // a failure is reported by the next checked call
};
struct PinnedMemory {  // page-locked host memory: the source and target of asynchronous copies
  static void* allocate(std::size_t bytes) {
    void* p = nullptr;
    MIXTURA_CUDA_CHECK(cudaMallocHost(&p, bytes));
    return p;
  }
  static void release(void* p) noexcept { cudaFreeHost(p); }
};
}  // namespace detail

/// n values of T in device or pinned host memory. Grow-only reserve(): contents are not kept when
/// it grows.
template <class T, class Memory>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n) { reserve(n); }
  ~Buffer() { release(); }
  Buffer(Buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// At least n values (n = 0 keeps what is there).
  T* reserve(std::size_t n) {
    if (n > n_) {
      release();
      p_ = static_cast<T*>(Memory::allocate(n * sizeof(T)));
      n_ = n;
    }
    return p_;
  }
  void release() noexcept {
    if (p_) Memory::release(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* data() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

template <class T>
using DeviceBuffer = Buffer<T, detail::DeviceMemory>;
template <class T>
using PinnedBuffer = Buffer<T, detail::PinnedMemory>;

/// n values from host to device and back, enqueued on `stream` (nothing for n = 0). A pageable host
/// source may be reused on return; a pageable host target is filled on return.
template <class T>
void copy_to_device(T* dst, const T* src, std::int64_t n, cudaStream_t stream) {
  if (n > 0)
    MIXTURA_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyHostToDevice, stream));
}
template <class T>
void copy_to_host(T* dst, const T* src, std::int64_t n, cudaStream_t stream) {
  if (n > 0)
    MIXTURA_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

/// A non-blocking stream (it does not wait on the legacy default stream).
class Stream {
 public:
  Stream() { MIXTURA_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

/// An event; timing events are for benchmarks, the others for ordering.
class Event {
 public:
  explicit Event(bool timing = false) {
    MIXTURA_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

/// Makes `device` current for the calling thread, restoring the previous one on exit.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    MIXTURA_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) MIXTURA_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

/// Rows [first, first + rows) of the data on the device: x dense (row i at x + i * cols), w the
/// matching weights or nullptr for unit weights. Valid until f returns (streamed slots are reused).
template <class T>
struct DeviceChunk {
  const T* x = nullptr;
  const T* w = nullptr;
  std::int64_t first = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

class Context {
 public:
  /// On the current device, which must be `device` (make_cuda_backend makes it so).
  Context(int device, std::size_t max_device_bytes);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int device() const { return device_; }
  /// The cap on resident data (0 = what is free); each pass applies its backend's value.
  std::size_t max_device_bytes() const { return max_device_bytes_; }
  void set_max_device_bytes(std::size_t bytes) { max_device_bytes_ = bytes; }
  const cudaDeviceProp& properties() const { return prop_; }
  /// The stream every pass enqueues its kernels and copies on.
  cudaStream_t stream() const { return stream_.get(); }
  /// Waits for the stream; a failed kernel surfaces here as CudaError.
  void synchronize() const { MIXTURA_CUDA_CHECK(cudaStreamSynchronize(stream_.get())); }
  /// Held by a pass (and by a DataScope for a whole fit): one pass at a time on a context.
  std::recursive_mutex& mutex() { return mutex_; }

  /// Calls f(const DeviceChunk<T>&) for consecutive chunks of X (weights w, or unit weights) in row
  /// order, with every chunk on the device, and returns once the last f has been called (its kernels
  /// may still run: f enqueues on stream()). Resident data is uploaded on first use and kept while a
  /// DataScope is open; streamed chunks are whole multiples of kSegmentRows. Do not nest calls: a
  /// nested upload may evict the outer data. X on the device (X.on_device) is one resident chunk
  /// whatever the budget, with host weights uploaded beside it and device weights (w.on_device, only
  /// with device X) read in place.
  template <class T, class F>
  void for_each_chunk(HostMatrix<T> X, RowWeights<T> w, F&& f);
  /// The same with host weights (nullptr: unit weights).
  template <class T, class F>
  void for_each_chunk(HostMatrix<T> X, const T* w, F&& f) {
    for_each_chunk(X, RowWeights<T>(w), std::forward<F>(f));
  }

  /// A per-context object of type S (workspaces of an algorithm's passes), made on first use.
  template <class S>
  S& extension() {
    auto& slot = extensions_[std::type_index(typeid(S))];
    if (!slot) slot = std::make_shared<S>();
    return *static_cast<S*>(slot.get());
  }

  /// Throws InvalidArgument unless p is device (or managed) memory of this context's device; `what`
  /// names the array in the message.
  void expect_device_data(const void* p, const char* what = "DeviceMatrixView: X") const;

  /// Data scopes: resident copies are dropped when the outermost scope ends.
  void enter_scope() { scopes_.enter(); }
  void leave_scope() {
    scopes_.leave();
    if (scopes_.depth() == 0) resident_.clear();
  }
  /// The scopes open now (a pass's own is the innermost; scopes().outer() is its fit's).
  const ScopeStack& scopes() const { return scopes_; }
  /// Label arrays a fit keeps on the device between passes (resident_labels.hpp), for every scalar type.
  HeldLabels<DeviceBuffer<std::int32_t>>& held_labels() { return held_labels_; }
  /// k-means++'s distances to the closest centre, kept on the device between its passes and draws.
  HeldDistances<DeviceBuffer<double>>& held_distances() { return held_distances_; }

 private:
  /// An array the context may hold on the device: rows x cols values of elem bytes, stride apart, in
  /// host memory or (device) in the caller's device memory.
  struct HostKey {
    const void* data = nullptr;
    std::int64_t rows = 0, cols = 0, stride = 0;
    std::size_t elem = 0;
    bool device = false;
    std::size_t bytes() const { return static_cast<std::size_t>(rows * cols) * elem; }
    bool operator==(const HostKey& o) const {
      return data == o.data && rows == o.rows && cols == o.cols && stride == o.stride && elem == o.elem &&
             device == o.device;
    }
  };
  struct Resident {
    HostKey key;
    DeviceBuffer<unsigned char> buf;           // dense: row i at i * cols * elem
    const unsigned char* borrowed = nullptr;   // the caller's dense device data, used in place of buf
    const unsigned char* data() const { return borrowed ? borrowed : buf.data(); }
  };
  struct Slot {
    PinnedBuffer<unsigned char> host;
    DeviceBuffer<unsigned char> dev;
    std::unique_ptr<Event> copied, consumed;
    bool used = false;
  };

  template <class T>
  static std::size_t row_bytes(HostMatrix<T> X, bool weighted) {
    return static_cast<std::size_t>(X.cols + (weighted ? 1 : 0)) * sizeof(T);
  }
  static std::size_t weight_offset(std::size_t x_bytes) { return (x_bytes + 255) / 256 * 256; }
  std::size_t budget() const;
  /// Makes every key resident (uploading what is missing, evicting other data if needed), or returns
  /// false when they do not fit together.
  bool make_resident(const HostKey* keys, int n);
  /// The device copy of a resident key (nullptr if it is not resident).
  const unsigned char* find(const HostKey& key) const;
  /// Copies `key` to a new resident buffer (from host or device memory), whatever the budget.
  void upload(const HostKey& key);
  /// Registers the caller's device data `key` as resident (after checking it is device memory of this
  /// context's device; `what` names it in the error): dense rows are borrowed, strided rows compacted
  /// into a buffer on the device.
  void use_device_data(const HostKey& key, const char* what);
  /// Copies rows [first, first + rows) of X (and w) into slot s and on to its device half.
  void stage(Slot& s, const void* x, const void* w, std::int64_t first, std::int64_t rows, std::int64_t cols,
             std::int64_t stride, std::size_t elem, std::size_t slot_bytes);

  int device_;
  std::size_t max_device_bytes_;
  cudaDeviceProp prop_{};
  Stream stream_, copy_stream_;
  Slot slots_[2];
  std::vector<Resident> resident_;
  ScopeStack scopes_;
  HeldLabels<DeviceBuffer<std::int32_t>> held_labels_;
  HeldDistances<DeviceBuffer<double>> held_distances_;
  std::recursive_mutex mutex_;
  std::unordered_map<std::type_index, std::shared_ptr<void>> extensions_;
};

/// What every pass opens with: the context's device current, the context locked, a data scope open.
class PassGuard {
 public:
  explicit PassGuard(const CudaBackend& be, const char* where);
  ~PassGuard();
  PassGuard(const PassGuard&) = delete;
  PassGuard& operator=(const PassGuard&) = delete;
  Context& ctx() const { return *ctx_; }

 private:
  Context* ctx_;
  std::unique_lock<std::recursive_mutex> lock_;
  DeviceGuard device_;
};

template <class T, class F>
void Context::for_each_chunk(HostMatrix<T> X, RowWeights<T> rw, F&& f) {
  if (X.rows <= 0) return;
  const T* w = rw.data;
  MIXTURA_EXPECTS(!(w && rw.on_device) || X.on_device,
                  "sample weights in device memory (%p) need X in device memory too (X is host memory)",
                  static_cast<const void*>(w));
  const HostKey keys[2] = {{X.data, X.rows, X.cols, X.stride, sizeof(T), X.on_device},
                           {w, X.rows, 1, 1, sizeof(T), rw.on_device}};
  bool resident = true;
  if (X.on_device) {  // already there: never streamed (that would read it on the host)
    use_device_data(keys[0], "DeviceMatrixView: X");
    if (w && rw.on_device)
      use_device_data(keys[1], "DeviceVectorView: sample_weight");  // read in place
    else if (w && !find(keys[1]))
      upload(keys[1]);
  } else {
    resident = make_resident(keys, w ? 2 : 1);  // X and w are cached apart: passes with and without w share X
  }
  if (resident) {
    DeviceChunk<T> c;
    c.x = reinterpret_cast<const T*>(find(keys[0]));
    c.w = w ? reinterpret_cast<const T*>(find(keys[1])) : nullptr;
    c.rows = X.rows;
    c.cols = X.cols;
    f(static_cast<const DeviceChunk<T>&>(c));
    return;
  }
  const std::size_t rb = row_bytes<T>(X, w != nullptr);
  // Streamed even if the budget has grown since make_resident() said no.
  const ChunkPlan p = plan_chunks(X.rows, rb, std::min(budget(), static_cast<std::size_t>(X.rows) * rb - 1));
  for (std::int64_t k = 0; k < p.n_chunks; ++k) {
    Slot& s = slots_[k % 2];
    const std::int64_t first = k * p.chunk_rows, rows = std::min(p.chunk_rows, X.rows - first);
    stage(s, X.data, w, first, rows, X.cols, X.stride, sizeof(T), p.slot_bytes);
    DeviceChunk<T> c;
    c.x = reinterpret_cast<const T*>(s.dev.data());
    c.w = w ? reinterpret_cast<const T*>(s.dev.data() + weight_offset(static_cast<std::size_t>(rows * X.cols) * sizeof(T)))
            : nullptr;
    c.first = first;
    c.rows = rows;
    c.cols = X.cols;
    f(static_cast<const DeviceChunk<T>&>(c));
    MIXTURA_CUDA_CHECK(cudaEventRecord(s.consumed->get(), stream_.get()));
    s.used = true;
  }
}

/// totals[c] += partials[0][c] + partials[1][c] + ... + partials[n_parts - 1][c] in that order, for c
/// in [0, width), on `stream`: how per-segment partials join a pass's running totals reproducibly.
void accumulate_partials(const double* partials, std::int64_t n_parts, std::int64_t width, double* totals,
                         cudaStream_t stream);

/// The block partials of one chunk of the assignment pass (chunk_partials: cg.n_blocks x width) into
/// the running totals, in the order of kmeans_reduce.hpp: each group's column sums (from 0, or from
/// `carry` for a group begun in an earlier chunk) into group_sums (cg.n_groups x width), then the
/// complete groups added to totals in group order and an incomplete last group left in `carry`.
void accumulate_groups(const double* chunk_partials, std::int64_t width, const ChunkGroups& cg, double* carry,
                       double* group_sums, double* totals, cudaStream_t stream);

/// Blocks of `threads` covering n items (at least one block).
inline unsigned grid_for(std::int64_t n, int threads) {
  return static_cast<unsigned>(std::max<std::int64_t>(1, (n + threads - 1) / threads));
}

}  // namespace cuda
}  // namespace mixtura
