#pragma once
/// mixtura K-means module: KMeans<T>, its parameters, traces and events.
#include "mixtura/core.hpp"
#include "mixtura/kmeans/kmeans.hpp"
