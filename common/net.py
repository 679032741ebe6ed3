"""Network helpers shared by app/, serving/, tests/ and bench/: finding a free port, and whether a port is taken."""

from __future__ import annotations

import errno
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now at `host` (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_taken(host: str, port: int) -> bool:
    """True when a server could not bind `host:port` now because something listens there.

    The probe binds with SO_REUSEADDR, as uvicorn and vLLM do, so a port held only by connections closing
    (TIME_WAIT) counts as free, as it is for them. Other bind errors (a host that is not this machine's) are
    left to the server to report.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False
