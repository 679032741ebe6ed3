#!/usr/bin/env bash
# Stop with one line when the Python that would build .venv is one the pinned vLLM has no wheels for (3.11 to 3.14,
# pyproject.toml's requires-python).
#
#   bash scripts/python_check.sh python3
set -euo pipefail
PYTHON=${1:?usage: bash scripts/python_check.sh PYTHON}
if ! command -v "$PYTHON" > /dev/null; then
  echo "error: $PYTHON not found; install Python 3.11 to 3.14, or name it with PYTHON=..." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 14))'; then
  echo "error: this project needs Python 3.11 to 3.14 (the pinned vLLM has wheels for those); $PYTHON is" \
    "$("$PYTHON" --version 2>&1). Install python3.11 (up to 3.14) and run again with PYTHON=python3.11" >&2
  exit 1
fi
