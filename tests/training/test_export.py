"""Export: NaN/Inf weights are refused, an interrupted export leaves no half adapter, vLLM's rules are applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.adapters import validate_adapter
from training.export import ExportError, export_atomically

CONFIG = {"r": 8, "lora_alpha": 32, "target_modules": ["q_proj"], "bias": "none", "use_dora": False}


def write_adapter(folder: Path, value: float = 0.5, config: dict | None = None) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {"base_model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.full((8, 16), value)}
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(config or CONFIG), encoding="utf-8")


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_export_is_written_then_renamed(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "huanhuan"
    export_atomically(target, write_adapter, "lora")
    assert sorted(p.name for p in target.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert leftovers(target.parent) == []


def test_nan_weights_refuse_export_and_keep_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "huanhuan"
    export_atomically(target, write_adapter, "lora")
    before = (target / "adapter_model.safetensors").read_bytes()
    with pytest.raises(ExportError, match="NaN/Inf"):
        export_atomically(target, lambda folder: write_adapter(folder, float("nan")), "lora")
    assert (target / "adapter_model.safetensors").read_bytes() == before
    assert leftovers(target.parent) == []


def test_interrupted_export_leaves_no_half_adapter(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "huanhuan"

    def write_then_die(folder: Path) -> None:
        write_adapter(folder)
        raise KeyboardInterrupt  # e.g. Ctrl-C while metrics/plots are written

    with pytest.raises(KeyboardInterrupt):
        export_atomically(target, write_then_die, "lora")
    assert not target.exists()
    assert leftovers(target.parent) == []


def test_stale_staging_from_a_killed_export_is_cleaned(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "huanhuan"
    stale = tmp_path / "adapters" / ".huanhuan.staging-killed"
    stale.mkdir(parents=True)
    (stale / "adapter_config.json").write_text("{", encoding="utf-8")
    export_atomically(target, write_adapter, "lora")
    assert not stale.exists() and (target / "adapter_model.safetensors").is_file()


def test_an_export_in_progress_elsewhere_keeps_its_staging_folder(tmp_path: Path) -> None:
    import os
    import subprocess

    target = tmp_path / "adapters" / "huanhuan"
    ended = subprocess.Popen(["true"])
    ended.wait()
    live = tmp_path / "adapters" / f".huanhuan.staging-{os.getpid()}-abc"  # e.g. the app installing a job
    dead = tmp_path / "adapters" / f".huanhuan.staging-{ended.pid}-def"  # a killed export's leftovers
    for folder in (live, dead):
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{", encoding="utf-8")
    export_atomically(target, write_adapter, "lora")
    assert live.is_dir() and not dead.exists()


def test_export_applies_the_serving_layers_adapter_rules(tmp_path: Path) -> None:
    good = export_atomically(tmp_path / "a" / "good", write_adapter, "lora")
    assert validate_adapter(good, max_rank=8) == []
    bad = {**CONFIG, "modules_to_save": ["lm_head"], "use_dora": True, "bias": "all"}
    with pytest.raises(ExportError, match="refused by vLLM") as refused:
        export_atomically(tmp_path / "a" / "x", lambda folder: write_adapter(folder, config=bad), "lora")
    for word in ("modules_to_save", "DoRA", "bias"):
        assert word in str(refused.value)
    assert not (tmp_path / "a" / "x").exists()


def test_export_refuses_pickled_weights_beside_the_adapter(tmp_path: Path) -> None:
    def write_with_pickle(folder: Path) -> None:
        write_adapter(folder)
        (folder / "adapter_model.bin").write_bytes(b"pickle")

    with pytest.raises(ExportError, match="pickled weights are refused"):
        export_atomically(tmp_path / "a" / "x", write_with_pickle, "lora")
