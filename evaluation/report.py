"""The lasting report in `<adapter>/eval/`: rows.json (every row and score), summary.json, summary.md, chart.png.

`summarize(rows, meta, markers)` scores each stored row (evaluation.scores) and aggregates base vs adapter:
paired difference with a bootstrap 95% interval per metric, thinking-health rates, the thinking-length
distribution and finish reasons. The reference loss is aggregated over the rows that have one (its `n`); with
none, the report has no loss metric and no perplexity. `headline(adapter_dir)` is the one line the adapters
table shows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic_files import write_text_atomic
from evaluation.refloss import perplexity
from evaluation.scores import THINKING_CLASSES, Reply, reply_scores
from evaluation.stats import SIGN_TEST_LEVEL, paired_bootstrap, sign_test_p

EVAL_DIR = "eval"
SIDES = ("base", "adapter")
# metric -> (label, higher is better, shown as a percentage)
METRICS = {
    "loss": ("reference loss", False, False),
    "chrf": ("chrF (characters)", True, False),
    "rouge_l": ("ROUGE-L (characters)", True, False),
    "has_marker": ("persona-marker rate", True, True),
    "thinking_closed": ("thinking closed", True, True),
    "answered": ("answered", True, True),
    "answer_chars": ("answer length (chars)", None, False),
}


def score_row(row: dict[str, Any], markers: Sequence[str]) -> dict[str, Any]:
    """The stored row with `scores` added to each side."""
    out = dict(row)
    for side in SIDES:
        reply = row[side]
        fields = {key: reply[key] for key in ("thinking", "answer", "finish_reason", "thinking_closed")}
        tokens = {key: reply.get(key, 0) for key in ("reasoning_tokens", "answer_tokens")}
        scores = reply_scores(Reply(**fields, **tokens), row["reference"], markers)
        scores["loss"] = reply.get("loss")  # None: the reference loss failed or was not asked yet
        scores["perplexity"] = None if scores["loss"] is None else perplexity(scores["loss"])
        out[side] = {**reply, "scores": scores}
    return out


def _distribution(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
    out = {name: float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) for name, q in pick.items()}
    return {"min": float(ordered[0]), **out, "max": float(ordered[-1]), "mean": sum(ordered) / len(ordered)}


def summarize(rows: list[dict[str, Any]], meta: dict[str, Any], markers: Sequence[str]) -> dict[str, Any]:
    scored = [score_row(row, markers) for row in rows]
    if not scored:
        raise ValueError("no evaluated rows to summarize")

    def column(side: str, key: str) -> list[float]:
        return [float(row[side]["scores"][key]) for row in scored]

    metrics = {}
    for key, (label, higher, percent) in METRICS.items():
        base, adapter = _present_pairs(scored, key)
        if not base:
            continue  # no row has a reference loss
        paired = paired_bootstrap(base, adapter, seed=meta.get("seed") or 0)
        metrics[key] = {**paired.to_dict(), "label": label, "higher_is_better": higher, "percent": percent,
                        "significant": paired.significant}  # fmt: skip
        if percent:  # a 0/1 score: the exact sign test must agree (evaluation.stats)
            metrics[key]["sign_test_p"] = sign_test_p(base, adapter)
            metrics[key]["significant"] = paired.significant and metrics[key]["sign_test_p"] < SIGN_TEST_LEVEL
    summary = {**meta, "rows_scored": len(scored), "markers": list(markers), "metrics": metrics}
    if "loss" in metrics:
        summary["perplexity"] = {side: perplexity(metrics["loss"][side]) for side in SIDES}
    summary["thinking"] = {side: _rates([row[side]["scores"]["thinking"] for row in scored]) for side in SIDES}
    summary["thinking_chars"] = {side: _distribution(column(side, "thinking_chars")) for side in SIDES}
    summary["finish_reasons"] = {side: dict(Counter(row[side]["finish_reason"] for row in scored)) for side in SIDES}
    summary["reference_marker_rate"] = sum(any(m in row["reference"] for m in markers) for row in scored) / len(scored)
    summary["headline"] = headline_of(summary)
    return {"summary": summary, "rows": scored}


def _present_pairs(scored: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Base and adapter values of `key`, over the rows where both sides have one."""
    pairs = [(row["base"]["scores"][key], row["adapter"]["scores"][key]) for row in scored]
    present = [(float(base), float(adapter)) for base, adapter in pairs if base is not None and adapter is not None]
    return [base for base, _ in present], [adapter for _, adapter in present]


def _rates(classes: list[str]) -> dict[str, float]:
    counts = Counter(classes)
    return {name: counts.get(name, 0) / len(classes) for name in THINKING_CLASSES}


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def headline_of(summary: dict[str, Any]) -> str:
    m = summary["metrics"]
    parts = [f"{label} {_fmt(m[key]['base'], m[key]['percent'])} -> {_fmt(m[key]['adapter'], m[key]['percent'])}"
             + (f" ({m[key]['n']} rows)" if m[key]["n"] < summary["rows_scored"] else "")
             if key in m else f"{label} n/a"
             for key, label in (("chrf", "chrF"), ("has_marker", "markers"), ("thinking_closed", "closed"),
                                ("loss", "loss"))]  # fmt: skip
    partial = "" if summary.get("complete", True) else f" ({summary['rows_scored']}/{summary['rows_planned']} rows)"
    return ", ".join(parts) + partial


def read_summary(eval_dir: Path) -> dict[str, Any] | None:
    """`eval_dir/summary.json`, or None when there is none or it cannot be read."""
    try:
        summary = json.loads((Path(eval_dir) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def headline(adapter_dir: Path) -> str:
    """The adapters-table line from `<adapter>/eval/summary.json`; empty when never evaluated or unreadable."""
    summary = read_summary(Path(adapter_dir) / EVAL_DIR)
    return str(summary.get("headline", "")) if summary else ""


def write_report(report: dict[str, Any], eval_dir: Path) -> Path:
    """rows.json, summary.json, summary.md and chart.png into eval_dir (each replaced whole)."""
    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(eval_dir / "rows.json", json.dumps(report["rows"], ensure_ascii=False, indent=1))
    write_text_atomic(eval_dir / "summary.json", json.dumps(report["summary"], ensure_ascii=False, indent=1))
    from evaluation.markdown import summary_markdown, write_chart

    write_text_atomic(eval_dir / "summary.md", summary_markdown(report["summary"]))
    write_chart(report["summary"], eval_dir / "chart.png")
    return eval_dir
