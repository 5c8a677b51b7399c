#!/usr/bin/env bash
# Device check of the CUDA backend on a machine with an NVIDIA GPU (made for one H200, 16 cores, under
# 8 minutes): builds for sm_90 only (the CUDA tests and timing programs, nothing else), runs every
# CUDA test, the K-means and Gaussian-mixture benchmarks and their PyTorch counterparts, and prints
# their tables.
#
#   bash bench/device_check.sh                  # on the GPU machine, from anywhere in the checkout
#   bash bench/device_check.sh --sanitize       # instead of the tests and timings: the device tests
#                                               # under compute-sanitizer (memcheck, racecheck, synccheck)
#   bash bench/device_check.sh --prepare-deps   # HERE, before: see below
#
# --sanitize needs a machine where compute-sanitizer reaches the GPU (Firecracker, not gVisor); it
# probes that first and says so. Each tool runs each device test program (tests named *Device*; the
# gtest filter SANITIZE_FILTER overrides) under `timeout SANITIZE_TIMEOUT` (default 100 s); a run
# stopped at the limit found nothing before it and says so. SANITIZE_TOOLS picks the tools.
#
# The GPU machine may have no Eigen and no GoogleTest and no network. --prepare-deps copies this
# machine's Eigen headers and GoogleTest source into .devdeps/ (ignored by git through
# .git/info/exclude); carry .devdeps with the run and the check builds from it what the system lacks.
# With a python3 that has pybind11, NumPy, scikit-learn and pytest (the GPU machine's has them, and
# CuPy and PyTorch), the Python extension is built beside the tests and the Python tests that use
# device arrays run on the GPU too; without them that stage says why it is skipped.
# Environment: BUILD (build folder, default build-device), JOBS (default 16), PYTHON (default
# python3), CMAKE_ARGS (extra configure arguments), KMEANS_BENCH_ARGS (--quick: smaller shapes for both K-means timings),
# GMM_BENCH_ARGS (--quick: 100,000 rows for both Gaussian-mixture timings; --iters N).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deps=$root/.devdeps

if [ "${1:-}" = "--prepare-deps" ]; then
  mkdir -p "$deps"
  grep -qx '/.devdeps/' .git/info/exclude 2>/dev/null || echo '/.devdeps/' >>.git/info/exclude
  rm -rf "$deps/eigen3" "$deps/googletest"
  cp -r /usr/include/eigen3 "$deps/eigen3"
  cp -r /usr/src/googletest "$deps/googletest"
  echo "prepared $(du -sh "$deps" | cut -f1) in .devdeps: carry it with the device run"
  exit 0
fi

mode=check
[ "${1:-}" = "--sanitize" ] && mode=sanitize

export PATH=/usr/local/cuda/bin:$PATH
BUILD=${BUILD:-build-device}
JOBS=${JOBS:-16}
PYTHON=${PYTHON:-python3}
step() { printf '\n==== %s (%ds)\n' "$1" "$SECONDS"; }

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
nvcc --version | tail -1

cmake_args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DMIXTURA_WITH_CUDA=ON
            -DMIXTURA_BUILD_TESTS=ON -DMIXTURA_BUILD_BENCHMARKS=OFF -DMIXTURA_BUILD_CUDA_BENCHMARKS=ON
            -DMIXTURA_BUILD_EXAMPLES=OFF -DMIXTURA_BUILD_PYTHON=OFF)
if [ -d "$deps/eigen3" ] && [ ! -f /usr/include/eigen3/Eigen/Core ]; then
  step "Eigen from .devdeps"
  cat >"$deps/eigen3/Eigen3Config.cmake" <<EOF
if(NOT TARGET Eigen3::Eigen)
  add_library(Eigen3::Eigen INTERFACE IMPORTED)
  set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "$deps/eigen3")
endif()
EOF
  cat >"$deps/eigen3/Eigen3ConfigVersion.cmake" <<'EOF'
set(PACKAGE_VERSION 3.4.0)
set(PACKAGE_VERSION_COMPATIBLE TRUE)
EOF
  cmake_args+=(-DEigen3_DIR="$deps/eigen3")
fi
if [ -d "$deps/googletest" ] && [ ! -f /usr/include/gtest/gtest.h ]; then
  step "GoogleTest from .devdeps"
  cmake -S "$deps/googletest" -B /tmp/mx-gtest-build -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
        -DCMAKE_INSTALL_PREFIX=/tmp/mx-gtest >/dev/null
  cmake --build /tmp/mx-gtest-build -j"$JOBS" >/dev/null
  cmake --install /tmp/mx-gtest-build >/dev/null
  cmake_args+=(-DGTest_DIR=/tmp/mx-gtest/lib/cmake/GTest)
fi

step "configure"
# The Python extension too when $PYTHON can build and test it; a failed configure with it falls back to
# the C++ programs alone (the reason is printed), so the check still runs.
python_tests=0
if [ "$mode" = sanitize ]; then
  py_missing="(not needed with --sanitize)"
elif py_missing=$("$PYTHON" -c 'import importlib.util as u
print(" ".join(m for m in ("pybind11", "numpy", "sklearn", "pytest") if u.find_spec(m) is None))' 2>&1) &&
   [ -z "$py_missing" ]; then
  py_args=(-DMIXTURA_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v "$PYTHON")"
           -Dpybind11_DIR="$("$PYTHON" -c 'import pybind11; print(pybind11.get_cmake_dir())')")
  mkdir -p "$BUILD"
  # shellcheck disable=SC2086
  if cmake -S . -B "$BUILD" "${cmake_args[@]}" "${py_args[@]}" ${CMAKE_ARGS:-} >"$BUILD/configure-python.log" 2>&1; then
    python_tests=1
  else
    echo "Python extension: configure failed, its tests are skipped:"
    tail -n 15 "$BUILD/configure-python.log"
  fi
else
  echo "Python extension: skipped: $PYTHON lacks ${py_missing:-a working interpreter}"
fi
if [ "$python_tests" = 0 ]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD" "${cmake_args[@]}" -DMIXTURA_BUILD_PYTHON=OFF ${CMAKE_ARGS:-} >/dev/null
fi
# Every test program that uses the GPU (tests/cpp registers them as test_cuda_*), and the timing programs.
mapfile -t targets < <(grep -o 'mixtura_test(test_cuda_[a-z_]*' tests/cpp/CMakeLists.txt | cut -d'(' -f2)
[ "$mode" = check ] && targets+=(cuda_kmeans_bench cuda_gmm_bench)
# The extension: the baseline copy of the core and the CPU probe are enough for the device tests.
[ "$python_tests" = 1 ] && targets+=(_cpu _core_baseline)
step "build: ${targets[*]}"
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}"

status=0
if [ "$mode" = sanitize ]; then
  # Every device test program under each tool; an error found is exit status 99 (--error-exitcode).
  programs=()
  for t in "${targets[@]}"; do [[ $t == test_cuda_* ]] && programs+=("$t"); done
  step "compute-sanitizer probe"
  if ! command -v compute-sanitizer >/dev/null; then
    echo "compute-sanitizer: not on PATH"; exit 1
  fi
  if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "no GPU visible (nvidia-smi -L); the device tests would only skip: nothing checked"; exit 1
  fi
  if ! timeout 60 compute-sanitizer --tool memcheck --error-exitcode 99 "$BUILD/tests/cpp/test_cuda_device"; then
    echo "compute-sanitizer cannot check programs on this machine (gVisor does not let it); nothing checked"
    exit 1
  fi
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
    for t in "${programs[@]}"; do
      step "$tool: $t"
      rc=0
      timeout "${SANITIZE_TIMEOUT:-100}" compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 \
        "$BUILD/tests/cpp/$t" --gtest_filter="${SANITIZE_FILTER:-*Device*}" --gtest_brief=1 || rc=$?
      case $rc in
        0) echo "$tool $t: no errors" ;;
        124) echo "$tool $t: stopped at ${SANITIZE_TIMEOUT:-100} s; no error found before" ;;
        99) echo "$tool $t: ERRORS (above)"; status=1 ;;
        *) echo "$tool $t: exit status $rc (a failed test, above)"; status=1 ;;
      esac
    done
  done
  step "done (exit status $status)"
  exit "$status"
fi

step "CUDA tests"
(cd "$BUILD" && ctest -R '[Cc]uda' --output-on-failure -j4 --timeout 300) || status=$?

if [ "$python_tests" = 1 ]; then
  # The Python tests that use device arrays (tests/python/gpu_util.py's to_device), on the package as
  # it is in the checkout with the extension just built.
  step "Python tests with device arrays"
  pkg=$(cd "$BUILD" && pwd)/python-package
  rm -rf "$pkg" && mkdir -p "$pkg/mixtura"
  cp -r python/mixtura/. "$pkg/mixtura/"
  cp "$BUILD"/python/_core_*.so "$BUILD"/python/_cpu*.so "$pkg/mixtura/"
  mapfile -t py_files < <(grep -l 'to_device\|HAS_GPU' tests/python/test_*.py)
  (cd "$pkg" && PYTHONPATH="$pkg" "$PYTHON" -m pytest -q -p no:cacheprovider -rs "${py_files[@]/#/$root/}") ||
    status=$?
fi

# benchmark TITLE PROGRAM TORCH_SCRIPT ARGS: our timing program, then the same iteration in PyTorch.
benchmark() {
  local title=$1 program=$2 script=$3 args
  read -r -a args <<<"$4"
  step "$title benchmark"
  "$BUILD/bench/$program" ${args[@]+"${args[@]}"} || status=$?
  step "$title in PyTorch"
  if "$PYTHON" -c 'import torch' 2>/dev/null; then
    "$PYTHON" "bench/$script" ${args[@]+"${args[@]}"} || status=$?
  else
    echo "$script: skipped: $PYTHON has no torch"
  fi
}
benchmark "K-means" cuda_kmeans_bench torch_kmeans.py "${KMEANS_BENCH_ARGS:-}"
benchmark "Gaussian-mixture" cuda_gmm_bench torch_gmm.py "${GMM_BENCH_ARGS:-}"

step "done (exit status $status)"
exit "$status"
