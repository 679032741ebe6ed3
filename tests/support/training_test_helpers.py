"""Helpers of the training tests: quick TrainArgs on the tiny Qwen3 (a few steps in seconds on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

from training.config import TrainArgs


def quick_args(model_dir: Path, dataset: Path, work: Path, **overrides) -> TrainArgs:
    values = dict(
        model_name_or_path=str(model_dir),
        dataset_path=str(dataset),
        output_dir=str(work / "run"),
        export_dir=str(work / "adapters" / "huanhuan"),
        max_length=128,
        eval_ratio=0.25,
        learning_rate=5e-3,
        lr_scheduler_type="constant",
        lora_dropout=0.0,
        max_steps=8,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        gradient_accumulation_steps=1,
        precision="fp32",
        gradient_checkpointing=False,
        eval_steps=4,
        save_steps=4,
        save_total_limit=2,
        logging_steps=2,
    )
    values.update(overrides)
    args = TrainArgs(**values)
    args.validate()
    return args
