#!/usr/bin/env bash
# Runs mixtura's OpenMP folds under ThreadSanitizer. GCC's libgomp is not instrumented (its barriers
# give false reports), so this builds with clang++ and LLVM's libomp and loads Archer (libarcher.so,
# beside libomp), the OMPT tool that tells TSan about OpenMP's fork, join, barriers and critical
# sections. Without Archer (OMP_TOOL=disabled), TSan reports races that are not: 559 in one run of
# serial_bits with clang 14 (on data the main thread wrote before a parallel region, on fold_rows's
# merges inside omp critical), whatever ignore_noninstrumented_modules says; with Archer, none.
# -O1 -g1 keeps reports readable (each frame names its file and line); NDEBUG stays undefined.
#
#   tests/tsan.sh          the subset: tests/serial_bits (K-means and GMM fits, scores, transforms,
#                          float and double, at 1 and 3 threads) and test_core (fold_rows at 1 to 8
#                          threads, exceptions inside the region)
#   tests/tsan.sh --all    serial_bits and every GoogleTest program of tests/cpp but the CUDA ones,
#                          the per-ISA copies and test_model_io (see below), each test at
#                          OMP_NUM_THREADS=2 (the programs' own 2-thread tests included)
# Times (the subset under a minute, --all about a quarter of an hour on 2 cores): bench/RESULTS.md.
#
# First a self-check, so that a run where TSan or Archer is silently inactive cannot pass:
# tests/tsan/race_check must print Archer's greeting and pass without a race, and must fail when its
# fold adds into one shared variable from both threads. A report stops its program with exit 66
# (halt_on_error); TSAN_OPTIONS and ARCHER_OPTIONS from the environment are appended to the defaults.
#
# Needs clang++ (14 tested), libomp-dev with libarcher.so, and the clang runtime: on Debian 12,
#   bash .ci/install-deps clang libomp-dev libclang-rt-dev libeigen3-dev libgtest-dev cmake
# Environment: MIXTURA_TSAN_BUILD_DIR (default build-tsan), MIXTURA_TSAN_TARGETS (the GoogleTest
# programs of the subset, space-separated; default test_core), MIXTURA_TSAN_CXX (default clang++;
# its libomp and Archer must be the same LLVM's), MIXTURA_ARCHER (default: libarcher.so beside the
# libomp the programs load), MIXTURA_JOBS (.ci/env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/env.sh
dir=${MIXTURA_TSAN_BUILD_DIR:-build-tsan}
read -r -a targets <<<"${MIXTURA_TSAN_TARGETS:-test_core}"
if [ "${1:-}" = "--all" ]; then
  # Every mixtura_test() program (its ctest label is its name) but CUDA's and test_model_io: that one
  # replaces operator new (its allocation watch), which TSan's static runtime defines too (a link
  # error; clang 14's -shared-libsan runtime crashes at start); ASan checks it (tests/sanitizers.sh).
  mapfile -t targets < <(sed -n 's/^ *mixtura_test(\([a-z_0-9]*\) .*/\1/p' tests/cpp/CMakeLists.txt |
    grep -v -e '^test_cuda_' -e '^test_model_io$')
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--all]" >&2
  exit 2
fi
cxx=${MIXTURA_TSAN_CXX:-clang++}
san="-fsanitize=thread -fno-omit-frame-pointer"
gen=()  # Ninja builds the programs side by side; a folder keeps the generator it was made with
[ -f "$dir/CMakeCache.txt" ] || ! command -v ninja >/dev/null || gen=(-G Ninja)
tests_on=OFF
[ ${#targets[@]} -eq 0 ] || tests_on=ON
# Build type None: only the flags below. clang's -fopenmp means libomp; CUDA, benchmarks, examples
# and Python are off (tests/tsan/CMakeLists.txt).
cmake -S tests/tsan -B "$dir" "${gen[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g1 $san" -DCMAKE_EXE_LINKER_FLAGS="$san" -DMIXTURA_BUILD_TESTS=$tests_on >/dev/null
cmake --build "$dir" -j "$MIXTURA_JOBS" --target race_check serial_bits ${targets[@]:+"${targets[@]}"}

omp=$(ldd "$dir/race_check" | awk '/libomp/ { print $3; exit }')
[ -n "$omp" ] || { echo "FAIL: $dir/race_check does not load LLVM's libomp (ldd):"; ldd "$dir/race_check"; exit 1; }
archer=${MIXTURA_ARCHER:-$(dirname "$(readlink -f "$omp")")/libarcher.so}
[ -f "$archer" ] || { echo "FAIL: no Archer at $archer (libomp-dev; or set MIXTURA_ARCHER)"; exit 1; }
export OMP_TOOL_LIBRARIES=$archer OMP_NUM_THREADS=2
# ignore_noninstrumented_modules: libomp's, libstdc++'s and libgtest's own accesses are not checked
# (Archer stands in for libomp's synchronisation); a report ends its program with exit 66.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ARCHER_OPTIONS="verbose=1 ${ARCHER_OPTIONS:-}"

echo "== self-check: $dir/race_check with $archer"
log="$dir/race_check"
rc=0; "$dir/race_check" clean >"$log.clean.log" 2>&1 || rc=$?
if [ $rc -ne 0 ] || ! grep -q "Archer detected OpenMP application with TSan" "$log.clean.log"; then
  cat "$log.clean.log"; echo "FAIL: race_check clean: exit $rc, or Archer is not active"; exit 1
fi
rc=0; "$dir/race_check" race >"$log.race.log" 2>&1 || rc=$?
if [ $rc -ne 66 ] || ! grep -q "WARNING: ThreadSanitizer: data race" "$log.race.log"; then
  cat "$log.race.log"; echo "FAIL: race_check race: exit $rc, not TSan's 66 with a report: TSan is not checking"; exit 1
fi
echo "ok: clean fold passes with Archer active; the racy fold is reported ($(grep -m1 -o 'race_check.cpp:[0-9]*' "$log.race.log"))"

echo "== serial_bits at OMP_NUM_THREADS=2 (its fits ask for 1 and 3 threads)"
rc=0; "$dir/serial_bits" >"$dir/serial_bits.txt" 2>"$dir/serial_bits.err" || rc=$?
[ $rc -eq 0 ] || { cat "$dir/serial_bits.err"; echo "FAIL: serial_bits under TSan (exit $rc)"; exit 1; }
# Archer greets on stdout; the rest is one section per thread count, which must match bit for bit.
awk -v o="$dir/serial_bits" '/^Archer/ { next } /^== n_threads/ { t = $3; next } { print > (o "." t ".txt") }' \
  "$dir/serial_bits.txt"
cmp -s "$dir/serial_bits.1.txt" "$dir/serial_bits.3.txt" ||
  { diff "$dir/serial_bits.1.txt" "$dir/serial_bits.3.txt" | head; echo "FAIL: 1 and 3 threads differ"; exit 1; }
echo "ok: $(grep -c '^kmeans\|^gmm' "$dir/serial_bits.1.txt") fits, the same bits at 1 and 3 threads"
if [ ${#targets[@]} -gt 0 ]; then
  echo "== ctest -L ${targets[*]} at OMP_NUM_THREADS=2"
  # ctest -L picks the programs by label (their names); each test runs two threads.
  (cd "$dir" && ctest --output-on-failure -j $(( MIXTURA_JOBS > 1 ? MIXTURA_JOBS / 2 : 1 )) -L "^($(IFS='|'; echo "${targets[*]}"))\$")
fi
