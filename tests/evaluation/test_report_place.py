"""evaluation.report_place: a run that says less about the adapter than its report keeps that report."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.report_place import RUNS_DIR, replaces, report_dir


def summary(rows: int, weights: str = "w1", against_base: bool = True, created: str = "2026-11-27 21:59:00"):
    return {"rows_scored": rows, "adapter_weights_sha256": weights, "against_base": against_base, "created": created}


def test_which_run_replaces_the_adapters_report() -> None:
    full = summary(200)
    assert replaces(summary(8), None)  # nothing there yet
    assert not replaces(summary(8), full)  # the tab's quick run after the full one
    assert replaces(summary(200), full) and replaces(summary(201), full)
    assert replaces(summary(8, weights="w2"), full)  # the report there is about older weights
    assert not replaces(summary(300, against_base=False), None)  # against another model: never the headline
    assert replaces(summary(8), summary(300, against_base=False))
    assert replaces(summary(8), {"rows_scored": 200})  # a report written before these fields: older weights


def test_a_smaller_run_lands_in_its_own_folder_and_the_report_stays(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    assert report_dir(eval_dir, summary(8)) == eval_dir
    eval_dir.mkdir()
    (eval_dir / "summary.json").write_text(json.dumps(summary(200)))
    first = report_dir(eval_dir, summary(8))
    assert first == eval_dir / RUNS_DIR / "20261127-215900"
    first.mkdir(parents=True)
    assert report_dir(eval_dir, summary(8)) == eval_dir / RUNS_DIR / "20261127-215900-2"  # never over another run
    (eval_dir / "summary.json").write_text("{cut")
    assert report_dir(eval_dir, summary(8)) == eval_dir  # an unreadable report is replaced


def test_a_run_on_weights_a_server_kept_from_before_a_retrain_leaves_the_report_on_the_folders_weights() -> None:
    """The command evaluated the retrained folder (w2); the app still served the old weights (w1) and its tab ran 8
    rows on them: the report on w2 stays, the tab's run goes beside it."""
    on_w2 = summary(200, weights="w2")
    assert not replaces(summary(8, weights="w1"), on_w2, on_disk_sha256="w2")
    assert replaces(summary(8, weights="w2"), summary(200, weights="w1"), on_disk_sha256="w2"), "w1 is older"
    assert replaces(summary(8, weights="w3"), on_w2, on_disk_sha256="w3"), "retrained again: the new weights win"
    assert replaces(summary(8, weights="w1"), on_w2), "weights on disk unknown: the newest run replaces"
