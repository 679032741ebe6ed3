"""The held-out split recorded in the export is rebuilt exactly as the trainer made it (training.heldout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.training_test_helpers import quick_args
from training.examples import encode_row
from training.heldout import HELDOUT_FILE, HeldoutError, read_heldout, rebuild_heldout, write_heldout
from training.train import prepare_data


@pytest.fixture(scope="module")
def prepared(tiny_model_dir: Path, subset_path: Path, tokenizer, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("heldout")
    args = quick_args(tiny_model_dir, subset_path, work, max_answer_chars=40)  # a filter that shifts positions
    data = prepare_data(args, tokenizer)
    write_heldout(args, data.eval_rows, work)
    return args, data, work


def test_rebuilt_split_equals_the_trainers_eval_examples(prepared, tokenizer) -> None:
    args, data, work = prepared
    rows = rebuild_heldout(read_heldout(work))
    assert len(rows) == len(data.eval) >= 2
    rebuilt = [encode_row(tokenizer, row, args.system_prompt) for row in rows]
    assert [e.input_ids for e in rebuilt] == [e["input_ids"] for e in data.eval]
    assert [e.labels for e in rebuilt] == [e["labels"] for e in data.eval]
    train_ids = {tuple(e["input_ids"]) for e in data.train}
    assert not any(tuple(e.input_ids) in train_ids for e in rebuilt)


def test_a_changed_dataset_is_named(prepared, tmp_path: Path) -> None:
    args, _data, work = prepared
    changed = tmp_path / "changed.json"
    rows = json.loads(Path(args.dataset_path).read_text(encoding="utf-8"))
    rows[0]["output"] += "!"
    changed.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(HeldoutError, match="changed since the adapter was trained"):
        rebuild_heldout(read_heldout(work), changed)


def test_missing_record_and_missing_dataset_are_named(prepared, tmp_path: Path) -> None:
    with pytest.raises(HeldoutError, match=f"no training record \\({HELDOUT_FILE}\\)"):
        read_heldout(tmp_path)
    with pytest.raises(HeldoutError, match="is not there"):
        rebuild_heldout(read_heldout(prepared[2]), tmp_path / "gone.json")
