#!/usr/bin/env bash
# Installs what is missing, builds everything (CUDA too when nvcc is found: compiled and linked,
# its tests skip without a GPU) and runs every test: a separate CMake project built against the
# installed package (find_package(mixtura); its dispatched passes at the CPU's level and capped by
# MIXTURA_ISA), the GoogleTest suite through ctest (the hot suites again
# at each x86-64 level), the model-file and core tests under ASan+UBSan beside a minute of fuzzing
# the model-file reader and then the OpenMP folds under ThreadSanitizer with Archer, a serial
# build's bits, then the Python package, installed with `pip install .` into a fresh virtual
# environment (beside the C++ build), through pytest at this CPU's highest level, the documentation
# site (docs/build.sh: sphinx -W, the notebooks run) and, without the tests marked top_level_only, at
# each lower level it runs, under qemu-x86_64 as older CPUs (the C++ dispatched passes too), and the
# C++ subset cross-built for aarch64 under qemu-aarch64 (beside the Python steps).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's wall time, printed at the end (also when a step fails): where CI's minutes go.
steps=() step_name="" step_start=$SECONDS
step() {
  [ -n "$step_name" ] && steps+=("$(printf '%5d s  %s' $((SECONDS - step_start)) "$step_name")")
  step_name="$1" step_start=$SECONDS
  [ -n "$1" ] && echo "== $1"
  return 0
}
summary() {
  local rc=$?
  step ""
  echo "== time per step (total $SECONDS s, exit $rc)"
  printf '%s\n' "${steps[@]}"
}
# Background jobs (pip's build beside the C++ one, aarch64 beside pytest) stop with the script.
bg_pids=()
trap 'summary; for p in "${bg_pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done' EXIT

step "dependencies and the C++ build (tests, benchmarks, examples; CUDA when nvcc is found)"
bash .ci/install-deps
source .ci/env.sh
# wait_bg PID LOG WHAT: waits for a background job; on failure prints its log and stops.
wait_bg() {
  local rc=0
  wait "$1" || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$2"
    echo "$3 failed (exit $rc): its log is above" >&2
    exit 1
  fi
}
# The Python package installs beside the C++ build: pip's downloads and its one-core steps fill the
# gaps of the compiler's two (the tests that need it come after the C++ ones).
venv="$MIXTURA_BUILD_DIR/venv"
pip_log="$MIXTURA_BUILD_DIR/pip-install.log"
mkdir -p "$MIXTURA_BUILD_DIR"
rm -rf "$venv"
# setsid: each background job is a process group of its own, which the trap stops whole.
setsid bash -c 'set -e
  python3 -m venv "$1"
  "$1/bin/python" -m pip install -q --upgrade pip
  CMAKE_BUILD_PARALLEL_LEVEL=$2 "$1/bin/python" -m pip install -q ".[test]"
  echo "pip install .[test] into a fresh virtual environment: $SECONDS s"' _ "$venv" "$MIXTURA_JOBS" \
  >"$pip_log" 2>&1 &
pip_pid=$!
bg_pids+=("$pip_pid")
cmake -S . -B "$MIXTURA_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMIXTURA_BUILD_TESTS=ON \
  -DMIXTURA_BUILD_BENCHMARKS=ON -DMIXTURA_BUILD_EXAMPLES=ON
cmake --build "$MIXTURA_BUILD_DIR" -j "$MIXTURA_JOBS"

step "C++ package: install, then build and run examples/consumer against it"
prefix="$PWD/$MIXTURA_BUILD_DIR/_install"
cmake --install "$MIXTURA_BUILD_DIR" --prefix "$prefix" >/dev/null
cmake -S examples/consumer -B "$MIXTURA_BUILD_DIR/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$MIXTURA_BUILD_DIR/consumer" -j "$MIXTURA_JOBS" >/dev/null
"$MIXTURA_BUILD_DIR/consumer/consumer"
# The dispatched passes from the installed package: the CPU's highest level, then capped by MIXTURA_ISA.
"$MIXTURA_BUILD_DIR/consumer/consumer_dispatched"
capped=$(MIXTURA_ISA=baseline "$MIXTURA_BUILD_DIR/consumer/consumer_dispatched")
echo "$capped"
[[ $capped == *"level baseline:"* ]] || { echo "consumer_dispatched: MIXTURA_ISA=baseline was not honoured" >&2; exit 1; }

step "C++ tests"
(cd "$MIXTURA_BUILD_DIR" && ctest --output-on-failure -j "$MIXTURA_JOBS")

step "ASan+UBSan (test_model_io, test_core) beside 60 s of fuzzing the model-file reader (libFuzzer), then TSan+Archer (serial_bits, test_core)"
# Each is mostly one process (one compiler of one large file; clang then one fuzzer): side by side
# they share the two cores instead of taking turns. TSan follows the fuzzer on its core (one job:
# the sanitizer build has the other core).
bash .ci/install-deps clang libclang-rt-dev libomp-dev
fuzz_log="$MIXTURA_BUILD_DIR/fuzz.log"
tsan_log="$MIXTURA_BUILD_DIR/tsan.log"
mkdir -p "$MIXTURA_BUILD_DIR"
( bash tests/fuzz.sh 60 >"$fuzz_log" 2>&1 || exit 10
  MIXTURA_JOBS=1 bash tests/tsan.sh >"$tsan_log" 2>&1 || exit 20 ) &
fuzz_pid=$!
if ! bash tests/sanitizers.sh; then
  kill "$fuzz_pid" 2>/dev/null || true
  exit 1
fi
fuzz_rc=0
wait "$fuzz_pid" || fuzz_rc=$?
if [ "$fuzz_rc" -eq 20 ]; then
  cat "$tsan_log"
  echo "tests/tsan.sh failed: its log is above" >&2
  exit 1
elif [ "$fuzz_rc" -ne 0 ]; then
  cat "$fuzz_log"
  echo "tests/fuzz.sh failed (exit $fuzz_rc): its log is above" >&2
  exit 1
fi
echo "-- fuzzing (the end of $fuzz_log):"
tail -n 25 "$fuzz_log"
echo "-- ThreadSanitizer with Archer (from $tsan_log):"
grep -E '^(ok|==)|tests passed' "$tsan_log"

step "Serial build (no OpenMP, Eigen fetched) gives the OpenMP build's bits"
bash tests/serial_bits.sh "$MIXTURA_BUILD_DIR/serial_bits"

step "Python package: pip install . into a fresh virtual environment (begun beside the C++ build)"
wait_bg "$pip_pid" "$pip_log" "pip install '.[test]'"
cat "$pip_log"
# The C++ side of the cross-language model-file tests (built above with the tests).
export MIXTURA_MODEL_TOOL="$PWD/$MIXTURA_BUILD_DIR/tests/cpp/model_tool"
levels=$("$venv/bin/python" -c 'import mixtura; b = mixtura.build_info(); print(b["isa"], *b["cpu_levels"])')
read -r top cpu_levels <<<"$levels"

# The aarch64 build and its tests under qemu-aarch64 run beside the Python steps as SCHED_IDLE, which
# yields a core at once (beside nice 19, pytest took nearly twice as long: bench/RESULTS.md): pytest
# keeps its cores and the cross compiler takes what is left. Packages first, so that no two apt-get
# runs meet (tests/isa_qemu.sh needs qemu-user too).
bash .ci/install-deps cmake make libeigen3-dev googletest g++-aarch64-linux-gnu qemu-user
aarch64_log="$MIXTURA_BUILD_DIR/aarch64.log"
idle=(chrt --idle 0)
"${idle[@]}" true 2>/dev/null || idle=(nice -n 19)  # where the scheduling class cannot be set
MIXTURA_BUILD_DIR_AARCH64="$MIXTURA_BUILD_DIR/aarch64" setsid "${idle[@]}" bash tests/cross_aarch64.sh --subset \
  >"$aarch64_log" 2>&1 &
aarch64_pid=$!
bg_pids+=("$aarch64_pid")

step "pytest, all tests, at this CPU's highest level ($top)"
# The notebooks run once, in the documentation step below (a failing cell fails the build there).
"$venv/bin/python" -m pytest -q tests/python --deselect tests/python/test_notebooks.py::test_notebook_runs

step "Documentation (sphinx -W) beside the package on other CPUs (qemu-x86_64 as Nehalem and Haswell)"
# Each is mostly one process (Sphinx and its notebook kernel; one emulated interpreter at a time):
# side by side on the two cores.
qemu_log="$MIXTURA_BUILD_DIR/isa_qemu.log"
bash tests/isa_qemu.sh "$venv/bin/python" "$MIXTURA_BUILD_DIR/tests/cpp/test_dispatched" >"$qemu_log" 2>&1 &
qemu_pid=$!
# "mixtura[docs]", not ".[docs]": the extra's packages beside the installed mixtura, without a rebuild.
if ! { "$venv/bin/python" -m pip install -q "mixtura[docs]" && PYTHON="$venv/bin/python" bash docs/build.sh; }; then
  kill "$qemu_pid" 2>/dev/null || true
  exit 1
fi
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
cat "$qemu_log"
[ "$qemu_rc" -eq 0 ] || { echo "tests/isa_qemu.sh failed (exit $qemu_rc): its log is above" >&2; exit 1; }

# Waited for before the lower levels' pytest: beside the emulated tests (even at SCHED_IDLE) the
# baseline run took 202 s instead of 33 (bench/RESULTS.md, CI wall time).
step "aarch64: cross-built with Debian's g++-aarch64-linux-gnu, a subset of the C++ tests under qemu-aarch64 (begun beside pytest)"
wait_bg "$aarch64_pid" "$aarch64_log" "tests/cross_aarch64.sh --subset"
grep -E '^(==|[0-9]+% tests passed)' "$aarch64_log"

# The other copies of the core that this CPU can run check the arithmetic, whose bits depend on the
# vector width: every test but those marked top_level_only (Python plumbing, argument errors, the CSV
# reader and command line, DLPack descriptors, notebooks, scikit-learn's own suites, fresh interpreters,
# Dask orchestration; each mark says why). An unmarked test runs at every level (tests/python/conftest.py).
# The others: pytest --collect-only -q -m top_level_only tests/python
for level in $cpu_levels; do
  [ "$level" = "$top" ] && continue
  step "pytest, all tests but those marked top_level_only, at MIXTURA_ISA=$level"
  MIXTURA_ISA=$level "$venv/bin/python" -m pytest -q -m "not top_level_only" tests/python
done
