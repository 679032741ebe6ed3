#!/usr/bin/env bash
# Make sure the tests can read huanhuan.json. They look in $HUANHUAN_DATASET, Datasets/huanhuan.json, then
# ../shared/datasets/huanhuan.json (tests/support/paths.py, `dataset_path`); in a fresh clone with none of these,
# the file is fetched into Datasets/ the way launch.sh does it (`python -m training.fetch_dataset`, from
# $HUANHUAN_SOURCE when set, else the public GitHub source). If that fails, one line says where to put it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if found=$($PY -c 'from tests.support.paths import dataset_path; print(dataset_path())' 2>/dev/null); then
  echo "==> dataset for the tests: $found"
  exit 0
fi
echo "==> huanhuan.json not found for the tests: fetching it into Datasets/ (python -m training.fetch_dataset)"
source_args=()
[ -n "${HUANHUAN_SOURCE:-}" ] && source_args=(--source "$HUANHUAN_SOURCE")
log=$(mktemp)
if ! $PY -m training.fetch_dataset "${source_args[@]}" --out Datasets/huanhuan.json > "$log" 2>&1; then
  reason=$(grep -v '^\s*$' "$log" | tail -n 1)
  rm -f "$log"
  echo "test.sh: the tests need huanhuan.json and it could not be fetched (${reason:-no reason given}); put it at" \
    "Datasets/huanhuan.json or set HUANHUAN_DATASET=/path/to/huanhuan.json (see Datasets/README.md)" >&2
  exit 1
fi
rm -f "$log"
echo "==> dataset for the tests: Datasets/huanhuan.json (fetched)"
