#pragma once
/// mixtura model files: the portable container (ModelFile) and saving/loading KMeans, MiniBatchKMeans, GaussianMixture and DensityAnomalyDetector.
#include "mixtura/io/model_file.hpp"
#include "mixtura/io/models.hpp"
#include "mixtura/io/minibatch.hpp"
#include "mixtura/io/detector.hpp"
