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
    assert summary["against_base"] and len(summary["adapter_weights_sha256"]) == 64
    # A smaller run afterwards (the Evaluate tab's quick look) gets its own folder; the adapter's report stays.
    smaller = list(argv)
    smaller[argv.index("--limit") + 1] = "2"
    assert main(smaller) == 0
    assert json.loads((tmp_path / "huanhuan" / "eval" / "summary.json").read_text(encoding="utf-8")) == summary
    (side_report,) = (tmp_path / "huanhuan" / "eval" / "runs").glob("*/summary.json")
    assert json.loads(side_report.read_text(encoding="utf-8"))["rows_scored"] == 2


def test_stop_event_ends_a_batched_run_early_and_keeps_its_rows(trained_adapter_dir, tiny_model_dir, tmp_path) -> None:
    import threading

    from evaluation.cli import build_plan
    from evaluation.config import EvalArgs
    from evaluation.refloss import TransformersReferenceLoss
    from evaluation.run import evaluate
    from evaluation.store import RowStore
    from serving.local_engine import LocalEngine
    from training.heldout import read_heldout

    args = EvalArgs(limit=6, max_tokens=8, concurrency=4)  # 2 rows per batched generate
    plan = build_plan(args, read_heldout(trained_adapter_dir), tiny_model_dir, "huanhuan", batched=True)
    engine = LocalEngine(tiny_model_dir, adapters={"huanhuan": trained_adapter_dir})
    loss = TransformersReferenceLoss(tiny_model_dir, trained_adapter_dir, "huanhuan")
    stop, seen = threading.Event(), []

    def progress(phase: str, done: int, total: int) -> None:
        seen.append((phase, done, total))
        if done >= 2:
            stop.set()

    store = RowStore(tmp_path, "stop")
    rows, stats = evaluate(plan, engine, loss, store, progress=progress, stop=stop)
    assert stats.stopped and [row["where"] for row in rows] == [item.where for item in plan.items[:2]]
    assert all("loss" not in row["base"] for row in rows), "a stopped run asks no reference loss"
    assert seen[:3] == [("generate", 0, 6), ("generate", 1, 6), ("generate", 2, 6)]
    rows, stats = evaluate(plan, engine, loss, store)
    assert not stats.stopped and stats.rows_done_before == 2 and len(rows) == 6
    assert all("loss" in row[side] for row in rows for side in ("base", "adapter"))


def test_the_loss_on_a_local_engine_uses_its_model_and_matches_a_loaded_copy(
    trained_adapter_dir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    from evaluation.refloss import TransformersReferenceLoss
    from serving.local_engine import LocalEngine
    from serving.protocol import BASE_MODEL_ALIAS

    items = [([1, 2, 3, 4], [5, 6, 7]), ([8, 9], [10, 11, 12, 13])]
    copy = TransformersReferenceLoss(tiny_model_dir, trained_adapter_dir, "huanhuan")
    expected = {model: copy.losses(model, items) for model in (BASE_MODEL_ALIAS, "huanhuan")}
    engine = LocalEngine(tiny_model_dir, adapters={"huanhuan": trained_adapter_dir})
    try:
        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", _no_second_copy)
        shared = TransformersReferenceLoss.on_engine(engine, "huanhuan")
        got = {model: shared.losses(model, items) for model in (BASE_MODEL_ALIAS, "huanhuan")}
    finally:
        engine.close()
    assert got["huanhuan"] != pytest.approx(got[BASE_MODEL_ALIAS], abs=1e-3)  # the rows ran on different weights
    for model, losses in expected.items():
        assert losses == pytest.approx(got[model], abs=1e-3)


def _no_second_copy(*args, **kwargs):
    raise AssertionError("the loss on a LocalEngine loaded a second copy of the model")
