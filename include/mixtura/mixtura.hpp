#pragma once
/// Everything in mixtura's CPU library.
#include "mixtura/core.hpp"
#include "mixtura/kmeans.hpp"
#include "mixtura/gmm.hpp"
#include "mixtura/io.hpp"
#include "mixtura/anomaly.hpp"
