"""Kill -9 a real `python -m training` in the middle of a checkpoint save, then rerun: the half-written
checkpoint is skipped with a message and training resumes from the previous complete one; rerunning with a
different LoRA config is refused with a clear message.
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

from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.slow
HANG_IN_SAVE = Path(__file__).with_name("hang_in_save.py")


def command(model: Path, data: Path, work: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "training", "--config", str(REPO_ROOT / "configs" / "lora_tiny.yaml"),
        "--model_name_or_path", str(model), "--dataset_path", str(data),
        "--output_dir", str(work / "run"), "--export_dir", str(work / "adapters" / "huanhuan"),
        "--max_answer_chars", "0", "--max_steps", "10", "--save_steps", "2", "--eval_ratio", "0",
        "--save_total_limit", "3", "--logging_steps", "1", *extra,
    ]  # fmt: skip


def kill_during_second_save(cmd: list[str], flag: Path, timeout_s: float = 300) -> Path:
    """Run training with the 2nd checkpoint save stopping half-way (see hang_in_save.py), SIGKILL it there."""
    wrapped = [sys.executable, str(HANG_IN_SAVE), str(flag), "2", *cmd[3:]]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(wrapped, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while not flag.is_file():
            assert process.poll() is None, "training ended before its second checkpoint save"
            assert time.monotonic() < deadline, "the second checkpoint save did not start in time"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        process.kill()
        process.wait()
    return Path(flag.read_text(encoding="utf-8"))


def test_kill_9_during_a_checkpoint_save_then_rerun_resumes_from_the_previous_complete_one(
    tiny_model_dir: Path, subset_path: Path, tmp_path: Path
) -> None:
    cmd = command(tiny_model_dir, subset_path, tmp_path)
    run_dir = tmp_path / "run"
    interrupted = kill_during_second_save(cmd, tmp_path / "saving")
    assert interrupted == run_dir / "checkpoint-4"
    assert (interrupted / "adapter_model.safetensors").is_file() and not (interrupted / "COMPLETE").exists()
    assert not (interrupted / "trainer_state.json").exists()
    assert (run_dir / "checkpoint-2" / "COMPLETE").is_file()
    assert not (tmp_path / "adapters" / "huanhuan").exists(), "nothing is exported from a killed run"

    resumed = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "skipping incomplete checkpoint checkpoint-4" in resumed.stdout
    assert f"resuming from the last complete checkpoint: {run_dir / 'checkpoint-2'}" in resumed.stdout
    assert "done: lora on" in resumed.stdout
    metrics = json.loads((tmp_path / "adapters" / "huanhuan" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["global_step"] == 10
    logged_steps = [entry["step"] for entry in metrics["train_loss"]]
    assert logged_steps[-1] == 10 and min(logged_steps) <= 2  # history from before the kill was restored
    session_tokens = metrics["train_tokens_per_second"] * metrics["train_runtime_s"]
    assert 0 < session_tokens < 0.99 * metrics["tokens_seen"]  # steps 3-10 in this session's runtime, not 1-10

    refused = subprocess.run([*cmd, "--lora_r", "4"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert refused.returncode == 1
    assert "refusing to resume" in refused.stderr and "r: checkpoint has 8, config asks for 4" in refused.stderr
