"""A reference loss that fails never holds the replies back (evaluation.run, report, report_place, app.eval_rows).

The replies come from the fake engine (tests.app.fake_engine); the scorer below fails for chosen rows, as vLLM
does for a reference longer than its context (one row) or a server without prompt_logprobs (every row). The
same with the real vLLM server is in test_evaluate_vllm.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.eval_rows import TABLE_HEADERS, table_rows, to_markdown
from evaluation.cli import loss_missing_note
from evaluation.markdown import summary_markdown
from evaluation.refloss import TokenPair
from evaluation.report import summarize
from evaluation.report_place import replaces
from evaluation.run import LOSS_GIVE_UP_AFTER, EvalItem, EvalPlan, evaluate
from evaluation.scores import DEFAULT_MARKERS
from evaluation.store import RowStore
from serving.protocol import BadRequestError, SamplingParams
from tests.app.fake_engine import FakeEngine

ROWS = 12


class FailingLoss:
    """Loss 1.0 on the base and 0.5 on the adapter, except for the rows (by first prompt id) in `failing`."""

    def __init__(self, failing: set[int]):
        self.failing = failing
        self.calls = 0

    def losses(self, model: str, items: Sequence[TokenPair]) -> list[float]:
        self.calls += 1
        bad = [prompt[0] for prompt, _ in items if prompt[0] in self.failing]
        if bad:
            raise BadRequestError(f"row {bad[0]}: the prompt is longer than the model's context")
        return [1.0 if model == "base" else 0.5 for _ in items]


def plan(rows: int = ROWS) -> EvalPlan:
    items = [EvalItem(f"index {i}", f"问题 {i}", "臣妾甄嬛", ([i], [7, 8])) for i in range(rows)]
    return EvalPlan("huanhuan", items, "persona", SamplingParams(seed=0), concurrency=4)


def test_one_row_whose_loss_fails_keeps_every_reply_and_a_rerun_adds_the_loss(tmp_path: Path) -> None:
    store = RowStore(tmp_path, "run")
    rows, stats = evaluate(plan(), FakeEngine(adapters={"huanhuan": tmp_path}), FailingLoss({5}), store)
    assert [row["where"] for row in rows] == [f"index {i}" for i in range(ROWS)]
    assert "loss" not in rows[5]["base"] and rows[4]["adapter"]["loss"] == 0.5 and rows[6]["base"]["loss"] == 1.0
    assert stats.loss_error.startswith("index 5: row 5: the prompt is longer")
    summary = summarize(rows, {"seed": 0}, DEFAULT_MARKERS)["summary"]
    assert summary["metrics"]["loss"]["n"] == ROWS - 1 and summary["metrics"]["chrf"]["n"] == ROWS
    assert summary["headline"].endswith(f"loss 1.00 -> 0.50 ({ROWS - 1} rows)")

    again, stats = evaluate(plan(), FakeEngine(adapters={"huanhuan": tmp_path}), FailingLoss(set()), store)
    assert stats.rows_done_now == 0 and stats.loss_error == ""
    assert [row["base"]["loss"] for row in again] == [1.0] * ROWS


def test_a_scorer_that_fails_every_row_is_given_up_and_the_report_says_why(tmp_path: Path) -> None:
    scorer = FailingLoss(set(range(ROWS)))
    rows, stats = evaluate(plan(), FakeEngine(adapters={"huanhuan": tmp_path}), scorer, RowStore(tmp_path, "run"))
    assert len(rows) == ROWS and all("loss" not in row["adapter"] for row in rows)
    assert scorer.calls == 1 + LOSS_GIVE_UP_AFTER, "the chunk, then one row at a time until the limit"
    note = loss_missing_note(ROWS, ROWS, stats)
    assert note.startswith(f"{ROWS} of {ROWS} rows have no reference loss (the last failure was index 2: row 2")
    assert "does not fit the server's context fails again" in note, "a rerun alone cannot score a row too long"
    summary = summarize(rows, {"seed": 0, "loss_missing": note, "complete": True, "rows_planned": ROWS},
                        DEFAULT_MARKERS)["summary"]  # fmt: skip
    assert "loss" not in summary["metrics"] and "perplexity" not in summary
    assert summary["headline"].endswith(", loss n/a"), "every row answered: not a partial run"
    report = {"summary": {**summary, "adapter": "huanhuan", "base_model": "tiny", "sampling": "s",
                          "dataset_sha256": "ab" * 32, "created": "now"}, "rows": rows}  # fmt: skip
    assert f"No reference loss. **{note}**" in summary_markdown(report["summary"])
    scored = summarize(rows, {"seed": 0}, DEFAULT_MARKERS)
    assert "loss none" in to_markdown({"summary": report["summary"], "rows": scored["rows"]})


def test_a_server_too_busy_for_the_losses_ends_the_loss_phase_at_once(tmp_path: Path) -> None:
    from evaluation.refloss import LossesGivenUp

    class BusyServer(FailingLoss):
        def losses(self, model: str, items: Sequence[TokenPair]) -> list[float]:
            self.calls += 1
            raise LossesGivenUp("the server stayed busy for 600 s")

    scorer = BusyServer(set())
    rows, stats = evaluate(plan(), FakeEngine(adapters={"huanhuan": tmp_path}), scorer, RowStore(tmp_path, "run"))
    assert len(rows) == ROWS and all("loss" not in row["base"] for row in rows), "every reply kept"
    assert scorer.calls == 1, "not retried row by row: each try would wait the gate's timeout again"
    assert stats.loss_error == "the server stayed busy for 600 s"


def test_rows_without_a_loss_show_blank_and_sort_last_on_it(tmp_path: Path) -> None:
    rows, _ = evaluate(
        plan(), FakeEngine(adapters={"huanhuan": tmp_path}), FailingLoss({0, 3}), RowStore(tmp_path, "run")
    )
    scored = summarize(rows, {"seed": 0}, DEFAULT_MARKERS)["rows"]
    table = table_rows(scored, "loss", "best first")
    assert [line[0] for line in table[-2:]] == [1, 4], "rows 1 and 4 (index 0 and 3) have no loss: last"
    loss_column = TABLE_HEADERS.index("left loss")
    assert table[-1][loss_column] == "" and table[0][loss_column] == 1.0
    assert [line[0] for line in table_rows(scored, "chrf", "held-out order")] == list(range(1, ROWS + 1))


def test_a_report_with_fewer_losses_on_the_same_rows_does_not_replace_the_adapters_report() -> None:
    def summary(with_loss: int) -> dict:
        return {"rows_scored": 12, "adapter_weights_sha256": "w", "metrics": {"loss": {"n": with_loss}}}

    assert not replaces(summary(0), summary(12))
    assert replaces(summary(12), summary(11))
    assert replaces(summary(12), summary(12))


def test_a_server_gone_during_the_losses_fails_the_run_and_keeps_every_reply(tmp_path: Path) -> None:
    import pytest

    from evaluation.run import EvalAborted
    from serving.protocol import EngineUnavailableError

    class Gone:
        def losses(self, model: str, items: Sequence[TokenPair]) -> list[float]:
            raise EngineUnavailableError("cannot reach the model server at http://127.0.0.1:9/v1")

    store = RowStore(tmp_path, "run")
    with pytest.raises(EvalAborted, match=r"12 of 12 rows answered: cannot reach the model server"):
        evaluate(plan(), FakeEngine(adapters={"huanhuan": tmp_path}), Gone(), store)
    assert len(store.parts()["replies"]) == ROWS and not store.parts()["loss"], "a rerun resumes at the losses"
