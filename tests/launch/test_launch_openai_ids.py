"""`./launch.sh --engine openai` hands a remote server's model ids and --strict-openai to the app as given."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.support.paths import REPO_ROOT
from tests.support.signals import default_sigint

pytestmark = pytest.mark.slow


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_model_ids_and_strict_openai_reach_the_app(tmp_path: Path) -> None:
    command = ["./launch.sh", "--engine", "openai", "--base-url", f"http://127.0.0.1:{unused_port()}/v1",
               "--api-key-env", "HOME", "--base-model", "Qwen/Qwen3-4B-Thinking-2507", "--models", "qwen3:4b,/srv/m",
               "--strict-openai", "--no-install", "--home", str(tmp_path), "--port", str(unused_port())]  # fmt: skip
    log = tmp_path / "launch.log"
    with log.open("w") as out:
        launch = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=default_sigint
        )
    try:
        deadline = time.monotonic() + 300
        while "==> ready in" not in log.read_text() and time.monotonic() < deadline:
            assert launch.poll() is None, log.read_text()
            time.sleep(0.5)
        apps = [p.cmdline() for p in psutil.Process(launch.pid).children(recursive=True) if "app" in p.cmdline()]
        assert apps, log.read_text()
        app = " ".join(apps[0])
        assert "--base-model Qwen/Qwen3-4B-Thinking-2507 --models qwen3:4b,/srv/m --strict-openai true" in app
    finally:
        launch.send_signal(signal.SIGINT)
        launch.wait(timeout=60)
