#!/usr/bin/env bash
# The installed Python package on other CPUs: tests/isa_smoke.py natively at every level this CPU
# supports (MIXTURA_ISA=<level>), then under qemu-user as an x86-64-v2 CPU without AVX (Nehalem)
# and an AVX2 one without AVX-512 (Haswell), each checked for the level it chose and against the
# native run of that level: bit for bit on Nehalem; within tests/isa_smoke.py's tolerances on Haswell,
# where qemu's AVX2/FMA emulation rounds a few results of the same avx2 binary differently from this
# CPU (scores 3e-14 apart, while the baseline copy under the same emulation matches bit for bit).
# With the C++ test program of the dispatched passes (tests/cpp/test_dispatched), the same two CPUs run
# its level choice and a subset of its fits against the header's CPU passes (bit for bit at baseline).
#   bash tests/isa_qemu.sh PYTHON [TEST_DISPATCHED]   (PYTHON: of a virtual environment where mixtura is installed)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:?usage: tests/isa_qemu.sh PYTHON [TEST_DISPATCHED]}
cpp_test=${2:-}
if [ "$(uname -m)" != x86_64 ]; then
  echo "isa_qemu: not an x86-64 machine; nothing to do"
  exit 0
fi
command -v qemu-x86_64 >/dev/null 2>&1 || bash .ci/install-deps qemu-user
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
smoke=tests/isa_smoke.py
levels=$("$py" -c 'import mixtura; print(" ".join(mixtura.build_info()["cpu_levels"]))')
echo "== ISA smoke: native levels: $levels"
for level in $levels; do
  MIXTURA_ISA=$level "$py" "$smoke" --expect-isa "$level" --out "$tmp/native-$level.json"
done
# (cpu model, level it must choose, native run to compare with: the same level when this CPU has it)
runs=("Nehalem baseline --exact" "Haswell avx2")
for run in "${runs[@]}"; do
  read -r cpu level exact <<<"$run"
  ref=$tmp/native-$level.json
  [ -f "$ref" ] || { ref=$tmp/native-baseline.json; exact=""; }
  echo "== ISA smoke under qemu-x86_64 -cpu $cpu (expects $level)"
  # OpenBLAS (numpy's, scipy's) gets the emulated CPU's kernels: an OPENBLAS_CORETYPE set for this
  # machine (e.g. Haswell) would run AVX2 code on the emulated Nehalem.
  OPENBLAS_CORETYPE=$cpu OMP_NUM_THREADS=2 timeout 900 qemu-x86_64 -cpu "$cpu" "$py" "$smoke" \
    --expect-isa "$level" --compare "$ref" $exact
done
if [ -n "$cpp_test" ]; then
  # The level it must choose (MIXTURA_EXPECT_ISA, checked by the test), float K-means at every level
  # the emulated CPU runs, double Gaussian mixtures with gaps, and the refusals.
  filter='Dispatched.*:Dispatched/0.KMeansFollowsTheHeaderCpuBackend:Dispatched/1.GaussianMixtureTakesRowsWithGaps'
  for run in "${runs[@]}"; do
    read -r cpu level _ <<<"$run"
    echo "== C++ dispatched passes under qemu-x86_64 -cpu $cpu (expects $level)"
    MIXTURA_EXPECT_ISA=$level OMP_NUM_THREADS=2 timeout 900 qemu-x86_64 -cpu "$cpu" "$cpp_test" \
      --gtest_filter="$filter" --gtest_brief=1
  done
fi
echo "ISA smoke: native and qemu runs agree"
