"""Training under `accelerate launch` (DDP, 2 processes on the CPU with gloo) needs no code change.

`accelerate launch --cpu` alone would need MPI for several processes; `--multi_gpu` starts them through
torch.distributed, which uses gloo where there is no GPU.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from serving.adapters import validate_adapter
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_two_process_ddp_training_exports_one_adapter(
    tiny_model_dir: Path, huanhuan_path: Path, tmp_path: Path
) -> None:
    accelerate = REPO_ROOT / ".venv" / "bin" / "accelerate"
    export = tmp_path / "adapters" / "huanhuan"
    command = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "training", "--config", "configs/lora_tiny.yaml", "--model_name_or_path", str(tiny_model_dir),
        "--dataset_path", str(huanhuan_path), "--output_dir", str(tmp_path / "run"), "--export_dir", str(export),
        "--max_samples", "96", "--max_steps", "4", "--eval_steps", "4", "--save_steps", "4",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=840)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert log.count("[training] done:") == 1, "only rank 0 exports and reports"
    metrics = json.loads((export / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["world_size"] == 2
    assert validate_adapter(export, base_model_path=tiny_model_dir, max_rank=8) == []
    checkpoint = tmp_path / "run" / "checkpoint-4"
    assert (checkpoint / "COMPLETE").is_file()
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
