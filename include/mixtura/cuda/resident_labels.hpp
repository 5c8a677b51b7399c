#pragma once
/// Bookkeeping of the per-row arrays the CUDA backend keeps on the device during a fit (K-means labels,
/// k-means++'s distances to the closest centre): which host array a device copy stands for, and the
/// data scope it belongs to. Plain C++ (no CUDA header), so that it is tested on machines without a
/// GPU; the context holds it with device buffers.
///
/// The contract (kmeans/lloyd.hpp, cuda/kmeans_pass.hpp): inside a data scope, kmeans_assign leaves
/// its labels on the device, newer than the host array; passes that read labels use that copy;
/// kmeans_labels_to_host (or kmeans_predict, which writes the host array) brings them back and lets
/// go of the copy, after which the host array is the labels again. When the fit's scope ends the copy
/// is dropped, brought back or not. k-means++'s distances (kmeans_update_closest in a data scope) are
/// held the same way and never brought back: only the passes and the draws read them.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mixtura {
namespace cuda {

/// The data scopes open on a context, innermost last. Every scope gets an id never given before, so
/// that something tied to a scope that has closed is recognised even if another one opened since.
class ScopeStack {
 public:
  /// Opens a scope; returns its id (never 0).
  std::uint64_t enter() {
    open_.push_back(++last_id_);
    return open_.back();
  }
  /// Closes the innermost scope.
  void leave() {
    if (!open_.empty()) open_.pop_back();
  }
  std::size_t depth() const { return open_.size(); }
  bool is_open(std::uint64_t id) const {
    for (std::uint64_t s : open_)
      if (s == id) return true;
    return false;
  }
  /// The scope around the innermost one, or 0 if there is none. A pass opens its own scope; seen from
  /// inside a pass this is the scope of the fit it belongs to (0: the pass runs on its own).
  std::uint64_t outer() const { return open_.size() >= 2 ? open_[open_.size() - 2] : 0; }

 private:
  std::vector<std::uint64_t> open_;
  std::uint64_t last_id_ = 0;
};

/// Device copies of host arrays of Elem (Buffer: a device buffer of Elem with reserve(n) and data(); a
/// std::vector-like stand-in in tests), each newer than its host array and tied to the data scope of
/// the fit that made it. Usually one array is held; a released copy keeps its memory for the next one.
template <class Buffer, class Elem>
class HeldArrays {
 public:
  /// The copy standing for `labels` (rows entries) while its scope is open; nullptr if there is none.
  Buffer* find(const Elem* labels, std::int64_t rows, const ScopeStack& scopes) {
    for (Entry& e : entries_) {
      if (e.host && !scopes.is_open(e.scope)) e.host = nullptr;  // its fit has ended: dropped
      if (e.host == labels && e.rows == rows && labels != nullptr) return &e.buffer;
    }
    return nullptr;
  }
  /// A copy (at least `rows` entries, contents undefined) to hold for `labels` in scope `scope`, which
  /// must be open. Any copy already held for `labels` is replaced.
  Buffer& hold(const Elem* labels, std::int64_t rows, std::uint64_t scope, const ScopeStack& scopes) {
    release(labels);
    Entry* free = nullptr;
    for (Entry& e : entries_) {
      if (e.host && !scopes.is_open(e.scope)) e.host = nullptr;
      if (!e.host && !free) free = &e;
    }
    if (!free) {
      entries_.emplace_back();
      free = &entries_.back();
    }
    free->host = labels;
    free->rows = rows;
    free->scope = scope;
    free->buffer.reserve(static_cast<std::size_t>(rows));
    return free->buffer;
  }
  /// Lets go of the copy of `labels`, if one is held: the host array is the labels from now on.
  void release(const Elem* labels) {
    for (Entry& e : entries_)
      if (e.host == labels) e.host = nullptr;
  }
  /// Number of copies held (whose scope may have closed since; find() and hold() drop those).
  std::size_t held() const {
    std::size_t n = 0;
    for (const Entry& e : entries_) n += e.host != nullptr;
    return n;
  }

 private:
  struct Entry {
    const Elem* host = nullptr;  // nullptr: free
    std::int64_t rows = 0;
    std::uint64_t scope = 0;
    Buffer buffer;
  };
  // std::vector would move entries (and their device buffers) when it grows: that is fine, buffers
  // are movable and callers never keep a Buffer* across a hold().
  std::vector<Entry> entries_;
};

/// Label arrays (kmeans_assign's, in a fit).
template <class Buffer>
using HeldLabels = HeldArrays<Buffer, std::int32_t>;
/// k-means++'s squared distances to the closest centre (kmeans_update_closest's, in a data scope).
template <class Buffer>
using HeldDistances = HeldArrays<Buffer, double>;

}  // namespace cuda
}  // namespace mixtura
