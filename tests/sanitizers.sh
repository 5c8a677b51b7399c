#!/usr/bin/env bash
# Builds C++ test programs with AddressSanitizer and UndefinedBehaviorSanitizer and runs them with
# ctest. -fno-sanitize-recover=all makes the first finding fail its test; -O1 -g1 keeps the reports
# readable (line tables: each frame names its file and line) and compiles a fifth faster than -g, and
# NDEBUG is left undefined so Eigen's own bounds checks run too.
#
#   tests/sanitizers.sh          the CI subset: the model-file reader and loaders (test_model_io,
#                                which fits and scores all three estimators too) and the core
#                                helpers (test_core)
#   tests/sanitizers.sh --all    every C++ test program (much longer: the K-means, GMM and detector suites)
#
# Environment: MIXTURA_SANITIZE_BUILD_DIR (default build-sanitize), MIXTURA_SANITIZE_TARGETS (the
# programs of the subset, space-separated), MIXTURA_JOBS (.ci/env.sh), CXX (GCC and Clang both work).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/env.sh
dir=${MIXTURA_SANITIZE_BUILD_DIR:-build-sanitize}
read -r -a targets <<<"${MIXTURA_SANITIZE_TARGETS:-test_model_io test_core}"
if [ "${1:-}" = "--all" ]; then
  targets=()
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--all]" >&2
  exit 2
fi
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Build type None: only the flags below (no -O3 -DNDEBUG); CUDA, benchmarks and Python are left out.
gen=()  # Ninja builds the programs side by side; a folder keeps the generator it was made with
[ -f "$dir/CMakeCache.txt" ] || ! command -v ninja >/dev/null || gen=(-G Ninja)
cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1 $san" \
  -DCMAKE_EXE_LINKER_FLAGS="$san" -DCMAKE_SHARED_LINKER_FLAGS="$san" -DMIXTURA_WITH_CUDA=OFF \
  -DMIXTURA_BUILD_TESTS=ON -DMIXTURA_BUILD_BENCHMARKS=OFF -DMIXTURA_BUILD_EXAMPLES=OFF \
  -DMIXTURA_BUILD_PYTHON=OFF >/dev/null
cmake --build "$dir" -j "$MIXTURA_JOBS" ${targets[@]:+--target "${targets[@]}"}
# Reports name the line; leaks fail too. ctest -L picks the programs by label (their names).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
labels=()
[ ${#targets[@]} -eq 0 ] || labels=(-L "^($(IFS='|'; echo "${targets[*]}"))\$")
(cd "$dir" && ctest --output-on-failure -j "$MIXTURA_JOBS" "${labels[@]}")
