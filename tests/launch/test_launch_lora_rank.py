"""`./launch.sh` hands the vLLM server's effective --max-lora-rank to the app, whose Train tab then refuses a
LoRA rank the server could never load (instead of training it fully first); `--max-lora-rank N` raises it.

    .venv/bin/python -m pytest tests/launch/test_launch_lora_rank.py
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from common.net import free_port
from serving.adapters import VLLM_RANKS
from tests.support.paths import REPO_ROOT
from tests.support.signals import default_sigint


@pytest.mark.parametrize("rank", ["12", "", "16x", "-8", "8 16"])
def test_a_max_lora_rank_vllm_refuses_stops_before_doing_anything(tmp_path: Path, rank: str) -> None:
    result = subprocess.run(["./launch.sh", "--max-lora-rank", rank, "--home", str(tmp_path)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    allowed = ", ".join(map(str, VLLM_RANKS))  # serving.adapters' list: the values vLLM accepts
    assert result.returncode == 2 and f"--max-lora-rank must be one of vLLM's ranks {allowed}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def make_rank_16_adapter(model_dir: Path, folder: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from common.qwen3 import QWEN3_LORA_TARGETS

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=16, lora_alpha=32, target_modules=list(QWEN3_LORA_TARGETS), task_type="CAUSAL_LM")
    get_peft_model(base, config).save_pretrained(folder)


def app_command_line(command: list[str], log: Path, timeout_s: float = 600) -> str:
    """Run launch.sh until the app is up; its command line, then Ctrl-C."""
    with log.open("w") as out:
        launch = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, preexec_fn=default_sigint)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while "==> ready in" not in log.read_text() and time.monotonic() < deadline:
            assert launch.poll() is None, log.read_text()[-4000:]
            time.sleep(1)
        children = psutil.Process(launch.pid).children(recursive=True)
        apps = [" ".join(p.cmdline()) for p in children if "-m app" in " ".join(p.cmdline())]
        assert apps, log.read_text()[-4000:]
        return apps[0]
    finally:
        launch.send_signal(signal.SIGINT)
        launch.wait(timeout=90)


@pytest.mark.slow
@pytest.mark.vllm
def test_the_app_gets_the_servers_max_lora_rank(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A rank-16 adapter in the folder: the server allows 16, and so does the app's Train tab (not "unchecked")."""
    adapters = tmp_path / "adapters"
    make_rank_16_adapter(tiny_model_dir, adapters / "wide")
    command = ["./launch.sh", "--no-install", "--no-train", "--model", str(tiny_model_dir), "--adapter", "wide",
               "--adapters-dir", str(adapters), "--home", str(tmp_path), "--port", str(free_port())]  # fmt: skip
    app = app_command_line(command, tmp_path / "launch.log")
    assert "--max-lora-rank 16" in app, app
