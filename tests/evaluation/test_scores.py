"""Unit tests of the evaluation's scores, bootstrap, resume store and report (no model needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from evaluation.markdown import summary_markdown
from evaluation.report import headline, summarize, write_report
from evaluation.scores import DEFAULT_MARKERS, Reply, chrf, reply_scores, rouge_l, thinking_class
from evaluation.stats import paired_bootstrap
from evaluation.store import RowStore


def reply(thinking="想一想", answer="本宫知道了", finish="stop", closed=True) -> Reply:
    return Reply(thinking, answer, finish, closed)


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (reply(), "valid"),
        (reply(thinking="  \n"), "empty"),
        (reply(answer="", closed=False), "never_closed"),
        (reply(answer="", finish="length", closed=False), "cut"),
        (reply(finish="length"), "valid"),  # closed, then cut inside the answer: the thinking was fine
    ],
)
def test_thinking_classes(r: Reply, expected: str) -> None:
    assert thinking_class(r) == expected


def test_rouge_l_is_on_characters() -> None:
    assert rouge_l("本宫知道了", "本宫知道了") == pytest.approx(100.0)
    # LCS of 本宫知道了 / 本宫已经知道了 is 5 chars: P = 5/5, R = 5/7
    assert rouge_l("本宫知道了", "本宫已经知道了") == pytest.approx(100 * 2 * (5 / 7) / (1 + 5 / 7))
    assert rouge_l("abc", "本宫") == 0.0
    assert rouge_l("", "本宫") == 0.0


def test_chrf_ranks_closer_answers_higher() -> None:
    reference = "臣妾明白了，多谢皇上"
    assert chrf(reference, reference) == pytest.approx(100.0)
    assert chrf("臣妾明白了", reference) > chrf("我不知道", reference) >= 0.0
    assert chrf("", reference) == 0.0


def test_an_unclosed_reply_counts_as_no_answer() -> None:
    reference = "本宫知道了"
    open_reply = Reply("本宫知道了", "本宫知道了", "length", thinking_closed=False)
    scores = reply_scores(open_reply, reference, DEFAULT_MARKERS)
    assert scores["answered"] == 0 and scores["chrf"] == 0.0 and scores["has_marker"] == 0
    closed = reply_scores(reply(answer=reference), reference, DEFAULT_MARKERS)
    assert closed["answered"] == 1 and closed["chrf"] == pytest.approx(100.0) and closed["markers"] == 1
    assert scores["thinking"] == "cut" and closed["thinking"] == "valid"


def test_markers_come_from_the_configured_list() -> None:
    assert reply_scores(reply(answer="皇上万福"), "x", ["皇上"])["markers"] == 1
    assert reply_scores(reply(answer="皇上万福"), "x", ["本宫"])["markers"] == 0


def test_a_difference_over_too_few_rows_is_never_called_significant() -> None:
    from evaluation.markdown import _verdict
    from evaluation.stats import MIN_VERDICT_ROWS

    few = paired_bootstrap([0.0, 0.0], [1.0, 2.0], samples=200)
    assert few.low > 0 and not few.significant  # the interval of 2 rows excludes zero, but 2 rows tell nothing
    enough = paired_bootstrap([0.0] * MIN_VERDICT_ROWS, [1.0, 2.0] * (MIN_VERDICT_ROWS // 2), samples=200)
    assert enough.significant
    metric = {**few.to_dict(), "significant": few.significant, "higher_is_better": True}
    assert _verdict(metric) == f"too few rows to tell (under {MIN_VERDICT_ROWS})"
    assert _verdict({**enough.to_dict(), "significant": True, "higher_is_better": True}) == "better"


def test_a_reply_the_engine_cut_short_is_not_kept() -> None:
    import threading

    from evaluation.run import drain
    from serving.protocol import AnswerDelta, FinalDelta

    def stream(reason: str):
        return iter([AnswerDelta("臣妾"), FinalDelta(reason, answer_tokens=1)])

    class Closable:
        def __init__(self, deltas) -> None:
            self.deltas = deltas

        def __iter__(self):
            return self.deltas

        def close(self) -> None:
            pass

    stop = threading.Event()
    assert drain(Closable(stream("stop")), stop)["answer"] == "臣妾"
    assert drain(Closable(stream("length")), stop)["finish_reason"] == "length"
    assert drain(Closable(stream("cancelled")), stop) is None  # e.g. the local engine shut down mid-reply
    assert drain(Closable(stream("abort")), stop) is None


def test_paired_bootstrap_interval() -> None:
    base = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0] * 4
    better = [b + 1.0 for b in base]
    paired = paired_bootstrap(base, better, samples=500)
    assert paired.diff == pytest.approx(1.0) and paired.low == pytest.approx(1.0) and paired.significant
    noisy = paired_bootstrap(base, list(reversed(base)), samples=500)
    assert noisy.low < 0 < noisy.high and not noisy.significant
    assert paired.base_interval[0] < 0.5 < paired.base_interval[1]
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0])


def test_store_resumes_and_ignores_a_cut_line(tmp_path: Path) -> None:
    store = RowStore(tmp_path, "abc")
    for where in ("index 1", "index 2", "index 3"):
        store.append({"part": "replies", "where": where, "base": {"answer": "a"}, "adapter": {"answer": "b"}})
    store.append({"part": "loss", "where": "index 1", "base": 2.0, "adapter": 1.0})
    with store.path.open("a", encoding="utf-8") as handle:
        handle.write('{"part": "loss", "where": "index 2", "base"')  # a crash mid-line
    reopened = RowStore(tmp_path, "abc")
    assert sorted(reopened.parts()["replies"]) == ["index 1", "index 2", "index 3"]
    finished = reopened.load()
    assert list(finished) == ["index 1", "index 2", "index 3"]
    assert finished["index 1"]["adapter"] == {"answer": "b", "loss": 1.0}
    assert finished["index 2"]["adapter"] == {"answer": "b"}, "the cut loss line is redone, its replies kept"
    assert RowStore(tmp_path, "other").load() == {}


def test_a_retrained_adapter_of_the_same_name_gets_its_own_rows_a_reloaded_one_resumes(tmp_path: Path) -> None:
    from evaluation.cli import resume_settings
    from evaluation.store import fingerprint
    from serving.adapters import WEIGHTS_FILE
    from serving.protocol import SamplingParams
    from training.heldout import HeldoutRecord

    record = HeldoutRecord("huanhuan.json", "d" * 64, "persona", [])
    weights = tmp_path / WEIGHTS_FILE

    def key(served: str = "huanhuan") -> str:
        return fingerprint(resume_settings(served, SamplingParams(seed=0), "tiny", record, tmp_path))

    weights.write_bytes(b"first training")
    first = key()
    assert key() == first, "the same adapter must resume its rows"
    assert key("huanhuan@3") == first, "the same weights served again under a fresh name resume too"
    weights.write_bytes(b"trained again")
    assert key() != first, "a retrained adapter would be scored with the old one's replies"
    loaded = hashlib.sha256(b"first training").hexdigest()  # what the server loaded before the retrain
    loaded_before = fingerprint(resume_settings("huanhuan", SamplingParams(seed=0), "tiny", record, tmp_path, loaded))
    assert loaded_before == first, "the server still answers with the weights it loaded, whatever is on disk now"


def test_rows_from_a_server_and_from_the_local_engine_are_never_mixed(tmp_path: Path) -> None:
    from evaluation.cli import resume_settings
    from evaluation.store import fingerprint
    from serving.adapters import WEIGHTS_FILE
    from serving.protocol import SamplingParams
    from training.heldout import HeldoutRecord

    record = HeldoutRecord("huanhuan.json", "d" * 64, "persona", [])
    (tmp_path / WEIGHTS_FILE).write_bytes(b"weights")

    def key(engine: str) -> str:
        return fingerprint(resume_settings("huanhuan", SamplingParams(seed=0), "tiny", record, tmp_path, "", engine))

    assert key("vllm") == key("openai"), "a run stopped on one OpenAI-compatible server resumes on another"
    assert key("local") != key("vllm"), "in-process rows would be reported as the server's (and the other way)"


def stored_row(where: str, adapter_answer: str, adapter_loss: float) -> dict:
    side = {"thinking": "", "finish_reason": "stop", "reasoning_tokens": 0, "answer_tokens": 3}
    return {
        "where": where,
        "prompt": "你是谁",
        "reference": "臣妾甄嬛",
        "base": {**side, "thinking": "嗯" * 9, "answer": "", "thinking_closed": False, "finish_reason": "length",
                 "loss": 9.0},
        "adapter": {**side, "answer": adapter_answer, "thinking_closed": True, "loss": adapter_loss},
    }  # fmt: skip


def test_report_files_and_headline(tmp_path: Path) -> None:
    rows = [stored_row(f"index {i}", "臣妾甄嬛" if i % 2 else "臣妾在", 2.0 + i / 10) for i in range(10)]
    meta = {"adapter": "huanhuan", "base_model": "tiny", "rows_planned": 12, "complete": False, "sampling": "s",
            "dataset_sha256": "ab" * 32, "seed": 0, "created": "now", "engine": "openai"}  # fmt: skip
    report = summarize(rows, meta, DEFAULT_MARKERS)
    summary = report["summary"]
    assert summary["metrics"]["loss"]["diff"] < 0 and summary["metrics"]["loss"]["significant"]
    assert summary["metrics"]["has_marker"]["base"] == 0 and summary["metrics"]["has_marker"]["adapter"] == 1
    assert summary["thinking"]["base"]["cut"] == 1.0 and summary["thinking"]["adapter"]["empty"] == 1.0
    assert summary["finish_reasons"]["base"] == {"length": 10}
    folder = write_report(report, tmp_path / "huanhuan" / "eval")
    assert {p.name for p in folder.iterdir()} >= {"rows.json", "summary.json", "summary.md", "chart.png"}
    written = json.loads((folder / "rows.json").read_text(encoding="utf-8"))
    assert written[1]["adapter"]["scores"]["chrf"] == pytest.approx(100.0)
    assert "partial run" in (folder / "summary.md").read_text(encoding="utf-8")
    line = headline(tmp_path / "huanhuan")
    assert line.startswith("chrF 0.00 -> ") and "markers 0% -> 100%" in line and "(10/12 rows)" in line
    assert headline(tmp_path / "never-evaluated") == ""
    assert "# Evaluation of `huanhuan` against its base" in (folder / "summary.md").read_text(encoding="utf-8")
    other = summarize(rows, {**meta, "base_model": "other@2", "against_base": False}, DEFAULT_MARKERS)
    assert "against `other@2` (not its base)" in summary_markdown(other["summary"])


def test_adapters_table_shows_the_headline(tmp_path: Path) -> None:
    """The serving side reads the headline from <adapter>/eval/summary.json; the app's table shows it as is."""
    from app.adapter_panel import TABLE_HEADERS, table_row
    from serving.adapter_service import status_of
    from serving.adapters import AdapterInfo

    folder = tmp_path / "huanhuan"
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "summary.json").write_text(json.dumps({"headline": "chrF 1.00 -> 9.00"}), encoding="utf-8")
    row = table_row(status_of(AdapterInfo("huanhuan", folder), served_as="huanhuan"))
    assert len(row) == len(TABLE_HEADERS) and row[TABLE_HEADERS.index("evaluation")] == "chrF 1.00 -> 9.00"
    never = table_row(status_of(AdapterInfo("other", tmp_path / "other"), served_as=None))
    assert never[TABLE_HEADERS.index("evaluation")] == ""


def test_a_0_1_score_needs_the_exact_sign_test_too() -> None:
    """4 of 10 rows gaining a marker: the bootstrap interval excludes zero, but 4 changes one way happen by chance
    1 time in 8 (sign test p = 0.125), so the report gives no verdict; 6 of 20 is p = 0.031: "better"."""
    from evaluation.markdown import _verdict
    from evaluation.stats import sign_test_p

    def marker_metric(gained: int, rows: int) -> dict:
        made = [stored_row(f"index {i}", "臣妾在此" if i < gained else "好的", 2.0) for i in range(rows)]
        for row in made:
            row["base"] = {**row["adapter"], "answer": "好的"}
        return summarize(made, {"seed": 0}, DEFAULT_MARKERS)["summary"]["metrics"]["has_marker"]

    few = marker_metric(4, 10)
    assert few["low"] > 0 and few["sign_test_p"] == sign_test_p([0] * 10, [1] * 4 + [0] * 6) == 0.125
    assert _verdict(few) == "no clear change"
    enough = marker_metric(6, 20)
    assert enough["sign_test_p"] < 0.05 and _verdict(enough) == "better"
    assert "sign_test_p" not in summarize([stored_row("index 0", "臣妾", 1.0)] * 10, {"seed": 0}, DEFAULT_MARKERS)[
        "summary"]["metrics"]["chrf"], "continuous scores keep the bootstrap alone"  # fmt: skip
