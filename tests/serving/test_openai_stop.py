"""Stop reaches the server even when no token is coming: closing an OpenAIStream from another thread while its
reader waits for the next chunk disconnects at once (a stalled server sees the end of the connection).

    .venv/bin/python -m pytest tests/serving/test_openai_stop.py
"""

from __future__ import annotations

import json
import socket
import threading

from serving.openai_engine import OpenAIEngine
from serving.protocol import ReasoningDelta, SamplingParams
from tests.support.serving_test_helpers import read_http_request

CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "base",
         "choices": [{"index": 0, "delta": {"content": "thinking"}, "finish_reason": None}]}  # fmt: skip


class StalledServer:
    """Answers one streamed chat completion with one chunk, then sends nothing; notes when the client hangs up."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.hung_up = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            read_http_request(connection)
            event = f"data: {json.dumps(CHUNK)}\n\n".encode()
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            connection.sendall(head + f"{len(event):x}\r\n".encode() + event + b"\r\n")
            connection.settimeout(120)
            try:
                if connection.recv(1) == b"":  # the client's FIN
                    self.hung_up.set()
            except OSError:
                self.hung_up.set()


def test_close_from_another_thread_disconnects_while_the_reader_waits_for_a_chunk() -> None:
    server = StalledServer()
    engine = OpenAIEngine(f"http://127.0.0.1:{server.port}/v1", "key", base_model="base")
    stream = engine.stream_chat([{"role": "user", "content": "hi"}], "base", SamplingParams(max_tokens=100))
    assert next(stream) == ReasoningDelta("thinking")
    reader_done = threading.Event()

    def read_on() -> None:  # blocks: the server sends nothing more
        for _ in stream:
            pass
        reader_done.set()

    threading.Thread(target=read_on, daemon=True).start()
    assert not reader_done.wait(0.5), "precondition: the reader is waiting for the next chunk"
    stream.close()  # what Stop does, from the handler's thread
    assert server.hung_up.wait(60), "the server never saw the disconnect while the reader waited"
    assert reader_done.wait(60), "the reader did not end after close()"
