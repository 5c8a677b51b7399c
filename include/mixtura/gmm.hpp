#pragma once
/// mixtura Gaussian-mixture module: GaussianMixture<T>, its parameters, model, traces and events.
#include "mixtura/core.hpp"
#include "mixtura/gmm/gaussian_mixture.hpp"
#include "mixtura/gmm/select.hpp"
