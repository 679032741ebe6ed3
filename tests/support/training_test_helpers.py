"""Helpers of the training tests: quick TrainArgs on the tiny Qwen3 (a few steps in seconds on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import TrainArgs

CUDA_TORCH_FACTS = {"version": "2.11.0", "cuda_build": "13.0", "arch_list": ("sm_80", "sm_90"), "cuda_available": True}


def simulate_gpu(monkeypatch: pytest.MonkeyPatch, free_gib: float | None, total_gib: float = 24.0) -> None:
    """What nvidia-smi and torch would say on a machine with one GPU of `total_gib`, `free_gib` free (None: a
    CPU machine). Opening a CUDA context to ask (torch.cuda.mem_get_info) fails the test."""
    import torch

    import common.devices
    from common.devices import Gpu, TorchFacts

    gpus = () if free_gib is None else (Gpu("NVIDIA L4", "580.82.07", (8, 9), total_gib, free_gib),)
    monkeypatch.setattr(common.devices, "query_gpus", lambda: (gpus, "" if gpus else "nvidia-smi not found"))
    monkeypatch.setattr(common.devices, "torch_facts", lambda: TorchFacts(**CUDA_TORCH_FACTS))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: pytest.fail("opened a CUDA context to read memory"))


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
