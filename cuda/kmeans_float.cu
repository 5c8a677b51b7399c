// K-means data passes on the GPU for float data (see kmeans_passes.cuh).
#include "kmeans_passes.cuh"

MIXTURA_INSTANTIATE_KMEANS_PASSES(float)
