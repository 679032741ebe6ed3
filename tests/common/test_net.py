"""common.net.free_port: the port it gives is free at that moment (a server can bind it) and on the host asked."""

from __future__ import annotations

import socket

from common.net import free_port


def test_the_port_is_free_and_can_be_bound_at_once() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))  # raises if somebody listened there
        server.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_a_port_in_use_is_never_given() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert all(free_port() != taken for _ in range(50))
