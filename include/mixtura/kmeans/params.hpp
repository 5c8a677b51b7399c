#pragma once
/// K-means parameters and the records a fit leaves behind (traces, events).

#include <cstdint>
#include <string>
#include <vector>

#include "mixtura/core/matrix_view.hpp"

namespace mixtura {

/// How the initial centres are chosen.
enum class KMeansInit {
  kmeans_plusplus,  ///< greedy k-means++: n_local_trials candidates per step, keep the best (as scikit-learn)
  random,           ///< n_clusters distinct rows, drawn with probability proportional to sample weight
  given,            ///< centres passed by the caller to fit()
};

/// How the assignment half-step finds each row's nearest centre. Both give the same labels, centres,
/// trace and n_iter bit for bit (the skipped rows provably keep the label Lloyd's search would give).
enum class KMeansAlgorithm {
  automatic,  ///< where each measured fastest (CPU): lloyd below K * D = kHamerlyMinWork, yinyang from
              ///< K = kYinyangMinK and D = kYinyangMinD on (dense rows), else hamerly
  lloyd,      ///< every row against every centre, every iteration
  hamerly,    ///< Hamerly's bounds (2010): rows whose centre provably stays are not searched (CPU only)
  yinyang,    ///< Yinyang's group bounds (Ding et al. 2015): rows search only the groups of centres
              ///< that could hold a nearer one (CPU, dense rows; hamerly elsewhere)
};

/// K * D from which automatic picks hamerly: below it the bounds' per-row bookkeeping costs more than
/// the vectorised search it saves (bench/RESULTS.md, "Hamerly's bounds").
inline constexpr long long kHamerlyMinWork = 2048;

/// K and D from which automatic picks yinyang for dense rows: below them its per-group bookkeeping
/// costs more than the searches it saves over hamerly (bench/RESULTS.md, "Yinyang's group bounds").
inline constexpr long long kYinyangMinK = 512;
inline constexpr long long kYinyangMinD = 32;

inline const char* to_string(KMeansAlgorithm a) {
  switch (a) {
    case KMeansAlgorithm::hamerly: return "hamerly";
    case KMeansAlgorithm::yinyang: return "yinyang";
    case KMeansAlgorithm::lloyd: return "lloyd";
    default: return "auto";
  }
}

/// Parameters of KMeans; names and meanings follow scikit-learn.
struct KMeansParams {
  int n_clusters = 8;                              ///< K, number of centres (>= 1)
  KMeansInit init = KMeansInit::kmeans_plusplus;   ///< initialisation method
  int n_init = 1;                                  ///< restarts; the one with the lowest inertia is kept
  int max_iter = 300;                              ///< Lloyd iterations per restart (>= 1)
  double tol = 1e-4;                               ///< stop when the squared centre shift <= tol * mean feature variance
  std::uint64_t seed = 0;                          ///< key of the counter-based random numbers
  int n_local_trials = 0;                          ///< k-means++ candidates per step; 0 = 2 + floor(ln K)
  int n_threads = 0;                               ///< OpenMP threads for data passes; 0 = OpenMP's default
  KMeansAlgorithm algorithm = KMeansAlgorithm::automatic;  ///< the nearest-centre search (same results)
};

/// One Lloyd iteration: coordinate descent on J(c, mu) = sum_i w_i ||x_i - mu_{c_i}||^2.
struct KMeansIteration {
  double distortion_assign = 0;  ///< J after the assignment half-step (new labels, old centres)
  double distortion_update = 0;  ///< J after the update half-step (same labels, new centres)
  double center_shift = 0;       ///< sum_k ||mu_k^new - mu_k^old||^2 (compared with the tolerance)
  std::int64_t n_changed = 0;    ///< rows whose label changed in the assignment half-step
  /// fit: rows whose nearest centre the assignment half-step searched for, in at least one group of
  /// centres with yinyang (all rows, unless the bounds settled some); 0 in a record made from
  /// statistics (update), which saw no search.
  std::int64_t n_searched = 0;
  double seconds = 0;            ///< wall time of the iteration
};

/// Something the fit did to keep going, recorded rather than thrown.
struct KMeansEvent {
  enum class Kind {
    empty_cluster_reseeded,  ///< cluster had no weight; its centre moved to the farthest row `row`
    empty_cluster_kept,      ///< cluster had no weight and no row was left to re-seed it; centre kept
  };
  Kind kind = Kind::empty_cluster_reseeded;
  int restart = 0;     ///< restart index (0-based)
  int iteration = 0;   ///< iteration index within the restart (0-based)
  int cluster = 0;     ///< the cluster concerned
  Index row = -1;      ///< the row it was re-seeded from (-1 if none)
};

inline const char* to_string(KMeansEvent::Kind kind) {
  switch (kind) {
    case KMeansEvent::Kind::empty_cluster_reseeded: return "empty_cluster_reseeded";
    case KMeansEvent::Kind::empty_cluster_kept: return "empty_cluster_kept";
  }
  return "unknown";
}

inline const char* to_string(KMeansInit init) {
  switch (init) {
    case KMeansInit::kmeans_plusplus: return "k-means++";
    case KMeansInit::random: return "random";
    case KMeansInit::given: return "given";
  }
  return "unknown";
}

/// What one restart did.
struct KMeansRun {
  std::vector<KMeansIteration> trace;  ///< one entry per iteration
  double inertia = 0;                  ///< J of the final centres and the labels they give
  int n_iter = 0;                      ///< iterations run
  bool converged = false;              ///< labels stopped changing or the shift fell to the tolerance
  double init_seconds = 0;             ///< time spent choosing the initial centres
  double seconds = 0;                  ///< time of the whole restart, initialisation included
};

}  // namespace mixtura
