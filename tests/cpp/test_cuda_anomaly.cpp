// DensityAnomalyDetector on the CUDA backend. Tests named Device* need a GPU and skip without one:
// the CPU detector's choices, its scores and offsets within 1e-5 (float) / 1e-10 (double) relative,
// for methods gmm and kmeans and every threshold; and the detector's fits and scores are the
// backend's own passes on the scaled rows, bit for bit (detector_backend.hpp). The host replay of the
// same checks runs everywhere (test_anomaly_backend.cpp).
#include "cuda_test_util.hpp"
#include "detector_backend.hpp"
#include "mixtura/cuda.hpp"

using namespace mixtura;
using namespace mixtura_test;

namespace {

template <class T>
class CudaAnomalyDevice : public ::testing::Test {};
TYPED_TEST_SUITE(CudaAnomalyDevice, Scalars);

TYPED_TEST(CudaAnomalyDevice, DeviceFollowsTheCpuDetector) {
  SKIP_WITHOUT_DEVICE();
  expect_detector_follows_the_cpu<TypeParam>(make_cuda_backend());
}

TYPED_TEST(CudaAnomalyDevice, DeviceStreamFollowsTheCpuDetector) {
  SKIP_WITHOUT_DEVICE();
  expect_detector_stream_follows_the_cpu<TypeParam>(make_cuda_backend());
}

TYPED_TEST(CudaAnomalyDevice, DeviceIsTheBackendsPassesBitForBit) {
  SKIP_WITHOUT_DEVICE();
  expect_detector_is_the_backends_passes<TypeParam>(make_cuda_backend());
}

// Bad input is refused on the host before any device is touched: a backend without a context does.
TYPED_TEST(CudaAnomalyDevice, BadInputGivesTheCpuErrorsBeforeTouchingTheDevice) {
  using T = TypeParam;
  const RowMatrix<T> x = detector_data<T>(1, 1);
  DensityAnomalyDetector<T> det;
  const CudaBackend none;
  EXPECT_INVALID(det.fit_on(none, MatrixView<T>(x)), "need n_samples >= 2, got n_samples = 1");
  EXPECT_THROW(det.score_samples_on(none, MatrixView<T>(x)), NotFittedError);
}

}  // namespace
