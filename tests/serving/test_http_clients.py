"""The engine's connections: an idle keep-alive connection is dropped by the client well before vLLM's server
closes it (5 s), a model list whose connection breaks before the answer is asked once more, and the proxy
environment variables are followed for a remote server but never for one on this machine.

    .venv/bin/python -m pytest tests/serving/test_http_clients.py
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from serving.http_clients import IDLE_CONNECTION_EXPIRY_S, is_loopback_url
from serving.openai_engine import OpenAIEngine
from serving.protocol import EngineUnavailableError
from serving.serve_args import ServeArgs
from serving.vllm_server import VLLMServer
from tests.support.serving_test_helpers import ScriptedServer, read_http_request

VLLM_KEEP_ALIVE_S = 5  # vLLM's default VLLM_HTTP_TIMEOUT_KEEP_ALIVE
MODELS = json.dumps({"object": "list", "data": [{"id": "base", "object": "model", "owned_by": "vllm"}]}).encode()


PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


class ModelListServer(ScriptedServer):
    """Answers `GET /v1/models` on kept-alive connections (it never closes one itself); drops the first `drops`
    requests without an answer. Counts the connections it accepted."""

    def __init__(self, drops: int = 0) -> None:
        super().__init__()
        self.drops = drops
        self.start()

    def engine(self) -> OpenAIEngine:
        return OpenAIEngine(f"http://127.0.0.1:{self.port}/v1", "key", base_model="base")

    def serve(self, connection: socket.socket) -> None:
        with connection:
            while read_http_request(connection):
                if self.drops > 0:
                    self.drops -= 1
                    return  # closed without an answer, as a server closing an idle connection does
                head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(MODELS)}\r\n\r\n"
                connection.sendall(head.encode() + MODELS)


def test_both_clients_drop_an_idle_connection_before_vllm_would_close_it() -> None:
    assert IDLE_CONNECTION_EXPIRY_S <= VLLM_KEEP_ALIVE_S - 2, "keep a margin for a busy machine"
    server = ModelListServer()
    engine = server.engine()

    def ask_both() -> None:  # the openai client, then the adapter routes' client: one connection each
        engine.models()
        engine.http.get("models").raise_for_status()

    ask_both()
    ask_both()
    assert server.connections == 2, "precondition: a connection used again at once is kept"
    time.sleep(IDLE_CONNECTION_EXPIRY_S + 0.5)
    ask_both()
    assert server.connections == 4, "a connection idle past the expiry was used again"


def test_a_model_list_whose_connection_breaks_before_the_answer_is_asked_once_more() -> None:
    server = ModelListServer(drops=1)
    assert [info.name for info in server.engine().models()] == ["base"]
    assert server.connections == 2


def test_a_model_list_that_keeps_breaking_is_reported_after_the_second_try() -> None:
    server = ModelListServer(drops=100)
    with pytest.raises(EngineUnavailableError, match="cannot reach the model server"):
        OpenAIEngine(f"http://127.0.0.1:{server.port}/v1", "key").models()
    assert server.connections == 2


class RecordingServer(ScriptedServer):
    """Answers every request with the model list and keeps the request line of each (`heads`): as a proxy it
    shows which requests were sent through it, as a server which reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: list[str] = []
        self.start()

    def serve(self, connection: socket.socket) -> None:
        with connection:
            while head := read_http_request(connection):
                self.heads.append(head.split(b"\r\n")[0].decode())
                answer = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(MODELS)}\r\n\r\n"
                connection.sendall(answer.encode() + MODELS)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> RecordingServer:
    """A proxy set in every proxy variable, with no no_proxy exception (as on some clusters)."""
    proxy = RecordingServer()
    for variable in PROXY_VARIABLES:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    return proxy


def test_clients_of_a_server_on_this_machine_never_go_through_a_proxy(proxy: RecordingServer) -> None:
    server = RecordingServer()
    engine = OpenAIEngine(f"http://127.0.0.1:{server.port}/v1", "key", base_model="base")
    assert [info.name for info in engine.models()] == ["base"]
    engine.http.get("adapters")
    assert proxy.heads == [], "the API key and the prompts went to the proxy"
    assert server.heads == ["GET /v1/models HTTP/1.1", "GET /v1/adapters HTTP/1.1"]


def test_clients_of_a_remote_server_follow_the_proxy_settings(proxy: RecordingServer) -> None:
    engine = OpenAIEngine("http://models.example.invalid/v1", "key", base_model="base")  # answered by the proxy
    assert [info.name for info in engine.models()] == ["base"]
    engine.http.get("adapters")
    assert proxy.heads == [
        "GET http://models.example.invalid/v1/models HTTP/1.1",
        "GET http://models.example.invalid/v1/adapters HTTP/1.1",
    ]


def test_the_health_probe_of_our_own_vllm_never_goes_through_a_proxy(proxy: RecordingServer, tmp_path) -> None:
    server = RecordingServer()  # stands for a vLLM answering /health
    args = ServeArgs(model="tiny", adapters_dir=str(tmp_path), port=server.port, startup_timeout_s=5)
    VLLMServer(args).wait_healthy()
    assert proxy.heads == [] and server.heads == ["GET /health HTTP/1.1"]


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.0.0.2:8000/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://LOCALHOST/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://0.0.0.0:8000/v1", True),
        ("https://api.example.com/v1", False),
        ("http://localhost.example.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://[2001:db8::1]:8000/v1", False),
    ],
)
def test_loopback_urls_are_told_from_remote_ones(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
