"""common.jsonl and the four stores built on it: a last line cut by a crash costs only itself, never the record
appended after it, and every complete record reads back.

    .venv/bin/python -m pytest tests/common/test_jsonl.py
"""

from __future__ import annotations

from pathlib import Path

from app.votes import VoteStore
from common.jsonl import append_record, read_records
from evaluation.store import RowStore
from training.distill_cache import CachedThinking, ThinkingCache
from training.progress import append_entry, read_progress

CUT = '{"vote": "left", "prompt": "cut by a cra'


def test_a_record_appended_after_a_cut_line_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    append_record(path, {"n": 1})
    with path.open("a", encoding="utf-8") as handle:
        handle.write(CUT)  # a crash mid-write: no newline
    append_record(path, {"n": 2, "text": "皇上万福"})
    assert read_records(path) == [{"n": 1}, {"n": 2, "text": "皇上万福"}]


def test_no_file_reads_as_no_records_and_other_json_values_are_skipped(tmp_path: Path) -> None:
    assert read_records(tmp_path / "absent.jsonl") == []
    path = tmp_path / "mixed.jsonl"
    path.write_text('[1, 2]\n"text"\n{"ok": true}\n\n', encoding="utf-8")
    assert read_records(path) == [{"ok": True}]


def test_every_store_keeps_the_record_after_a_cut_line(tmp_path: Path) -> None:
    votes = VoteStore(tmp_path / "votes")
    rows = RowStore(tmp_path / "eval", "key")
    cache = ThinkingCache(tmp_path / "cache", {"model": "tiny"})
    progress = tmp_path / "run" / "progress.jsonl"
    progress.parent.mkdir()
    for path in (votes.path, rows.path, cache.path, progress):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CUT, encoding="utf-8")
    votes.append({"vote": "right", "prompt": "q"})
    rows.append({"part": "replies", "where": "row 1"})
    cache.put([{"role": "user", "content": "q"}], CachedThinking("kept", "想", 1))
    append_entry(progress, {"step": 1, "loss": 2.0})
    assert [vote["vote"] for vote in votes.load()] == ["right"]
    assert list(rows.parts()["replies"]) == ["row 1"]
    assert len(ThinkingCache(tmp_path / "cache", {"model": "tiny"})) == 1
    assert [entry["step"] for entry in read_progress(progress)] == [1]
