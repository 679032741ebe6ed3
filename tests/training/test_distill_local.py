"""Distilled thinking without vLLM: LocalEngine (transformers + peft) in batches, one generate per batch.

The thinker is the session's offline adapter on the tiny Qwen3 (its base never closes its thinking).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from training_test_helpers import quick_args

from serving.local_engine import LocalEngine
from training.distill import distill_rows
from training.train import select_rows

pytestmark = pytest.mark.slow


def test_local_thinker_batches_rows_and_the_cache_is_reused(
    tiny_model_dir: Path, huanhuan_path: Path, trained_adapter_dir: Path, tokenizer, tmp_path: Path, monkeypatch
) -> None:
    batch_sizes: list[int] = []
    original = LocalEngine.open_streams

    def spy(self, requests):
        batch_sizes.append(len(requests))
        return original(self, requests)

    monkeypatch.setattr(LocalEngine, "open_streams", spy)
    args = quick_args(
        tiny_model_dir, huanhuan_path, tmp_path, thinking="distill", distill_engine="local",
        distill_adapter=str(trained_adapter_dir), distill_cache_dir=str(tmp_path / "cache"),
        distill_max_thinking_tokens=32, distill_concurrency=4, max_answer_chars=12, max_samples=10,
    )  # fmt: skip
    rows, _ = select_rows(args)
    first = distill_rows(args, rows, tokenizer, log=print)
    assert batch_sizes == [4, 4, 2]
    summary = first.report.summary()
    assert first.report.generated == 10 and summary["rows_used"] == len(first.thinking) > 0
    second = distill_rows(args, rows, tokenizer, log=print)
    assert batch_sizes == [4, 4, 2], "the second run generated again"
    assert second.report.from_cache == 10 and second.thinking == first.thinking
