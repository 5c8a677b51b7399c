// K-means data passes on the GPU for double data (see kmeans_passes.cuh).
#include "kmeans_passes.cuh"

MIXTURA_INSTANTIATE_KMEANS_PASSES(double)
