// The README's C++ example: cluster rows held in your own memory, read the trace, predict.
#include <cstdio>
#include <vector>

#include <mixtura/kmeans.hpp>

int main() {
  // 6 rows x 2 features, row-major, in caller memory: mixtura reads it without a copy.
  const std::vector<float> data = {0.0f, 0.1f, 0.2f, 0.0f, 0.1f, 0.2f,   // near (0, 0)
                                   5.0f, 5.1f, 5.2f, 4.9f, 4.8f, 5.0f};  // near (5, 5)
  mixtura::KMeansParams params;
  params.n_clusters = 2;
  params.seed = 42;
  mixtura::KMeans<float> km(params);
  km.fit(mixtura::MatrixView<float>(data.data(), 6, 2));

  for (const auto& it : km.trace())  // coordinate descent: J after each half-step
    std::printf("J assign %.4f  J update %.4f\n", it.distortion_assign, it.distortion_update);
  std::printf("inertia %.4f after %d iterations\n", km.inertia(), km.n_iter());

  const std::vector<float> query = {0.1f, 0.1f, 5.0f, 5.0f};
  const auto labels = km.predict(mixtura::MatrixView<float>(query.data(), 2, 2));
  std::printf("labels %d %d\n", labels[0], labels[1]);
  return labels[0] != labels[1] ? 0 : 1;  // the two queries belong to different clusters
}
