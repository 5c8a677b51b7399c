#pragma once
/// mixtura K-means module: KMeans<T>, its parameters, traces and events; the statistics of chunks
/// (kmeans_statistics, KMeansStats::merge, kmeans_update); MiniBatchKMeans<T>.
#include "mixtura/core.hpp"
#include "mixtura/kmeans/kmeans.hpp"
#include "mixtura/kmeans/minibatch.hpp"
#include "mixtura/kmeans/statistics.hpp"
