"""scripts/gpu_check.sh: its CPU-safe parts run here (the GPU figures come from a borrowed GPU machine)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

no_gpu = pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/gpu_check.sh", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.slow  # runs the GPU check as a subprocess
@no_gpu
def test_without_a_gpu_it_prints_the_probe_and_says_so(huanhuan_path: Path) -> None:
    done = gpu_check("--dataset", str(huanhuan_path))
    assert done.returncode == 1
    assert "| CUDA usable" in done.stdout and "no: no NVIDIA GPU found" in done.stdout
    assert "no usable GPU: nothing else to check here" in done.stdout


@pytest.mark.slow
def test_the_cpu_smoke_runs_every_part_and_prints_one_table(huanhuan_path: Path) -> None:
    done = gpu_check("--cpu-smoke", "--dataset", str(huanhuan_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = dict(re.findall(r"^\| (.+?)\s+\| (.+) \|$", done.stdout, re.MULTILINE))
    for row in ("GPU", "driver", "torch / CUDA", "model", "Start's memory check", "training", "peak GPU memory",
                "real tokens/s", "3 epochs of huanhuan", "turn, one batched generate", "turn, one after the other",
                "ceiling: plain batched generate", "ceiling: plain generate x 2"):  # fmt: skip
        assert row in table, f"missing row {row!r} in:\n{done.stdout}"
    assert float(table["real tokens/s"].split()[0].replace(",", "")) > 0
    for way in ("turn, one batched generate", "turn, one after the other"):
        assert float(table[way].split()[0]) > 0
        assert re.search(r", \d+% of its ceiling$", table[way]), table[way]
