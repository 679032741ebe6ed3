"""Append-only JSON Lines files (votes, evaluation rows, training progress, the thinking cache): one home for
writing a record durably and reading back every complete one.

A crash, a kill or a full disk can leave the last line cut off, without its newline. The next append closes
that line first, so the cut line is the only one lost (glued to it, the new record would be lost too).

    append_record(Path("votes/votes.jsonl"), {"vote": "left"})
    records = read_records(Path("votes/votes.jsonl"))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append `record` as one JSON line and fsync it; callers in one process serialise their appends."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(handle).st_size
        if size and os.pread(handle, 1, size - 1) != b"\n":
            line = b"\n" + line  # close a line cut by a crash
        pending = memoryview(line)
        while pending:  # a write may be short (a nearly full disk) without raising
            pending = pending[os.write(handle, pending) :]
        os.fsync(handle)
    finally:
        os.close(handle)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of `path` that is a complete JSON object, oldest first; [] when there is no file."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash, or one being written right now
        if isinstance(record, dict):
            records.append(record)
    return records
