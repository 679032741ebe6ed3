"""Kill -9 a real `python -m training` after a checkpoint, then rerun: it resumes from the last complete one.

Also: an incomplete checkpoint (as a kill during a save leaves it) is skipped with a message, and rerunning
with a different LoRA config is refused with a clear message.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def command(model: Path, data: Path, work: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "training", "--config", str(REPO_ROOT / "configs" / "lora_tiny.yaml"),
        "--model_name_or_path", str(model), "--dataset_path", str(data),
        "--output_dir", str(work / "run"), "--export_dir", str(work / "adapters" / "huanhuan"),
        "--max_answer_chars", "0", "--max_steps", "10", "--save_steps", "2", "--eval_ratio", "0",
        "--save_total_limit", "3", "--logging_steps", "1", *extra,
    ]  # fmt: skip


def run_until_first_complete_checkpoint(cmd: list[str], run_dir: Path, timeout_s: float = 300) -> None:
    process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while not list(run_dir.glob("checkpoint-*/COMPLETE")):
            assert process.poll() is None, "training ended before it saved a checkpoint"
            assert time.monotonic() < deadline, "no complete checkpoint in time"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()


def test_kill_then_resume_from_last_complete_checkpoint(tiny_model_dir: Path, subset_path: Path, tmp_path: Path):
    cmd = command(tiny_model_dir, subset_path, tmp_path)
    run_dir = tmp_path / "run"
    run_until_first_complete_checkpoint(cmd, run_dir)
    complete = sorted(int(p.parent.name.split("-")[1]) for p in run_dir.glob("checkpoint-*/COMPLETE"))
    assert complete and complete[-1] < 10
    last = complete[-1]
    assert not (tmp_path / "adapters" / "huanhuan").exists()

    refused = subprocess.run([*cmd, "--lora_r", "4"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "refusing to resume" in refused.stderr and "r: checkpoint has 8, config asks for 4" in refused.stderr

    half = run_dir / "checkpoint-9"  # what a kill during a save leaves: files, no COMPLETE marker
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes(b"partial")
    resumed = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "skipping incomplete checkpoint checkpoint-9" in resumed.stdout
    assert f"resuming from the last complete checkpoint: {run_dir / f'checkpoint-{last}'}" in resumed.stdout
    assert "done: lora on" in resumed.stdout
    metrics = json.loads((tmp_path / "adapters" / "huanhuan" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["global_step"] == 10
    logged_steps = [entry["step"] for entry in metrics["train_loss"]]
    assert logged_steps[-1] == 10 and min(logged_steps) <= last  # history from before the kill was restored
