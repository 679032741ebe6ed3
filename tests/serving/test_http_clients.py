"""The engine's connections: an idle keep-alive connection is dropped by the client well before vLLM's server
closes it (5 s), and a model list whose connection breaks before the answer is asked once more.

    .venv/bin/python -m pytest tests/serving/test_http_clients.py
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from serving.http_clients import IDLE_CONNECTION_EXPIRY_S
from serving.openai_engine import OpenAIEngine
from serving.protocol import EngineUnavailableError
from tests.support.serving_test_helpers import ScriptedServer, read_http_request

VLLM_KEEP_ALIVE_S = 5  # vLLM's default VLLM_HTTP_TIMEOUT_KEEP_ALIVE
MODELS = json.dumps({"object": "list", "data": [{"id": "base", "object": "model", "owned_by": "vllm"}]}).encode()


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
