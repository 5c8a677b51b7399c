#!/usr/bin/env bash
# Builds the libFuzzer target for the model-file reader and loaders (tests/fuzz/fuzz_model_file.cpp)
# with clang++ -fsanitize=fuzzer,address,undefined and runs it for a bounded time from the seed
# corpus in tests/fuzz/corpus (valid files of every kind, which tests/fuzz/make_corpus.py writes, and
# past crashes without the .mxt suffix, which the Python fuzz test's seeds leave out).
#
#   tests/fuzz.sh [SECONDS]    default 60 (or MIXTURA_FUZZ_SECONDS)
#
# Needs clang++ and libFuzzer (Debian: clang, libclang-rt-dev; `bash .ci/install-deps clang
# libclang-rt-dev`) and Eigen. New inputs go to a scratch corpus in the build folder, never into the
# repository. A crash leaves its input in $dir/artifacts/ and fails the script: replay it with
# `$dir/fuzz_model_file FILE`, then turn it into a test in tests/cpp/test_model_io.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/env.sh
seconds=${1:-${MIXTURA_FUZZ_SECONDS:-60}}
dir=${MIXTURA_FUZZ_BUILD_DIR:-$MIXTURA_BUILD_DIR/fuzz}
cxx=${MIXTURA_FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (install clang and libclang-rt-dev)" >&2; exit 1; }
eigen=$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)
mkdir -p "$dir/artifacts" "$dir/corpus"
# No OpenMP: the passes run serially (the same code), and libFuzzer needs no threads.
# shellcheck disable=SC2086
"$cxx" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Iinclude $eigen tests/fuzz/fuzz_model_file.cpp -o "$dir/fuzz_model_file"
# -rss_limit_mb: an allocation the size of a hostile shape would show as an out-of-memory crash.
"$dir/fuzz_model_file" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$dir/artifacts/" -print_final_stats=1 "$dir/corpus" tests/fuzz/corpus
