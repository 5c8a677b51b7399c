// Must NOT compile: MiniBatchKMeans on a backend that is not a CPU backend (it draws its batches from
// host memory). ctest builds it and expects the class's message (tests/cpp/CMakeLists.txt).
#include "mixtura/kmeans.hpp"

struct OtherBackend {
  int n_threads = 0;
};

int main() {
  const double x[4] = {0, 1, 2, 3};
  mixtura::MiniBatchKMeans<double> mb;
  mb.fit_on(OtherBackend{}, mixtura::MatrixView<double>(x, 4, 1));
}
