"""The human-readable half of the report: summary.md (tables) and chart.png (each metric, base vs adapter).

Both are drawn from summary.json's content (evaluation.report.summarize), never from the rows directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.atomic_files import replaced_file
from evaluation.scores import THINKING_CLASSES
from evaluation.stats import MIN_VERDICT_ROWS


def _num(value: float, percent: bool) -> str:
    return f"{value:.1%}" if percent else f"{value:.3f}"


def _verdict(metric: dict[str, Any]) -> str:
    if metric["n"] < MIN_VERDICT_ROWS:
        return f"too few rows to tell (under {MIN_VERDICT_ROWS})"
    if not metric["significant"]:
        return "no clear change"
    better = metric["higher_is_better"]
    if better is None:
        return "longer" if metric["diff"] > 0 else "shorter"
    return "better" if (metric["diff"] > 0) == better else "worse"


def _opponent(summary: dict[str, Any], short: bool = False) -> str:
    """What the adapter was compared with: its base, or the other model the Evaluate tab put on the left."""
    if summary.get("against_base", True):
        return "base" if short else "its base"
    return str(summary["base_model"]) if short else f"`{summary['base_model']}` (not its base)"


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation of `{summary['adapter']}` against {_opponent(summary)}",
        "",
        f"{summary['rows_scored']} of {summary['rows_planned']} held-out rows"
        + ("" if summary.get("complete", True) else " (**partial run**: rerun the command to finish)")
        + f"; base `{summary['base_model']}`; sampling {summary['sampling']}; dataset SHA-256 "
        f"`{summary['dataset_sha256'][:12]}`; {summary['created']}.",
        "",
        "Answer scores read the text after `</think>` only; a reply whose thinking never closed counts as no "
        "answer. Differences are adapter - base with a paired bootstrap 95% interval; a rate (0/1 per row) is "
        "called better or worse only when the exact sign test on the rows that changed is under 0.05 too.",
        "",
        "| metric | base | adapter | difference | 95% interval | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for metric in summary["metrics"].values():
        p = metric["percent"]
        lines.append(
            f"| {metric['label']} | {_num(metric['base'], p)} | {_num(metric['adapter'], p)} | "
            f"{_num(metric['diff'], p)} | [{_num(metric['low'], p)}, {_num(metric['high'], p)}] | {_verdict(metric)} |"
        )
    lines += ["", _loss_line(summary), "", "## Thinking health", "",
              "| side | " + " | ".join(THINKING_CLASSES) + " | thinking chars p10/p50/p90/max | finish reasons |",
              "| --- " * (len(THINKING_CLASSES) + 3) + "|"]  # fmt: skip
    for side in ("base", "adapter"):
        rates = " | ".join(f"{summary['thinking'][side][name]:.0%}" for name in THINKING_CLASSES)
        d = summary["thinking_chars"][side]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["finish_reasons"][side].items()))
        lines.append(f"| {side} | {rates} | {d['p10']:.0f} / {d['p50']:.0f} / {d['p90']:.0f} / {d['max']:.0f} | "
                     f"{reasons} |")  # fmt: skip
    lines += ["", "valid: closed with some thinking; empty: closed at once; never_closed: the reply ended inside "
              "its thinking; cut: the token limit ended it inside its thinking.", "",
              f"Persona markers: {', '.join(summary['markers'])} (the references hold one in "
              f"{summary['reference_marker_rate']:.0%} of rows).", ""]  # fmt: skip
    return "\n".join(lines)


def _loss_line(summary: dict[str, Any]) -> str:
    """The perplexity, and for rows without a reference loss how many and why."""
    ppl = summary.get("perplexity")
    line = "No reference loss."
    if ppl:
        line = (
            f"Perplexity of the reference (exp of the mean loss): base {ppl['base']:.2f}, "
            f"adapter {ppl['adapter']:.2f}."
        )
    missing = summary.get("loss_missing")
    return f"{line} **{missing}**" if missing else line


def write_chart(summary: dict[str, Any], path: Path) -> None:
    """One panel per metric: base and adapter means with their 95% intervals; the title gives the difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(summary["metrics"].values())
    columns = 4
    rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for axis, metric in zip(axes.flat, metrics, strict=False):
        means = [metric["base"], metric["adapter"]]
        intervals = [metric["base_interval"], metric["adapter_interval"]]
        errors = [[m - lo for m, (lo, _hi) in zip(means, intervals, strict=True)],
                  [hi - m for m, (_lo, hi) in zip(means, intervals, strict=True)]]  # fmt: skip
        axis.bar(["base", "adapter"], means, yerr=errors, capsize=6, color=["#8c8c8c", "#c2410c"])
        p = metric["percent"]
        axis.set_title(f"{metric['label']}\nΔ {_num(metric['diff'], p)} [{_num(metric['low'], p)}, "
                       f"{_num(metric['high'], p)}]", fontsize=9)  # fmt: skip
        axis.tick_params(labelsize=8)
    for axis in list(axes.flat)[len(metrics) :]:
        axis.axis("off")
    figure.suptitle(f"{summary['adapter']} vs {_opponent(summary, short=True)}: {summary['rows_scored']} held-out "
                    "rows (95% intervals)")  # fmt: skip
    figure.tight_layout()
    with replaced_file(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
