"""Where a finished evaluation's report goes: the adapter's own report (`<adapter>/eval/`) or a side folder.

`<adapter>/eval/summary.json` is the adapter's report: the app's adapters table shows its headline. A run
replaces it unless it says less about these weights than the report there: a run against a model other than
the base, fewer rows scored than the report on the same weights (as many rows, but fewer with a reference
loss, is less too), or a run on older weights than the folder holds (a server that still had them loaded) while
the report there is on the folder's weights. Such a run (say the Evaluate tab's quick
8 rows after the command's full run) is written to `<adapter>/eval/runs/<time>/`, and the adapter's report
stays. A report on other weights (the adapter was retrained since) is replaced.

    report_dir(adapter / "eval", summary)   # adapter / "eval", or adapter / "eval" / "runs" / "20261127-215900"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.report import read_summary

RUNS_DIR = "runs"


def report_dir(eval_dir: Path, summary: dict[str, Any], on_disk_sha256: str = "") -> Path:
    """The folder for the report of `summary` (evaluation.report.summarize's, with its meta); `on_disk_sha256`:
    the adapter's weights file now, when known."""
    if replaces(summary, read_summary(eval_dir), on_disk_sha256):
        return eval_dir
    return eval_dir / RUNS_DIR / _stamp(summary, eval_dir / RUNS_DIR)


def replaces(new: dict[str, Any], current: dict[str, Any] | None, on_disk_sha256: str = "") -> bool:
    """Does the report of `new` take the place of the adapter's report `current` (None: there is none)?

    Reports on other weights: the one on the weights in the folder now (`on_disk_sha256`) stays the adapter's
    report; a run on weights a server still had loaded from before a retrain goes beside it."""
    if not new.get("against_base", True):
        return False
    if current is None or not current.get("against_base", True):
        return True
    new_weights, current_weights = new.get("adapter_weights_sha256"), current.get("adapter_weights_sha256")
    if current_weights != new_weights:
        return not on_disk_sha256 or current_weights != on_disk_sha256 or new_weights == on_disk_sha256
    return _says(new) >= _says(current)


def _says(summary: dict[str, Any]) -> tuple[int, int]:
    """(rows scored, rows with a reference loss): what a report says about its weights."""
    loss = summary.get("metrics", {}).get("loss", {})
    return int(summary.get("rows_scored", 0)), int(loss.get("n", 0))


def _stamp(summary: dict[str, Any], runs: Path) -> str:
    """A folder name from the run's creation time ("2026-11-27 21:59:00" -> "20261127-215900"), made unique."""
    stamp = "".join(ch for ch in str(summary.get("created", "")) if ch.isdigit()) or "run"
    stamp = f"{stamp[:8]}-{stamp[8:]}" if len(stamp) == 14 else stamp
    name, suffix = stamp, 2
    while (runs / name).exists():
        name, suffix = f"{stamp}-{suffix}", suffix + 1
    return name
