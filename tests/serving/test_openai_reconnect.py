"""A connection that breaks before the server answers (a pooled keep-alive connection the server has just closed)
is tried once more, so the side streams; a server that keeps breaking connections is reported after the second try.

    .venv/bin/python -m pytest tests/serving/test_openai_reconnect.py
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from serving.openai_engine import OpenAIEngine
from serving.protocol import AnswerDelta, EngineUnavailableError, SamplingParams
from tests.support.serving_test_helpers import read_http_request

CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "base",
         "choices": [{"index": 0, "delta": {"content": "hello"}, "finish_reason": "stop"}]}  # fmt: skip


class DroppingServer:
    """Closes the first `drops` connections after reading their request, without an answer; answers the rest."""

    def __init__(self, drops: int) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.drops = drops
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            connection, _ = self._listener.accept()
            self.connections += 1
            with connection:
                read_http_request(connection)
                if self.connections > self.drops:
                    self._answer(connection)

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        body = f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n".encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {len(body)}\r\n"
        connection.sendall(head.encode() + b"connection: close\r\n\r\n" + body)


def first_delta(server: DroppingServer):
    engine = OpenAIEngine(f"http://127.0.0.1:{server.port}/v1", "key", base_model="base", starts_in_thinking=False)
    stream = engine.stream_chat([{"role": "user", "content": "hi"}], "base", SamplingParams(max_tokens=10))
    return next(stream)


def test_a_connection_dropped_before_the_answer_is_tried_once_more_and_the_side_streams() -> None:
    server = DroppingServer(drops=1)
    assert first_delta(server) == AnswerDelta("hello")
    assert server.connections == 2


def test_a_server_that_keeps_dropping_connections_is_reported_after_the_second_try() -> None:
    server = DroppingServer(drops=100)
    with pytest.raises(EngineUnavailableError, match="cannot reach the model server"):
        first_delta(server)
    assert server.connections == 2
