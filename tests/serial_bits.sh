#!/usr/bin/env bash
# Two builds of tests/serial_bits (K-means and GMM fits, scores, as hex floats), compared byte for
# byte: (1) OpenMP and the installed Eigen; (2) OpenMP hidden from CMake (the serial fallback) and
# Eigen through FetchContent, from a tarball of the installed Eigen headers with its SHA-256. The
# serial build is then installed and examples/consumer built against it, with Eigen still hidden.
# Usage: tests/serial_bits.sh [build-dir]  (CXXFLAGS from the environment reach both builds.)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/serial_bits}
jobs=${MIXTURA_JOBS:-$(nproc)}
eigen_inc=${EIGEN_INCLUDE_DIR:-/usr/include/eigen3}
rm -rf "$out" && mkdir -p "$out"

# A release-style archive (eigen-X/Eigen/...) of the installed headers, to fetch through a file:// URL.
mkdir -p "$out/eigen-src/eigen-local"
cp -r "$eigen_inc/Eigen" "$out/eigen-src/eigen-local/"
tar -C "$out/eigen-src" -czf "$out/eigen-local.tar.gz" eigen-local
sha=$(sha256sum "$out/eigen-local.tar.gz" | cut -d' ' -f1)

build() {  # build <dir> <cmake args...>
  local dir=$1; shift
  cmake -S tests/serial_bits -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" -j "$jobs" >/dev/null
}

echo "== OpenMP build (installed Eigen)"
build "$out/omp" -DMIXTURA_REQUIRE_OPENMP=ON
echo "== serial fallback build (OpenMP hidden, Eigen fetched from $out/eigen-local.tar.gz)"
build "$out/serial" -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON \
  -DMIXTURA_EIGEN_URL="file://$PWD/$out/eigen-local.tar.gz" -DMIXTURA_EIGEN_SHA256="$sha" \
  -DCMAKE_INSTALL_PREFIX="$PWD/$out/serial-install"
grep -q "building serial data passes" "$out/serial.configure.log" || { echo "no serial-fallback warning"; exit 1; }
grep -q "fetched into" "$out/serial.configure.log" || { echo "Eigen was not fetched"; exit 1; }

"$out/omp/serial_bits" >"$out/omp.txt" 2>"$out/omp.err"
"$out/serial/serial_bits" >"$out/serial.txt" 2>"$out/serial.err"
grep -q "built_with_openmp=1" "$out/omp.err" && grep -q "built_with_openmp=0" "$out/serial.err" ||
  { cat "$out/omp.err" "$out/serial.err"; echo "the two builds do not differ in OpenMP"; exit 1; }
if ! cmp -s "$out/omp.txt" "$out/serial.txt"; then
  diff "$out/omp.txt" "$out/serial.txt" | head -20
  echo "FAIL: the serial build's fits differ from the OpenMP build's"; exit 1
fi
echo "same bits: $(wc -l <"$out/omp.txt") lines ($(grep -c '^kmeans\|^gmm' "$out/omp.txt") fits, 1 and 3 threads)"

echo "== install the serial build (fetched Eigen included), build examples/consumer against it"
cmake --install "$out/serial" >/dev/null
cmake --no-warn-unused-cli -S examples/consumer -B "$out/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON \
  -DCMAKE_PREFIX_PATH="$PWD/$out/serial-install" >/dev/null
cmake --build "$out/consumer" -j "$jobs" >/dev/null
"$out/consumer/consumer" >/dev/null && echo "consumer ok"
