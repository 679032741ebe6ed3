"""Fixtures of the training tests: a fixed 64-row subset of the real huanhuan.json and quick TrainArgs.

The subset is the first 64 rows of the real dataset (never copied into the repo; written to a tmp dir).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SUBSET_ROWS = 64


@pytest.fixture(scope="session")
def subset_path(huanhuan_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = json.loads(huanhuan_path.read_text(encoding="utf-8"))[:SUBSET_ROWS]
    path = tmp_path_factory.mktemp("data") / "huanhuan-64.json"
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)
