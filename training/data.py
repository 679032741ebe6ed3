"""Load instruction/input/output rows from JSON or JSONL and name every bad row by its line or index.

A row is bad when it is not an object, misses `instruction` or `output`, has a non-string field, has an
empty output (or an empty prompt), or repeats an earlier row exactly. A JSONL line that is not UTF-8 or
not JSON is bad too. JSON arrays are located by index (and by line where the row starts); JSONL rows by
line number. The run aborts with every problem listed when more than `max_bad_ratio` of rows are bad.

The format goes by the content, not only the name: a file that starts with `[` is a JSON array, a `.jsonl` /
`.ndjson` file is JSON Lines, and so is a `.json` file of several lines whose first line is a whole JSON object
(one object per line, as Hugging Face exports write them); any other `.json` file is read as one JSON document.

    python -m training.data Datasets/huanhuan.json     # validate a file and print the report
"""

from __future__ import annotations

import codecs
import io
import json
import re
import sys
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

REQUIRED_FIELDS = ("instruction", "output")
OPTIONAL_FIELDS = ("input",)


class DatasetError(ValueError):
    """The dataset cannot be used (unreadable, or too many bad rows); the message says why and where."""


@dataclass(frozen=True)
class Row:
    instruction: str
    input: str
    output: str
    where: str  # e.g. "line 12" or "index 3 (line 14)"

    @property
    def prompt(self) -> str:
        """The user turn: instruction, then the input on a new line when there is one."""
        return f"{self.instruction}\n{self.input}" if self.input.strip() else self.instruction


@dataclass
class LoadReport:
    path: Path
    total: int = 0
    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    @property
    def bad_ratio(self) -> float:
        return len(self.bad) / self.total if self.total else 0.0

    def summary(self) -> str:
        return (
            f"{self.path.name}: {self.total} rows, {len(self.rows)} valid, {len(self.bad)} bad ({self.bad_ratio:.1%})"
        )

    def bad_lines(self, limit: int = 50) -> list[str]:
        lines = [f"  {where}: {why}" for where, why in self.bad[:limit]]
        if len(self.bad) > limit:
            lines.append(f"  ... and {len(self.bad) - limit} more")
        return lines


def check_record(record: object) -> tuple[Row | None, str]:
    """Return (row, "") for a good record, or (None, reason) naming what is wrong."""
    if not isinstance(record, dict):
        return None, f"expected an object with instruction/output, got {type(record).__name__}"
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        return None, f"missing field(s): {', '.join(missing)}"
    for name in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS):
        value = record.get(name, "")
        if value is None and name in OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            return None, f"field {name!r} must be a string, got {type(value).__name__}"
    if not record["output"].strip():
        return None, "empty output"
    text_in = record.get("input") or ""
    if not record["instruction"].strip() and not text_in.strip():
        return None, "empty instruction and input"
    return Row(record["instruction"], text_in, record["output"], where=""), ""


TOO_DEEP = "nested too deeply to be rows of instruction/input/output"


def _jsonl_records(raw: bytes) -> list[tuple[str, object | None, str]]:
    """(where, record, error) per non-blank line of a JSONL file."""
    out: list[tuple[str, object | None, str]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            out.append((where, None, f"not UTF-8 (byte {error.start}: {line[error.start : error.start + 4]!r})"))
            continue
        try:
            out.append((where, json.loads(text), ""))
        except json.JSONDecodeError as error:
            out.append((where, None, f"not valid JSON ({error.msg} at column {error.colno})"))
        except RecursionError:
            out.append((where, None, TOO_DEEP))
    return out


def _element_start_lines(text: str) -> list[int]:
    """Line numbers where the elements of a top-level JSON array start (for messages)."""
    lines, depth, in_string, escaped, line, expect = [], 0, False, False, 1, False
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
            continue
        if expect and not char.isspace():
            lines.append(line)
            expect = False
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            expect = expect or (depth == 1 and char == "[")
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 1:
            expect = True
    return lines


def _json_records(raw: bytes, path: Path) -> list[tuple[str, object | None, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}: not UTF-8 at line {line} (byte offset {error.start}); re-save it as UTF-8"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise DatasetError(f"{path}: {TOO_DEEP}") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON array of rows (or a .jsonl file), got {type(data).__name__}")
    starts = _element_start_lines(text)
    starts = starts if len(starts) == len(data) else [0] * len(data)
    return [(f"index {i}" + (f" (line {starts[i]})" if starts[i] else ""), rec, "") for i, rec in enumerate(data)]


def is_jsonl(path: Path, raw: bytes) -> bool:
    """JSON Lines by name (.jsonl, .ndjson), or by content: not an array, and for a .json file one object a line."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    if re.match(rb"\s*\[", raw):
        return False
    return path.suffix.lower() != ".json" or looks_like_json_lines(raw)


def looks_like_json_lines(raw: bytes) -> bool:
    """True when the first non-blank line is a whole JSON object on its own (a pretty-printed object's is not)
    and more lines follow (one object alone is a JSON document)."""
    lines = list(islice((line for line in io.BytesIO(raw) if line.strip()), 2))
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0].decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


def load_rows(path: str | Path) -> LoadReport:
    """Read every row of a JSON array or JSONL file; never raises for bad rows, only for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: dataset file not found (see Datasets/README.md for how to get huanhuan.json)")
    raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)  # Windows editors start UTF-8 files with a BOM
    records = _jsonl_records(raw) if is_jsonl(path, raw) else _json_records(raw, path)
    report, seen = LoadReport(path=path, total=len(records)), {}
    for where, record, error in records:
        row, why = (None, error) if error else check_record(record)
        if row is None:
            report.bad.append((where, why))
            continue
        key = (row.instruction, row.input, row.output)
        if key in seen:
            report.bad.append((where, f"duplicate of {seen[key]}"))
            continue
        seen[key] = where
        report.rows.append(Row(row.instruction, row.input, row.output, where=where))
    return report


SHOWN_BAD_ROWS = 5  # printed on the console; the full list goes to a file


def reason_kind(why: str) -> str:
    """The kind of a bad-row reason, for counting: "duplicate of index 13 (line 67)" -> "duplicate"."""
    if why.startswith("duplicate of"):
        return "duplicate"
    return re.sub(r"\s+", " ", re.sub(r"\(.*?\)|\d+", "", why)).strip()


def bad_row_counts(report: LoadReport) -> str:
    counts: dict[str, int] = {}
    for _where, why in report.bad:
        counts[reason_kind(why)] = counts.get(reason_kind(why), 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items(), key=lambda item: -item[1]))


def load_dataset_checked(
    path: str | Path, max_bad_ratio: float, log=print, full_list_path: Path | None = None
) -> LoadReport:
    """load_rows, print the counts by reason and the first bad rows, and abort (DatasetError) above max_bad_ratio.

    Every bad row is written to `full_list_path` (when given), one per line with its line number.
    """
    report = load_rows(path)
    log(report.summary())
    if report.bad:
        listed = ""
        if full_list_path is not None:
            full_list_path.parent.mkdir(parents=True, exist_ok=True)
            full_list_path.write_text("\n".join(report.bad_lines(limit=len(report.bad))) + "\n", encoding="utf-8")
            listed = f"; all {len(report.bad)} listed in {full_list_path}"
        log(f"bad rows skipped: {bad_row_counts(report)}{listed}")
        for line in report.bad_lines(limit=SHOWN_BAD_ROWS):
            log(line)
    if not report.rows:
        raise DatasetError(f"{report.path}: no valid rows out of {report.total}")
    if report.bad_ratio > max_bad_ratio:
        raise DatasetError(
            f"{report.path}: {len(report.bad)} of {report.total} rows are bad ({report.bad_ratio:.1%}), more than "
            f"max_bad_ratio={max_bad_ratio:.1%}; fix them or raise --max_bad_ratio. First ones:\n"
            + "\n".join(report.bad_lines(limit=10))
        )
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m training.data FILE.json|FILE.jsonl", file=sys.stderr)
        return 2
    report = load_rows(argv[0])
    print(report.summary())
    print("\n".join(report.bad_lines(limit=1000)))
    return 1 if report.bad else 0


if __name__ == "__main__":
    sys.exit(main())
