"""Training on the machine it has: precision 'auto' from the GPU's real abilities, no 4B training on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import devices
from training import train
from training.config import TrainArgs

CUDA13 = devices.TorchFacts("2.13.0", "13.0", ("sm_75", "sm_80", "sm_90"), True)


def on(gpu: devices.Gpu | None) -> devices.MachineFacts:
    return devices.MachineFacts(gpus=(gpu,) if gpu else (), torch=CUDA13, nvidia_smi_error="nvidia-smi not found")


@pytest.mark.parametrize(
    ("gpu", "precision", "said"),
    [
        (devices.Gpu("NVIDIA A100", "580.82.07", (8, 0), 80.0), "bf16", "has native bf16"),
        (devices.Gpu("Tesla T4", "580.82.07", (7, 5), 15.0), "fp16", "only emulates bf16: fp16 with loss scaling"),
        (None, "fp32", "no usable GPU"),
    ],
)
def test_auto_precision_says_what_it_chose_and_why(gpu, precision: str, said: str, monkeypatch, capsys) -> None:
    monkeypatch.setattr(devices, "probe", lambda: on(gpu))
    assert train.choose_precision(TrainArgs()) == precision
    printed = capsys.readouterr().out
    assert f"precision auto -> {precision}: " in printed and said in printed


def test_a_multi_gb_model_is_not_trained_on_a_cpu(tmp_path: Path, monkeypatch, capsys) -> None:
    model = tmp_path / "Qwen3-4B-Thinking-2507"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    with (model / "model.safetensors").open("wb") as weights:
        weights.truncate(8 * 10**9)  # sparse: 8 GB on paper, nothing on disk
    monkeypatch.setattr(train, "cuda_usable", lambda: False)
    code = train.main(["--model_name_or_path", str(model), "--output_dir", str(tmp_path / "run")])
    assert code == 1
    error = capsys.readouterr().err
    assert "8.0 GB of weights and there is no usable GPU" in error and "--allow_cpu_training true" in error
    assert not (tmp_path / "run").exists(), "nothing is started"
