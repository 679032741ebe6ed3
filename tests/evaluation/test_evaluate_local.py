"""`python -m evaluation --engine local`: LocalEngine (batched generate) and the transformers reference loss.

.venv/bin/python -m pytest tests/evaluation/test_evaluate_local.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evaluation.cli import main

pytestmark = pytest.mark.slow


def test_local_engine_evaluation(trained_adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(trained_adapter_dir, tmp_path / "huanhuan")
    argv = ["--adapter", "huanhuan", "--adapters-dir", str(tmp_path), "--engine", "local", "--model",
            str(tiny_model_dir), "--limit", "6", "--max-tokens", "12", "--concurrency", "8",
            "--markers", "本宫,皇上"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((tmp_path / "huanhuan" / "eval" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows_scored"] == 6 and summary["engine"] == "local" and summary["markers"] == ["本宫", "皇上"]
    assert summary["metrics"]["loss"]["adapter"] < summary["metrics"]["loss"]["base"]
    rows = json.loads((tmp_path / "huanhuan" / "eval" / "rows.json").read_text(encoding="utf-8"))
    assert all(row["base"]["finish_reason"] in ("stop", "length") for row in rows)
    assert all(row["adapter"]["reasoning_tokens"] + row["adapter"]["answer_tokens"] <= 12 for row in rows)
