// Must NOT compile: data in device memory handed to the CPU backend, which cannot read it. ctest
// builds it and expects the contract's message (tests/cpp/CMakeLists.txt, backend_contract_*).
#include "mixtura/gmm.hpp"

int main() {
  mixtura::GaussianMixture<double> gm;
  gm.fit_on(mixtura::CpuBackend{}, mixtura::DeviceMatrixView<double>(nullptr, 4, 2));
}
