"""The held-out split: each row's side is fixed by its content and the seed, whatever the other rows are, and the
split recorded in the export is rebuilt exactly as the trainer made it (training.heldout)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.training_test_helpers import quick_args
from training.data import Row
from training.examples import Example, encode_row
from training.heldout import HELDOUT_FILE, HeldoutError, read_heldout, rebuild_heldout, write_heldout
from training.train import prepare_data, split_examples


def numbered_rows(count: int, start: int = 0) -> dict[str, Row]:
    return {f"index {i}": Row(f"问题{i}", "", f"回答{i}。", f"index {i}") for i in range(start, start + count)}


def sides(rows: dict[str, Row], eval_ratio: float = 0.1, seed: int = 42) -> dict[str, str]:
    """{where: "train" | "eval"} of split_examples over one example per row."""
    examples = [Example([1, 2], [-100, 2], where) for where in rows]
    train, held_out = split_examples(examples, rows, eval_ratio, seed)
    assert len(train) + len(held_out) == len(rows)
    return {example.where: "train" for example in train} | {example.where: "eval" for example in held_out}


def test_removing_or_adding_a_row_moves_no_other_row_between_train_and_eval() -> None:
    rows = numbered_rows(300)
    before = sides(rows)
    for removed in ("index 0", "index 150", next(where for where, side in before.items() if side == "eval")):
        after = sides({where: row for where, row in rows.items() if where != removed})
        assert after == {where: side for where, side in before.items() if where != removed}
    grown = sides(rows | numbered_rows(1, start=300))
    assert {where: side for where, side in grown.items() if where != "index 300"} == before


def test_the_eval_share_is_about_eval_ratio_and_the_seed_changes_the_split() -> None:
    split = sides(numbered_rows(3000), eval_ratio=0.1)
    assert 0.085 < list(split.values()).count("eval") / 3000 < 0.115
    assert sides(numbered_rows(3000), eval_ratio=0.1, seed=7) != split
    assert set(sides(numbered_rows(3000), eval_ratio=0.0).values()) == {"train"}


def test_identical_rows_land_on_the_same_side() -> None:
    """A duplicate (huanhuan.json has 112) is never trained on while its twin is held out."""
    rows = numbered_rows(400)
    twins = {f"index {400 + i}": replace(row, where=f"index {400 + i}") for i, row in enumerate(rows.values())}
    split = sides(rows | twins)
    assert "eval" in split.values()
    assert all(split[twin.where] == split[f"index {i}"] for i, twin in enumerate(twins.values()))


def test_a_tiny_set_still_holds_one_row_out_and_trains_on_the_rest() -> None:
    for count in (2, 3, 5):
        assert list(sides(numbered_rows(count), eval_ratio=0.1).values()).count("eval") == 1
    assert list(sides(numbered_rows(2), eval_ratio=0.9).values()).count("train") == 1


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


def test_a_filter_moves_no_row_between_train_and_eval(prepared, tokenizer, tmp_path: Path) -> None:
    args, filtered, _work = prepared
    unfiltered = prepare_data(replace(args, max_answer_chars=0, output_dir=str(tmp_path)), tokenizer)
    kept_by_the_filter = {row.where for row in unfiltered.eval_rows if len(row.output) <= args.max_answer_chars}
    assert {row.where for row in filtered.eval_rows} == kept_by_the_filter
    assert len(unfiltered.eval_rows) > len(filtered.eval_rows)


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
