"""Stop ends generation on the real vLLM server: after both streams of a side-by-side turn are closed (from
another thread, while their readers wait, as the Stop button does), vLLM's running-requests gauge drops to 0.

    .venv/bin/python -m pytest tests/serving/test_vllm_stop.py
"""

from __future__ import annotations

import threading
import time

import pytest

from serving.protocol import ChatRequest, SamplingParams
from tests.support.threads import thread_stack
from tests.support.vllm_metrics import metric

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
LONG = SamplingParams(temperature=0.0, max_tokens=1500, seed=0)
MESSAGES = [{"role": "user", "content": "讲一个很长的故事"}]


def test_closing_both_streams_mid_reply_ends_both_requests_on_the_server(vllm_server) -> None:
    engine = vllm_server.engine()
    streams = engine.open_streams([ChatRequest(MESSAGES, "tiny", LONG), ChatRequest(MESSAGES, "huanhuan", LONG)])
    for stream in streams:
        next(stream)  # both are generating
    assert metric(vllm_server, "vllm:num_requests_running") > 0
    readers = [threading.Thread(target=lambda s=s: list(s), daemon=True) for s in streams]
    for reader in readers:
        reader.start()
    for stream in streams:
        stream.close()
    deadline = time.monotonic() + 120  # generous: this asserts that generation ends, not how fast
    while metric(vllm_server, "vllm:num_requests_running") > 0:
        assert time.monotonic() < deadline, "vLLM still generates for a closed stream"
        time.sleep(0.05)
    for reader in readers:
        reader.join(60)
        assert not reader.is_alive(), thread_stack(reader)
