"""The distillation cache (resumable, keyed by thinker + sampling + prompt) and how a stream's outcome is classified.

Streams here are scripted lists of deltas: this checks the classification logic only; the real engines are
driven in test_distill_vllm.py.
"""

from __future__ import annotations

from pathlib import Path

from serving.protocol import AnswerDelta, FinalDelta, ReasoningDelta
from training.distill import DistillReport, read_thinking
from training.distill_cache import KEPT, NEVER_CLOSED, OVER_BUDGET, CachedThinking, ThinkingCache

MESSAGES = [{"role": "system", "content": "甄嬛"}, {"role": "user", "content": "你是谁？"}]
KEY = {"thinker": {"model": "tiny"}, "sampling": {"temperature": 0.6}}


class ScriptedStream:
    """A list of deltas with the stream interface; records whether it was closed."""

    def __init__(self, deltas):
        self._deltas = iter(deltas)
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._deltas)

    def close(self) -> None:
        self.closed = True


def count_chars(text: str) -> int:
    return len(text)


def test_put_is_on_disk_at_once_and_a_new_cache_object_reads_it(tmp_path: Path) -> None:
    cache = ThinkingCache(tmp_path, KEY)
    cache.put(MESSAGES, CachedThinking(KEPT, "想一想", 3))
    again = ThinkingCache(tmp_path, KEY)
    assert again.get(MESSAGES) == CachedThinking(KEPT, "想一想", 3)
    assert again.get([*MESSAGES[:1], {"role": "user", "content": "别的"}]) is None
    assert again.path.with_suffix(".json").is_file()  # says in words what the key is


def test_other_sampling_or_thinker_is_another_cache(tmp_path: Path) -> None:
    ThinkingCache(tmp_path, KEY).put(MESSAGES, CachedThinking(KEPT, "想", 1))
    assert ThinkingCache(tmp_path, {**KEY, "sampling": {"temperature": 1.0}}).get(MESSAGES) is None
    assert ThinkingCache(tmp_path, {**KEY, "thinker": {"model": "other"}}).get(MESSAGES) is None


def test_a_torn_last_line_is_ignored_and_the_next_put_starts_a_new_line(tmp_path: Path) -> None:
    cache = ThinkingCache(tmp_path, KEY)
    cache.put(MESSAGES, CachedThinking(NEVER_CLOSED, "", 9))
    with cache.path.open("a", encoding="utf-8") as file:
        file.write('{"prompt": "abc", "status": "ke')  # killed in the middle of a write
    reopened = ThinkingCache(tmp_path, KEY)
    assert len(reopened) == 1
    other = [{"role": "user", "content": "第二句"}]
    reopened.put(other, CachedThinking(KEPT, "好", 1))
    assert ThinkingCache(tmp_path, KEY).get(other) == CachedThinking(KEPT, "好", 1)
    assert len(ThinkingCache(tmp_path, KEY)) == 2


def test_closed_thinking_is_kept_and_the_stream_closed_at_the_answer() -> None:
    stream = ScriptedStream(
        [ReasoningDelta("\n嗯，"), ReasoningDelta("要端庄。\n"), AnswerDelta("臣妾"), AnswerDelta("…")]
    )
    outcome = read_thinking(stream, count_chars, budget=100)
    assert outcome == CachedThinking(KEPT, "嗯，要端庄。", 6)
    assert stream.closed


def test_thinking_that_never_closes_is_dropped() -> None:
    stream = ScriptedStream([ReasoningDelta("一直想"), FinalDelta("length", thinking_closed=False)])
    assert read_thinking(stream, count_chars, budget=100).status == NEVER_CLOSED


def test_thinking_past_the_budget_is_dropped_even_when_it_closes() -> None:
    stream = ScriptedStream([ReasoningDelta("想" * 11), AnswerDelta("好")])
    assert read_thinking(stream, count_chars, budget=10) == CachedThinking(OVER_BUDGET, "", 11)


def test_closed_then_ended_without_an_answer_counts_as_closed() -> None:
    stream = ScriptedStream([ReasoningDelta("想"), FinalDelta("stop", thinking_closed=True)])
    assert read_thinking(stream, count_chars, budget=10).status == KEPT


def test_report_counts_outcomes_and_the_thinking_length_distribution() -> None:
    report = DistillReport("blind", rows=4)
    for entry in (CachedThinking(KEPT, "a", 10), CachedThinking(KEPT, "b", 30), CachedThinking(NEVER_CLOSED, "", 5),
                  CachedThinking(OVER_BUDGET, "", 900)):  # fmt: skip
        report.add(entry)
    summary = report.summary()
    assert (summary["rows_used"], summary["dropped_never_closed"], summary["dropped_over_budget"]) == (2, 1, 1)
    assert summary["closed_thinking_rate"] == 0.75
    assert summary["thinking_tokens"]["min"] == 10 and summary["thinking_tokens"]["max"] == 30


def test_auto_engine_is_vllm_where_installed_else_local(monkeypatch) -> None:
    import importlib.util

    from training.config import TrainArgs
    from training.distill_engine import resolve_kind

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "vllm" else real_find_spec(name))
    assert resolve_kind(TrainArgs(distill_engine="auto")) == "local"
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    assert resolve_kind(TrainArgs(distill_engine="auto")) == ("vllm" if real_find_spec("vllm") else "local")
    assert resolve_kind(TrainArgs(distill_engine="openai")) == "openai"


def test_the_thinker_adapter_weights_are_part_of_the_cache_key(tiny_model_dir: Path, tmp_path: Path) -> None:
    from training.config import TrainArgs
    from training.distill import open_cache

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"one")

    def cache_path(**overrides) -> Path:
        args = TrainArgs(model_name_or_path=str(tiny_model_dir), distill_cache_dir=str(tmp_path / "c"), **overrides)
        return open_cache(args).path

    with_adapter = cache_path(distill_adapter=str(adapter))
    assert with_adapter != cache_path()
    (adapter / "adapter_model.safetensors").write_bytes(b"two")  # retrained: other thinking
    assert cache_path(distill_adapter=str(adapter)) != with_adapter
    assert cache_path(distill_temperature=1.0) != cache_path()
    assert cache_path(distill_prompt="rationalized") != cache_path()
