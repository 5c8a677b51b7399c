#pragma once
/// mixtura on NVIDIA GPUs: the CUDA backend and the algorithms' passes on it. Link mixtura::cuda.
///
///   auto gpu = mixtura::make_cuda_backend();   // device 0; throws mixtura::CudaError without one
///   mixtura::KMeans<float> km(params);
///   km.fit_on(gpu, X);                         // same loop, traces and results as km.fit(X)
///   mixtura::GaussianMixture<float> gm(gmm_params);
///   gm.fit_on(gpu, X);                         // the E-step on the device, the M-step on the host
///
/// See docs/cuda.md for what runs on the device, the determinism guarantee and streaming.
#include "mixtura/backend/cuda.hpp"
#include "mixtura/cuda/device.hpp"
#include "mixtura/cuda/errors.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/gmm/cuda_pass.hpp"
#include "mixtura/kmeans/cuda_pass.hpp"
#include "mixtura/kmeans.hpp"
