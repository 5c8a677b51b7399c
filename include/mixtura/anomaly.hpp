#pragma once
/// mixtura anomaly module: DensityAnomalyDetector<T>, its parameters, scaling and explanations.
#include "mixtura/core.hpp"
#include "mixtura/anomaly/density_detector.hpp"
