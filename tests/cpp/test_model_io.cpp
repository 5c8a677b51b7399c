// Model files: the container (round trips, checksum, hostile bytes) and the models saved in it
// (a loaded estimator scores exactly like the saved one; inconsistent contents are refused).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "mixtura/anomaly.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io.hpp"
#include "mixtura/kmeans.hpp"

// ---- Allocation watch: the largest single operator-new request while `g_watch` is on. A hostile
// shape must be refused before anything of its size is allocated.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // GCC flags its own replaceable pair
#endif
namespace {
std::atomic<bool> g_watch{false};
std::atomic<std::size_t> g_largest{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_watch.load(std::memory_order_relaxed)) {
    std::size_t seen = g_largest.load(std::memory_order_relaxed);
    while (n > seen && !g_largest.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// The nothrow pair too (std::stable_sort's buffer): ASan's own nothrow new would meet our free.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using mixtura::DType;
using mixtura::Index;
using mixtura::InvalidArgument;
using mixtura::ModelFile;
using mixtura::RowMatrix;

template <class T>
RowMatrix<T> blobs(Index n, Index d, Index k, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> where(-10.0, 10.0);
  RowMatrix<double> c(k, d);
  for (Index i = 0; i < c.size(); ++i) c.data()[i] = where(gen);
  RowMatrix<T> x(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) x(i, j) = static_cast<T>(c(i % k, j) + noise(gen));
  return x;
}

/// The message of the InvalidArgument that f throws (fails the test if it throws nothing or else).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InvalidArgument, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected InvalidArgument, nothing was thrown";
  return {};
}

void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::vector<std::uint8_t>& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
/// Recomputes the trailing checksum: the bytes become what a (hostile) writer would produce.
void reseal(std::vector<std::uint8_t>& b) { put_u32(b, b.size() - 4, mixtura::crc32(b.data(), b.size() - 4)); }

/// Replaces (or adds) a section, keeping the others in order.
template <class T>
void replace(ModelFile& mf, const std::string& name, const std::vector<T>& values, std::vector<std::uint64_t> shape) {
  ModelFile tmp;
  tmp.add_array(name, values, std::move(shape));
  for (auto& s : mf.sections)
    if (s.name == name) {
      s = tmp.sections[0];
      return;
    }
  mf.sections.push_back(tmp.sections[0]);
}
void replace_text(ModelFile& mf, const std::string& name, const std::string& text) {
  for (auto& s : mf.sections)
    if (s.name == name) {
      ModelFile tmp;
      tmp.add_text(name, text);
      s = tmp.sections[0];
    }
}

/// Every section but the hyper-parameters (C++ writes its params JSON but does not read it back)
/// has the same dtype, shape and bytes in both files.
void expect_same_fitted_sections(const ModelFile& a, const ModelFile& b) {
  ASSERT_EQ(a.sections.size(), b.sections.size());
  for (std::size_t i = 0; i < a.sections.size(); ++i) {
    EXPECT_EQ(a.sections[i].name, b.sections[i].name);
    if (a.sections[i].name == "params") continue;
    EXPECT_EQ(a.sections[i].dtype, b.sections[i].dtype) << a.sections[i].name;
    EXPECT_EQ(a.sections[i].shape, b.sections[i].shape) << a.sections[i].name;
    EXPECT_EQ(a.sections[i].payload, b.sections[i].payload) << a.sections[i].name;
  }
}

// ---- The container ---------------------------------------------------------------------------

TEST(ModelFileCrc, MatchesZlib) {
  // The check value of CRC-32/ISO-HDLC (zlib.crc32(b"123456789")).
  const char* s = "123456789";
  EXPECT_EQ(mixtura::crc32(reinterpret_cast<const std::uint8_t*>(s), 9), 0xCBF43926u);
  EXPECT_EQ(mixtura::crc32(nullptr, 0), 0u);
  // Running: crc(ab) = crc(b, crc(a)).
  const auto* p = reinterpret_cast<const std::uint8_t*>(s);
  EXPECT_EQ(mixtura::crc32(p + 4, 5, mixtura::crc32(p, 4)), 0xCBF43926u);
}

TEST(ModelFileContainer, RoundTripsEveryDtypeAndRank) {
  ModelFile mf;
  mf.kind = "Test";
  mf.add_scalar<double>("scalar", -0.0);
  mf.add_array<float>("f32", std::vector<float>{1.5f, -2.25f, NAN, INFINITY, 1e-45f, 3.4e38f}, {2, 3});
  mf.add_array<double>("f64.4d", std::vector<double>(16, 0.1), {2, 2, 2, 2});
  mf.add_array<std::int32_t>("i32", std::vector<std::int32_t>{-2147483647 - 1, 2147483647}, {2});
  mf.add_array<std::int64_t>("i64", std::vector<std::int64_t>{INT64_MIN, INT64_MAX, -1}, {3, 1});
  mf.add_array<double>("empty", std::vector<double>{}, {0, 5});
  mf.add_text("text", "température, 温度 \xF0\x9F\x8C\xA1 {\"a\": 1}");
  mf.add_text("empty_text", "");
  const auto bytes = mixtura::to_bytes(mf);
  const ModelFile back = mixtura::from_bytes(bytes);
  EXPECT_EQ(back.kind, "Test");
  ASSERT_EQ(back.sections.size(), mf.sections.size());
  for (std::size_t i = 0; i < mf.sections.size(); ++i) {
    EXPECT_EQ(back.sections[i].name, mf.sections[i].name);
    EXPECT_EQ(back.sections[i].dtype, mf.sections[i].dtype);
    EXPECT_EQ(back.sections[i].shape, mf.sections[i].shape);
    EXPECT_EQ(back.sections[i].payload, mf.sections[i].payload);
  }
  EXPECT_EQ(mixtura::to_bytes(back), bytes);  // the encoding is canonical
  EXPECT_TRUE(std::signbit(back.scalar<double>("scalar")));
  const auto f = back.array<float>("f32");
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_TRUE(std::isnan(f[2]));
  EXPECT_EQ(f[4], 1e-45f);  // subnormal survives
  EXPECT_EQ(back.array<std::int64_t>("i64")[0], INT64_MIN);
  EXPECT_EQ(back.text("text"), "température, 温度 \xF0\x9F\x8C\xA1 {\"a\": 1}");
  // The header: magic, version 1, flags 0, total size.
  EXPECT_EQ(std::memcmp(bytes.data(), "MIXTURA\0", 8), 0);
  EXPECT_EQ(bytes[8], 1);
  EXPECT_EQ(bytes[16] | (bytes[17] << 8), static_cast<int>(bytes.size()));
}

TEST(ModelFileContainer, GettersNameTheSectionAndTheCondition) {
  ModelFile mf;
  mf.kind = "Test";
  mf.add_array<double>("means_", std::vector<double>(6, 1.0), {3, 2});
  EXPECT_NE(error_of([&] { mf.array<float>("means_"); }).find("section 'means_' has dtype f64, expected f32"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mf.array<double>("means_", std::vector<std::uint64_t>{3, 4}); })
                .find("section 'means_' has shape (3, 2), expected (3, 4)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mf.array<double>("weights_"); }).find("no section 'weights_'"), std::string::npos);
  EXPECT_NE(error_of([&] { mf.text("means_"); }).find("expected text"), std::string::npos);
}

TEST(ModelFileContainer, WriterRefusesWhatTheReaderWouldRefuse) {
  ModelFile mf;
  mf.kind = "Test";
  mf.add_scalar<double>("a", 1.0);
  EXPECT_NE(error_of([&] { mf.add_scalar<double>("a", 2.0); }).find("already exists"), std::string::npos);
  EXPECT_NE(error_of([&] { mf.add_scalar<double>("bad name", 2.0); }).find("section name"), std::string::npos);
  EXPECT_NE(error_of([&] { mf.add_scalar<double>("", 2.0); }).find("section name"), std::string::npos);
  EXPECT_NE(error_of([&] { mf.add_array<double>("five", std::vector<double>{1}, {1, 1, 1, 1, 1}); }).find("5 dimensions"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mf.add_text("t", "\xC3\x28"); }).find("not valid UTF-8"), std::string::npos);
  EXPECT_NE(error_of([&] { mf.add_array<double>("n", std::vector<double>{1, 2}, {3}); }).find("2 values for shape (3,)"),
            std::string::npos);
  ModelFile no_kind;
  EXPECT_NE(error_of([&] { mixtura::to_bytes(no_kind); }).find("kind"), std::string::npos);
}

TEST(ModelFileHostile, WrongMagicEmptyAndForeignFiles) {
  const std::string png = "\x89PNG\r\n\x1a\n0000000000000000000000000000000000000000";
  EXPECT_NE(error_of([&] { mixtura::from_bytes(reinterpret_cast<const std::uint8_t*>(png.data()), png.size()); })
                .find("not a mixtura model file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(nullptr, 0); }).find("empty"), std::string::npos);
  const std::string pickle = "\x80\x04\x95";
  EXPECT_NE(error_of([&] { mixtura::from_bytes(reinterpret_cast<const std::uint8_t*>(pickle.data()), 3); })
                .find("not a mixtura model file"),
            std::string::npos);
}

/// A small, complete KMeans file: every kind of section, a few hundred bytes.
std::vector<std::uint8_t> small_kmeans_file() {
  const RowMatrix<double> x = blobs<double>(12, 2, 2, 3);
  mixtura::KMeansParams p;
  p.n_clusters = 2;
  p.n_init = 2;
  mixtura::KMeans<double> km(p);
  km.fit(x);
  return mixtura::to_bytes(mixtura::to_model_file(km));
}

TEST(ModelFileHostile, EveryTruncationIsCaught) {
  const auto bytes = small_kmeans_file();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::string msg = error_of([&] { mixtura::from_bytes(bytes.data(), n); });
    ASSERT_FALSE(msg.empty()) << "prefix of " << n << " bytes";
    if (n >= 12) {
      ASSERT_NE(msg.find("truncated"), std::string::npos) << msg;
    }
  }
  EXPECT_NE(error_of([&] {
              auto longer = bytes;
              longer.push_back(0);
              mixtura::from_bytes(longer);
            }).find("trailing data"),
            std::string::npos);
}

TEST(ModelFileHostile, EverySingleBitFlipIsCaught) {
  const auto bytes = small_kmeans_file();
  auto b = bytes;
  for (std::size_t i = 0; i < b.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      b[i] ^= static_cast<std::uint8_t>(1u << bit);
      ASSERT_FALSE(error_of([&] { mixtura::from_bytes(b); }).empty()) << "byte " << i << " bit " << bit;
      b[i] = bytes[i];
    }
  EXPECT_EQ(mixtura::from_bytes(b).kind, "KMeans");
  // A flip in the payload (past the header) is reported as a checksum mismatch.
  b[bytes.size() / 2] ^= 1;
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("checksum mismatch"), std::string::npos);
}

TEST(ModelFileHostile, FutureVersionAndUnknownFlagsAreRefused) {
  auto b = small_kmeans_file();
  put_u32(b, 8, 2);
  reseal(b);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("format version 2 is newer than this build"),
            std::string::npos);
  put_u32(b, 8, 1);
  put_u32(b, 12, 4);
  reseal(b);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("unknown flags 0x00000004"), std::string::npos);
}

/// A file with one f64 section "means" of shape (2, 3), for patching its fields.
std::vector<std::uint8_t> one_section_file() {
  ModelFile mf;
  mf.kind = "Test";
  mf.add_array<double>("means", std::vector<double>(6, 1.0), {2, 3});
  return mixtura::to_bytes(mf);
}

TEST(ModelFileHostile, AbsurdShapesAreRefusedBeforeAnyAllocation) {
  // Layout: 32-byte header, kind "Test" (4), name length (4), "means" (5), dtype, ndim, reserved (4),
  // then the shape at offset 49.
  const auto base = one_section_file();
  ASSERT_EQ(base[32 + 4 + 4 + 5], static_cast<std::uint8_t>(DType::f64));
  const std::size_t shape_at = 32 + 4 + 4 + 5 + 4;
  struct Case {
    std::uint64_t rows, cols;
  };
  for (const Case c : {Case{std::uint64_t{1} << 60, 8}, Case{~std::uint64_t{0}, ~std::uint64_t{0}},
                       Case{std::uint64_t{1} << 32, std::uint64_t{1} << 32}, Case{3, 3}}) {
    auto b = base;
    put_u64(b, shape_at, c.rows);
    put_u64(b, shape_at + 8, c.cols);
    reseal(b);
    g_largest = 0;
    g_watch = true;
    const std::string msg = error_of([&] { mixtura::from_bytes(b); });
    g_watch = false;
    EXPECT_NE(msg.find("section 'means' declares shape (" + std::to_string(c.rows) + ", " + std::to_string(c.cols) +
                       ") of f64 (8 bytes each) but only 48 bytes remain"),
              std::string::npos)
        << msg;
    EXPECT_LT(g_largest.load(), std::size_t{4096}) << "an allocation of " << g_largest.load() << " bytes";
  }
}

TEST(ModelFileHostile, AbsurdCountsAndLengthsAreRefused) {
  const auto base = one_section_file();
  auto patched = [&](std::size_t at, std::uint32_t v) {
    auto b = base;
    put_u32(b, at, v);
    reseal(b);
    g_largest = 0;
    g_watch = true;
    std::string msg = error_of([&] { mixtura::from_bytes(b); });
    g_watch = false;
    EXPECT_LT(g_largest.load(), std::size_t{4096});
    return msg;
  };
  EXPECT_NE(patched(24, 0xFFFFFFFFu).find("4294967295 sections declared, at most 4096"), std::string::npos);
  EXPECT_NE(patched(24, 4000).find("4000 sections declared but only"), std::string::npos);
  EXPECT_NE(patched(24, 2).find("a section's name length needs 4 bytes"), std::string::npos);
  EXPECT_NE(patched(28, 0xFFFFFFF0u).find("kind length 4294967280 is outside [1, 64]"), std::string::npos);
  EXPECT_NE(patched(36, 0xFFFFFFFFu).find("name length 4294967295, outside [1, 255]"), std::string::npos);
  EXPECT_NE(patched(36, 200).find("needs 204 bytes"), std::string::npos);
  // dtype code 9, 7 dimensions.
  auto b = base;
  b[45] = 9;
  reseal(b);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("unknown dtype code 9"), std::string::npos);
  b = base;
  b[46] = 7;
  reseal(b);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("7 dimensions, at most 4"), std::string::npos);
  // A name with a character outside the allowed set; invalid UTF-8 in a text section.
  b = base;
  b[40] = '/';
  reseal(b);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("name with a character"), std::string::npos);
  ModelFile mf;
  mf.kind = "Test";
  mf.add_text("t", "abcd");
  b = mixtura::to_bytes(mf);
  b[b.size() - 5] = 0xFF;  // last text byte
  reseal(b);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("text section 't' is not valid UTF-8"), std::string::npos);
}

// ---- Models ------------------------------------------------------------------------------------

template <class T>
class ModelIoTyped : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ModelIoTyped, Scalars);

// ctest runs each test in its own process, several at once: the process id and the
// test's full name keep their files apart (float and double runs shared a name).
std::string temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string tag = std::to_string(static_cast<long long>(::getpid()));
  if (info != nullptr) tag += std::string("_") + info->test_suite_name() + "_" + info->name();
  for (char& c : tag)
    if (c == '/' || c == '<' || c == '>' || c == ' ') c = '_';
  const std::string dir = ::testing::TempDir().empty() ? std::string("/tmp/") : ::testing::TempDir();
  return dir + tag + "_" + name;
}

TYPED_TEST(ModelIoTyped, KMeansRoundTripPredictsIdentically) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(300, 4, 3, 1);
  mixtura::KMeansParams p;
  p.n_clusters = 4;
  p.n_init = 3;
  p.seed = 11;
  p.algorithm = mixtura::KMeansAlgorithm::hamerly;  // iterations that search fewer than all rows
  mixtura::KMeans<T> km(p);
  km.fit(x);
  const auto& last = km.runs()[static_cast<std::size_t>(km.best_restart())].trace;
  ASSERT_LT(last.back().n_searched, x.rows());
  const std::string path = temp_path("kmeans_roundtrip.mxt");
  mixtura::save_model(path, km);
  const std::string dtype = std::is_same<T, float>::value ? "float32" : "float64";
  EXPECT_EQ(mixtura::model_file_info(path).dtype, dtype);
  EXPECT_EQ(mixtura::model_file_info(path).n_features, 4);
  const auto back = mixtura::load_kmeans<T>(path);
  EXPECT_EQ(back.params().n_clusters, 4);
  EXPECT_EQ(back.predict(x), km.predict(x));
  const RowMatrix<T> d0 = km.transform(x), d1 = back.transform(x);
  EXPECT_EQ(std::memcmp(d0.data(), d1.data(), sizeof(T) * d0.size()), 0);
  EXPECT_EQ(back.score(x), km.score(x));
  EXPECT_EQ(back.labels(), km.labels());
  EXPECT_EQ(back.inertia(), km.inertia());
  EXPECT_EQ(back.n_iter(), km.n_iter());
  EXPECT_EQ(back.converged(), km.converged());
  EXPECT_EQ(back.best_restart(), km.best_restart());
  ASSERT_EQ(back.runs().size(), 3u);
  for (std::size_t r = 0; r < 3; ++r) {
    const auto &a = km.runs()[r], &b = back.runs()[r];
    EXPECT_EQ(a.inertia, b.inertia);
    EXPECT_EQ(a.seconds, b.seconds);
    ASSERT_EQ(a.trace.size(), b.trace.size());
    for (std::size_t i = 0; i < a.trace.size(); ++i) {
      EXPECT_EQ(a.trace[i].distortion_assign, b.trace[i].distortion_assign);
      EXPECT_EQ(a.trace[i].distortion_update, b.trace[i].distortion_update);
      EXPECT_EQ(a.trace[i].center_shift, b.trace[i].center_shift);
      EXPECT_EQ(a.trace[i].n_changed, b.trace[i].n_changed);
      EXPECT_EQ(a.trace[i].n_searched, b.trace[i].n_searched);
    }
  }
  // Saving the loaded model gives the same bytes: nothing was lost on the way.
  expect_same_fitted_sections(mixtura::to_model_file(back), mixtura::to_model_file(km));
  std::remove(path.c_str());
}

TYPED_TEST(ModelIoTyped, KMeansEventsSurvive) {
  using T = TypeParam;
  const RowMatrix<T> x = blobs<T>(60, 2, 3, 2);
  // Two identical initial centres: the second gets no rows and is re-seeded (an event).
  RowMatrix<T> init(3, 2);
  init << x(0, 0), x(0, 1), x(0, 0), x(0, 1), x(1, 0), x(1, 1);
  mixtura::KMeansParams p;
  p.n_clusters = 3;
  p.init = mixtura::KMeansInit::given;
  mixtura::KMeans<T> km(p);
  km.fit(x, {}, init);
  ASSERT_FALSE(km.events().empty());
  // The given start is the init parameter, as Python writes an array init (no JSON "init": "given").
  const ModelFile written = mixtura::to_model_file(km);
  std::vector<std::uint64_t> shape;
  EXPECT_EQ(written.template array<T>("params.init", &shape), std::vector<T>(init.data(), init.data() + init.size()));
  EXPECT_EQ(shape, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(written.text("params").find("\"init\""), std::string::npos) << written.text("params");
  const auto back = mixtura::kmeans_from_sections<T>(mixtura::from_bytes(mixtura::to_bytes(written)));
  EXPECT_EQ(back.initial_centers(), init);  // and a loaded model writes them back
  ASSERT_EQ(back.events().size(), km.events().size());
  for (std::size_t i = 0; i < km.events().size(); ++i) {
    EXPECT_EQ(back.events()[i].kind, km.events()[i].kind);
    EXPECT_EQ(back.events()[i].iteration, km.events()[i].iteration);
    EXPECT_EQ(back.events()[i].cluster, km.events()[i].cluster);
    EXPECT_EQ(back.events()[i].row, km.events()[i].row);
  }
}

TYPED_TEST(ModelIoTyped, GaussianMixtureRoundTripScoresIdenticallyForEveryCovarianceType) {
  using T = TypeParam;
  RowMatrix<T> x = blobs<T>(240, 3, 3, 5);
  for (Index i = 0; i < x.rows(); ++i) x(i, 2) = static_cast<T>(1);  // a constant column: floored covariances (events)
  for (auto type : {mixtura::CovarianceType::full, mixtura::CovarianceType::tied, mixtura::CovarianceType::diag,
                    mixtura::CovarianceType::spherical}) {
    SCOPED_TRACE(mixtura::to_string(type));
    mixtura::GmmParams p;
    p.n_components = 3;
    p.covariance_type = type;
    p.n_init = 2;
    p.reg_covar = 0;
    p.seed = 3;
    mixtura::GaussianMixture<T> gm(p);
    gm.fit(x);
    const std::string path = temp_path("gmm_roundtrip.mxt");
    mixtura::save_model(path, gm);
    const auto back = mixtura::load_gaussian_mixture<T>(path);
    std::remove(path.c_str());
    EXPECT_EQ(back.params().covariance_type, type);
    const Eigen::VectorXd s0 = gm.score_samples(x), s1 = back.score_samples(x);
    EXPECT_EQ(std::memcmp(s0.data(), s1.data(), sizeof(double) * s0.size()), 0);
    const RowMatrix<double> p0 = gm.predict_proba(x), p1 = back.predict_proba(x);
    EXPECT_EQ(std::memcmp(p0.data(), p1.data(), sizeof(double) * p0.size()), 0);
    EXPECT_EQ(back.predict(x), gm.predict(x));
    EXPECT_EQ(back.lower_bound(), gm.lower_bound());
    EXPECT_EQ(back.n_iter(), gm.n_iter());
    EXPECT_EQ(back.best_restart(), gm.best_restart());
    EXPECT_EQ(back.runs().size(), gm.runs().size());
    EXPECT_EQ(back.events().size(), gm.events().size());
    if (type != mixtura::CovarianceType::spherical) {
      EXPECT_FALSE(gm.events().empty());
    }
    EXPECT_EQ(back.bic(x), gm.bic(x));
    expect_same_fitted_sections(mixtura::to_model_file(back), mixtura::to_model_file(gm));
    // A loaded model samples like the saved one (same parameters, same seed).
    EXPECT_EQ(back.sample(5, 9).second, gm.sample(5, 9).second);
  }
}

TEST(ModelIo, PrefixedSectionsNestInOneFile) {
  const RowMatrix<double> x = blobs<double>(90, 2, 3, 4);
  mixtura::KMeansParams kp;
  kp.n_clusters = 3;
  mixtura::KMeans<double> km(kp);
  km.fit(x);
  mixtura::GmmParams gp;
  gp.n_components = 3;
  mixtura::GaussianMixture<double> gm(gp);
  gm.fit(x);
  ModelFile mf;
  mf.kind = "Composite";
  mixtura::add_sections(mf, km, "first.");
  mixtura::add_sections(mf, gm, "second.");
  const ModelFile back = mixtura::from_bytes(mixtura::to_bytes(mf));
  EXPECT_EQ(mixtura::kmeans_from_sections<double>(back, "first.").predict(x), km.predict(x));
  EXPECT_EQ(mixtura::gaussian_mixture_from_sections<double>(back, "second.").score(x), gm.score(x));
  // A GaussianMixture's sections read as a KMeans: refused at the first section K-means does not have.
  EXPECT_NE(error_of([&] { mixtura::kmeans_from_sections<double>(back, "second."); })
                .find("section 'second.covariance_type' is not one a KMeans model has"),
            std::string::npos);
}

TEST(ModelIo, WrongKindWrongDtypeAndUnfittedAreRefused) {
  const RowMatrix<double> x = blobs<double>(60, 2, 2, 6);
  mixtura::GmmParams gp;
  gp.n_components = 2;
  mixtura::GaussianMixture<double> gm(gp);
  gm.fit(x);
  const std::string path = temp_path("wrong_kind.mxt");
  mixtura::save_model(path, gm);
  EXPECT_NE(error_of([&] { mixtura::load_kmeans<double>(path); })
                .find("load_kmeans: the file holds a 'GaussianMixture' model, not a 'KMeans'"),
            std::string::npos);
  mixtura::KMeansParams kp;
  kp.n_clusters = 2;
  mixtura::KMeans<double> km(kp);
  km.fit(x);
  mixtura::save_model(path, km);
  EXPECT_NE(error_of([&] { mixtura::load_kmeans<float>(path); })
                .find("section 'cluster_centers_' has dtype f64, expected f32"),
            std::string::npos);
  ModelFile mf = mixtura::to_model_file(km);
  replace<double>(mf, "n_iter_", {3.0}, {});
  EXPECT_NE(error_of([&] { mixtura::kmeans_from_sections<double>(mf); }).find("section 'n_iter_' has dtype f64, expected i64"),
            std::string::npos);
  std::remove(path.c_str());
  EXPECT_THROW(mixtura::to_model_file(mixtura::KMeans<double>{}), mixtura::NotFittedError);
  EXPECT_THROW(mixtura::read_model_file(temp_path("does_not_exist.mxt")), mixtura::ModelFileIoError);
}

ModelFile fitted_gmm_file(mixtura::CovarianceType type) {
  const RowMatrix<double> x = blobs<double>(90, 2, 3, 7);
  mixtura::GmmParams gp;
  gp.n_components = 3;
  gp.covariance_type = type;
  mixtura::GaussianMixture<double> gm(gp);
  gm.fit(x);
  return mixtura::to_model_file(gm);
}

TEST(ModelIo, ValidChecksumButInconsistentGaussianMixtureIsRefused) {
  using mixtura::CovarianceType;
  auto refused = [](const ModelFile& mf) {
    // Through the bytes, as a hostile writer would deliver it: the container accepts, the model does not.
    return error_of([&] { mixtura::gaussian_mixture_from_sections<double>(mixtura::from_bytes(mixtura::to_bytes(mf))); });
  };
  ModelFile mf = fitted_gmm_file(CovarianceType::full);
  replace<double>(mf, "weights_", {0.2, 0.2, 0.1}, {3});
  EXPECT_NE(refused(mf).find("weights_ sum to 0.5, expected 1"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace<double>(mf, "weights_", {1.5, -0.5, 0.0}, {3});
  EXPECT_NE(refused(mf).find("weights_[1] = -0.5 must be finite and >= 0"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace<double>(mf, "weights_", {0.5, 0.5}, {2});
  EXPECT_NE(refused(mf).find("section 'weights_' has shape (2,), expected (3,)"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::diag);
  replace<double>(mf, "means_", {0, 0, NAN, 0, 0, 0}, {3, 2});
  EXPECT_NE(refused(mf).find("means_ holds nan at flat index 2, expected finite"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace<double>(mf, "precisions_cholesky_", {1, 0, 0, 1, /**/ 1, 0, 0, -1, /**/ 1, 0, 0, 1}, {3, 2, 2});
  EXPECT_NE(refused(mf).find("precisions_cholesky_ matrix 1 has diagonal entry 1 = -1, expected >= 1e-150"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::tied);
  replace<double>(mf, "precisions_cholesky_", {1, 2, 3, 1}, {2, 2});
  EXPECT_NE(refused(mf).find("precisions_cholesky_ matrix 0 is not triangular"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::spherical);
  replace<double>(mf, "precisions_cholesky_", {1, 0, 1}, {3});
  EXPECT_NE(refused(mf).find("entry 0 at flat index 1, expected >= 1e-150"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace_text(mf, "covariance_type", "banana");
  EXPECT_NE(refused(mf).find("unknown covariance_type 'banana'"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace_text(mf, "covariance_type", "diag");  // shapes of full, declared diag
  EXPECT_NE(refused(mf).find("section 'precisions_cholesky_' has shape (3, 2, 2), expected (3, 2)"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace<std::int64_t>(mf, "n_features_in_", {5}, {});
  EXPECT_NE(refused(mf).find("n_features_in_ = 5 but the fitted arrays have 2 features"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace<std::int64_t>(mf, "best_restart_", {4}, {});
  EXPECT_NE(refused(mf).find("best_restart_ = 4 is outside [0, 1 restarts)"), std::string::npos);
  mf = fitted_gmm_file(CovarianceType::full);
  replace<std::int64_t>(mf, "events_", {0, 0, 0, 7, 0}, {1, 5});
  replace<double>(mf, "events_value_", {0.0}, {1});
  EXPECT_NE(refused(mf).find("event 0 (kind 0, restart 0, iteration 0, component 7, row 0) is out of range"),
            std::string::npos);
}

TEST(ModelIo, ValidChecksumButInconsistentKMeansIsRefused) {
  const RowMatrix<double> x = blobs<double>(40, 2, 2, 8);
  mixtura::KMeansParams kp;
  kp.n_clusters = 2;
  mixtura::KMeans<double> km(kp);
  km.fit(x);
  auto refused = [](const ModelFile& mf) {
    return error_of([&] { mixtura::kmeans_from_sections<double>(mixtura::from_bytes(mixtura::to_bytes(mf))); });
  };
  ModelFile mf = mixtura::to_model_file(km);
  replace<double>(mf, "cluster_centers_", {0, 1, INFINITY, 2}, {2, 2});
  EXPECT_NE(refused(mf).find("section 'cluster_centers_' holds a non-finite value (inf) at flat index 2"),
            std::string::npos);
  mf = mixtura::to_model_file(km);
  replace<std::int32_t>(mf, "labels_", {0, 1, 2}, {3});
  EXPECT_NE(refused(mf).find("labels_[2] = 2 is outside [0, n_clusters = 2)"), std::string::npos);
  // A restart length far beyond the traces must be refused, not allocated.
  mf = mixtura::to_model_file(km);
  replace<std::int64_t>(mf, "restart_n_iter_", {std::int64_t{1} << 62}, {1});
  g_largest = 0;
  g_watch = true;
  const std::string msg = refused(mf);
  g_watch = false;
  EXPECT_NE(msg.find("gives restart 0 4611686018427387904 iterations, but the traces hold"), std::string::npos) << msg;
  EXPECT_LT(g_largest.load(), std::size_t{1} << 20);
  mf = mixtura::to_model_file(km);
  replace<std::int64_t>(mf, "n_iter_", {km.n_iter() + 1}, {});
  EXPECT_NE(refused(mf).find("n_iter_ = " + std::to_string(km.n_iter() + 1)), std::string::npos);
  mf = mixtura::to_model_file(km);
  replace<std::int32_t>(mf, "converged_", {7}, {});
  EXPECT_NE(refused(mf).find("converged_ = 7, expected 0 or 1"), std::string::npos);
  mf = mixtura::to_model_file(km);
  replace<double>(mf, "inertia_", {-1.0}, {});
  EXPECT_NE(refused(mf).find("inertia_ = -1 must be finite and >= 0"), std::string::npos);
}

// ---- Format stability: files written by the Python package (tests/fixtures/models/make_models.py) ----

std::vector<std::uint8_t> fixture_bytes(const std::string& name) {
  return mixtura::detail::read_file_bytes(std::string(MIXTURA_TEST_FIXTURES_DIR) + "/models/" + name, "fixture");
}

TEST(ModelIoFixtures, KMeansWrittenByPythonPredictsItsStoredLabels) {
  const auto bytes = fixture_bytes("python_kmeans_float32.mxt");
  const ModelFile mf = mixtura::from_bytes(bytes);
  EXPECT_EQ(mixtura::to_bytes(mf), bytes);  // re-encoding a version-1 file gives the same bytes
  EXPECT_EQ(mixtura::model_file_info(mf).dtype, "float32");
  EXPECT_TRUE(mf.has("feature_names_in_"));  // Python-only sections are carried, and ignored by C++
  const auto km = mixtura::kmeans_from_sections<float>(mf);
  std::vector<std::uint64_t> shape;
  const std::vector<float> x = mf.array<float>("test.X", &shape);
  const mixtura::MatrixView<float> xv(x.data(), static_cast<Index>(shape[0]), static_cast<Index>(shape[1]));
  EXPECT_EQ(km.predict(xv), mf.array<std::int32_t>("test.labels"));
  EXPECT_EQ(km.labels(), mf.array<std::int32_t>("labels_"));
}

TEST(ModelIoFixtures, GaussianMixturesWrittenByPythonScoreTheirStoredLogDensities) {
  for (const char* type : {"full", "tied", "diag", "spherical"}) {
    SCOPED_TRACE(type);
    const auto bytes = fixture_bytes(std::string("python_gmm_") + type + ".mxt");
    const ModelFile mf = mixtura::from_bytes(bytes);
    EXPECT_EQ(mixtura::to_bytes(mf), bytes);
    const auto gm = mixtura::gaussian_mixture_from_sections<double>(mf);
    EXPECT_EQ(mixtura::to_string(gm.params().covariance_type), std::string(type));
    std::vector<std::uint64_t> shape;
    const std::vector<double> x = mf.array<double>("test.X", &shape);
    const mixtura::MatrixView<double> xv(x.data(), static_cast<Index>(shape[0]), static_cast<Index>(shape[1]));
    const Eigen::VectorXd s = gm.score_samples(xv);
    const std::vector<double> expected = mf.array<double>("test.score_samples");
    ASSERT_EQ(static_cast<std::size_t>(s.size()), expected.size());
    // Same parameters, same code; another build (flags, instruction set) may differ in the last bits.
    for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(s[i], expected[i], 1e-12 * std::abs(expected[i]));
  }
}


// ---- Issue 21: reliability of the reader (each test failed before its fix) -----------------------

/// A container by hand: header for `kind`, `n_sections` declared, `body` as the sections, checksum.
std::vector<std::uint8_t> raw_file(const std::string& kind, std::uint32_t n_sections, const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> b(mixtura::kModelFileMagic, mixtura::kModelFileMagic + 8);
  b.resize(32 + kind.size());
  put_u32(b, 8, 1);
  put_u32(b, 12, 0);
  put_u32(b, 24, n_sections);
  put_u32(b, 28, static_cast<std::uint32_t>(kind.size()));
  std::memcpy(b.data() + 32, kind.data(), kind.size());
  b.insert(b.end(), body.begin(), body.end());
  b.resize(b.size() + 4);
  put_u64(b, 16, b.size());
  reseal(b);
  return b;
}

/// Section header bytes: name length, name, dtype, ndim, reserved, shape.
std::vector<std::uint8_t> section_head(const std::string& name, std::uint8_t dtype, std::vector<std::uint64_t> shape) {
  std::vector<std::uint8_t> b(4 + name.size() + 4 + 8 * shape.size());
  put_u32(b, 0, static_cast<std::uint32_t>(name.size()));
  std::memcpy(b.data() + 4, name.data(), name.size());
  b[4 + name.size()] = dtype;
  b[5 + name.size()] = static_cast<std::uint8_t>(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) put_u64(b, 8 + name.size() + 8 * d, shape[d]);
  return b;
}

TEST(ModelFileReliability, ScalarSectionWithoutItsBytesIsRefused) {
  // The 51-byte reproducer: a float64 scalar with no payload. The scalar's one element was never
  // compared with the bytes left, and 8 bytes were read past the buffer (ASan: heap over-read).
  std::vector<std::uint8_t> b = raw_file("KMeans", 1, section_head("x", 2, {}));
  ASSERT_EQ(b.size(), 51u);
  EXPECT_NE(error_of([&] { mixtura::from_bytes(b); }).find("section 'x' declares shape () of f64 (8 bytes each) but only 0 bytes remain"),
            std::string::npos);
  // 1 to 7 bytes left are still too few, for every scalar dtype.
  for (std::uint8_t dtype : {1, 2, 3, 4})
    for (std::size_t left = 0; left < mixtura::item_size(static_cast<DType>(dtype)); ++left) {
      std::vector<std::uint8_t> body = section_head("x", dtype, {});
      body.resize(body.size() + left, 0xAB);
      const std::vector<std::uint8_t> f = raw_file("KMeans", 1, body);
      std::vector<std::uint8_t> exact(f.begin(), f.end());  // an exact-size heap buffer, as ASan sees it
      EXPECT_NE(error_of([&] { mixtura::from_bytes(exact); }).find("but only " + std::to_string(left) + " bytes remain"),
                std::string::npos) << "dtype " << int(dtype) << ", " << left << " bytes left";
    }
}

TEST(ModelFileReliability, WriterRefusesAShapeWhoseProductOverflows) {
  // 2^63 x 2 elements wrap to 0, which matched an empty payload: the writer wrote a file whose shape
  // no reader can hold. Counted without overflow, it is refused.
  ModelFile mf;
  mf.kind = "KMeans";
  mixtura::Section s;
  s.name = "x";
  s.dtype = DType::f64;
  s.shape = {std::uint64_t{1} << 63, 2};
  mf.sections.push_back(s);
  EXPECT_NE(error_of([&] { mixtura::to_bytes(mf); }).find("to_bytes: section 'x' has 0 payload bytes for shape"),
            std::string::npos);
  ModelFile m2;
  m2.kind = "KMeans";
  EXPECT_THROW(m2.add_array<double>("y", std::vector<double>{}, {std::uint64_t{1} << 63, 2}), InvalidArgument);
}

/// The error of read_model_file(path) (a ModelFileIoError or InvalidArgument), "" if none.
std::string read_error(const std::string& path) {
  try {
    mixtura::read_model_file(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ModelFileReliability, OnlyRegularFilesAreRead) {
  // A directory gave std::bad_alloc (its "size" is huge); a FIFO blocked; /dev/zero was read until
  // memory ran out. Each is refused before anything is read.
  const std::string dir = temp_path("a_directory.mxt");
  std::filesystem::create_directory(dir);
  EXPECT_THROW(mixtura::read_model_file(dir), mixtura::ModelFileIoError);
  EXPECT_NE(read_error(dir).find("is not a regular file (a directory)"), std::string::npos) << read_error(dir);
  std::filesystem::remove(dir);
#if defined(__unix__)
  const std::string fifo = temp_path("a_fifo.mxt");
  std::remove(fifo.c_str());
  ASSERT_EQ(std::system(("mkfifo '" + fifo + "'").c_str()), 0);
  EXPECT_NE(read_error(fifo).find("is not a regular file (a device, FIFO or socket)"), std::string::npos);
  std::remove(fifo.c_str());
  EXPECT_NE(read_error("/dev/zero").find("is not a regular file"), std::string::npos);
#endif
}

TEST(ModelFileReliability, LargeFilesAreJudgedByTheirHeaderBeforeBeingRead) {
  // 3 GB of zeros (sparse: nothing is written) were read whole before the magic was checked.
  const std::string path = temp_path("sparse.mxt");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
  }
  std::filesystem::resize_file(path, std::uint64_t{3} << 30);
  g_largest = 0;
  g_watch = true;
  const std::string e1 = read_error(path);
  g_watch = false;
  EXPECT_NE(e1.find("not a mixtura model file"), std::string::npos) << e1;
  EXPECT_LT(g_largest.load(), std::size_t{1} << 20);
  // A valid header declaring its real size, then 3 GB more: refused by the size, not the checksum.
  std::vector<std::uint8_t> b = raw_file("KMeans", 0, {});
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  std::filesystem::resize_file(path, std::uint64_t{3} << 30);
  g_largest = 0;
  g_watch = true;
  const std::string e2 = read_error(path);
  g_watch = false;
  EXPECT_NE(e2.find("3221225472 bytes where the header declares 42: trailing data"), std::string::npos) << e2;
  EXPECT_LT(g_largest.load(), std::size_t{1} << 20);
  std::remove(path.c_str());
}

ModelFile fitted_kmeans_file() {
  const RowMatrix<double> x = blobs<double>(40, 2, 2, 8);
  mixtura::KMeansParams kp;
  kp.n_clusters = 2;
  mixtura::KMeans<double> km(kp);
  km.fit(x);
  return mixtura::to_model_file(km);
}

ModelFile fitted_detector_file(mixtura::AnomalyMethod method) {
  const RowMatrix<double> x = blobs<double>(200, 2, 2, 9);
  mixtura::DetectorParams p;
  p.method = method;
  p.n_components = 2;
  mixtura::DensityAnomalyDetector<double> det(p);
  det.fit(x);
  return mixtura::to_model_file(det);
}

TEST(ModelFileReliability, SectionsOfAnotherKindAreRefused) {
  // They were ignored: a file whose contents are not what its kind says loaded as that kind.
  auto gmm = [](const ModelFile& mf) {
    return error_of([&] { mixtura::gaussian_mixture_from_sections<double>(mixtura::from_bytes(mixtura::to_bytes(mf))); });
  };
  ModelFile mf = fitted_gmm_file(mixtura::CovarianceType::diag);
  replace<double>(mf, "cluster_centers_", {0, 1, 2, 3}, {2, 2});
  EXPECT_NE(gmm(mf).find("section 'cluster_centers_' is not one a GaussianMixture model has"), std::string::npos);
  mf = fitted_gmm_file(mixtura::CovarianceType::diag);
  replace<double>(mf, "model.weights_", {1.0}, {1});  // "model." is mixtura's, not the application's
  EXPECT_NE(gmm(mf).find("section 'model.weights_' is not one a GaussianMixture model has"), std::string::npos);
  ModelFile km = fitted_kmeans_file();
  replace<double>(km, "offset_", {0.5}, {});
  EXPECT_NE(error_of([&] { mixtura::kmeans_from_sections<double>(km); }).find("section 'offset_' is not one a KMeans"),
            std::string::npos);
  ModelFile det = fitted_detector_file(mixtura::AnomalyMethod::gmm);
  replace<double>(det, "density_weights_", {1.0}, {1});  // a kmeans detector's
  EXPECT_NE(error_of([&] { mixtura::detector_from_sections<double>(det); })
                .find("section 'density_weights_' is not one a DensityAnomalyDetector model has"),
            std::string::npos);
  det = fitted_detector_file(mixtura::AnomalyMethod::gmm);
  replace<double>(det, "model.cluster_centers_", {0, 1, 2, 3}, {2, 2});
  EXPECT_NE(error_of([&] { mixtura::detector_from_sections<double>(det); })
                .find("section 'model.cluster_centers_' is not one a GaussianMixture model has"),
            std::string::npos);
  // The application's own namespaces ("test.", "myapp.") and params.NAME stay allowed.
  mf = fitted_gmm_file(mixtura::CovarianceType::diag);
  replace<double>(mf, "test.X", {0, 1}, {1, 2});
  replace<double>(mf, "params.means_init", {0, 1}, {1, 2});
  EXPECT_NO_THROW(mixtura::gaussian_mixture_from_sections<double>(mf));
}

TEST(ModelFileReliability, UnusableValuesAreRefusedAtLoad) {
  // scale_ = 1e-310 loaded, then scoring failed with "X contains -inf" (x / scale_ overflowed).
  ModelFile det = fitted_detector_file(mixtura::AnomalyMethod::gmm);
  replace<double>(det, "scale_", {1e-310, 1.0}, {2});
  EXPECT_NE(error_of([&] { mixtura::detector_from_sections<double>(det); }).find("scale_[0] = 1e-310, expected in [1e-150, 1e+150]"),
            std::string::npos);
  det = fitted_detector_file(mixtura::AnomalyMethod::kmeans);
  replace<double>(det, "center_", {1e200, 0.0}, {2});
  EXPECT_NE(error_of([&] { mixtura::detector_from_sections<double>(det); }).find("center_[0] = 1e+200"),
            std::string::npos);
  // A BIC count that no int holds was converted anyway (undefined behaviour).
  det = fitted_detector_file(mixtura::AnomalyMethod::gmm);
  replace<double>(det, "bic_", {1e300, 5.0}, {1, 2});
  EXPECT_NE(error_of([&] { mixtura::detector_from_sections<double>(det); }).find("bic_[0, 0] = 1e+300 is not a component count"),
            std::string::npos);
  // Means whose squares overflow, and a triangular factor valid entry by entry whose inverse is not finite.
  ModelFile mf = fitted_gmm_file(mixtura::CovarianceType::tied);
  std::vector<double> means = mf.array<double>("means_");
  means[1] = 1e200;
  replace<double>(mf, "means_", means, {3, 2});
  EXPECT_NE(error_of([&] { mixtura::gaussian_mixture_from_sections<double>(mf); }).find("means_ holds 1e+200 at flat index 1"),
            std::string::npos);
  mf = fitted_gmm_file(mixtura::CovarianceType::tied);
  replace<double>(mf, "precisions_cholesky_", {1e-150, 1e150, 0, 1e-150}, {2, 2});
  EXPECT_NE(error_of([&] { mixtura::gaussian_mixture_from_sections<double>(mf); }).find("too ill-conditioned"),
            std::string::npos);
  ModelFile km = fitted_kmeans_file();
  replace<double>(km, "cluster_centers_", {0, 1, 1e160, 2}, {2, 2});
  EXPECT_NE(error_of([&] { mixtura::kmeans_from_sections<double>(km); }).find("cluster_centers_ holds 1e+160 at flat index 2"),
            std::string::npos);
}

// ---- MiniBatchKMeans: a file carries the state partial_fit resumes from ----------------------------

mixtura::MiniBatchKMeansParams minibatch_params() {
  mixtura::MiniBatchKMeansParams p;
  p.n_clusters = 4;
  p.init = mixtura::KMeansInit::given;
  p.batch_size = 50;
  p.max_iter = 2;
  p.max_no_improvement = -1;
  p.reassignment_ratio = 0.2;
  p.seed = 13;
  return p;
}

template <class T>
void expect_same_minibatch(const mixtura::MiniBatchKMeans<T>& a, const mixtura::MiniBatchKMeans<T>& b) {
  const RowMatrix<T>&ca = a.cluster_centers(), &cb = b.cluster_centers();
  ASSERT_EQ(ca.rows(), cb.rows());
  ASSERT_EQ(ca.cols(), cb.cols());
  EXPECT_EQ(std::memcmp(ca.data(), cb.data(), sizeof(T) * static_cast<std::size_t>(ca.size())), 0);
  EXPECT_EQ(a.counts(), b.counts());
  EXPECT_EQ(a.n_steps(), b.n_steps());
  EXPECT_EQ(a.state().n_since_reassign, b.state().n_since_reassign);
  EXPECT_EQ(a.labels(), b.labels());
  EXPECT_EQ(a.inertia(), b.inertia());
  EXPECT_EQ(a.n_iter(), b.n_iter());
  ASSERT_EQ(a.trace().size(), b.trace().size());
  for (std::size_t i = 0; i < a.trace().size(); ++i) {
    EXPECT_EQ(a.trace()[i].distortion_assign, b.trace()[i].distortion_assign) << i;
    EXPECT_EQ(a.trace()[i].distortion_update, b.trace()[i].distortion_update) << i;
    EXPECT_EQ(a.trace()[i].center_shift, b.trace()[i].center_shift) << i;
    EXPECT_EQ(a.trace()[i].n_reassigned, b.trace()[i].n_reassigned) << i;
  }
  ASSERT_EQ(a.events().size(), b.events().size());
  for (std::size_t i = 0; i < a.events().size(); ++i) {
    EXPECT_EQ(a.events()[i].step, b.events()[i].step);
    EXPECT_EQ(a.events()[i].cluster, b.events()[i].cluster);
    EXPECT_EQ(a.events()[i].row, b.events()[i].row);
  }
}

// Saved after fit (or after partial_fit calls) and loaded, then given more chunks, a MiniBatchKMeans
// is the one never saved, bit for bit: the file holds all that a step reads (centres, counts, n_steps,
// the reassignment counter, the seed); the parameters are the caller's (C++ does not parse them).
TYPED_TEST(ModelIoTyped, MiniBatchKMeansResumesFromAFileBitForBit) {
  using T = TypeParam;
  const Index n = 600;
  const RowMatrix<T> x = blobs<T>(n, 3, 3, 21);
  std::vector<T> w(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = static_cast<T>(0.5 + 0.25 * static_cast<double>(i % 7));
  RowMatrix<T> init = x.topRows(4);
  init.row(3).setConstant(T(1000));  // never nearest: starved, reassigned (an event)
  const mixtura::MiniBatchKMeansParams p = minibatch_params();
  for (const bool weighted : {false, true}) {
    for (const bool fit_first : {true, false}) {
      auto part = [&](Index from, Index rows) {
        return std::make_pair(RowMatrix<T>(x.middleRows(from, rows)),
                              weighted ? mixtura::VectorView<T>(w.data() + from, rows) : mixtura::VectorView<T>{});
      };
      mixtura::MiniBatchKMeans<T> saved(p);
      if (fit_first) {
        saved.fit(x, weighted ? mixtura::VectorView<T>(w.data(), n) : mixtura::VectorView<T>{}, init);
      } else {
        const auto c = part(0, 100);
        saved.partial_fit(c.first, c.second, init);
      }
      const auto c1 = part(100, 100);
      saved.partial_fit(c1.first, c1.second);
      ASSERT_FALSE(saved.events().empty());
      ASSERT_EQ(saved.trace().size(), static_cast<std::size_t>(saved.n_steps()));
      const std::string path = temp_path("minibatch.mxt");
      mixtura::save_model(path, saved);
      EXPECT_EQ(mixtura::model_file_info(path).kind, "MiniBatchKMeans");
      EXPECT_EQ(mixtura::model_file_info(path).dtype, (std::is_same<T, float>::value ? "float32" : "float64"));
      mixtura::MiniBatchKMeans<T> loaded = mixtura::load_minibatch_kmeans<T>(path);
      std::remove(path.c_str());
      EXPECT_EQ(loaded.params().seed, p.seed);
      EXPECT_EQ(loaded.params().n_clusters, p.n_clusters);
      loaded.set_params(p);
      expect_same_minibatch(saved, loaded);
      expect_same_fitted_sections(mixtura::to_model_file(loaded), mixtura::to_model_file(saved));
      // The record goes on where it stopped (the trace does not restart), and so do the steps.
      for (Index from = 200; from < n; from += 100) {
        const auto c = part(from, from == 400 ? 37 : 100);  // a chunk shorter than batch_size, too
        saved.partial_fit(c.first, c.second);
        loaded.partial_fit(c.first, c.second);
        expect_same_minibatch(saved, loaded);
      }
      EXPECT_EQ(loaded.trace().size(), static_cast<std::size_t>(loaded.n_steps()));
    }
  }
}

ModelFile fitted_minibatch_file() {
  const RowMatrix<double> x = blobs<double>(200, 2, 3, 9);
  RowMatrix<double> init = x.topRows(4);
  init.row(3).setConstant(1000.0);
  mixtura::MiniBatchKMeans<double> mb(minibatch_params());
  mb.fit(x, {}, init);
  return mixtura::to_model_file(mb);
}

void remove_section(ModelFile& mf, const std::string& name) {
  for (auto it = mf.sections.begin(); it != mf.sections.end(); ++it)
    if (it->name == name) {
      mf.sections.erase(it);
      return;
    }
}

TEST(ModelIo, ValidChecksumButInconsistentMiniBatchKMeansIsRefused) {
  auto refused = [](const ModelFile& mf) {
    return error_of([&] { mixtura::minibatch_kmeans_from_sections<double>(mixtura::from_bytes(mixtura::to_bytes(mf))); });
  };
  const ModelFile good = fitted_minibatch_file();
  const std::int64_t steps = good.scalar<std::int64_t>("n_steps_");
  ASSERT_GE(steps, 4);
  ASSERT_GE(good.find("events_")->shape[0], 1u);
  EXPECT_NO_THROW(mixtura::minibatch_kmeans_from_sections<double>(good));
  ModelFile mf = good;
  replace<double>(mf, "counts_", {1, -1, 1, 1}, {4});
  EXPECT_NE(refused(mf).find("counts_[1] = -1 must be finite and in [0, 1e+150]"), std::string::npos);
  mf = good;
  replace<double>(mf, "counts_", {1, NAN, 1, 1}, {4});
  EXPECT_NE(refused(mf).find("counts_[1] = nan must be finite and in [0, 1e+150]"), std::string::npos);
  mf = good;
  replace<double>(mf, "counts_", {1, 1, 1}, {3});
  EXPECT_NE(refused(mf).find("section 'counts_' has shape (3,), expected (4,)"), std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "n_steps_", {-1}, {});
  EXPECT_NE(refused(mf).find("n_steps_ = -1, expected >= 0"), std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "n_steps_", {steps - 1}, {});  // fewer steps than the trace records
  EXPECT_NE(refused(mf).find("section 'distortion_trace_' has shape (" + std::to_string(steps) +
                             ", 2), expected (n, 2) with n <= n_steps_ = " + std::to_string(steps - 1)),
            std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "n_since_reassign_", {-5}, {});
  EXPECT_NE(refused(mf).find("n_since_reassign_ = -5, expected >= 0"), std::string::npos);
  mf = good;
  replace<double>(mf, "distortion_trace_", std::vector<double>(static_cast<std::size_t>(3 * steps), 1.0),
                  {static_cast<std::uint64_t>(steps), 3});
  EXPECT_NE(refused(mf).find("expected (n, 2) with n <= n_steps_"), std::string::npos);
  mf = good;
  std::vector<double> trace = mf.array<double>("distortion_trace_");
  trace[3] = -INFINITY;
  replace<double>(mf, "distortion_trace_", trace, {static_cast<std::uint64_t>(steps), 2});
  EXPECT_NE(refused(mf).find("section 'distortion_trace_' holds -inf at flat index 3, expected finite and >= 0"),
            std::string::npos);
  mf = good;
  replace<double>(mf, "trace_seconds_", {0.5}, {1});
  EXPECT_NE(refused(mf).find("section 'trace_seconds_' has shape (1,), expected (" + std::to_string(steps) + ",)"),
            std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "events_", {0, 0, 0, 0, 0}, {1, 5});
  EXPECT_NE(refused(mf).find("section 'events_' has shape (1, 5), expected (n, 3)"), std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "events_", {0, 9, 3}, {1, 3});
  EXPECT_NE(refused(mf).find("event 0 (step 0, cluster 9, row 3) is out of range"), std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "events_", {steps, 0, 3}, {1, 3});
  EXPECT_NE(refused(mf).find("event 0 (step " + std::to_string(steps) + ", cluster 0, row 3) is out of range: steps [0, n_steps_ = " +
                             std::to_string(steps) + ")"),
            std::string::npos);
  mf = good;
  replace<std::int64_t>(mf, "events_", {0, 1, -1}, {1, 3});
  EXPECT_NE(refused(mf).find("event 0 (step 0, cluster 1, row -1) is out of range"), std::string::npos);
  mf = good;
  replace<double>(mf, "inertia_", {-1.0}, {});
  EXPECT_NE(refused(mf).find("inertia_ = -1 must be finite and >= 0"), std::string::npos);
  mf = good;
  replace<std::int32_t>(mf, "labels_", {0, 4}, {2});
  EXPECT_NE(refused(mf).find("labels_[1] = 4 is outside [0, n_clusters = 4)"), std::string::npos);
  mf = good;
  remove_section(mf, "seed_");
  EXPECT_NE(refused(mf).find("the model file has no section 'seed_'"), std::string::npos);
  mf = good;
  replace<double>(mf, "cluster_centers_", {0, 1, 2, 3, 4, 5, 1e200, 7}, {4, 2});
  EXPECT_NE(refused(mf).find("cluster_centers_ holds 1e+200 at flat index 6"), std::string::npos);
  // Sections of another kind, both ways; the kind; the dtype; an unfitted estimator.
  mf = good;
  replace<std::int32_t>(mf, "converged_", {1}, {});
  EXPECT_NE(refused(mf).find("section 'converged_' is not one a MiniBatchKMeans model has"), std::string::npos);
  EXPECT_NE(error_of([&] { mixtura::kmeans_from_sections<double>(good); }).find("section 'counts_' is not one a KMeans"),
            std::string::npos);
  const std::string path = temp_path("minibatch_kind.mxt");
  mixtura::write_model_file(path, fitted_kmeans_file());
  EXPECT_NE(error_of([&] { mixtura::load_minibatch_kmeans<double>(path); })
                .find("load_minibatch_kmeans: the file holds a 'KMeans' model, not a 'MiniBatchKMeans'"),
            std::string::npos);
  mixtura::write_model_file(path, good);
  EXPECT_NE(error_of([&] { mixtura::load_minibatch_kmeans<float>(path); })
                .find("section 'cluster_centers_' has dtype f64, expected f32"),
            std::string::npos);
  std::remove(path.c_str());
  EXPECT_THROW(mixtura::to_model_file(mixtura::MiniBatchKMeans<double>{}), mixtura::NotFittedError);
}

// set_state without a record starts a new one: the trace then covers the last steps only, and the
// file says so (a trace shorter than n_steps_, events within it).
TEST(ModelIo, MiniBatchKMeansStateSetByHandSavesAndResumes) {
  const RowMatrix<double> x = blobs<double>(200, 2, 3, 10);
  mixtura::MiniBatchKMeans<double> a(minibatch_params());
  RowMatrix<double> init = x.topRows(4);
  init.row(3).setConstant(1000.0);
  a.fit(x, {}, init);
  mixtura::MiniBatchKMeans<double> b(minibatch_params());
  b.set_state(a.state());
  EXPECT_TRUE(b.trace().empty());
  b.partial_fit(RowMatrix<double>(x.topRows(60)));
  a.partial_fit(RowMatrix<double>(x.topRows(60)));
  ASSERT_EQ(b.trace().size(), 1u);
  mixtura::MiniBatchKMeans<double> c = mixtura::minibatch_kmeans_from_sections<double>(mixtura::to_model_file(b));
  c.set_params(minibatch_params());
  expect_same_minibatch(b, c);
  c.partial_fit(RowMatrix<double>(x.bottomRows(70)));
  a.partial_fit(RowMatrix<double>(x.bottomRows(70)));
  EXPECT_EQ(std::memcmp(c.cluster_centers().data(), a.cluster_centers().data(), sizeof(double) * 8), 0);
  EXPECT_EQ(c.counts(), a.counts());
  EXPECT_EQ(c.n_steps(), a.n_steps());
  EXPECT_EQ(c.trace().size(), 2u);
  // The seed is a u64: its i64 section keeps every bit.
  mixtura::MiniBatchKMeansParams big = minibatch_params();
  big.seed = ~std::uint64_t{0} - 4;
  b.set_params(big);
  EXPECT_EQ(mixtura::minibatch_kmeans_from_sections<double>(mixtura::from_bytes(mixtura::to_bytes(mixtura::to_model_file(b))))
                .params()
                .seed,
            big.seed);
  // set_state checks a record as the loader does.
  mixtura::MiniBatchKMeansRecord rec;
  rec.trace.resize(static_cast<std::size_t>(a.n_steps()) + 1);
  EXPECT_NE(error_of([&] { b.set_state(a.state(), rec); }).find("a trace of"), std::string::npos);
  rec = {};
  rec.events.push_back({0, 7, 0});
  EXPECT_NE(error_of([&] { b.set_state(a.state(), rec); }).find("event 0 (step 0, cluster 7, row 0) is outside"),
            std::string::npos);
}

}  // namespace
