#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): probe, LoRA training at the Qwen3-4B shape, one side-by-side turn through
# LocalEngine; one table. At most 8 minutes on one H100, no network needed.
#
#   bash scripts/gpu_check.sh --dataset PATH/huanhuan.json            # on a GPU machine
#   bash scripts/gpu_check.sh --cpu-smoke --dataset PATH/huanhuan.json  # the same code paths, tiny shape, CPU
#
# A machine without a package registry gets what it lacks as wheels in .whl/ (git-ignored; bench/README.md
# lists them); they are installed first, without touching the network.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps .whl/*.whl
fi
exec timeout 480 "$PY" -m bench.gpu_check "$@"
