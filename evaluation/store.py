"""Rows done so far, one JSON line each, so an interrupted evaluation resumes where it stopped.

The file is keyed by the run's fingerprint (adapter, base, dataset hash, system prompt, sampling): a rerun
with the same settings skips the rows it finds; other settings start their own file and leave this one.
A line cut by a crash is ignored (its row is simply done again).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

WORK_DIR = ".work"


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


class RowStore:
    """Append-only JSONL of finished rows (thread-safe), in `<eval dir>/.work/rows-<fingerprint>.jsonl`."""

    def __init__(self, eval_dir: Path, key: str):
        self.path = Path(eval_dir) / WORK_DIR / f"rows-{key}.jsonl"
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        """where -> row record of every complete line."""
        done: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return done
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            if isinstance(record, dict) and "where" in record:
                done[record["where"]] = record
        return done

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
