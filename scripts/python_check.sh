#!/usr/bin/env bash
# Stop with one line when the Python that would build .venv is older than the pinned vLLM needs (3.11).
#
#   bash scripts/python_check.sh python3
set -euo pipefail
PYTHON=${1:?usage: bash scripts/python_check.sh PYTHON}
if ! command -v "$PYTHON" > /dev/null; then
  echo "error: $PYTHON not found; install Python 3.11 or newer, or name it with PYTHON=..." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: this project needs Python 3.11 or newer (the pinned vLLM does); $PYTHON is" \
    "$("$PYTHON" --version 2>&1). Install python3.11 (or newer) and run again with PYTHON=python3.11" >&2
  exit 1
fi
