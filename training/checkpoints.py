"""Resumable runs: mark complete checkpoints, find the last complete one, refuse a changed base model or LoRA config.

The Trainer writes `checkpoint-N/` file by file; a kill in the middle leaves a folder that looks like a
checkpoint but is not. After the Trainer has written everything (weights, optimizer, scheduler, RNG and
trainer_state.json) our callback adds `checkpoint-N/COMPLETE` (written atomically). On restart only
folders with that marker are resume candidates; the others are reported and removed.

The run folder also holds `run_fingerprint.json`: the base model's identity (config hash + weight file
sizes), the method (full or LoRA with r/alpha/dropout/targets, and distilled thinking when used), the dataset's
hash and the recipe (RECIPE_KEYS: system prompt, lengths, which rows are used, learning rate, batch, seed, ...;
with distilled thinking also DISTILL_RECIPE_KEYS: the thinker, its sampling and its budget). Resuming with a
different one is refused; raising num_train_epochs or max_steps to train on is a resume. A run folder written
before a key was recorded resumes whatever that key's value is now, except one written before the held-out
split was recorded (HELDOUT_SPLIT): it held out other rows, and is refused when rows are held out.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from common.atomic_files import write_json_atomic
from common.file_hash import file_sha256
from training.config import TrainArgs
from training.distributed import is_main_process

COMPLETE_MARKER = "COMPLETE"
FINGERPRINT_FILE = "run_fingerprint.json"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


# What the checkpoints learned from besides the data and the method: a run resumed with another value would mix
# two recipes, or train on another set of examples. Left out on purpose: the length of the run (num_train_epochs,
# max_steps: raising it to train on is a resume), logging, evaluation and saving cadence, and memory knobs that do
# not change the result.
RECIPE_KEYS = ("system_prompt", "max_length", "max_answer_chars", "eval_ratio", "max_samples", "train_on_thinking",
               "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_ratio",
               "lr_scheduler_type", "weight_decay", "max_grad_norm", "precision", "seed")  # fmt: skip
# With distilled thinking, what decides each row's thinking and which rows keep one (training.distill): the
# thinker (distill_prompt is in the method's thinking label), its sampling and the thinking budget. Where the
# thinking comes from (engine, server URL, cache folder) is left out: the same thinker behind another port (launch.sh
# picks a free one each time) is the same thinker.
DISTILL_RECIPE_KEYS = ("distill_model", "distill_adapter", "distill_max_thinking_tokens", "distill_temperature",
                       "distill_top_p", "distill_top_k")  # fmt: skip


# How rows are held out (training.heldout.heldout_draw). Run folders of older versions record none: they held
# out other rows, so resuming one would train on rows now held out (and evaluate on rows it trained on).
HELDOUT_SPLIT = "content-draw"


class ResumeRefused(RuntimeError):
    """The run folder holds checkpoints of a different base model or LoRA config."""


def model_identity(model_dir: str | Path) -> dict[str, Any]:
    """What identifies a base model without hashing gigabytes: its config.json hash and weight file sizes."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    config_hash = hashlib.sha256(config_path.read_bytes()).hexdigest() if config_path.is_file() else None
    weights = sorted(
        (item.name, item.stat().st_size) for item in model_dir.iterdir() if item.name.endswith(WEIGHT_SUFFIXES)
    ) if model_dir.is_dir() else []  # fmt: skip
    return {"config_sha256": config_hash, "weight_files": [list(item) for item in weights]}


def run_fingerprint(args: TrainArgs) -> dict[str, Any]:
    method: dict[str, Any] = {"finetune_type": args.finetune_type}
    if args.finetune_type == "lora":
        method.update(
            r=args.lora_r,
            alpha=args.lora_alpha,
            dropout=args.lora_dropout,
            target_modules=sorted(args.lora_target_modules),
        )
    if args.thinking != "empty":  # other training data; absent for the default, so older run folders still resume
        method["thinking"] = args.thinking_label()
    dataset = Path(args.dataset_path)
    data = {"dataset_sha256": file_sha256(dataset)} if dataset.is_file() else {}
    keys = RECIPE_KEYS + (DISTILL_RECIPE_KEYS if args.thinking == "distill" else ())
    recipe = {key: getattr(args, key) for key in keys}
    return {"base_model": model_identity(args.model_name_or_path), "method": method, "data": data, "recipe": recipe,
            "split": HELDOUT_SPLIT}  # fmt: skip


def checkpoint_step(path: Path) -> int | None:
    match = CHECKPOINT_PATTERN.match(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file() and (path / "trainer_state.json").is_file()


def mark_complete(checkpoint_dir: Path, fingerprint: dict[str, Any]) -> None:
    write_json_atomic(checkpoint_dir / COMPLETE_MARKER, {"fingerprint": fingerprint})


def scan_checkpoints(output_dir: Path) -> tuple[list[Path], list[Path]]:
    """(complete checkpoints sorted by step, incomplete ones)."""
    found = sorted(
        ((step, path) for path in output_dir.glob("checkpoint-*") if (step := checkpoint_step(path)) is not None),
    )
    complete = [path for _, path in found if is_complete(path)]
    incomplete = [path for _, path in found if not is_complete(path)]
    return complete, incomplete


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    diffs = []
    if saved.get("base_model") != current.get("base_model"):
        diffs.append("base model (config.json or weight files differ)")
    if "data" in saved and saved["data"] != current.get("data"):  # older run folders recorded no data
        diffs.append("dataset: the checkpoints were trained on another dataset file (its SHA-256 differs)")
    if saved.get("split") != current.get("split") and current.get("recipe", {}).get("eval_ratio", 0) > 0:
        diffs.append("held-out split: the checkpoints were trained by an older version, which held out other rows")
    saved_recipe, current_recipe = saved.get("recipe"), current.get("recipe", {})
    for key in sorted(current_recipe) if saved_recipe is not None else ():  # older run folders recorded none
        if key in saved_recipe and saved_recipe[key] != current_recipe[key]:
            diffs.append(f"{key}: checkpoint has {saved_recipe[key]!r}, config asks for {current_recipe[key]!r}")
    saved_method, current_method = saved.get("method", {}), current.get("method", {})
    for key in sorted(set(saved_method) | set(current_method)):
        if saved_method.get(key) != current_method.get(key):
            diffs.append(
                f"{key}: checkpoint has {saved_method.get(key)!r}, config asks for {current_method.get(key)!r}"
            )
    return diffs


def prepare_resume(args: TrainArgs, log=print) -> Path | None:
    """Return the checkpoint to resume from (or None), after checking the run folder belongs to this config."""
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    current = run_fingerprint(args)
    complete, incomplete = scan_checkpoints(output_dir)
    main = is_main_process()  # under DDP only rank 0 changes the run folder
    for path in incomplete:
        log(f"skipping incomplete checkpoint {path.name} (interrupted while saving); removing it")
        if main:
            shutil.rmtree(path, ignore_errors=True)
    fingerprint_path = output_dir / FINGERPRINT_FILE
    if complete and args.resume:
        saved = json.loads(fingerprint_path.read_text(encoding="utf-8")) if fingerprint_path.is_file() else {}
        diffs = _differences(saved, current)
        if diffs:
            raise ResumeRefused(
                f"refusing to resume from {output_dir}: its checkpoints were trained with a different setup:\n  "
                + "\n  ".join(diffs)
                + "\nuse a new --output_dir (or delete this one) to start a fresh run, or restore the original config"
            )
        log(f"resuming from the last complete checkpoint: {complete[-1]}")
        return complete[-1]
    if complete and not args.resume:
        log(f"--resume false: starting over in {output_dir}; removing {len(complete)} old checkpoint(s)")
        for path in complete if main else ():
            shutil.rmtree(path, ignore_errors=True)
    if main:
        write_json_atomic(fingerprint_path, current)
    return None


def completion_callback(fingerprint: dict[str, Any]):
    """A TrainerCallback that marks each checkpoint complete once the Trainer has finished writing it."""
    from transformers import TrainerCallback

    class MarkCompleteCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            checkpoint_dir = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint_dir.is_dir() and state.is_world_process_zero:
                mark_complete(checkpoint_dir, fingerprint)
            return control

    return MarkCompleteCallback()
