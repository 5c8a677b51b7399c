// Prints fitted K-means (dense and sparse rows) and Gaussian mixtures (and their scores) as hex floats: tests/serial_bits.sh
// compares the output of an OpenMP build with a serial one, byte for byte.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <mixtura/gmm.hpp>
#include <mixtura/kmeans.hpp>

namespace {

// 4 blobs in 6-D from a fixed 64-bit LCG (no <random> distributions: same data on any library).
std::vector<double> make_data(mixtura::Index n, mixtura::Index d) {
  std::vector<double> x(static_cast<std::size_t>(n * d));
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  auto uniform = [&] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  };
  for (mixtura::Index i = 0; i < n; ++i)
    for (mixtura::Index j = 0; j < d; ++j)
      x[static_cast<std::size_t>(i * d + j)] = 3.0 * static_cast<double>((i % 4) == j % 4) + uniform() + uniform() - 1.0;
  return x;
}

template <class M>
void print_matrix(const char* name, const M& m) {
  std::printf("%s", name);
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) std::printf(" %a", static_cast<double>(m(i, j)));
  std::printf("\n");
}

template <class T>
void kmeans(const std::vector<T>& x, mixtura::Index n, mixtura::Index d, int n_threads) {
  mixtura::KMeansParams p;
  p.n_clusters = 5;
  p.n_init = 2;
  p.seed = 7;
  p.n_threads = n_threads;
  mixtura::KMeans<T> km(p);
  const mixtura::MatrixView<T> X(x.data(), n, d);
  km.fit(X);
  std::printf("kmeans<%zu> inertia %a n_iter %d score %a\n", sizeof(T), km.inertia(), km.n_iter(), km.score(X));
  print_matrix("centers", km.cluster_centers());
  for (const auto& it : km.trace()) std::printf("J %a %a\n", it.distortion_assign, it.distortion_update);
  std::uint64_t h = 0;  // labels, hashed
  for (std::int32_t l : km.predict(X)) h = h * 1000003u + static_cast<std::uint64_t>(l);
  std::printf("labels %llx\n", static_cast<unsigned long long>(h));
  print_matrix("transform", km.transform(mixtura::MatrixView<T>(x.data(), 16, d)));
}

/// The same rows as CSR, entries of magnitude below 0.5 left out (about a third), fitted with
/// Hamerly's bounds: the sparse passes' folds and bounds, serial against OpenMP (and under TSan).
template <class T>
void kmeans_sparse(const std::vector<T>& x, mixtura::Index n, mixtura::Index d, int n_threads) {
  std::vector<T> values;
  std::vector<std::int32_t> indices;
  std::vector<std::int64_t> indptr{0};
  for (mixtura::Index i = 0; i < n; ++i) {
    for (mixtura::Index j = 0; j < d; ++j)
      if (std::abs(static_cast<double>(x[static_cast<std::size_t>(i * d + j)])) >= 0.5) {
        values.push_back(x[static_cast<std::size_t>(i * d + j)]);
        indices.push_back(static_cast<std::int32_t>(j));
      }
    indptr.push_back(static_cast<std::int64_t>(values.size()));
  }
  const mixtura::CsrMatrixView<T> X(values.data(), indices.data(), indptr.data(), n, d);
  mixtura::KMeansParams p;
  p.n_clusters = 5;
  p.seed = 3;
  p.n_threads = n_threads;
  p.algorithm = mixtura::KMeansAlgorithm::hamerly;
  mixtura::KMeans<T> km(p);
  km.fit(X);
  std::printf("kmeans_sparse<%zu> inertia %a n_iter %d score %a\n", sizeof(T), km.inertia(), km.n_iter(), km.score(X));
  print_matrix("centers", km.cluster_centers());
  for (const auto& it : km.trace())
    std::printf("J %a %a searched %lld\n", it.distortion_assign, it.distortion_update, static_cast<long long>(it.n_searched));
  std::uint64_t h = 0;
  for (std::int32_t l : km.labels()) h = h * 1000003u + static_cast<std::uint64_t>(l);
  std::printf("labels %llx\n", static_cast<unsigned long long>(h));
  const mixtura::KMeansStats s = mixtura::kmeans_statistics(X, mixtura::VectorView<T>{}, km.cluster_centers(), nullptr,
                                                            n_threads);
  std::printf("statistics distortion %a farthest %lld\n", s.distortion,
              static_cast<long long>(s.farthest.empty() ? -1 : s.farthest[0].row));
  print_matrix("sums", Eigen::Map<const Eigen::MatrixXd>(s.sums.data(), 1, static_cast<Eigen::Index>(s.sums.size())));
}

template <class T>
void gmm(const std::vector<T>& x, mixtura::Index n, mixtura::Index d, mixtura::CovarianceType type, int n_threads) {
  mixtura::GmmParams p;
  p.n_components = 4;
  p.covariance_type = type;
  p.seed = 11;
  p.n_threads = n_threads;
  mixtura::GaussianMixture<T> gm(p);
  const mixtura::MatrixView<T> X(x.data(), n, d);
  gm.fit(X);
  std::printf("gmm<%zu> %s lower_bound %a n_iter %d score %a bic %a\n", sizeof(T), mixtura::to_string(type),
              gm.lower_bound(), gm.n_iter(), gm.score(X), gm.bic(X));
  print_matrix("weights", gm.weights());
  print_matrix("means", gm.means());
  for (mixtura::Index k = 0; k < gm.model().n_components; ++k) print_matrix("precision", gm.model().precision(k));
  const Eigen::VectorXd s = gm.score_samples(X);
  std::printf("score_samples sum %a first %a last %a\n", s.sum(), s(0), s(s.size() - 1));
  print_matrix("proba", gm.predict_proba(mixtura::MatrixView<T>(x.data(), 8, d)));
}

}  // namespace

int main() {
  std::fprintf(stderr, "serial_bits: built_with_openmp=%d\n", mixtura::built_with_openmp() ? 1 : 0);
  const mixtura::Index n = 30000, d = 6;
  const std::vector<double> xd = make_data(n, d);
  const std::vector<float> xf(xd.begin(), xd.end());
  for (int threads : {1, 3}) {  // a serial build ignores the thread count; OpenMP uses it
    std::printf("== n_threads %d\n", threads);
    kmeans(xd, n, d, threads);
    kmeans(xf, n, d, threads);
    kmeans_sparse(xd, n, d, threads);
    kmeans_sparse(xf, n, d, threads);
    gmm(xd, n, d, mixtura::CovarianceType::full, threads);
    gmm(xf, n, d, mixtura::CovarianceType::diag, threads);
  }
  return 0;
}
