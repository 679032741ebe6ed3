"""Read vLLM's Prometheus /metrics (an open read-only probe) in tests: `metric(server, name, **labels)`.

A test imports it as `from tests.support.vllm_metrics import metric`.
"""

from __future__ import annotations

import re
import time
import urllib.request

CHAT_REQUESTS = "http_requests_total"  # the HTTP layer's counter: every chat request, finished or aborted


def metric(server, name: str, **labels: str) -> float:
    """Sum of one Prometheus series (counter or gauge, with or without labels) over the lines matching the labels."""
    request = urllib.request.Request(server.base_url.removesuffix("/v1") + "/metrics",
                                     headers={"Authorization": f"Bearer {server.api_key}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
            total += float(match.group(2))
    return total


def chat_requests(server) -> float:
    """How many chat completion requests the server has received and answered (any status, streamed or not)."""
    return metric(server, CHAT_REQUESTS, handler="/v1/chat/completions")


def wait_idle(server, timeout_s: float = 60.0) -> None:
    """Until no request runs or waits and the chat request count is steady (a killed client's requests ended)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        busy = metric(server, "vllm:num_requests_running") + metric(server, "vllm:num_requests_waiting")
        count = chat_requests(server)
        if busy == 0 and count == last:
            return
        last = count
        time.sleep(1.0)
    raise AssertionError("the vLLM server did not become idle")
