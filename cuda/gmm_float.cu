// Gaussian-mixture data passes on the GPU for float data (see gmm_passes.cuh).
#include "gmm_passes.cuh"

MIXTURA_INSTANTIATE_GMM_PASSES(float)
