// Must NOT compile: a backend without kmeans_assign. ctest builds it and expects the contract's
// message naming the missing pass (tests/cpp/CMakeLists.txt, backend_contract_*).
#include <vector>

#include "mixtura/kmeans.hpp"

namespace mixtura {
struct IncompleteBackend {
  int n_threads = 0;
};
inline NoDataScope data_scope(const IncompleteBackend&) { return {}; }
}  // namespace mixtura

int main() {
  std::vector<float> x(8, 0.0f);
  mixtura::KMeans<float> km;
  km.fit_on(mixtura::IncompleteBackend{}, mixtura::MatrixView<float>(x.data(), 4, 2));
}
