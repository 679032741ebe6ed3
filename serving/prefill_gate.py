"""Keeps a vLLM `prompt_logprobs` request out of any batch with other requests.

vLLM 0.32 maps LoRA adapters wrongly while it computes prompt logprobs next to other requests, and its engine
dies (vllm-project/vllm#16668, open): measured here, the first reference-loss request on an adapter sent while
chat replies streamed killed the server (`einsum(): subscript b has size 5 ... 19`). The evaluation's
reference losses use prompt logprobs, and the app's Evaluate tab sends them to the server its chat uses.

`PrefillGate` is shared by every sender of one process (OpenAIEngine's chat streams, VllmReferenceLoss):

- a chat request waits while reference-loss requests are between their idle check and their answers (the
  requests of one `alone()`: VllmReferenceLoss holds it for one call, a chunk of at most 8 rows, one at a time);
- a reference-loss request waits until the server runs and queues nothing (its `/metrics` gauges, which count
  every client's requests, this process's or not), then shuts the gate, checks again (a chat request that went
  out meanwhile shows there) and only then is sent. It waits for such a gap for `patience_s`; after that it
  holds new chat requests back until the running replies end, so busy chat cannot starve an evaluation.

    gate = PrefillGate(metrics_url)
    with gate.chat_request():         # around sending a chat request, until the server has it (headers in)
        response = client.chat.completions.create(...)
    with gate.alone():                # around prompt_logprobs requests, sent one at a time
        client.completions.create(..., extra_body={"prompt_logprobs": 0})
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator

IDLE_POLL_S = 0.05
GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")


class ServerBusy(TimeoutError):
    """The server did not become idle in time for a reference-loss request."""


class PrefillGate:
    """Chat requests and lone prompt-logprobs requests of one process, kept apart (module docstring)."""

    def __init__(
        self, requests_in_server: Callable[[], int | None], patience_s: float = 10.0, idle_timeout_s: float = 600.0
    ):
        self._requests_in_server = requests_in_server  # None: the server does not say (no vLLM gauges)
        self._patience_s = patience_s  # how long a lone request waits for a gap in the chat before it holds chat back
        self._idle_timeout_s = idle_timeout_s
        self._lock = threading.Condition()
        self._shut = False  # a lone request is on its way
        self._sending = 0  # chat requests sent, the server's answer (headers) not in yet

    @contextlib.contextmanager
    def chat_request(self) -> Iterator[None]:
        """Around sending one chat request: waits while a lone request is out; held until the server has it."""
        with self._lock:
            self._lock.wait_for(lambda: not self._shut)
            self._sending += 1
        try:
            yield
        finally:
            with self._lock:
                self._sending -= 1
                self._lock.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """Around requests that must run with nothing beside them. They wait for a moment when the server runs
        nothing; after `patience_s` without one, new chat requests are held back until the running replies end.
        Raises ServerBusy when the server is still busy after `idle_timeout_s`."""
        started = time.monotonic()
        patient_until, deadline = started + self._patience_s, started + self._idle_timeout_s
        while True:
            self._wait_until_idle(patient_until)
            self._shut_gate()
            if self._server_idle():  # nothing slipped in between the look and the shutting
                break
            if time.monotonic() >= patient_until:  # chat held back from now on: the running replies finish
                if self._wait_until_idle(deadline):
                    break
                self._open()
                raise ServerBusy(
                    f"the server stayed busy for {self._idle_timeout_s:.0f} s; a reference loss (prompt_logprobs) "
                    "is only sent while nothing else runs there (vllm-project/vllm#16668)"
                )
            self._open()
        try:
            yield
        finally:
            self._open()

    def _shut_gate(self) -> None:
        """No new chat request from now on; returns once the ones on their way have reached the server."""
        with self._lock:
            self._lock.wait_for(lambda: not self._shut)
            self._shut = True
            self._lock.wait_for(lambda: self._sending == 0)

    def _open(self) -> None:
        with self._lock:
            self._shut = False
            self._lock.notify_all()

    def _server_idle(self) -> bool:
        return not self._requests_in_server()  # 0, or None when the server does not say

    def _wait_until_idle(self, until: float) -> bool:
        """True once the server runs nothing; False when `until` (time.monotonic) passes first."""
        while not self._server_idle():
            if time.monotonic() >= until:
                return False
            time.sleep(IDLE_POLL_S)
        return True


def vllm_requests_in_server(metrics_text: str) -> int | None:
    """Requests vLLM runs or queues, from its Prometheus `/metrics` text; None when neither gauge is there."""
    values = [
        float(match.group(1))
        for name in GAUGES
        for match in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", metrics_text, re.MULTILINE)
    ]
    return round(sum(values)) if values else None


def metrics_reader(base_url: str, timeout_s: float = 5.0) -> Callable[[], int | None]:
    """A function reading a vLLM server's request gauges (`/metrics` beside `/v1`); None when it cannot be read."""
    import httpx

    from serving.http_clients import uses_proxy_settings

    url = base_url.rstrip("/").removesuffix("/v1") + "/metrics"

    def read() -> int | None:
        try:
            response = httpx.get(url, timeout=timeout_s, trust_env=uses_proxy_settings(url))
        except httpx.HTTPError:  # no gauges to go by: the in-process gate still holds
            return None
        return vllm_requests_in_server(response.text) if response.status_code == 200 else None

    return read
