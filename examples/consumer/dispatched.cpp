// The dispatched CPU passes from an installed mixtura (link mixtura::dispatched): this program is
// compiled with the compiler's default flags, and its fits still run the distance, E-step and scoring
// passes at the highest x86-64 level the CPU has (at most MIXTURA_ISA), chosen at the first fit.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <mixtura/backend/dispatched.hpp>
#include <mixtura/mixtura.hpp>

int main() {
  const std::vector<double> data = {0.0, 0.1, 0.2, 0.0, 0.1, 0.2,   // near (0, 0)
                                    5.0, 5.1, 5.2, 4.9, 4.8, 5.0};  // near (5, 5)
  const mixtura::MatrixView<double> X(data.data(), 6, 2);
  const mixtura::DispatchedCpuBackend be{};
  mixtura::KMeansParams kp;
  kp.n_clusters = 2;
  mixtura::KMeans<double> km(kp);
  km.fit_on(be, X);
  mixtura::GmmParams gp;
  gp.n_components = 2;
  gp.reg_covar = 1e-3;
  mixtura::GaussianMixture<double> gm(gp);
  gm.fit_on(be, X);
  const std::vector<std::int32_t> k = km.predict_on(be, X), g = gm.predict_on(be, X);
  std::printf("dispatched level %s: k-means inertia %.4f, mixture lower bound %.4f\n",
              mixtura::build_info(be).isa.c_str(), km.inertia(), gm.lower_bound());
  return k[0] != k[5] && g[0] != g[5] ? 0 : 1;  // both split the two groups
}
