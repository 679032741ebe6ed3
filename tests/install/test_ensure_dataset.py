"""scripts/ensure_dataset.sh (run by scripts/test.sh): a fresh clone without the dataset fetches it or says where.

The script runs in a copy of the project in a temporary folder, where no ../shared/ exists, with the source
pointed at a local file (never the network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    for part in ("scripts", "training", "common"):
        shutil.copytree(REPO_ROOT / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    (clone / "tests" / "support").mkdir(parents=True)
    for module in ("__init__.py", "support/__init__.py", "support/paths.py"):
        shutil.copy(REPO_ROOT / "tests" / module, clone / "tests" / module)
    (clone / ".venv").symlink_to(REPO_ROOT / ".venv")
    return clone


def run(clone: Path, source: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "HUANHUAN_DATASET"}
    return subprocess.run(["bash", "scripts/ensure_dataset.sh"], cwd=clone, env={**env, "HUANHUAN_SOURCE": source},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_fresh_clone_fetches_the_dataset_into_datasets(fresh_clone: Path, huanhuan_path: Path) -> None:
    done = run(fresh_clone, str(huanhuan_path))
    assert done.returncode == 0, done.stderr
    assert (fresh_clone / "Datasets" / "huanhuan.json").read_bytes() == huanhuan_path.read_bytes()
    again = run(fresh_clone, "/nonexistent")
    assert again.returncode == 0 and "Datasets/huanhuan.json" in again.stdout, "found, so not fetched again"


def test_a_dataset_that_cannot_be_fetched_stops_with_one_line_saying_where_to_put_it(fresh_clone: Path) -> None:
    done = run(fresh_clone, "/nonexistent/huanhuan.json")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "No such file or directory" in lines[0] and "put it at Datasets/huanhuan.json" in lines[0]
    assert not (fresh_clone / "Datasets" / "huanhuan.json").exists()
