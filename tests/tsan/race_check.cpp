// tests/tsan.sh's check that the check can fail: a fold through mixtura's own detail::fold_rows whose
// block function also adds into one variable that every thread shares ("race"), a data race that
// ThreadSanitizer must report, and the same fold without that addition ("clean"), which must pass.
//
// Both threads must fold a group for the race to happen: each thread, at its first block, waits (up
// to 10 s) until the other has arrived too. The wait uses relaxed atomics, which order nothing for
// TSan, and the racy addition comes before it, so no happens-before edge hides the race.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <mixtura/core/parallel.hpp>

int main(int argc, char** argv) {
  const bool race = argc > 1 && std::strcmp(argv[1], "race") == 0;
  using mixtura::Index;
  namespace d = mixtura::detail;
  struct Scratch {
    bool first = true;
  };
  std::atomic<int> arrived{0};
  bool both = true;  // written by the thread that gives up waiting: only then, and then we fail anyway
  double shared = 0.0;
  const double sum = d::fold_rows(
                         Index(128000), Index(2000), 2, [] { return d::SumStat{}; }, [] { return Scratch{}; },
                         [&](d::SumStat& s, Scratch& scratch, Index b, Index e) {
                           for (Index i = b; i < e; ++i) s.value += static_cast<double>(i % 7);
                           if (race) shared += static_cast<double>(e - b);  // unsynchronised, from both threads
                           if (!scratch.first) return;
                           scratch.first = false;
                           arrived.fetch_add(1, std::memory_order_relaxed);
                           const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
                           while (arrived.load(std::memory_order_relaxed) < 2)
                             if (std::chrono::steady_clock::now() > until) {
                               both = false;
                               break;
                             } else {
                               std::this_thread::yield();
                             }
                         })
                         .value;
  std::printf("race_check %s: sum %.0f rows %.0f\n", race ? "race" : "clean", sum, shared);
  if (!both) {
    std::printf("race_check: only one thread folded groups (OpenMP gave one thread?)\n");
    return 1;
  }
  return 0;
}
