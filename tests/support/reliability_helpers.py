"""Helpers shared by the reliability tests (`from tests.support.reliability_helpers import ...`).

Waiting on a condition, finding the process that listens on a port, starting
`python -m app` as a real subprocess on a free port. Pages are served in-process with tests/support/served_page.py
(`serve_demo` is re-exported here; free ports come from common.net).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.net import free_port
from common.qwen3 import ZHEN_HUAN_PERSONA
from tests.support.paths import REPO_ROOT as REPO_ROOT
from tests.support.served_page import serve_demo as serve_demo

MESSAGES = [{"role": "system", "content": ZHEN_HUAN_PERSONA}, {"role": "user", "content": "你是谁？"}]


def root_url(base_url: str) -> str:
    """http://127.0.0.1:PORT from http://127.0.0.1:PORT/v1."""
    return base_url.rstrip("/").removesuffix("/v1")


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.2) -> object:
    """Poll until condition() is truthy (returns its value); AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on a TCP port (None if nobody does)."""
    import psutil

    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return connection.pid
    return None


def http_status(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> int:
    """The HTTP status of one request (no exception for 4xx/5xx)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@dataclass
class AppProcess:
    """A `python -m app` subprocess on 127.0.0.1 and a free port."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_app(args: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT,
              timeout_s: float = 180) -> AppProcess:  # fmt: skip
    """Run `python -m app --port FREE ARGS...` and wait until its page answers (or fail with its log)."""
    port = free_port()
    command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port), *args]
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    app = AppProcess(process, f"http://127.0.0.1:{port}/", log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited with {process.returncode}:\n{app.log()[-3000:]}")
        try:
            with urllib.request.urlopen(app.url + "config", timeout=5):
                return app
        except urllib.error.HTTPError:
            return app  # it answers (401 before login when auth is on)
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    app.stop()
    raise AssertionError(f"the app did not answer within {timeout_s} s:\n{app.log()[-3000:]}")
