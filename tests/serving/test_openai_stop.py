"""Stop reaches the server even when no token is coming: closing an OpenAIStream from another thread while its
reader waits for the next chunk disconnects at once (a stalled server sees the end of the connection). Closing
never frees the socket under a read in progress, and closing a stream already read to its end leaves its pooled
connection alone (the next request may be streaming on it).

    .venv/bin/python -m pytest tests/serving/test_openai_stop.py
"""

from __future__ import annotations

import json
import socket
import threading

from serving.openai_engine import OpenAIEngine
from serving.protocol import FinalDelta, ReasoningDelta, SamplingParams
from tests.support.serving_test_helpers import ScriptedServer, read_http_request

CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "base",
         "choices": [{"index": 0, "delta": {"content": "thinking"}, "finish_reason": None}]}  # fmt: skip
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
MESSAGES = [{"role": "user", "content": "hi"}]


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def sse(payload: str) -> bytes:
    return http_chunk(f"data: {payload}\n\n".encode())


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
            connection.sendall(HEAD + sse(json.dumps(CHUNK)))
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


class KeepAliveServer(ScriptedServer):
    """Answers streamed completions on kept-alive connections: the first at once, the second with one chunk, then
    the rest when `go_on` is set. Counts the connections it accepted. It ends each body without openai's `[DONE]`
    (as some servers do), so the client reads the body to its end and pools the connection (after `[DONE]` the
    openai client closes it instead)."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Event()
        self._answered = 0
        self.start()

    def serve(self, connection: socket.socket) -> None:
        with connection:
            while self._answered < 2:
                read_http_request(connection)
                self._answered += 1
                connection.sendall(HEAD + sse(json.dumps(CHUNK)))
                if self._answered == 2:
                    self.go_on.wait(60)
                connection.sendall(b"0\r\n\r\n")
            connection.recv(1)


def test_closing_a_stream_read_to_its_end_leaves_its_connection_to_the_next_request() -> None:
    server = KeepAliveServer()
    engine = OpenAIEngine(f"http://127.0.0.1:{server.port}/v1", "key", base_model="base")
    params = SamplingParams(max_tokens=100)
    finished = engine.stream_chat(MESSAGES, "base", params)
    assert isinstance(list(finished)[-1], FinalDelta)
    following = engine.stream_chat(MESSAGES, "base", params)
    assert next(following) == ReasoningDelta("thinking")
    assert server.connections == 1, "precondition: the second request reuses the first one's connection"
    finished.close()  # what a side's reader does after the end (app/merge_sides.py), while another side streams
    server.go_on.set()
    assert isinstance(list(following)[-1], FinalDelta), "the next request on that connection was cut off"


def test_close_never_frees_the_socket_under_a_read_in_progress(monkeypatch) -> None:
    server = StalledServer()
    engine = OpenAIEngine(f"http://127.0.0.1:{server.port}/v1", "key", base_model="base")
    stream = engine.stream_chat(MESSAGES, "base", SamplingParams(max_tokens=100))
    assert next(stream) == ReasoningDelta("thinking")
    in_read, may_read, read_sockets = threading.Event(), threading.Event(), []
    plain_recv = socket.socket.recv

    def recv_after_a_pause(sock: socket.socket, *args):  # the reader, between taking the socket and the syscall
        if threading.current_thread().name == "reader":
            read_sockets.append(sock)
            in_read.set()
            may_read.wait(30)
        return plain_recv(sock, *args)

    monkeypatch.setattr(socket.socket, "recv", recv_after_a_pause)
    reader = threading.Thread(target=lambda: list(stream), name="reader", daemon=True)
    reader.start()
    assert in_read.wait(30)
    stream.close()
    assert read_sockets[0].fileno() != -1, "close() freed the socket a read was about to use"
    may_read.set()
    reader.join(30)
    assert not reader.is_alive(), "the reader did not wake after close()"
    assert read_sockets[0].fileno() == -1, "nobody closed the socket after the read returned"
    assert server.hung_up.wait(30)
