"""Rows done so far, one JSON line each, so an interrupted evaluation resumes where it stopped.

Two kinds of line: a row's replies (`part: "replies"`: both sides' thinking, answer, finish reason) and,
later, its reference losses (`part: "loss"`). The file is keyed by the run's fingerprint (adapter and its
weights, base, dataset hash, system prompt, sampling, server or in-process engine; evaluation.cli.resume_settings):
a rerun with the same settings skips what it finds; other settings, a retrained adapter or the other kind of
engine start their own file and leave this one.
A line cut by a crash is ignored (that part is simply redone); the line after it is kept (common.jsonl).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from common.jsonl import append_record, read_records

WORK_DIR = ".work"


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


class RowStore:
    """Append-only JSONL of finished rows (thread-safe), in `<eval dir>/.work/rows-<fingerprint>.jsonl`."""

    def __init__(self, eval_dir: Path, key: str):
        self.path = Path(eval_dir) / WORK_DIR / f"rows-{key}.jsonl"
        self._lock = threading.Lock()

    def parts(self) -> dict[str, dict[str, dict[str, Any]]]:
        """part -> where -> record, from every complete line."""
        found: dict[str, dict[str, dict[str, Any]]] = {"replies": {}, "loss": {}}
        for record in read_records(self.path):
            if record.get("part") in found and "where" in record:
                found[record["part"]][record["where"]] = record
        return found

    def load(self) -> dict[str, dict[str, Any]]:
        """where -> finished row (both replies), each side with its `loss` when the loss part is in too."""
        parts = self.parts()
        rows = {}
        for where, replies in parts["replies"].items():
            row = {key: value for key, value in replies.items() if key != "part"}
            loss = parts["loss"].get(where)
            if loss is not None:
                row = {**row, **{side: {**row[side], "loss": loss[side]} for side in ("base", "adapter")}}
            rows[where] = row
        return rows

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            append_record(self.path, record)
