#pragma once
// Helpers of the Gaussian-mixture tests: fixture files and a brute-force log-density.
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "test_util.hpp"

namespace mixtura_test {

inline constexpr mixtura::CovarianceType kTypes[] = {mixtura::CovarianceType::full, mixtura::CovarianceType::tied,
                                                     mixtura::CovarianceType::diag, mixtura::CovarianceType::spherical};

/// Blocks "name rows cols" followed by rows of numbers, as written by tests/fixtures/gmm/make_fixtures.py.
inline std::map<std::string, mixtura::RowMatrix<double>> read_fixture(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture " + path);
  std::map<std::string, mixtura::RowMatrix<double>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream head(line);
    std::string name;
    Index rows, cols;
    head >> name >> rows >> cols;
    mixtura::RowMatrix<double> m(rows, cols);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) in >> m(i, j);
    std::getline(in, line);
    out[name] = m;
  }
  return out;
}

inline std::string fixture_path(const std::string& name) { return std::string(MIXTURA_TEST_FIXTURES_DIR) + "/gmm/" + name; }

/// log p(x) under a model, by brute force from its covariances (Eigen LLT, long-hand log-sum-exp).
inline double brute_log_density(const mixtura::GmmModel& m, const Eigen::VectorXd& x) {
  const double d = static_cast<double>(m.n_features);
  std::vector<double> terms;
  for (Index k = 0; k < m.n_components; ++k) {
    const Eigen::MatrixXd cov = m.covariance(k);
    Eigen::LLT<Eigen::MatrixXd> llt(cov);
    const Eigen::VectorXd diff = x - m.means.row(k).transpose();
    const double maha = diff.dot(llt.solve(diff));
    const double logdet = 2 * Eigen::MatrixXd(llt.matrixL()).diagonal().array().log().sum();
    terms.push_back(std::log(m.weights[k]) - 0.5 * (d * std::log(2 * M_PI) + logdet + maha));
  }
  const double mx = *std::max_element(terms.begin(), terms.end());
  double s = 0;
  for (double t : terms) s += std::exp(t - mx);
  return mx + std::log(s);
}

/// Three overlapping blobs in D dimensions around an offset.
template <class T>
RowMatrix<T> gmm_blobs(Index n, Index d, std::uint32_t seed, double offset = 0.0, double sep = 4.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> z;
  RowMatrix<T> x(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j)
      x(i, j) = static_cast<T>(offset + (j == (i % 3) % d ? sep * static_cast<double>(i % 3) : 0.0) + (1.0 + 0.3 * j) * z(gen));
  return x;
}

}  // namespace mixtura_test
