#pragma once
/// mixtura core: views, errors, counter-based random numbers, deterministic parallel folds.
#include "mixtura/core/build_info.hpp"
#include "mixtura/core/data_access.hpp"
#include "mixtura/core/device_matrix_view.hpp"
#include "mixtura/core/errors.hpp"
#include "mixtura/core/limits.hpp"
#include "mixtura/core/matrix_view.hpp"
#include "mixtura/core/moments.hpp"
#include "mixtura/core/parallel.hpp"
#include "mixtura/core/rng.hpp"
#include "mixtura/core/timer.hpp"
#include "mixtura/core/validate.hpp"
#include "mixtura/version.hpp"
