"""Distilled thinking without vLLM: LocalEngine (transformers + peft) in batches, one generate per batch.

The thinker is `thinker_adapter_dir` (tests/training/conftest.py), a tiny LoRA trained by the offline recipe to
write a short thinking and close it (the tiny base never closes its thinking).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.local_engine import LocalEngine
from tests.support.training_test_helpers import quick_args
from training.distill import distill_rows, thinker_messages
from training.distill_cache import stable_hash
from training.train import select_rows

pytestmark = pytest.mark.slow


def test_local_thinker_batches_rows_and_the_cache_is_reused(
    tiny_model_dir: Path, huanhuan_path: Path, thinker_adapter_dir: Path, tokenizer, tmp_path: Path, monkeypatch
) -> None:
    batch_sizes: list[int] = []
    original = LocalEngine.open_streams

    def spy(self, requests):
        batch_sizes.append(len(requests))
        return original(self, requests)

    monkeypatch.setattr(LocalEngine, "open_streams", spy)
    args = quick_args(
        tiny_model_dir, huanhuan_path, tmp_path, thinking="distill", distill_engine="local",
        distill_adapter=str(thinker_adapter_dir), distill_cache_dir=str(tmp_path / "cache"),
        distill_max_thinking_tokens=32, distill_concurrency=4, max_answer_chars=12, max_samples=10,
    )  # fmt: skip
    rows, _ = select_rows(args)
    prompts = len({stable_hash(thinker_messages(row, args)) for row in rows})  # a line asked twice is sent once
    first = distill_rows(args, rows, tokenizer, log=print)
    assert batch_sizes == [4, 4, prompts - 8]
    summary = first.report.summary()
    assert first.report.generated == prompts and summary["rows_used"] == len(first.thinking) > 0
    assert summary["thinking_tokens"]["max"] > 0, "the thinker wrote a thinking and closed it"
    second = distill_rows(args, rows, tokenizer, log=print)
    assert batch_sizes == [4, 4, prompts - 8], "the second run generated again"
    assert second.report.from_cache == 10 and second.thinking == first.thinking
