"""common.atomic_files: a file is replaced whole or not at all, and two writers at once both succeed.

.venv/bin/python -m pytest tests/common/test_atomic_files.py
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from common.atomic_files import replaced_file, write_json_atomic, write_text_atomic


def test_the_file_is_replaced_whole_and_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"status": "running"})
    write_json_atomic(path, {"status": "succeeded", "name": "甄嬛"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"status": "succeeded", "name": "甄嬛"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"], "a temporary file was left behind"


def test_an_error_while_writing_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    write_text_atomic(path, "old")
    with pytest.raises(OSError), replaced_file(path) as temporary:
        temporary.write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")
    assert path.read_text(encoding="utf-8") == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_two_writers_at_once_both_succeed_and_the_last_wins(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"  # e.g. two browser sessions evaluating the same adapter
    with replaced_file(path) as first, replaced_file(path) as second:
        assert first != second
        first.write_text("session 1", encoding="utf-8")
        second.write_text("session 2", encoding="utf-8")
    assert path.read_text(encoding="utf-8") == "session 1"  # the outer block ends last
    assert [p.name for p in tmp_path.iterdir()] == ["rows.json"]
