"""A real LoRA run (transformers Trainer + peft) on the tiny Qwen3 over a fixed 64-row subset of huanhuan.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.adapters import validate_adapter
from tests.support.training_test_helpers import quick_args
from training.config import args_from_dict
from training.train import RunResult, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir: Path, subset_path: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    work = tmp_path_factory.mktemp("lora-run")
    return run(quick_args(tiny_model_dir, subset_path, work))


def test_eval_loss_goes_down(lora_run: RunResult) -> None:
    evals = lora_run.metrics["eval_loss"]
    assert evals[0]["step"] == 0 and len(evals) >= 2
    assert lora_run.metrics["best_eval_loss"] < evals[0]["eval_loss"] - 0.5


def test_base_weights_unchanged_and_lora_weights_changed(lora_run: RunResult, tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    trained = lora_run.trainer.model.state_dict()
    compared = 0
    for name, value in trained.items():
        if "lora_" in name:
            continue
        key = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(value, base[key]), f"base weight {key} changed"
        compared += 1
    assert compared >= len(base) - 1  # every base weight (the tied lm_head may appear once)
    lora_b = [value for name, value in trained.items() if "lora_B" in name]
    assert lora_b and all(value.abs().sum() > 0 for value in lora_b)  # B starts at zero; training moved every one


def test_export_folder_layout(lora_run: RunResult, tiny_model_dir: Path) -> None:
    from PIL import Image

    export = Path(lora_run.trainer.args.output_dir).parent / "adapters" / "huanhuan"
    names = sorted(p.name for p in export.iterdir())
    for expected in ("adapter_config.json", "adapter_model.safetensors", "loss_curve.png", "metrics.json"):
        assert expected in names
    assert "train_config.yaml" in names
    config = json.loads((export / "adapter_config.json").read_text(encoding="utf-8"))
    assert validate_adapter(export, base_model_path=tiny_model_dir, max_rank=8) == []
    assert config["r"] == 8 and config["lora_alpha"] == 32 and config["bias"] == "none"
    metrics = json.loads((export / "metrics.json").read_text(encoding="utf-8"))
    for key in ("train_loss", "eval_loss", "train_runtime_s", "train_samples_per_second", "train_tokens_per_second"):
        assert metrics[key], key
    assert Image.open(export / "loss_curve.png").size[0] > 100
    import yaml

    resolved = args_from_dict(yaml.safe_load((export / "train_config.yaml").read_text(encoding="utf-8")))
    assert resolved.max_steps == 8 and resolved.export_dir == str(export)
    assert not [p for p in export.parent.iterdir() if p.name.startswith(".")]


def test_simulated_oom_keeps_the_last_good_checkpoint(tiny_model_dir: Path, subset_path: Path, tmp_path: Path) -> None:
    import torch
    from transformers import TrainerCallback

    from training.train import OutOfMemory

    class OutOfMemoryAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    args = quick_args(tiny_model_dir, subset_path, tmp_path, max_steps=6, save_steps=2, eval_ratio=0.0)
    with pytest.raises(OutOfMemory) as error:
        run(args, extra_callbacks=[OutOfMemoryAtStep3()])
    message = str(error.value)
    assert "checkpoint-2" in message and "--per_device_train_batch_size" in message and "rerun" in message
    assert (Path(args.output_dir) / "checkpoint-2" / "COMPLETE").is_file()
    assert not Path(args.export_dir).exists()


def test_full_finetune_mode_runs(tiny_model_dir: Path, subset_path: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    args = quick_args(tiny_model_dir, subset_path, tmp_path, finetune_type="full", max_steps=2, learning_rate=1e-3,
                      eval_steps=2, save_steps=2, export_dir=str(tmp_path / "full-model"))  # fmt: skip
    result = run(args)
    export = Path(args.export_dir)
    for expected in ("config.json", "model.safetensors", "tokenizer.json", "metrics.json", "loss_curve.png"):
        assert (export / expected).is_file(), expected
    assert not (export / "adapter_config.json").exists()
    trained = load_file(str(export / "model.safetensors"))
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    name = "model.layers.0.mlp.down_proj.weight"
    assert not torch.allclose(trained[name].float(), base[name].float())
    assert result.metrics["global_step"] == 2
