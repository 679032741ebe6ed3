"""training.memory_plan on simulated GPUs (no GPU needed): a 4B LoRA beside vLLM is refused or fits depending
on `--gpu-memory-utilization`, the refusal carries the numbers, and `python -m training`'s check does nothing
on a CPU and refuses before loading the model on a GPU that is too full.

    .venv/bin/python -m pytest tests/training/test_memory_plan.py
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.training_test_helpers import simulate_gpu
from training.config import TrainArgs
from training.memory_plan import (
    GIB,
    ModelShape,
    activation_bytes_per_token,
    fit_batch,
    plan_training_memory,
    reserved_beside_vllm,
)

QWEN3_4B = {  # Qwen/Qwen3-4B-Thinking-2507 config.json (the sizes the plan reads)
    "hidden_size": 2560, "num_hidden_layers": 36, "intermediate_size": 9728, "vocab_size": 151936,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": True,
}  # fmt: skip
QWEN3_0_6B = {**QWEN3_4B, "hidden_size": 1024, "num_hidden_layers": 28, "intermediate_size": 3072,
              "num_attention_heads": 16}  # fmt: skip


def model_dir(tmp_path: Path, config: dict, name: str = "Qwen3-4B-Thinking-2507") -> str:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def lora_4b(tmp_path: Path, **overrides) -> TrainArgs:
    settings = {"per_device_train_batch_size": 1, "max_length": 1024, "gradient_checkpointing": True, **overrides}
    return TrainArgs(model_name_or_path=model_dir(tmp_path, QWEN3_4B), **settings)


def test_the_parameter_count_is_qwen3_4bs() -> None:
    assert ModelShape.from_config(QWEN3_4B).parameters == pytest.approx(4.02e9, rel=0.01)


def test_a_4b_lora_beside_vllm_at_0_9_is_refused_with_the_numbers(tmp_path: Path) -> None:
    verdict = plan_training_memory(lora_4b(tmp_path), 24.0, reserved_beside_vllm(24.0, 0.9))
    assert not verdict.fits
    assert verdict.available_gib == pytest.approx(2.4)
    assert "only 2.4 GiB of the 24.0 GiB GPU is free (21.6 GiB is held" in verdict.message
    need = float(re.search(r"needs about ([\d.]+) GiB", verdict.message)[1])
    assert need == pytest.approx(verdict.need_gib, abs=0.05) and 9.0 < need < 14.0
    assert "weights 7.5" in verdict.message and "--gpu-memory-utilization" in verdict.message


def test_the_same_run_fits_beside_vllm_at_0_5(tmp_path: Path) -> None:
    verdict = plan_training_memory(lora_4b(tmp_path), 24.0, reserved_beside_vllm(24.0, 0.5))
    assert verdict.fits and verdict.need_gib <= verdict.available_gib == 12.0
    assert "it fits" in verdict.message


def test_batch_length_and_checkpointing_move_the_estimate(tmp_path: Path) -> None:
    base = plan_training_memory(lora_4b(tmp_path), 80.0, 0.0).need_gib
    assert plan_training_memory(lora_4b(tmp_path, per_device_train_batch_size=8), 80.0, 0.0).need_gib > base + 10
    assert plan_training_memory(lora_4b(tmp_path, gradient_checkpointing=False), 80.0, 0.0).need_gib > base + 2
    assert plan_training_memory(lora_4b(tmp_path), 80.0, 0.0, row_tokens=200, answer_tokens=80).need_gib < base - 1


# Peaks measured on one H100 80GB (2026-11-27, bench/README.md "GPU check"): Qwen3-4B's shape, the recipe's LoRA
# (r=8, dropout 0.1, all seven linears), huanhuan.json's longest row (253 tokens) in the first batch, one fresh
# process per setting: torch.cuda.max_memory_reserved() in GiB.
H100_PEAKS = [  # (batch, gradient checkpointing, reserved peak GiB)
    (4, False, 18.07), (8, False, 28.37), (16, False, 48.06), (16, True, 11.35),
]  # fmt: skip
LONGEST_ROW, LONGEST_ANSWER = 253, 160  # tokens, huanhuan.json with the real chat template


@pytest.mark.parametrize(("batch", "checkpointing", "measured_gib"), H100_PEAKS)
def test_the_plan_covers_the_peaks_measured_on_an_h100_without_crying_wolf(
    tmp_path: Path, batch: int, checkpointing: bool, measured_gib: float
) -> None:
    args = lora_4b(tmp_path, per_device_train_batch_size=batch, gradient_checkpointing=checkpointing,
                   lora_dropout=0.1)  # fmt: skip
    need = plan_training_memory(args, 80.0, 0.0, LONGEST_ROW, LONGEST_ANSWER).need_gib
    assert measured_gib < need < 1.45 * measured_gib


@pytest.mark.parametrize(
    ("batch", "steps", "free_gib", "chosen"),
    [(8, 2, 60.0, (8, 2)), (8, 2, 12.0, (4, 4)), (8, 2, 10.5, (2, 8)), (6, 2, 10.5, (1, 12)), (8, 1, 10.9, (2, 4))],
)
def test_fit_batch_halves_the_batch_and_keeps_the_effective_batch_until_the_plan_fits(
    tmp_path: Path, batch: int, steps: int, free_gib: float, chosen: tuple[int, int]
) -> None:
    args = lora_4b(tmp_path, per_device_train_batch_size=batch, gradient_accumulation_steps=steps)
    fitted, verdict = fit_batch(args, 80.0, 80.0 - free_gib, LONGEST_ROW, LONGEST_ANSWER)
    assert (fitted.per_device_train_batch_size, fitted.gradient_accumulation_steps) == chosen
    assert verdict.fits and verdict == plan_training_memory(fitted, 80.0, 80.0 - free_gib, LONGEST_ROW, LONGEST_ANSWER)
    assert fitted.per_device_train_batch_size * fitted.gradient_accumulation_steps >= batch * steps
    assert replace(fitted, per_device_train_batch_size=batch, gradient_accumulation_steps=steps) == args


def test_fit_batch_gives_batch_1s_verdict_when_nothing_fits(tmp_path: Path) -> None:
    args = lora_4b(tmp_path, per_device_train_batch_size=8, gradient_accumulation_steps=2)
    fitted, verdict = fit_batch(args, 24.0, 20.0, LONGEST_ROW, LONGEST_ANSWER)
    assert (fitted.per_device_train_batch_size, fitted.gradient_accumulation_steps) == (1, 16)
    assert not verdict.fits and "batch 1 x 253 tokens" in verdict.message
    assert verdict.shortfall_gib == pytest.approx(verdict.need_gib - 4.0)


def test_lora_dropout_costs_a_copy_of_every_targets_input(tmp_path: Path) -> None:
    shape = ModelShape.from_config(QWEN3_4B)
    with_dropout = activation_bytes_per_token(shape, lora_4b(tmp_path, lora_dropout=0.1))
    without = activation_bytes_per_token(shape, lora_4b(tmp_path, lora_dropout=0.0))
    inputs = 5 * 2560 + 4096 + 9728  # q, k, v, gate, up read the hidden state; o the attention; down the MLP
    assert with_dropout - without == 3 * inputs
    assert with_dropout == 258_048  # the 4B layer's kept bytes per token that match the H100 peaks above


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp32"])
def test_a_full_fine_tune_keeps_fp32_weights_gradients_and_moments_of_every_weight(
    tmp_path: Path, precision: str
) -> None:
    args = TrainArgs(model_name_or_path=model_dir(tmp_path, QWEN3_0_6B, "Qwen3-0.6B"), finetune_type="full",
                     per_device_train_batch_size=1, max_length=512, precision=precision)  # fmt: skip
    verdict = plan_training_memory(args, 24.0, 0.0)
    params = ModelShape.from_config(QWEN3_0_6B).parameters
    # training.train.load_model loads a full fine-tune in fp32 whatever the precision (bf16 only autocasts)
    assert verdict.parts["weights"] == pytest.approx(params * 4 / GIB)
    assert verdict.parts["trainable + optimizer"] == pytest.approx(params * 12 / GIB)  # fp32 gradient + 2 moments
    assert verdict.parts["trainable + optimizer"] > 3 * plan_training_memory(lora_4b(tmp_path), 24.0, 0.0).parts[
        "trainable + optimizer"]  # fmt: skip


def test_the_plan_loads_full_fine_tunes_in_the_dtype_training_loads(tmp_path: Path, monkeypatch) -> None:
    import torch
    import transformers

    from training import train

    loaded: dict[str, torch.dtype] = {}

    def record_dtype(path, dtype):
        loaded["dtype"] = dtype
        return SimpleNamespace(config=SimpleNamespace())  # stands in for the model: only the dtype matters here

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", record_dtype)
    args = TrainArgs(model_name_or_path=model_dir(tmp_path, QWEN3_0_6B, "Qwen3-0.6B"), finetune_type="full")
    train.load_model(args, "bf16")
    bytes_per_weight = torch.empty(0, dtype=loaded["dtype"]).element_size()
    params = ModelShape.from_config(QWEN3_0_6B).parameters
    verdict = plan_training_memory(replace(args, precision="bf16"), 24.0, 0.0)
    assert verdict.parts["weights"] == pytest.approx(params * bytes_per_weight / GIB)


def test_a_model_without_config_is_let_through_and_says_so(tmp_path: Path) -> None:
    verdict = plan_training_memory(TrainArgs(model_name_or_path=str(tmp_path / "nothing")), 24.0, 20.0)
    assert verdict.fits and "not estimated" in verdict.message


class Data:
    def __init__(self) -> None:
        self.train = [{"input_ids": list(range(300)), "labels": [-100] * 200 + list(range(100))}]


def test_python_m_training_checks_only_on_a_gpu_and_refuses_a_full_one(tmp_path: Path, monkeypatch) -> None:
    from training import train

    args = lora_4b(tmp_path, per_device_train_batch_size=2)
    simulate_gpu(monkeypatch, None)
    assert train.check_gpu_memory(args, Data()) is args  # a CPU: nothing to plan
    simulate_gpu(monkeypatch, 2.4, 24.0)  # vLLM holds 0.9
    with pytest.raises(train.GpuMemoryRefused, match=r"only 2\.4 GiB of the 24\.0 GiB GPU is free"):
        train.check_gpu_memory(args, Data())
    simulate_gpu(monkeypatch, 12.0, 24.0)  # vLLM holds 0.5
    train.check_gpu_memory(args, Data())  # the measured rows (300 tokens, 100 answer) fit


def test_checkpointing_is_turned_off_only_when_asked_and_the_run_fits_without_it(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from training import train

    on_request = lora_4b(tmp_path, per_device_train_batch_size=8, checkpoint_only_if_needed=True)
    simulate_gpu(monkeypatch, 78.0, 80.0)  # an idle H100
    faster = train.check_gpu_memory(on_request, Data())
    assert faster.gradient_checkpointing is False and on_request.gradient_checkpointing is True
    assert (
        "it fits without gradient checkpointing, so it is off (--checkpoint_only_if_needed)" in capsys.readouterr().out
    )
    assert train.check_gpu_memory(lora_4b(tmp_path, per_device_train_batch_size=8), Data()).gradient_checkpointing
    simulate_gpu(monkeypatch, 22.0, 24.0)  # a 24 GiB card
    assert train.check_gpu_memory(on_request, Data()).gradient_checkpointing  # too big without it: kept on
    simulate_gpu(monkeypatch, None)
    assert train.check_gpu_memory(on_request, Data()) is on_request  # a CPU: nothing planned, nothing changed
