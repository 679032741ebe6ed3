"""Data loading: every bad row is named by line/index (JSON and JSONL), and too many bad rows abort the run; a
UTF-8 BOM is read past, and JSON nested too deeply gets one clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import TOO_DEEP, DatasetError, load_dataset_checked, load_rows

GOOD = {"instruction": "皇上驾到！", "input": "", "output": "皇上万福金安。"}


def good_rows(count: int) -> list[dict]:
    return [{"instruction": f"问题{i}", "input": "", "output": f"回答{i}。"} for i in range(count)]


def test_json_bad_rows_named_by_index_and_line(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {"instruction": "缺输出", "input": ""},
        {"instruction": "空输出", "input": "", "output": "   "},
        {"instruction": 3, "input": "", "output": "类型不对"},
        "not an object",
        dict(GOOD),
    ]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    report = load_rows(path)
    assert report.total == 6 and len(report.rows) == 1
    reasons = dict(report.bad)
    assert len(reasons) == 5
    assert any(w.startswith("index 1 (line ") and "missing field(s): output" in r for w, r in report.bad)
    assert "empty output" in next(r for w, r in report.bad if w.startswith("index 2"))
    assert "'instruction' must be a string" in next(r for w, r in report.bad if w.startswith("index 3"))
    assert "expected an object" in next(r for w, r in report.bad if w.startswith("index 4"))
    assert "duplicate of index 0" in next(r for w, r in report.bad if w.startswith("index 5"))
    line_of_index_1 = int(next(w for w, _ in report.bad if w.startswith("index 1")).split("line ")[1].rstrip(")"))
    assert path.read_text(encoding="utf-8").splitlines()[line_of_index_1 - 1].strip() == "{"


def test_jsonl_bad_rows_named_by_line(tmp_path: Path) -> None:
    lines = [
        json.dumps(GOOD, ensure_ascii=False).encode(),
        b'{"instruction": "x", "input": ""}',
        '{"instruction": "坏", "input": "", "output": "编码"}'.encode("gbk"),
        b"{not json",
        json.dumps({"instruction": "a", "input": "", "output": ["list"]}).encode(),
        json.dumps(GOOD, ensure_ascii=False).encode(),
        b"",
        json.dumps({"instruction": "a", "input": "", "output": ""}).encode(),
    ]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = load_rows(path)
    bad = dict(report.bad)
    assert report.total == 7 and len(report.rows) == 1
    assert "missing field(s): output" in bad["line 2"]
    assert "not UTF-8" in bad["line 3"]
    assert "not valid JSON" in bad["line 4"]
    assert "'output' must be a string" in bad["line 5"]
    assert bad["line 6"] == "duplicate of line 1"
    assert bad["line 8"] == "empty output"


def test_json_file_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b'[\n{"instruction": "a", "input": "", "output": "b"},\n' + '{"x": "甄嬛"}]'.encode("gbk"))
    with pytest.raises(DatasetError, match="not UTF-8 at line 3"):
        load_rows(path)


def test_thirty_percent_bad_aborts_with_the_count(tmp_path: Path) -> None:
    rows = [*good_rows(70), *({"instruction": f"坏{i}", "input": ""} for i in range(30))]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"30 of 100 rows are bad \(30\.0%\)"):
        load_dataset_checked(path, max_bad_ratio=0.05, log=lambda _: None)


def test_one_percent_bad_is_listed_and_kept_going(tmp_path: Path) -> None:
    rows = [*good_rows(99), {"instruction": "坏", "input": "", "output": ""}]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    messages: list[str] = []
    report = load_dataset_checked(path, max_bad_ratio=0.05, log=messages.append)
    assert len(report.rows) == 99
    assert any("index 99" in m and "empty output" in m for m in messages)
    assert any("100 rows, 99 valid, 1 bad" in m for m in messages)


def test_real_dataset_only_has_duplicates(huanhuan_path: Path) -> None:
    report = load_rows(huanhuan_path)
    assert report.total == 3729 and len(report.rows) + len(report.bad) == 3729
    assert 0 < report.bad_ratio < 0.05  # 112 exact repeats: dropped, below the default max_bad_ratio
    assert all(why.startswith("duplicate of index") for _, why in report.bad)


def test_many_bad_rows_print_counts_by_reason_and_a_few_the_full_list_goes_to_a_file(
    huanhuan_path: Path, tmp_path: Path
) -> None:
    messages: list[str] = []
    full_list = tmp_path / "run" / "bad-rows.txt"
    report = load_dataset_checked(huanhuan_path, max_bad_ratio=0.05, log=messages.append, full_list_path=full_list)
    printed_rows = [m for m in messages if "duplicate of index" in m]
    assert 0 < len(printed_rows) <= 5, messages
    assert any(
        f"bad rows skipped: {len(report.bad)} duplicate; all {len(report.bad)} listed in" in m for m in messages
    )
    listed = full_list.read_text(encoding="utf-8").splitlines()
    assert len(listed) == len(report.bad) and all("duplicate of index" in line for line in listed)


def test_reasons_are_counted_by_kind(tmp_path: Path) -> None:
    rows = [*good_rows(96), *good_rows(2), {"instruction": "a", "output": ""}, {"instruction": "b", "output": 3}]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    messages: list[str] = []
    load_dataset_checked(path, max_bad_ratio=0.05, log=messages.append)
    assert "bad rows skipped: 2 duplicate, 1 empty output, 1 field 'output' must be a string, got int" in messages


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_file_saved_with_a_utf8_bom_loads_every_row(tmp_path: Path, suffix: str) -> None:
    rows = good_rows(3)
    text = json.dumps(rows, ensure_ascii=False) if suffix == ".json" else "\n".join(json.dumps(r) for r in rows)
    path = tmp_path / f"notepad{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # what Windows Notepad writes
    report = load_rows(path)
    assert len(report.rows) == 3 and report.bad == []


def test_deeply_nested_json_gets_one_clear_message(tmp_path: Path) -> None:
    array = tmp_path / "deep.json"
    array.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(DatasetError, match=r"deep\.json: nested too deeply"):
        load_rows(array)
    lines = tmp_path / "deep.jsonl"
    lines.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n" + "[" * 100_000 + "\n", encoding="utf-8")
    report = load_rows(lines)
    assert len(report.rows) == 1 and report.bad == [("line 2", TOO_DEEP)]


def test_json_lines_saved_as_json_are_read_line_by_line(tmp_path: Path) -> None:
    lines = [json.dumps(row, ensure_ascii=False) for row in good_rows(3)]
    lines.insert(2, '{"instruction": "坏", "input": ""')  # a torn row: named by its line, the others kept
    path = tmp_path / "rows.json"  # a Hugging Face export, or an upload in the Train tab
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_rows(path)
    assert [row.where for row in report.rows] == ["line 1", "line 2", "line 4"]
    assert len(report.bad) == 1 and report.bad[0][0] == "line 3" and "not valid JSON" in report.bad[0][1]


@pytest.mark.parametrize("text", [json.dumps(GOOD, indent=2), json.dumps({"rows": good_rows(2)}) + "\n"])
def test_a_json_file_holding_one_object_is_still_one_document(tmp_path: Path, text: str) -> None:
    path = tmp_path / "object.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=r"expected a JSON array of rows \(or a \.jsonl file\), got dict"):
        load_rows(path)
