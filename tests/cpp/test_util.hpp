#pragma once
// Shared helpers of the C++ tests: data generators and a brute-force reference K-means.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mixtura/mixtura.hpp"

namespace mixtura_test {

using mixtura::Index;
using mixtura::RowMatrix;

using Scalars = ::testing::Types<float, double>;

/// n rows around k well-separated centres (distance ~ 20 * spread), deterministic in `seed`.
template <class T>
RowMatrix<T> blobs(Index n, Index d, Index k, std::uint32_t seed, double offset = 0.0, double spread = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> noise(0.0, spread);
  std::uniform_real_distribution<double> where(-20.0 * spread, 20.0 * spread);
  RowMatrix<double> c(k, d);
  for (Index i = 0; i < k; ++i)
    for (Index j = 0; j < d; ++j) c(i, j) = where(gen) * 5;
  RowMatrix<T> x(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) x(i, j) = static_cast<T>(offset + c(i % k, j) + noise(gen));
  return x;
}

/// Uniform random rows in [0, 1)^d.
template <class T>
RowMatrix<T> uniform(Index n, Index d, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  RowMatrix<T> x(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) x(i, j) = static_cast<T>(u(gen));
  return x;
}

/// Exact weighted distortion of labels/centres, in long double.
template <class T>
double distortion(const RowMatrix<T>& x, const std::vector<double>& w, const RowMatrix<T>& c,
                  const std::vector<std::int32_t>& labels) {
  long double total = 0;
  for (Index i = 0; i < x.rows(); ++i) {
    long double s = 0;
    for (Index j = 0; j < x.cols(); ++j) {
      const long double t = static_cast<long double>(x(i, j)) - static_cast<long double>(c(labels[i], j));
      s += t * t;
    }
    total += (w.empty() ? 1.0L : w[i]) * s;
  }
  return static_cast<double>(total);
}

/// Reference Lloyd in double with scikit-learn's stopping rules, written for clarity, not speed:
/// exact distances, nearest centre (ties to the lowest index), weighted means. No empty clusters.
struct ReferenceKMeans {
  RowMatrix<double> centers;
  std::vector<std::int32_t> labels;
  int n_iter = 0;
  double inertia = 0;

  ReferenceKMeans(const RowMatrix<double>& x, RowMatrix<double> init, int max_iter, double tol_abs) {
    centers = std::move(init);
    const Index n = x.rows(), d = x.cols(), k = centers.rows();
    std::vector<std::int32_t> old(n, -1);
    labels.assign(n, -1);
    bool strict = false;
    for (int it = 0; it < max_iter; ++it) {
      assign(x);
      RowMatrix<double> next = RowMatrix<double>::Zero(k, d);
      std::vector<double> cnt(k, 0.0);
      for (Index i = 0; i < n; ++i) {
        next.row(labels[i]) += x.row(i);
        cnt[labels[i]] += 1;
      }
      for (Index c = 0; c < k; ++c) next.row(c) /= cnt[c];
      const double shift = (next - centers).squaredNorm();
      centers = next;
      n_iter = it + 1;
      if (labels == old) {
        strict = true;
        break;
      }
      if (shift <= tol_abs) break;
      old = labels;
    }
    if (!strict) assign(x);
    inertia = 0;
    for (Index i = 0; i < n; ++i) inertia += (x.row(i) - centers.row(labels[i])).squaredNorm();
  }

  void assign(const RowMatrix<double>& x) {
    for (Index i = 0; i < x.rows(); ++i) {
      double best = 1e300;
      for (Index c = 0; c < centers.rows(); ++c) {
        const double dist = (x.row(i) - centers.row(c)).squaredNorm();
        if (dist < best) {
          best = dist;
          labels[i] = static_cast<std::int32_t>(c);
        }
      }
    }
  }
};

/// Runs f and returns the message of the mixtura::InvalidArgument it throws ("" if none).
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const mixtura::InvalidArgument& e) {
    return e.what();
  }
  return "";
}

}  // namespace mixtura_test

/// Expects `expr` to throw mixtura::InvalidArgument whose message contains every given part.
#define EXPECT_INVALID(expr, ...)                                                                 \
  do {                                                                                           \
    const std::string msg = ::mixtura_test::invalid_argument_message([&] { expr; });             \
    EXPECT_FALSE(msg.empty()) << #expr " did not throw InvalidArgument";                          \
    for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg.find(part), std::string::npos) << msg;  \
  } while (0)
