# Sourced by the scripts: build folder, parallelism, nvcc on PATH when the toolkit is in its usual place.
MIXTURA_BUILD_DIR=${MIXTURA_BUILD_DIR:-build}
MIXTURA_JOBS=${MIXTURA_JOBS:-$(nproc)}
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
