"""The Evaluate tab's table (gain sign, worst-first order, row numbers), row lookup and export, on a real report
written by evaluation.report from stored rows, and the one way from an adapter name to its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.eval_rows import gain, read_report, row_prompt, table_rows, write_eval_export
from evaluation.cli import EvalError, adapter_dir
from evaluation.report import summarize, write_report


def side(answer: str, loss: float) -> dict:
    return {"thinking": "想", "answer": answer, "finish_reason": "stop", "thinking_closed": True,
            "reasoning_tokens": 1, "answer_tokens": len(answer), "loss": loss}  # fmt: skip


ROWS = [  # the adapter's answer equals the reference in row 1, is worse than the base's in row 2
    {"where": "row 3", "prompt": "你是谁？", "reference": "臣妾甄嬛", "base": side("我是助手", 3.0),
     "adapter": side("臣妾甄嬛", 1.0)},
    {"where": "row 9", "prompt": "皇上呢？", "reference": "皇上在养心殿", "base": side("皇上在养心殿", 2.0),
     "adapter": side("不知", 2.5)},
    {"where": "row 12", "prompt": "小主安好", "reference": "本宫安好", "base": side("好", 2.0),
     "adapter": side("本宫好", 1.5)},
]  # fmt: skip


@pytest.fixture
def report(tmp_path: Path) -> dict:
    meta = {"adapter": "huanhuan", "base_model": "tiny", "rows_planned": 3, "complete": True, "seed": 0,
            "sampling": "greedy", "dataset_sha256": "ab" * 32, "created": "now", "engine": "openai"}  # fmt: skip
    write_report(summarize(ROWS, meta, ["本宫", "臣妾"]), tmp_path / "eval")
    return read_report(tmp_path / "eval")


def test_gain_is_positive_when_the_adapter_did_better_also_for_the_loss(report: dict) -> None:
    first, second = report["rows"][:2]
    assert gain(first, "chrf") > 0 and gain(second, "chrf") < 0
    assert gain(first, "loss") == pytest.approx(2.0) and gain(second, "loss") == pytest.approx(-0.5)


def test_table_puts_the_worst_rows_first_and_keeps_held_out_numbers(report: dict) -> None:
    worst = table_rows(report["rows"], "chrf")
    assert worst[0][0] == 2 and worst[0][2] == "皇上呢？"
    assert [line[1] for line in worst] == sorted(line[1] for line in worst)
    assert [line[0] for line in table_rows(report["rows"], "loss", "best first")] == [1, 3, 2]
    assert [line[0] for line in table_rows(report["rows"], "chrf", "held-out order")] == [1, 2, 3]
    line = worst[0]
    assert line[3:6] == ["皇上在养心殿", "皇上在养心殿", "不知"]  # reference, left answer, right answer


def test_row_prompt_by_number_and_clear_messages(report: dict) -> None:
    assert row_prompt(report["rows"], 2) == "皇上呢？"
    with pytest.raises(ValueError, match="rows 1 to 3"):
        row_prompt(report["rows"], 7)
    with pytest.raises(ValueError, match="choose a row first"):
        row_prompt(report["rows"], None)


def test_export_writes_json_and_markdown_with_every_row(report: dict, tmp_path: Path) -> None:
    paths = write_eval_export(report, tmp_path / "out", "evaluation-test")
    document = json.loads(paths[0].read_text(encoding="utf-8"))
    assert [row["where"] for row in document["rows"]] == ["row 3", "row 9", "row 12"]
    text = paths[1].read_text(encoding="utf-8")
    assert "## Row 2 (row 9)" in text and "**Reference:** 皇上在养心殿" in text and "**Right** (chrF" in text


def test_adapter_dir_finds_a_name_in_the_folder_and_refuses_paths(tmp_path: Path) -> None:
    (tmp_path / "huanhuan").mkdir()
    (tmp_path / "huanhuan" / "adapter_config.json").write_text("{}")
    assert adapter_dir(tmp_path, "huanhuan") == tmp_path / "huanhuan"
    assert adapter_dir(tmp_path, "huanhuan@2") == tmp_path / "huanhuan"  # served again after a retrain
    for bad in ("../huanhuan", "/etc", "..", ""):
        with pytest.raises(EvalError, match="not an adapter name"):
            adapter_dir(tmp_path, bad)
    with pytest.raises(EvalError, match=r"adapter_config\.json missing"):
        adapter_dir(tmp_path, "other")
