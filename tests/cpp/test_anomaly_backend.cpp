// DensityAnomalyDetector with its passes on the host replay of the CUDA kernels (gmm_replay.hpp; no GPU
// needed): the CPU detector's choices and, within the CUDA backend's tolerance, its scores and
// offsets; and exactly the backend's own fits and scores of the scaled rows (detector_backend.hpp).
#include "detector_backend.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

template <class T>
class AnomalyOnReplay : public ::testing::Test {};
TYPED_TEST_SUITE(AnomalyOnReplay, Scalars);

TYPED_TEST(AnomalyOnReplay, FollowsTheCpuDetector) { expect_detector_follows_the_cpu<TypeParam>(ReplayBackend{}); }

TYPED_TEST(AnomalyOnReplay, StreamFollowsTheCpuDetector) {
  expect_detector_stream_follows_the_cpu<TypeParam>(ReplayBackend{});
}

TYPED_TEST(AnomalyOnReplay, IsTheBackendsPassesBitForBit) {
  expect_detector_is_the_backends_passes<TypeParam>(ReplayBackend{});
}

}  // namespace
