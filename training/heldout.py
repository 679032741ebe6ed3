"""The held-out split of a run, recorded in the export (`heldout.json`) so an evaluation can rebuild it exactly.

Which rows are held out (training.train.split_examples): each row draws a number in [0, 1) from the seed and
a hash of its content (`heldout_draw`), and the rows that draw less than eval_ratio are held out, in the order
of their draws. A row's side does not depend on the other rows: filtering (max_answer_chars, max_samples, rows
too long, distilled thinking that failed and was retried) or editing other rows moves no row between train and
eval, and a resumed run holds out the same rows. The share is eval_ratio give or take chance (at 0.1, 342 of
huanhuan.json's 3,617 rows with seed 42; +-0.5% is one standard deviation). Only a tiny set can differ: at
least one row is held out and one kept for training, whatever the draws.

At export time `write_heldout(args, data, folder)` records the dataset file's SHA-256, the system prompt,
and each held-out row's location (`where`, as training.data names it) with a hash of its content.
`rebuild_heldout(record, dataset_path)` reads the dataset again and returns those rows in the trainer's
order; a dataset whose bytes changed since training is refused with both hashes named (HeldoutError).

    record = read_heldout(Path("Models/adapters/huanhuan"))
    rows = rebuild_heldout(record)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.file_hash import file_sha256
from training.data import Row, load_rows

HELDOUT_FILE = "heldout.json"


class HeldoutError(ValueError):
    """The held-out split cannot be rebuilt (no record, dataset missing or changed); the message says why."""


@dataclass(frozen=True)
class HeldoutRecord:
    dataset_path: str
    dataset_sha256: str
    system_prompt: str
    rows: list[dict[str, str]]  # {"where", "sha256"} in the trainer's order


def row_sha256(row: Row) -> str:
    content = json.dumps([row.instruction, row.input, row.output], ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def heldout_draw(row: Row, seed: int) -> float:
    """The row's number in [0, 1) for the split: fixed by the seed and the row's content, nothing else."""
    digest = hashlib.sha256(f"{seed}:{row_sha256(row)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def heldout_record(args: Any, held_out: list[Row]) -> dict[str, Any]:
    """What heldout.json holds for a run on args.dataset_path whose held-out rows are held_out."""
    path = Path(args.dataset_path)
    return {
        "dataset_path": str(path.resolve()),
        "dataset_sha256": file_sha256(path),
        "system_prompt": args.system_prompt,
        "rows": [{"where": row.where, "sha256": row_sha256(row)} for row in held_out],
    }


def write_heldout(args: Any, held_out: list[Row], folder: Path) -> None:
    record = heldout_record(args, held_out)
    (Path(folder) / HELDOUT_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")


def read_heldout(folder: Path) -> HeldoutRecord:
    path = Path(folder) / HELDOUT_FILE
    if not path.is_file():
        raise HeldoutError(
            f"{folder} has no training record ({HELDOUT_FILE}): it was not exported by this project's trainer (or by "
            "an older version of it), so its held-out split is unknown. Retrain it with `python -m training`."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return HeldoutRecord(raw["dataset_path"], raw["dataset_sha256"], raw["system_prompt"], list(raw["rows"]))
    except (ValueError, KeyError, TypeError) as error:
        raise HeldoutError(f"{path} is not a readable held-out record ({error}); retrain the adapter") from error


def rebuild_heldout(record: HeldoutRecord, dataset_path: str | Path | None = None) -> list[Row]:
    """The held-out rows in the trainer's order, from the same dataset bytes the trainer read."""
    path = Path(dataset_path or record.dataset_path)
    if not path.is_file():
        raise HeldoutError(f"the training dataset {path} is not there; pass its current path with --dataset")
    actual = file_sha256(path)
    if actual != record.dataset_sha256:
        raise HeldoutError(
            f"the dataset {path} changed since the adapter was trained (SHA-256 {actual[:12]}..., trained on "
            f"{record.dataset_sha256[:12]}...): its held-out rows can no longer be trusted. Evaluate against the "
            "file it was trained on (--dataset PATH), or retrain the adapter on the new data."
        )
    by_where = {row.where: row for row in load_rows(path).rows}
    rows = []
    for entry in record.rows:
        row = by_where.get(entry["where"])
        if row is None or row_sha256(row) != entry["sha256"]:
            raise HeldoutError(f"held-out row {entry['where']} of {path} does not match the training record")
        rows.append(row)
    return rows
