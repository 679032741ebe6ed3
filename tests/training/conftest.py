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


FIXED_THINKING = "嗯，皇上在问我话，我要端庄得体地回答。"


@pytest.fixture(scope="session")
def thinker_adapter_dir(tiny_model_dir: Path, huanhuan_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LoRA that thinks before it answers, for distillation tests (the tiny base never closes its thinking).

    Trained by the real `python -m training` (configs/lora_tiny.yaml) on the real rows whose answers are written
    as `FIXED_THINKING</think>answer`: the chat template renders that as `<think>\\n{FIXED_THINKING}\\n</think>\\n\\n`
    + answer, and the default mode trains on all of it, so the adapter learns to write a short thinking and close it.
    """
    import subprocess
    import sys

    work = tmp_path_factory.mktemp("thinker-adapter")
    rows = json.loads(huanhuan_path.read_text(encoding="utf-8"))
    for row in rows:
        row["output"] = f"{FIXED_THINKING}</think>{row['output']}"
    data = work / "huanhuan-with-thinking.json"
    data.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    export_dir = work / "adapters" / "thinker"
    from tests.support.paths import REPO_ROOT as repo

    command = [
        sys.executable, "-m", "training", "--config", str(repo / "configs" / "lora_tiny.yaml"),
        "--model_name_or_path", str(tiny_model_dir), "--dataset_path", str(data),
        "--max_answer_chars", str(len(FIXED_THINKING) + len("</think>") + 12),
        "--output_dir", str(work / "run"), "--export_dir", str(export_dir),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=repo)
    return export_dir
