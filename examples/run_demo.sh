#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing (compiler, CMake, Eigen, Python's venv),
# builds and installs the mixtura Python package into a virtual environment ($MIXTURA_BUILD_DIR/demo-venv),
# then runs `mixtura detect` on the bundled NAB machine-temperature series, or with the arguments
# given (e.g. `bash examples/run_demo.sh data.csv --window 24 --out results`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
source .ci/env.sh
venv="$MIXTURA_BUILD_DIR/demo-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
echo "building and installing the mixtura Python package (a few minutes the first time)..." >&2
"$venv/bin/python" -m pip install -q ".[cli]"   # the plot needs matplotlib (the cli extra)
exec "$venv/bin/mixtura" detect "$@"
