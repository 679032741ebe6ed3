"""Soak: open / chat / close churn on the real app over the real vLLM server; memory stays bounded.

`python -m app` (a real process) on the shared vLLM server; 4 users open a gradio_client session, chat one
to three turns (every fourth turn is left mid-stream by closing the session) and close it, again and again
for SOAK_SECONDS (default 180, short enough for every CI run; SOAK_SECONDS=600 is the 10-minute soak). The
resident memory of the app's and of vLLM's process trees is taken after the warm-up and at the end (printed
and written to artifacts/reliability-soak.json); the end must stay within a bound of the start.

    SOAK_SECONDS=120 .venv/bin/python -m pytest tests/reliability/test_reliability_soak.py -s
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.support.load_drivers import run_soak
from tests.support.reliability_helpers import REPO_ROOT, listening_pid, start_app

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
ARTIFACT = REPO_ROOT / "artifacts" / "reliability-soak.json"
GROWTH = {"app": (1.5, 100.0), "vllm": (1.25, 200.0)}  # end <= start * factor + MiB, after the warm-up


def test_open_chat_close_churn_keeps_memory_bounded(vllm_server, app_adapters_dir: Path, tmp_path: Path) -> None:
    args = ["--engine", "openai", "--base-url", vllm_server.base_url, "--api-key-env", "HH_TEST_VLLM_KEY",
            "--adapters-dir", str(app_adapters_dir)]  # fmt: skip
    app = start_app(args, tmp_path / "app.log", env={"HH_TEST_VLLM_KEY": vllm_server.api_key})
    try:
        pids = {"app": app.process.pid, "vllm": listening_pid(vllm_server.port)}
        assert pids["vllm"], "found the vLLM process by its port"
        models = (vllm_server.served_model_name, "huanhuan")
        report = run_soak(app.url, models, pids, seconds=SOAK_SECONDS, users=4, max_tokens=16)
        assert app.process.poll() is None, "the app is still running"
    finally:
        app.stop()
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False))
    print(f"\nsoak: {json.dumps(asdict(report), ensure_ascii=False)}")
    assert not report.failures, report.failures[:5]
    assert report.sessions >= 4 and report.outcomes.get("done", 0) > 0
    for name, (factor, slack_mib) in GROWTH.items():
        start, end = report.rss_start_mib[name], report.rss_end_mib[name]
        assert end <= start * factor + slack_mib, f"{name} RSS grew from {start} MiB to {end} MiB"
    assert vllm_server.is_running()
