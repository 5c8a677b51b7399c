#!/usr/bin/env bash
# Builds the documentation site into $MIXTURA_BUILD_DIR/docs/html (default build/docs/html) with
# `python -m sphinx -W`: any warning fails the build, and the notebooks run during it (a failing cell
# fails it too). Each build starts clean, so that every page is read and every warning shown.
#
# PYTHON=/path/to/python: an interpreter that has mixtura and the docs extra (`pip install '.[docs]'`)
# installed; tests/run_all.sh passes its virtual environment's. Without it, like examples/run_demo.sh:
# installs what is missing, then `pip install '.[docs]'` into $MIXTURA_BUILD_DIR/docs-venv (a few
# minutes the first time: it builds the package).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/env.sh
out="$MIXTURA_BUILD_DIR/docs"
if [ -z "${PYTHON:-}" ]; then
  bash .ci/install-deps
  venv="$MIXTURA_BUILD_DIR/docs-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  echo "building and installing the mixtura Python package with the docs extra..." >&2
  "$venv/bin/python" -m pip install -q ".[docs]"
  PYTHON="$venv/bin/python"
fi
# docs/generated holds autosummary's pages of the Python API, written anew by every build.
rm -rf "$out/html" "$out/doctrees" docs/generated
"$PYTHON" -m sphinx -W --keep-going -b html -d "$out/doctrees" docs "$out/html"
echo "the site: $out/html/index.html" >&2
