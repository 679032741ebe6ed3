"""The Evaluate tab's table and export, from an evaluation report folder (`evaluation.report`). No Gradio here.

    report = read_report(folder)                    # {"summary": ..., "rows": [...]} from summary.json + rows.json
    table = table_rows(report["rows"], "chrf")      # worst rows for the adapter first (its gain on chrF, ascending)
    paths = write_eval_export(report, out_dir, stem)  # JSON (everything) + Markdown (summary + rows), as the chat's

The gain of a row is the paired difference (adapter - base) turned so that positive means "the adapter did
better" (for the reference loss, lower is better, so the gain is base - adapter). A row without a reference
loss (evaluation.report: it failed or was not scored yet) has no gain on it: it shows blank and sorts last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.export import export_stem
from evaluation.report import METRICS

GAIN_METRICS = {"chrf": "chrF", "rouge_l": "ROUGE-L", "loss": "reference loss", "has_marker": "persona marker"}
ORDERS = ("worst first", "best first", "held-out order")
TABLE_HEADERS = ["#", "gain", "prompt", "reference", "left answer", "right answer", "left chrF", "right chrF",
                 "left loss", "right loss", "left thinking", "right thinking"]  # fmt: skip


def read_report(folder: Path) -> dict[str, Any]:
    """summary.json and rows.json of a report folder."""
    folder = Path(folder)
    return {
        "summary": json.loads((folder / "summary.json").read_text(encoding="utf-8")),
        "rows": json.loads((folder / "rows.json").read_text(encoding="utf-8")),
    }


def gain(row: dict[str, Any], metric: str) -> float | None:
    """adapter - base on `metric`, positive when the adapter did better; None when a side has no value."""
    base, adapter = row["base"]["scores"].get(metric), row["adapter"]["scores"].get(metric)
    if base is None or adapter is None:
        return None
    difference = float(adapter) - float(base)
    return difference if METRICS[metric][1] is not False else -difference


def table_rows(rows: list[dict[str, Any]], metric: str = "chrf", order: str = ORDERS[0]) -> list[list[Any]]:
    """One table line per row (numbered in held-out order from 1), sorted by the gain on `metric` (rows
    without one last, in held-out order)."""
    numbered = list(enumerate(rows, start=1))
    if order != "held-out order":
        with_gain = [pair for pair in numbered if gain(pair[1], metric) is not None]
        with_gain.sort(key=lambda pair: gain(pair[1], metric), reverse=order == "best first")
        numbered = with_gain + [pair for pair in numbered if gain(pair[1], metric) is None]
    return [_line(number, row, metric) for number, row in numbered]


def _line(number: int, row: dict[str, Any], metric: str) -> list[Any]:
    base, adapter = row["base"]["scores"], row["adapter"]["scores"]
    return [number, _rounded(gain(row, metric), 4), row["prompt"], row["reference"], _answer(row["base"]),
            _answer(row["adapter"]), round(base["chrf"], 2), round(adapter["chrf"], 2), _rounded(base["loss"], 3),
            _rounded(adapter["loss"], 3), base["thinking"], adapter["thinking"]]  # fmt: skip


def _rounded(value: float | None, digits: int) -> float | str:
    return "" if value is None else round(value, digits)


def _answer(reply: dict[str, Any]) -> str:
    return reply["answer"] if reply["answer"] else "(no answer: " + str(reply["scores"]["thinking"]) + ")"


def row_prompt(rows: list[dict[str, Any]], number: Any) -> str:
    """The prompt of row `number` (as the table numbers them); ValueError with a clear message otherwise."""
    try:
        index = int(number)
    except (TypeError, ValueError):
        raise ValueError("choose a row first: type its # from the table") from None
    if not 1 <= index <= len(rows):
        raise ValueError(f"there is no row #{index}; the table has rows 1 to {len(rows)}")
    return str(rows[index - 1]["prompt"])


def to_markdown(report: dict[str, Any]) -> str:
    """The summary, then every row: prompt, reference, each side's answer and scores."""
    summary = report["summary"]
    lines = [f"# Evaluation of `{summary['adapter']}` against `{summary['base_model']}`", "",
             summary.get("headline", ""), ""]  # fmt: skip
    for number, row in enumerate(report["rows"], start=1):
        lines += [f"## Row {number} ({row['where']})", "", f"**Prompt:** {row['prompt']}", "",
                  f"**Reference:** {row['reference']}", ""]  # fmt: skip
        for side, name in (("base", "Left"), ("adapter", "Right")):
            scores = row[side]["scores"]
            loss = "none" if scores["loss"] is None else f"{scores['loss']:.3f}"
            lines += [f"**{name}** (chrF {scores['chrf']:.2f}, loss {loss}, thinking {scores['thinking']}): "
                      f"{_answer(row[side])}", ""]  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"


def write_eval_export(report: dict[str, Any], out_dir: Path, stem: str | None = None) -> list[Path]:
    """`evaluation-<time>-<id>.json` (summary and every row) and `.md` (readable) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or export_stem("evaluation")
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    paths[0].write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    paths[1].write_text(to_markdown(report), encoding="utf-8")
    return paths
