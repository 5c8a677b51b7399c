#!/usr/bin/env bash
# Installs what is missing, builds the K-means sensor example and runs it on the bundled NAB
# machine-temperature series (or on the CSV file given as argument).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
source .ci/env.sh
cmake -S . -B "$MIXTURA_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMIXTURA_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$MIXTURA_BUILD_DIR" -j "$MIXTURA_JOBS" --target kmeans_sensor >/dev/null
exec "$MIXTURA_BUILD_DIR/examples/kmeans_sensor" "$@"
